"""Real commits from several threads: no hand-out beyond the overlap, idempotent retries."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, func, select, text

from activelabel.store import (
    NewBlindAnswer,
    add_items,
    annotate,
    claim_job,
    create_project,
    create_user,
    enqueue_job,
    next_tasks,
    record_blind_answers,
    session_factory,
)
from activelabel.store._util import lock_project
from activelabel.store.models import (
    Annotation,
    Assignment,
    BlindAnswer,
    Item,
    Project,
    utcnow,
)
from tests.support.databases import new_engine

N_THREADS = 8


def _setup(engine: Engine, n_items: int) -> tuple[int, list[int]]:
    with session_factory(engine)() as s:
        users = [create_user(s, f"w{i}") for i in range(N_THREADS)]
        project = create_project(s, "race", "classification", ["a", "b"])
        add_items(s, project.id, [{"external_id": str(i), "data": {"i": i}}
                                  for i in range(n_items)])
        s.commit()
        return project.id, [u.id for u in users]


def _run_threads(target: Callable[[int], Any]) -> list[Any]:
    barrier = threading.Barrier(N_THREADS)
    results: list[Any] = [None] * N_THREADS
    errors: list[BaseException] = []

    def run(i: int) -> None:
        barrier.wait()
        try:
            results[i] = target(i)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(N_THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    return results


@pytest.mark.parametrize("overlap", [1, 2])
def test_concurrent_next_tasks_never_exceed_the_overlap(fresh_engine: Engine,
                                                        overlap: int) -> None:
    project_id, users = _setup(fresh_engine, 40)
    factory = session_factory(fresh_engine)
    now = utcnow()

    def claim(i: int) -> list[int]:
        got: list[int] = []
        for _ in range(4):
            with factory() as s:
                tasks = next_tasks(s, project_id, users[i], 3, overlap=overlap, now=now)
                s.commit()
                got += [t.item.id for t in tasks]
            with factory() as s:  # label them, so that the next call brings new items
                for t in tasks:
                    annotate(s, project_id, users[i], t.item.id, "a")
                s.commit()
        return got

    handed = Counter(i for got in _run_threads(claim) for i in set(got))
    assert max(handed.values()) <= overlap
    # Nothing got stuck: callers one at a time take the rest (under contention SKIP LOCKED
    # may return fewer items than asked while others hold the remaining ones).
    for i in range(N_THREADS):
        handed.update(claim(i))
    assert max(handed.values()) <= overlap
    assert sum(handed.values()) == 40 * overlap
    with factory() as s:
        for table in (Assignment, Annotation):
            per_item = s.execute(select(table.item_id, func.count()).group_by(
                table.item_id)).all()
            assert max(n for _, n in per_item) <= overlap


def test_concurrent_retries_of_one_annotation_store_it_once(fresh_engine: Engine) -> None:
    project_id, users = _setup(fresh_engine, 1)
    factory = session_factory(fresh_engine)
    with factory() as s:
        item_id = s.execute(select(func.min(Annotation.id))).scalar()  # no annotations yet
        assert item_id is None
        from activelabel.store.models import Item

        item_id = s.execute(select(Item.id)).scalar_one()

    def retry(_: int) -> int:
        with factory() as s:
            ann = annotate(s, project_id, users[0], item_id, "a", client_key="same-request")
            s.commit()
            return ann.id

    assert len(set(_run_threads(retry))) == 1
    with factory() as s:
        assert s.execute(select(func.count()).select_from(Annotation)).scalar() == 1


def test_concurrent_first_blind_answers_of_one_annotator_keep_one(fresh_engine: Engine) -> None:
    """The page may ask twice at once about one item: one answer is kept, no call fails."""
    project_id, users = _setup(fresh_engine, 1)
    factory = session_factory(fresh_engine)
    with factory() as s:
        item_id = s.execute(select(Item.id)).scalar_one()

    def ask(i: int) -> int:
        with factory() as s:
            kept = record_blind_answers(s, project_id, users[0], [
                NewBlindAnswer(item_id, ["a" if i % 2 else "b"], ["a"], 1)])
            s.commit()
            return kept

    assert sorted(_run_threads(ask)) == [0] * (N_THREADS - 1) + [1]
    with factory() as s:
        assert s.execute(select(func.count()).select_from(BlindAnswer)).scalar() == 1


def test_concurrent_first_labels_of_one_annotator_store_one_and_refuse_the_rest(
        fresh_engine: Engine) -> None:
    """The same person labels one item from several tabs at once (no client key): one label
    is stored, the others are refused with Conflict (never dropped silently), and the item
    counts one label."""
    from activelabel.store import Conflict
    from activelabel.store.models import Item

    project_id, users = _setup(fresh_engine, 1)
    factory = session_factory(fresh_engine)
    with factory() as s:
        item_id = s.execute(select(Item.id)).scalar_one()

    def label(_: int) -> str:
        with factory() as s:
            try:
                annotate(s, project_id, users[0], item_id, "a")
                s.commit()
                return "ok"
            except Conflict:
                return "conflict"

    outcomes = Counter(_run_threads(label))
    with factory() as s:
        stored = s.execute(select(func.count()).select_from(Annotation)).scalar_one()
        n_labels = s.execute(select(Item.n_labels).where(Item.id == item_id)).scalar_one()
    # A thread that starts after another committed corrects that label instead: every
    # stored revision is one thread's "ok", and all of them form one chain.
    assert outcomes["ok"] == stored >= 1
    assert outcomes["ok"] + outcomes["conflict"] == N_THREADS
    assert n_labels == 1


def test_concurrent_corrections_of_one_revision_conflict(fresh_engine: Engine) -> None:
    from activelabel.store import Conflict
    from activelabel.store.models import Item

    project_id, users = _setup(fresh_engine, 1)
    factory = session_factory(fresh_engine)
    with factory() as s:
        item_id = s.execute(select(Item.id)).scalar_one()
        first = annotate(s, project_id, users[0], item_id, "a")
        s.commit()

    def correct(i: int) -> str:
        with factory() as s:
            try:
                annotate(s, project_id, users[i], item_id, "b", supersedes=first.id)
                s.commit()
                return "ok"
            except Conflict:
                return "conflict"

    outcomes = Counter(_run_threads(correct))
    assert outcomes == {"ok": 1, "conflict": N_THREADS - 1}


def test_each_job_is_claimed_by_one_worker(fresh_engine: Engine) -> None:
    factory = session_factory(fresh_engine)
    with factory() as s:
        for _ in range(N_THREADS):
            enqueue_job(s, "round")
        s.commit()

    def work(i: int) -> list[int]:
        claimed = []
        with factory() as s:
            while (job := claim_job(s, ["round"], f"w{i}")) is not None:
                claimed.append(job.id)
                s.commit()
        return claimed

    claimed = [j for got in _run_threads(work) for j in got]
    assert sorted(claimed) == sorted(set(claimed))
    assert len(claimed) == N_THREADS




@pytest.fixture
def pg_engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    """A fresh PostgreSQL schema (the row locks below exist only there)."""
    yield from new_engine("postgresql", request, tmp_path)


def test_a_locked_project_lets_leases_and_labels_through_on_postgresql(
        pg_engine: Engine) -> None:
    """A round recording its results holds the project row; a request meanwhile inserts a
    lease and an annotation, whose foreign-key checks need a key-share lock on that row. A
    full FOR UPDATE blocked them (and deadlocked with the round waiting for their item rows);
    FOR NO KEY UPDATE does not."""
    from activelabel.labeling.rounds import after_annotation

    project_id, users = _setup(pg_engine, 3)
    sessions = session_factory(pg_engine)
    with sessions() as setup, setup.begin():
        project = setup.get(Project, project_id)
        assert project is not None
        project.settings = {**project.settings, "retrain_every_labels": 1}
    with sessions() as holder, sessions() as request:
        holder.begin()
        lock_project(holder, project_id)
        request.execute(text("SET LOCAL lock_timeout = '2s'"))
        [task] = next_tasks(request, project_id, users[0], 1)
        annotate(request, project_id, users[0], task.item.id, ["a"])
        # A round is due, but the project is held: the request holding an item row does not
        # wait for it (the next label queues the round).
        assert after_annotation(request, project_id) is None
        request.commit()  # without waiting for the holder
        holder.rollback()
    with sessions() as check, check.begin():
        assert check.execute(select(func.count()).select_from(Annotation)).scalar_one() == 1
        assert after_annotation(check, project_id) is not None  # free again: queued now
