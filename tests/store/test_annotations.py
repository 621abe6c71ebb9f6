"""Append-only revisions: corrections, conflicts, idempotency, reviews, history, training view."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from activelabel.store import (
    Conflict,
    InvalidInput,
    LabelsMark,
    RoundDue,
    annotate,
    count_current,
    count_labeled_items,
    count_labeled_since,
    create_project,
    create_round,
    current_labels,
    current_labels_mark,
    finish_round,
    item_history,
    label_watermark,
    next_tasks,
    review,
    round_due,
    undo,
)
from activelabel.store.annotations import is_current_label
from activelabel.store.models import Annotation, Assignment, Item, Project, User
from tests.support.projects import make_items, make_users


def test_label_completes_the_lease(session: Session, project: Project, owner: User) -> None:
    [item] = make_items(session, project.id, 1)
    next_tasks(session, project.id, owner.id, 1)
    ann = annotate(session, project.id, owner.id, item, ["pos"], duration_ms=1200)
    assert (ann.kind, ann.labels, ann.duration_ms) == ("label", ["pos"], 1200)
    lease = session.execute(select(Assignment)).scalar_one()
    assert lease.completed_at is not None


def test_correction_appends_and_leaves_the_old_row_untouched(session: Session, project: Project,
                                                             owner: User) -> None:
    [item] = make_items(session, project.id, 1)
    first = annotate(session, project.id, owner.id, item, "pos")
    before = (first.id, first.labels, first.kind, first.created_at)
    second = annotate(session, project.id, owner.id, item, "neg")
    session.expire_all()
    old = session.get(Annotation, first.id)
    assert old is not None
    assert (old.id, old.labels, old.kind, old.created_at) == before
    assert (second.kind, second.supersedes_id) == ("correction", first.id)
    history = item_history(session, project.id, item)
    assert [(r.labels, r.is_current) for r in history] == [(["pos"], False), (["neg"], True)]
    assert history[0].username == owner.username


def test_double_correction_of_one_revision_conflicts(session: Session, project: Project) -> None:
    [item] = make_items(session, project.id, 1)
    annotator, reviewer = make_users(session, 2)
    first = annotate(session, project.id, annotator.id, item, "pos")
    fix = annotate(session, project.id, reviewer.id, item, "neg", supersedes=first.id)
    assert fix.annotator_id == annotator.id
    assert fix.user_id == reviewer.id
    with pytest.raises(Conflict, match=f"superseded by revision {fix.id}"):
        annotate(session, project.id, annotator.id, item, "neutral", supersedes=first.id)


def test_supersedes_uniqueness_is_enforced_by_the_database(session: Session, project: Project,
                                                           owner: User) -> None:
    """Even bypassing the check (as a concurrent writer would), the second correction fails."""
    [item] = make_items(session, project.id, 1)
    first = annotate(session, project.id, owner.id, item, "pos")
    annotate(session, project.id, owner.id, item, "neg")
    from activelabel.store.annotations import _append

    twin = {"project_id": project.id, "item_id": item, "annotator_id": owner.id,
            "user_id": owner.id, "kind": "correction", "labels": ["neutral"],
            "supersedes_id": first.id}
    with pytest.raises(Conflict, match="superseded meanwhile"):
        _append(session, twin, first)
    # Nothing was inserted and the transaction is still usable: the chain goes on.
    assert [r.labels for r in item_history(session, project.id, item)] == [["pos"], ["neg"]]
    assert annotate(session, project.id, owner.id, item, "neutral").kind == "correction"


def test_client_key_makes_annotate_idempotent(session: Session, project: Project,
                                              owner: User) -> None:
    [item, other] = make_items(session, project.id, 2)
    a = annotate(session, project.id, owner.id, item, "pos", client_key="k1")
    b = annotate(session, project.id, owner.id, item, "pos", client_key="k1")
    assert a.id == b.id
    assert len(item_history(session, project.id, item)) == 1
    with pytest.raises(Conflict, match="client_key"):
        annotate(session, project.id, owner.id, other, "pos", client_key="k1")


def test_labels_are_checked_against_the_project(session: Session, project: Project,
                                                owner: User) -> None:
    [item] = make_items(session, project.id, 1)
    with pytest.raises(InvalidInput, match="unknown labels"):
        annotate(session, project.id, owner.id, item, ["spam"])
    with pytest.raises(InvalidInput, match="exactly one"):
        annotate(session, project.id, owner.id, item, ["pos", "neg"])
    multi = create_project(session, "multi", "multilabel", ["a", "b", "c"])
    [mitem] = make_items(session, multi.id, 1)
    assert annotate(session, multi.id, owner.id, mitem, ["a", "c"]).labels == ["a", "c"]
    with pytest.raises(InvalidInput, match="repeat"):
        annotate(session, multi.id, owner.id, mitem, ["a", "a"])


def test_review_undo_and_current_labels(session: Session, project: Project) -> None:
    items = make_items(session, project.id, 3)
    a, b, rev = make_users(session, 3)
    la = annotate(session, project.id, a.id, items[0], "pos")
    lb = annotate(session, project.id, b.id, items[0], "neg")
    annotate(session, project.id, a.id, items[1], "neutral")
    accepted = review(session, project.id, rev.id, la.id, accept=True)
    assert (accepted.kind, accepted.labels) == ("review_accept", ["pos"])
    rejected = review(session, project.id, rev.id, lb.id, accept=False)
    assert (rejected.kind, rejected.labels) == ("review_reject", None)
    undo(session, project.id, a.id, items[1])
    current = current_labels(session, project.id)
    assert [(c.item_id, c.annotator_id, c.labels) for c in current] == [(items[0], a.id, ["pos"])]
    assert count_labeled_items(session, project.id) == 1
    with pytest.raises(Conflict, match="no current label"):
        undo(session, project.id, a.id, items[1])
    again = annotate(session, project.id, a.id, items[1], "neg")  # after undo: a new revision
    assert again.kind == "correction"


def test_round_id_defaults_to_the_latest_finished_round(session: Session, project: Project,
                                                        owner: User) -> None:
    [item, other] = make_items(session, project.id, 2)
    assert annotate(session, project.id, owner.id, item, "pos").round_id is None
    rnd = create_round(session, project.id, strategy="margin", batch_size=1)
    finish_round(session, project.id, rnd.id)
    assert annotate(session, project.id, owner.id, other, "pos").round_id == rnd.id


def test_labels_since_a_watermark_count_items_whose_current_label_is_newer(
        session: Session, project: Project) -> None:
    items = make_items(session, project.id, 4)
    a, b = make_users(session, 2)
    assert label_watermark(session, project.id) == 0
    first = annotate(session, project.id, a.id, items[0], "pos")
    annotate(session, project.id, a.id, items[1], "neg")
    mark = label_watermark(session, project.id)
    assert count_labeled_since(session, project.id, 0) == 2
    assert count_labeled_since(session, project.id, mark) == 0
    annotate(session, project.id, b.id, items[0], "pos")  # a second label of a seen item
    annotate(session, project.id, a.id, items[2], "neg")
    withdrawn = annotate(session, project.id, a.id, items[3], "neg")
    assert count_labeled_since(session, project.id, mark) == 3
    undo(session, project.id, a.id, items[3])  # withdrawn: no label to learn from
    assert count_labeled_since(session, project.id, mark) == 2
    annotate(session, project.id, a.id, items[0], "neg", supersedes=first.id)  # a correction
    assert count_labeled_since(session, project.id, mark) == 2  # item 0 is counted once
    second = session.execute(select(Annotation).where(Annotation.item_id == items[1])).scalar_one()
    review(session, project.id, b.id, second.id, accept=True)  # the same labels, accepted
    assert count_labeled_since(session, project.id, mark) == 2
    assert withdrawn.id < label_watermark(session, project.id)
    assert count_labeled_items(session, project.id) == 3
    assert count_labeled_items(session, project.id, at_most=2) == 2  # stops counting there



def test_round_due_reads_pending_rounds_and_labels_since_the_last_one(
        session: Session, project: Project, owner: User) -> None:
    items = make_items(session, project.id, 4)
    annotator = make_users(session, 1)[0]
    assert round_due(session, project.id, 1) == RoundDue(pending=False, reached=None)
    annotate(session, project.id, owner.id, items[0], "pos")
    first = create_round(session, project.id, strategy="entropy", batch_size=2)
    assert round_due(session, project.id, 1) == RoundDue(pending=True, reached=None)
    finish_round(session, project.id, first.id, n_labels_used=1,
                 label_watermark=label_watermark(session, project.id))
    assert round_due(session, project.id, 1) == RoundDue(pending=False, reached=False)
    annotate(session, project.id, owner.id, items[1], "pos")
    annotate(session, project.id, owner.id, items[2], "neg")
    assert round_due(session, project.id, 2) == RoundDue(pending=False, reached=True)
    assert round_due(session, project.id, 3) == RoundDue(pending=False, reached=False)
    # Three revisions since the watermark, but of two items: the bound lets the exact count
    # run, and the exact count says no.
    annotate(session, project.id, annotator.id, items[1], "neg")
    assert round_due(session, project.id, 3) == RoundDue(pending=False, reached=False)
    annotate(session, project.id, annotator.id, items[3], "neg")
    assert round_due(session, project.id, 3) == RoundDue(pending=False, reached=True)
    second = create_round(session, project.id, strategy="entropy", batch_size=2)
    assert round_due(session, project.id, 3) == RoundDue(pending=True, reached=True)
    finish_round(session, project.id, second.id, n_labels_used=3)  # no watermark recorded
    assert round_due(session, project.id, 3) == RoundDue(pending=False, reached=None)
    with pytest.raises(InvalidInput, match="at_least"):
        round_due(session, project.id, 0)


def test_round_due_reads_no_revision_while_the_ids_since_the_watermark_are_too_few(
        session: Session, project: Project, owner: User) -> None:
    """Revision ids only grow: while the newest is closer to the watermark than ``at_least``,
    no count runs (a project labeling far from its next round read every label since the
    last one on each annotation). Other projects' revisions widen the gap, not the answer."""
    items = make_items(session, project.id, 6)
    annotate(session, project.id, owner.id, items[0], "pos")
    first = create_round(session, project.id, strategy="entropy", batch_size=2)
    finish_round(session, project.id, first.id, n_labels_used=1,
                 label_watermark=label_watermark(session, project.id))
    other = create_project(session, "other_" + project.name, "classification", ["pos", "neg"])
    elsewhere = make_items(session, other.id, 3)
    for i in range(3):
        annotate(session, project.id, owner.id, items[1 + i], "pos")
        annotate(session, other.id, owner.id, elsewhere[i], "neg")
    assert round_due(session, project.id, 3) == RoundDue(pending=False, reached=True)
    assert round_due(session, project.id, 4) == RoundDue(pending=False, reached=False)
    assert round_due(session, project.id, 10**9) == RoundDue(pending=False, reached=False)
    if session.get_bind().dialect.name == "postgresql":
        from activelabel.store.annotations import _round_due_query

        query = _round_due_query().params(project_id=project.id, at_least=10**9)
        sql = str(query.compile(session.get_bind(), compile_kwargs={"literal_binds": True}))
        plan = "\n".join(session.execute(
            text("EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF) " + sql)).scalars())
        # Every read of the revisions since the watermark (the bounded count's, the exact
        # count's) never ran.
        lines = plan.splitlines()
        since = [i for i, line in enumerate(lines) if "AND (id > $" in line]
        assert len(since) == 2, plan
        assert all("never executed" in lines[i - 1] for i in since), plan


#: One write: (kind, item index, person index, label or None for a withdrawal).
_WRITES = st.lists(st.tuples(st.sampled_from(["label", "review", "undo"]), st.integers(0, 2),
                             st.integers(0, 2), st.sampled_from(["pos", "neg", None])),
                   max_size=25)


def _write(session: Session, project_id: int, items: list[int], people: list[User],
           write: tuple[str, int, int, str | None]) -> None:
    """One of ``_WRITES``: a label, an undo, or a review (an accept for "pos", else a
    correction) of the item's first current label; a conflict writes nothing (an undo
    without a label)."""
    kind, i, p, label = write
    item, person = items[i], people[p]
    try:
        if kind == "label" and label is not None:
            annotate(session, project_id, person.id, item, label)
        elif kind == "undo":
            undo(session, project_id, person.id, item)
        else:
            heads = [c for c in current_labels(session, project_id) if c.item_id == item]
            if heads:
                review(session, project_id, person.id, heads[0].annotation_id,
                       accept=label == "pos", labels=None if label == "pos" else label)
    except Conflict:
        pass


@settings(max_examples=25, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(writes=_WRITES)
def test_item_label_counts_follow_every_kind_of_revision(session: Session, project: Project,
                                                         writes: list[tuple[str, int, int,
                                                                            str | None]]) -> None:
    """``items.n_labels`` (what the queue reads) always equals the current labels counted
    from the revisions, whatever mix of labels, corrections, reviews and undos came first."""
    with session.begin_nested() as example:  # each example starts from the same state
        items = make_items(session, project.id, 3)
        people = make_users(session, 3)
        for write in writes:
            _write(session, project.id, items, people, write)
        counted = dict(session.execute(
            select(Annotation.item_id, func.count()).where(
                Annotation.item_id.in_(items), is_current_label())
            .group_by(Annotation.item_id)).all())
        stored = dict(session.execute(select(Item.id, Item.n_labels).where(
            Item.id.in_(items))).all())
        assert stored == {i: counted.get(i, 0) for i in items}
        example.rollback()


@settings(max_examples=25, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(writes=_WRITES)
def test_the_labels_mark_changes_with_every_change_of_the_current_labels(
        session: Session, project: Project,
        writes: list[tuple[str, int, int, str | None]]) -> None:
    """The mark read in one aggregate query is that of the current labels' revision ids;
    whatever mix of labels, corrections, reviews and undos, two different sets of current
    labels in one history never share a mark; ``count_current`` counts the current ones
    among any revisions."""
    with session.begin_nested() as example:
        items = make_items(session, project.id, 3)
        people = make_users(session, 3)
        seen: dict[LabelsMark, frozenset[int]] = {}
        for write in writes:
            _write(session, project.id, items, people, write)
            current = frozenset(c.annotation_id for c in current_labels(session, project.id))
            mark = current_labels_mark(session, project.id)
            assert mark == LabelsMark.of(sorted(current))
            assert seen.setdefault(mark, current) == current
            every = session.execute(select(Annotation.id).where(
                Annotation.project_id == project.id)).scalars().all()
            assert count_current(session, project.id, every) == len(current)
            assert count_current(session, project.id, list(current)[:1]) == min(1, len(current))
        example.rollback()
