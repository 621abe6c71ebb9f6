"""Leases: queue order, own leases first, overlap, expiry, release."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event
from sqlalchemy.orm import Session

from activelabel.store import (
    InvalidInput,
    NotFound,
    annotate,
    create_project,
    create_round,
    next_tasks,
    record_selection,
    release_task,
)
from activelabel.store.models import Item, Project, User, utcnow
from tests.support.projects import make_items, make_users


def ids(tasks: list) -> list[int]:  # type: ignore[type-arg]
    return [t.item.id for t in tasks]


def by_key(session: Session, items: list[int]) -> list[int]:
    """The items in the queue's order before any model: by their seeded random key."""
    keys = {i: session.get(Item, i).queue_key for i in items}  # type: ignore[union-attr]
    return sorted(items, key=lambda i: (keys[i], i))


def test_ranked_items_come_first_then_the_seeded_random_order(
        session: Session, project: Project, owner: User) -> None:
    items = make_items(session, project.id, 6)
    rnd = create_round(session, project.id, strategy="margin", batch_size=2)
    record_selection(session, project.id, rnd.id, [items[4], items[2]], [0.9, 0.8])
    tasks = next_tasks(session, project.id, owner.id, 4)
    rest = by_key(session, [items[0], items[1], items[3], items[5]])
    assert ids(tasks) == [items[4], items[2], *rest[:2]]
    assert tasks[0].selection is not None
    assert tasks[0].selection.score == pytest.approx(0.9)
    assert tasks[0].selection.strategy == "margin"
    assert tasks[2].selection is None
    assert [t.ranked_by for t in tasks] == ["random"] * 4  # the round has not finished


def test_the_order_before_any_model_is_seeded_not_file_order(
        session: Session, project: Project, owner: User) -> None:
    items = make_items(session, project.id, 40)
    tasks = next_tasks(session, project.id, owner.id, 40)
    assert ids(tasks) == by_key(session, items) != items
    assert {t.ranked_by for t in tasks} == {"random"}


def test_own_unexpired_leases_are_given_back_first(session: Session, project: Project,
                                                   owner: User) -> None:
    items = make_items(session, project.id, 5)
    first = next_tasks(session, project.id, owner.id, 2)
    again = next_tasks(session, project.id, owner.id, 3)
    assert ids(again)[:2] == ids(first)
    assert ids(again)[2] == by_key(session, items)[2]
    assert again[0].expires_at >= first[0].expires_at


def test_overlap_limits_holders_and_labels_count(session: Session, project: Project) -> None:
    items = by_key(session, make_items(session, project.id, 2))
    a, b, c = make_users(session, 3)
    assert ids(next_tasks(session, project.id, a.id, 1, overlap=2)) == [items[0]]
    assert ids(next_tasks(session, project.id, b.id, 1, overlap=2)) == [items[0]]
    assert ids(next_tasks(session, project.id, c.id, 1, overlap=2)) == [items[1]]
    annotate(session, project.id, a.id, items[0], ["pos"])  # lease -> label: still 2 of 2
    assert items[0] not in ids(next_tasks(session, project.id, c.id, 2, overlap=2))


def test_labeled_items_are_skipped_and_queue_exhausts(session: Session, project: Project,
                                                      owner: User) -> None:
    items = make_items(session, project.id, 3)
    annotate(session, project.id, owner.id, items[0], "pos")
    tasks = next_tasks(session, project.id, owner.id, 10, overlap=3)
    assert ids(tasks) == by_key(session, items[1:])


def test_expired_leases_are_free_again(session: Session, project: Project) -> None:
    items = make_items(session, project.id, 1)
    a, b = make_users(session, 2)
    past = utcnow() - timedelta(hours=1)
    next_tasks(session, project.id, a.id, 1, lease_seconds=60, now=past)
    assert ids(next_tasks(session, project.id, b.id, 1)) == items


def test_release_gives_the_item_back(session: Session, project: Project) -> None:
    items = make_items(session, project.id, 1)
    a, b = make_users(session, 2)
    next_tasks(session, project.id, a.id, 1)
    assert next_tasks(session, project.id, b.id, 1) == []
    release_task(session, project.id, a.id, items[0])
    assert ids(next_tasks(session, project.id, b.id, 1)) == items
    with pytest.raises(NotFound, match="no active lease"):
        release_task(session, project.id, a.id, items[0])


def test_splits_filter_and_argument_checks(session: Session, project: Project,
                                           owner: User) -> None:
    make_items(session, project.id, 2)
    gold = make_items(session, project.id, 1, start=10, split="gold")
    assert ids(next_tasks(session, project.id, owner.id, 5, splits={"gold"})) == gold
    with pytest.raises(InvalidInput, match="n must be"):
        next_tasks(session, project.id, owner.id, 0)
    with pytest.raises(InvalidInput, match="overlap"):
        next_tasks(session, project.id, owner.id, 1, overlap=0)


def test_claims_with_an_overlap_of_one_read_only_the_unlabeled_items(tmp_path: Path) -> None:
    """SQLite's plan for the queue pass uses the partial index of unlabeled items, so however
    many items are finished, a claim never visits them."""
    from activelabel.store import add_items, create_engine_for, migrate, session_factory

    engine = create_engine_for(f"sqlite:///{tmp_path / 'plan.db'}")
    migrate(engine)
    statements: list[tuple[str, Any]] = []

    def capture(conn: Any, cursor: Any, statement: str, params: Any, *_: Any) -> None:
        if statement.startswith("SELECT items.id") and "ORDER BY" in statement \
                and "ranking_round" not in statement:
            statements.append((statement, params))

    try:
        with session_factory(engine)() as session:
            [user] = make_users(session, 1)
            project = create_project(session, "plan", "classification", ["a", "b"])
            add_items(session, project.id, [{"external_id": str(i), "data": {}}
                                            for i in range(50)])
            event.listen(engine, "before_cursor_execute", capture)
            next_tasks(session, project.id, user.id, 1)
            event.remove(engine, "before_cursor_execute", capture)
            plans = [" ".join(str(row[-1]) for row in session.connection().exec_driver_sql(
                "EXPLAIN QUERY PLAN " + sql, params)) for sql, params in statements]
    finally:
        engine.dispose()
    queue_passes = [p for p in plans if "calibration" not in p]
    assert len(queue_passes) == 1, plans  # every item has a rank: the first pass finds it
    assert all("ix_items_unlabeled_queue" in p for p in queue_passes), queue_passes


def _statements(session: Session) -> Any:
    """A context collecting the SQL the session's engine runs meanwhile."""
    import contextlib

    engine = session.get_bind().engine

    @contextlib.contextmanager
    def collect() -> Any:
        seen: list[tuple[str, Any]] = []

        def capture(_conn: Any, _cursor: Any, statement: str, params: Any, *_: Any) -> None:
            seen.append((" ".join(statement.split()), params))

        event.listen(engine, "before_cursor_execute", capture)
        try:
            yield seen
        finally:
            event.remove(engine, "before_cursor_execute", capture)

    return collect()


def _calibration_passes(seen: list[tuple[str, Any]]) -> list[str]:
    return [s for s, _ in seen if s.startswith("SELECT items.id") and "calibration_items" in s]


def test_a_claim_reads_the_queue_and_writes_its_leases_in_few_statements(
        session: Session, project: Project, owner: User) -> None:
    """PostgreSQL: own leases, one queue pass (ranked items, then the rest), one statement
    that re-counts the locked candidates and leases them, then the tasks. SQLite: the queue
    pass (every item has a rank) and the leases' insert. No calibration pass
    without calibration sessions."""
    items = make_items(session, project.id, 6)
    rnd = create_round(session, project.id, strategy="margin", batch_size=1)
    record_selection(session, project.id, rnd.id, [items[3]], [0.5])
    project_id, user_id = project.id, owner.id  # loaded again after the selection's expiry
    with _statements(session) as seen:
        tasks = next_tasks(session, project_id, user_id, 3)
    assert ids(tasks) == [items[3], *by_key(session, [i for i in items if i != items[3]])[:2]]
    postgresql = session.get_bind().dialect.name == "postgresql"
    assert len(seen) == 4, "\n".join(s[:90] for s, _ in seen)
    assert not _calibration_passes(seen)
    if postgresql:
        [claim] = [s for s, _ in seen if s.startswith("INSERT INTO assignments")]
        assert "SELECT" in claim
        assert "RETURNING" in claim


def test_projects_with_calibration_sessions_get_the_calibration_pass(
        session: Session, project: Project, owner: User) -> None:
    from activelabel.store.governance import create_calibration

    items = make_items(session, project.id, 4)
    create_calibration(session, project.id, "c", [items[2]], created_by=owner.id)
    annotator, other = make_users(session, 2)
    annotate(session, project.id, other.id, items[2], "pos")  # labeled: still for everyone
    project_id, user_id = project.id, annotator.id
    with _statements(session) as seen:
        tasks = next_tasks(session, project_id, user_id, 2)
    assert ids(tasks) == [items[2], by_key(session, [items[0], items[1], items[3]])[0]]
    assert _calibration_passes(seen)


def test_the_postgresql_queue_pass_walks_the_unlabeled_index_without_sorting(
        session: Session, project: Project, owner: User) -> None:
    """One pass reads ranked then unranked items in index order (NULL ranks sort last), so a
    claim costs what it returns, not what the pool holds."""
    if session.get_bind().dialect.name != "postgresql":
        pytest.skip("SQLite's passes are checked by the plan test above")
    items = make_items(session, project.id, 30)
    rnd = create_round(session, project.id, strategy="margin", batch_size=2)
    record_selection(session, project.id, rnd.id, [items[7], items[5]], [0.9, 0.8])
    project_id, user_id = project.id, owner.id
    with _statements(session) as seen:
        next_tasks(session, project_id, user_id, 1)
    [(sql, params)] = [(s, p) for s, p in seen
                       if s.startswith("SELECT items.id") and "FOR NO KEY UPDATE" in s]
    raw = session.connection().connection.dbapi_connection
    assert raw is not None
    with raw.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")  # a tiny table: ask for the index plan
        cursor.execute("EXPLAIN " + sql, params)
        plan = "\n".join(row[0] for row in cursor.fetchall())
    assert "ix_items_unlabeled_queue" in plan, plan
    assert "Sort" not in plan, plan


def test_a_claim_reads_only_the_open_leases_however_many_labels_were_made(
        session: Session, project: Project, owner: User) -> None:
    """Every label leaves a finished lease behind. PostgreSQL read the whole leases table for
    each claim (twice: anyone's lease, the caller's), so a hand-out cost more with every label
    the database held; the partial index of open leases keeps it to the few open ones."""
    if session.get_bind().dialect.name != "postgresql":
        pytest.skip("SQLite's planner probes the leases by item (the test above)")
    from sqlalchemy import insert, text

    from activelabel.store.models import Assignment

    items = make_items(session, project.id, 3000)
    now = utcnow()
    session.execute(insert(Assignment), [
        {"project_id": project.id, "item_id": i, "user_id": owner.id, "leased_at": now,
         "expires_at": now, "completed_at": now} for i in items[:2500]])
    session.execute(text("ANALYZE assignments"))
    project_id, user_id = project.id, owner.id
    with _statements(session) as seen:
        next_tasks(session, project_id, user_id, 1)
    raw = session.connection().connection.dbapi_connection
    assert raw is not None
    claims = [(s, p) for s, p in seen if "FROM items" in s and "assignments" in s
              and ("FOR NO KEY UPDATE" in s or s.startswith("INSERT INTO assignments"))]
    assert len(claims) == 2, [s[:80] for s, _ in seen]  # the queue pass and the re-count
    for sql, params in claims:
        with raw.cursor() as cursor:
            cursor.execute("EXPLAIN " + sql, params)
            plan = "\n".join(row[0] for row in cursor.fetchall())
        assert "Seq Scan on assignments" not in plan, plan
        assert "ix_assignments_open" in plan, plan


def test_asking_again_hands_back_gold_mixed_tasks_in_the_same_order(
        session: Session, project: Project) -> None:
    """Renewed leases come back in the order they were written: with gold mixed in, that is
    the mixed order, so asking again does not move the gold items to the front."""
    make_items(session, project.id, 30)
    gold = set(make_items(session, project.id, 10, start=100, split="gold"))
    for annotator in make_users(session, 5):
        first = ids(next_tasks(session, project.id, annotator.id, 6, gold_rate=0.3))
        assert len(gold & set(first)) == 2
        again = ids(next_tasks(session, project.id, annotator.id, 6, gold_rate=0.3))
        assert again == first


def test_write_ranking_in_bulk_keeps_the_queue_indexes(session: Session, project: Project,
                                                       owner: User,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """A large write (SQLite: indexes dropped and rebuilt in the transaction) leaves every
    rank written and the queue's indexes in place."""
    from sqlalchemy import inspect

    import activelabel.store.queue as queue_module
    from activelabel.store.queue import SCORED_BASE, write_ranking

    monkeypatch.setattr(queue_module, "REBUILD_FROM_ROWS", 3)
    items = make_items(session, project.id, 8)
    ranks = [SCORED_BASE + r for r in (5, 3, 7, 1, 0, 2, 6, 4)]
    assert write_ranking(session, project.id, list(range(8)), ranks) == 8
    session.expire_all()
    assert [session.get(Item, i).queue_rank for i in items] == ranks  # type: ignore[union-attr]
    names = {i["name"] for i in inspect(session.connection()).get_indexes("items")}
    assert {"ix_items_unlabeled_queue", "ix_items_project_id_queue_rank_row"} <= names
    order = sorted(range(8), key=lambda r: ranks[r])
    assert ids(next_tasks(session, project.id, owner.id, 8)) == [items[r] for r in order]
    with pytest.raises(InvalidInput, match="one each"):
        write_ranking(session, project.id, [0, 1], [1.0])
