"""Append-only revisions: corrections, conflicts, idempotency, reviews, history, training view."""

from __future__ import annotations

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from activelabel.store import (
    Conflict,
    InvalidInput,
    annotate,
    count_labeled_items,
    create_project,
    create_round,
    current_labels,
    finish_round,
    item_history,
    next_tasks,
    review,
    undo,
)
from activelabel.store.models import Annotation, Assignment, Project, User

from .conftest import make_items, make_users


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

    twin = Annotation(project_id=project.id, item_id=item, annotator_id=owner.id,
                      user_id=owner.id, kind="correction", labels=["neutral"],
                      supersedes_id=first.id)
    with pytest.raises(Conflict, match="superseded meanwhile"):
        _append(session, twin)


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
