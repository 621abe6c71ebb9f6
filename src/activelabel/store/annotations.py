"""Annotations as append-only revision chains: label, correct, review, undo; never overwrite.

Each (item, annotator) has at most one chain: a root revision and revisions that each supersede
the previous one (``supersedes_id`` is unique, so the chain is linear). The chain's head (the
revision nobody supersedes) is the annotator's current label; ``labels`` NULL means withdrawn.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, and_, exists, func, or_, select, update
from sqlalchemy.orm import Session, aliased

from ._util import get_or_raise, item_in_project
from .db import dialect_of, insert_ignore
from .errors import Conflict, InvalidInput, NotFound
from .models import Annotation, Assignment, Item, Project, User, utcnow
from .rounds import last_finished_round_id

__all__ = [
    "CurrentLabel",
    "Revision",
    "annotate",
    "count_labeled_items",
    "count_labeled_since",
    "current_labels",
    "current_revision",
    "is_current_label",
    "is_head",
    "item_history",
    "label_watermark",
    "review",
    "undo",
]


#: Another revision of the same table, for asking whether anything supersedes a row. Built once:
#: an alias per query costs more than the query itself on the hot paths (the task queue).
_NEWER = aliased(Annotation, name="newer_revision")


def is_head() -> ColumnElement[bool]:
    """Annotation rows nobody supersedes: the current revision of each (item, annotator)."""
    return ~exists().where(_NEWER.supersedes_id == Annotation.id)


def is_current_label() -> ColumnElement[bool]:
    """Current revisions that carry a label (withdrawn labels are ``NULL``)."""
    return and_(Annotation.labels.is_not(None), is_head())


@dataclass(frozen=True)
class Revision:
    """One entry of an item's history, with the author's name."""

    id: int
    item_id: int
    annotator_id: int
    user_id: int
    username: str
    kind: str
    labels: list[Any] | None
    duration_ms: int | None
    supersedes_id: int | None
    round_id: int | None
    created_at: datetime
    is_current: bool
    reason: str | None = None
    guidelines_version: int | None = None


@dataclass(frozen=True)
class CurrentLabel:
    """An annotator's current label of an item, with the item's array-store row."""

    annotation_id: int
    item_id: int
    row: int
    external_id: str
    split: str
    annotator_id: int
    labels: list[Any]
    created_at: datetime


def _check_labels(project: Project, labels: Any) -> list[Any]:
    """Labels as a list, validated against the project's label set and task."""
    if isinstance(labels, (str, int)) and not isinstance(labels, bool):
        labels = [labels]
    if not isinstance(labels, Sequence) or isinstance(labels, bytes):
        raise InvalidInput(f"labels must be a list drawn from {project.labels}")
    unknown = [x for x in labels if x not in project.labels or isinstance(x, bool)]
    if unknown:
        raise InvalidInput(f"unknown labels {unknown[:5]!r}: project {project.id} accepts "
                           f"{project.labels}")
    if len(set(labels)) != len(labels):
        raise InvalidInput(f"labels repeat a value: {list(labels)!r}; give each at most once")
    if project.task == "classification" and len(labels) != 1:
        raise InvalidInput(f"a classification project takes exactly one label, got "
                           f"{len(labels)}; use a multilabel project for several")
    return list(labels)


def _is_superseded(session: Session, annotation_id: int) -> int | None:
    stmt = select(Annotation.id).where(Annotation.supersedes_id == annotation_id)
    return session.execute(stmt).scalar_one_or_none()


def current_revision(session: Session, item_id: int, annotator_id: int) -> Annotation | None:
    """Head of the annotator's chain on the item (may carry ``labels=None``), or None."""
    stmt = select(Annotation).where(
        Annotation.item_id == item_id, Annotation.annotator_id == annotator_id, is_head())
    return session.execute(stmt).scalar_one_or_none()


def _twin_check(found: Annotation | None, client_key: str | None,
                item_id: int) -> Annotation | None:
    if found is not None and found.item_id != item_id:
        raise Conflict(f"client_key {client_key!r} was already used for item {found.item_id}: "
                       "use a fresh key for each new annotation")
    return found


def _by_client_key(session: Session, user_id: int, client_key: str | None,
                   item_id: int) -> Annotation | None:
    if client_key is None:
        return None
    stmt = select(Annotation).where(Annotation.user_id == user_id,
                                    Annotation.client_key == client_key)
    return _twin_check(session.execute(stmt).scalar_one_or_none(), client_key, item_id)


def _twin_and_head(session: Session, user_id: int, client_key: str | None,
                   item_id: int) -> tuple[Annotation | None, Annotation | None]:
    """The user's revision with ``client_key`` (if any) and the head of the user's chain on
    the item (if any), in one query."""
    head = and_(Annotation.item_id == item_id, Annotation.annotator_id == user_id, is_head())
    keyed = (None if client_key is None else
             and_(Annotation.user_id == user_id, Annotation.client_key == client_key))
    rows = session.execute(select(Annotation, head.label("is_head"))
                           .where(head if keyed is None else or_(head, keyed))).all()
    twin = next((r for r, _ in rows if keyed is not None and r.user_id == user_id
                 and r.client_key == client_key), None)
    return (_twin_check(twin, client_key, item_id),
            next((r for r, is_current in rows if is_current), None))


def _append(session: Session, revision: dict[str, Any],
            previous: Annotation | None) -> Annotation:
    """Insert the revision (superseding ``previous``, the chain's head, if any) with the item's
    label count.

    ``INSERT ... ON CONFLICT DO NOTHING``: a lost race (the chain's place or the client key
    taken meanwhile by a concurrent revision) inserts nothing, leaves the transaction usable
    (no savepoint needed) and surfaces as Conflict, or as the twin row of a retried request.
    """
    stmt = (insert_ignore(Annotation, dialect_of(session)).values(**revision)
            .returning(Annotation))
    inserted = session.execute(stmt).scalar_one_or_none()
    if inserted is None:
        twin = _by_client_key(session, revision["user_id"], revision.get("client_key"),
                              revision["item_id"])
        if twin is not None:
            return twin
        if revision.get("supersedes_id") is not None:
            raise Conflict(f"revision {revision['supersedes_id']} was superseded meanwhile: "
                           "reload the item's history and correct its current revision")
        raise Conflict(f"user {revision['annotator_id']} already has a label on item "
                       f"{revision['item_id']}: pass supersedes=<current revision id> to "
                       "correct it")
    delta = ((inserted.labels is not None)
             - (previous is not None and previous.labels is not None))
    if delta:
        session.execute(update(Item).where(Item.id == inserted.item_id)
                        .values(n_labels=Item.n_labels + delta)
                        .execution_options(synchronize_session="evaluate"))
    return inserted


def _target(session: Session, item: Item, supersedes: int) -> Annotation:
    target = session.get(Annotation, supersedes)
    if target is None or target.item_id != item.id:
        raise NotFound(f"revision {supersedes} does not exist on item {item.id}: pick one "
                       "from the item's history")
    newer = _is_superseded(session, supersedes)
    if newer is not None:
        raise Conflict(f"revision {supersedes} is already superseded by revision {newer}: "
                       f"correct revision {newer} instead")
    return target


def annotate(session: Session, project_id: int, user_id: int, item_id: int, labels: Any, *,
             duration_ms: int | None = None, client_key: str | None = None,
             supersedes: int | None = None, round_id: int | None = None,
             reason: str | None = None, now: datetime | None = None) -> Annotation:
    """Append the user's label for the item and complete the user's lease on it.

    Without ``supersedes`` a first label starts the user's chain and a later one corrects the
    user's current revision. With ``supersedes`` (e.g. a reviewer correcting someone) the new
    revision extends that revision's chain; a revision already superseded raises Conflict.
    A repeated ``client_key`` of the same user returns the existing row unchanged.
    ``round_id`` defaults to the latest finished round (the ranking being served).
    """
    project = get_or_raise(session, Project, project_id)
    item = item_in_project(session, project_id, item_id)
    if supersedes is None:
        twin, target = _twin_and_head(session, user_id, client_key, item_id)
    else:
        twin, target = _by_client_key(session, user_id, client_key, item_id), None
    if twin is not None:
        return twin
    checked = _check_labels(project, labels)
    if duration_ms is not None and duration_ms < 0:
        raise InvalidInput(f"duration_ms must be >= 0, got {duration_ms}")
    if supersedes is not None:
        target = _target(session, item, supersedes)
    revision = _append(session, {
        "project_id": project_id, "item_id": item_id, "user_id": user_id,
        "annotator_id": user_id if target is None else target.annotator_id,
        "kind": "label" if target is None else "correction", "labels": checked,
        "duration_ms": duration_ms, "supersedes_id": None if target is None else target.id,
        # By default the round whose ranking is being served, read by the insert itself.
        "round_id": (round_id if round_id is not None
                     else last_finished_round_id(project_id).scalar_subquery()),
        "client_key": client_key, "reason": reason,
        "guidelines_version": project.guidelines_version, "created_at": now or utcnow()},
        target)
    _complete_lease(session, item_id, user_id, revision.created_at)
    return revision


def _complete_lease(session: Session, item_id: int, user_id: int, now: datetime) -> None:
    session.execute(
        update(Assignment).where(Assignment.item_id == item_id, Assignment.user_id == user_id,
                                 Assignment.released_at.is_(None),
                                 Assignment.completed_at.is_(None))
        .values(completed_at=now).execution_options(synchronize_session=False))


def review(session: Session, project_id: int, reviewer_id: int, annotation_id: int, *,
           accept: bool, labels: Any = None, client_key: str | None = None,
           reason: str | None = None, now: datetime | None = None) -> Annotation:
    """A reviewer's verdict on a current revision: accept (labels kept), reject with corrected
    ``labels`` (a correction in the annotator's chain), or reject outright (label withdrawn).
    ``reason`` is stored on the new revision."""
    project = get_or_raise(session, Project, project_id)
    target = get_or_raise(session, Annotation, annotation_id, "revision")
    if target.project_id != project_id:
        raise NotFound(f"revision {annotation_id} does not exist in project {project_id}")
    item = item_in_project(session, project_id, target.item_id)
    twin = _by_client_key(session, reviewer_id, client_key, item.id)
    if twin is not None:
        return twin
    _target(session, item, annotation_id)
    if target.labels is None:
        raise Conflict(f"revision {annotation_id} carries no label to review")
    if accept:
        kind, new_labels = "review_accept", target.labels
    elif labels is not None:
        kind, new_labels = "correction", _check_labels(project, labels)
    else:
        kind, new_labels = "review_reject", None
    return _append(session, {
        "project_id": project_id, "item_id": item.id, "user_id": reviewer_id,
        "annotator_id": target.annotator_id, "kind": kind, "labels": new_labels,
        "supersedes_id": target.id, "round_id": target.round_id, "client_key": client_key,
        "reason": reason, "guidelines_version": project.guidelines_version,
        "created_at": now or utcnow()}, target)


def undo(session: Session, project_id: int, user_id: int, item_id: int, *,
         now: datetime | None = None) -> Annotation:
    """Withdraw the user's current label on the item (a revision with no labels)."""
    item_in_project(session, project_id, item_id)
    head = current_revision(session, item_id, user_id)
    if head is None or head.labels is None:
        raise Conflict(f"user {user_id} has no current label on item {item_id} to undo")
    return _append(session, {
        "project_id": project_id, "item_id": item_id, "user_id": user_id,
        "annotator_id": user_id, "kind": "undo", "labels": None, "supersedes_id": head.id,
        "round_id": head.round_id, "created_at": now or utcnow()}, head)


def item_history(session: Session, project_id: int, item_id: int) -> list[Revision]:
    """Every revision of the item, oldest first, with author name and whether it is current."""
    item_in_project(session, project_id, item_id)
    stmt = (select(Annotation, User.username, is_head())
            .join(User, User.id == Annotation.user_id)
            .where(Annotation.item_id == item_id).order_by(Annotation.id))
    return [Revision(a.id, a.item_id, a.annotator_id, a.user_id, name, a.kind, a.labels,
                     a.duration_ms, a.supersedes_id, a.round_id, a.created_at, bool(head),
                     a.reason, a.guidelines_version)
            for a, name, head in session.execute(stmt)]


def current_labels(session: Session, project_id: int, *,
                   splits: Sequence[str] | None = None) -> list[CurrentLabel]:
    """One row per (item, annotator) current label (withdrawn ones left out), by row then
    annotator: what training and agreement read."""
    stmt = (select(Annotation.id, Annotation.item_id, Item.row, Item.external_id, Item.split,
                   Annotation.annotator_id, Annotation.labels, Annotation.created_at)
            .join(Item, Item.id == Annotation.item_id)
            .where(Annotation.project_id == project_id, is_current_label())
            .order_by(Item.row, Annotation.annotator_id))
    if splits is not None:
        stmt = stmt.where(Item.split.in_(list(splits)))
    return [CurrentLabel(*row) for row in session.execute(stmt)]


def count_labeled_items(session: Session, project_id: int, *, at_most: int | None = None) -> int:
    """Items with at least one current label (for retrain_every_labels and progress);
    counting stops at ``at_most`` (for "are there at least that many?")."""
    labeled = select(Item.id).where(Item.project_id == project_id, Item.n_labels > 0)
    if at_most is not None:
        labeled = labeled.limit(at_most)
    stmt = select(func.count()).select_from(labeled.subquery())
    return int(session.execute(stmt).scalar_one())


def label_watermark(session: Session, project_id: int) -> int:
    """The newest revision id of the project (0 without any): what a round records as the
    point up to which it read the labels."""
    stmt = select(func.max(Annotation.id)).where(Annotation.project_id == project_id)
    return int(session.execute(stmt).scalar_one() or 0)


def count_labeled_since(session: Session, project_id: int, watermark: int) -> int:
    """Items whose current label (of any annotator) was given after revision ``watermark``:
    the labels a round that read up to ``watermark`` has not seen. A reviewer's accept keeps
    the labels as they were, so it does not count.

    Costs what the revisions since the watermark cost (the ``(project_id, id)`` index), not
    what all labels cost: it runs after every annotation.
    """
    stmt = (select(func.count(func.distinct(Annotation.item_id)))
            .where(Annotation.project_id == project_id, Annotation.id > watermark,
                   Annotation.kind != "review_accept", is_current_label()))
    return int(session.execute(stmt).scalar_one())
