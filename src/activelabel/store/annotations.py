"""Annotations as append-only revision chains: label, correct, review, undo; never overwrite.

Each (item, annotator) has at most one chain: a root revision and revisions that each supersede
the previous one (``supersedes_id`` is unique, so the chain is linear). The chain's head (the
revision nobody supersedes) is the annotator's current label; ``labels`` NULL means withdrawn.
"""

from __future__ import annotations

import functools
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import (
    BindParameter,
    ColumnElement,
    Integer,
    Select,
    Table,
    Update,
    and_,
    bindparam,
    case,
    exists,
    false,
    func,
    or_,
    select,
    update,
)
from sqlalchemy.orm import Session, aliased

from ._util import get_or_raise, item_in_project, item_missing
from .db import dialect_of, insert_ignore
from .errors import Conflict, Forbidden, InvalidInput, NotFound
from .models import Annotation, Assignment, Item, Project, Round, User, utcnow
from .rounds import PENDING_STATUSES, last_finished_round_id
from .spans import check_item_spans

__all__ = [
    "CurrentLabel",
    "LabelsMark",
    "Revision",
    "RoundDue",
    "annotate",
    "check_labels",
    "count_current",
    "count_labeled_items",
    "count_labeled_since",
    "current_labels",
    "current_labels_mark",
    "current_revision",
    "is_current_label",
    "is_head",
    "item_history",
    "label_watermark",
    "review",
    "round_due",
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


def _check_labels(project: Project, labels: Any, item: Item | None = None) -> list[Any]:
    """Labels as a list, validated against the project's label set and task (a span
    project's spans against the item's text and tokens)."""
    if project.task == "spans":
        assert item is not None, "span labels are checked against their item"
        return check_item_spans(project, item.data, labels)
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


def check_labels(project: Project, labels: Any, item: Item | None = None) -> list[Any]:
    """``labels`` as a list when the project takes them for ``item`` (an annotation's check);
    InvalidInput says what is wrong."""
    return _check_labels(project, labels, item)


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


#: The columns a revision is written with (``id`` comes from the database).
_WRITTEN = ("project_id", "item_id", "annotator_id", "user_id", "kind", "labels", "duration_ms",
            "supersedes_id", "round_id", "client_key", "reason", "guidelines_version",
            "created_at")


@functools.cache
def _item_twin_head_query(keyed: bool) -> Select[int, Annotation, bool, bool]:
    """The item (if it is in the project) with the head of the user's chain on it and, when
    ``keyed``, the user's revision with the client key: one row per revision found, one row
    with no revision when neither exists, no row when the item is not in the project; each
    row also says whether the item was handed to the user (a lease not given back). Built
    once; parameters ``project_id``, ``item_id``, ``user_id`` (and ``client_key``)."""
    head = and_(Annotation.item_id == bindparam("item_id"),
                Annotation.annotator_id == bindparam("user_id"), is_head())
    on = head if not keyed else or_(head, and_(Annotation.user_id == bindparam("user_id"),
                                               Annotation.client_key == bindparam("client_key")))
    leased = exists().where(Assignment.item_id == Item.id,
                            Assignment.user_id == bindparam("user_id"),
                            Assignment.released_at.is_(None))
    return (select(Item.id, Annotation, head.label("is_head"), leased.label("leased"))
            .outerjoin(Annotation, on)
            .where(Item.id == bindparam("item_id"), Item.project_id == bindparam("project_id")))


def items_handed_to(session: Session, user_id: int, item_ids: Collection[int]) -> set[int]:
    """Of ``item_ids``, those handed to the user (a lease not given back, even expired) or
    labeled by them: what an annotator may ask about an item's suggestion."""
    ids = list(set(item_ids))
    if not ids:
        return set()
    leased = select(Assignment.item_id).where(Assignment.item_id.in_(ids),
                                              Assignment.user_id == user_id,
                                              Assignment.released_at.is_(None))
    labeled = select(Annotation.item_id).where(Annotation.item_id.in_(ids),
                                               Annotation.annotator_id == user_id)
    return {int(i) for i in session.execute(leased.union(labeled)).scalars()}


def _item_twin_head(session: Session, project_id: int, user_id: int, client_key: str | None,
                    item_id: int) -> tuple[Annotation | None, Annotation | None, bool]:
    """The user's revision with ``client_key`` (if any), the head of the user's chain on the
    item (if any) and whether the item was handed to the user, in one query that also checks
    the item is in the project."""
    params: dict[str, Any] = {"project_id": project_id, "item_id": item_id, "user_id": user_id}
    if client_key is not None:
        params["client_key"] = client_key
    rows = session.execute(_item_twin_head_query(client_key is not None), params).all()
    if not rows:
        raise NotFound(item_missing(project_id, item_id))
    found = [(r, bool(current)) for _, r, current, _ in rows if r is not None]
    twin = next((r for r, _ in found if client_key is not None and r.user_id == user_id
                 and r.client_key == client_key), None)
    return (_twin_check(twin, client_key, item_id),
            next((r for r, current in found if current), None), bool(rows[0].leased))


@functools.cache
def _insert_query(dialect: str, served_round: bool, counted: bool, lease: bool) -> Any:
    """The revision's insert (``INSERT ... ON CONFLICT DO NOTHING RETURNING``), built once.

    ``served_round``: the round id is the latest finished round's, read by the insert itself.
    On PostgreSQL the item's label count (``counted``: moved by ``b_delta``) and, with
    ``lease``, completing the
    author's lease on the item are part of the same statement, done only if the row went in;
    on SQLite they are :func:`_count_query` and :func:`_lease_query`.
    """
    values: dict[str, Any] = {c: bindparam(f"b_{c}") for c in _WRITTEN}
    if served_round:
        values["round_id"] = last_finished_round_id(bindparam("b_project_id")).scalar_subquery()
    stmt = insert_ignore(Annotation, dialect).values(values)
    if dialect != "postgresql":
        return stmt.returning(Annotation)
    inserted = stmt.returning(*cast(Table, Annotation.__table__).c).cte("inserted")
    done = exists(select(inserted.c.id))
    also = []
    if counted:
        also.append(_count_query().where(done).cte("counted"))
    if lease:
        also.append(_lease_query().where(done).cte("completed"))
    return select(aliased(Annotation, inserted)).add_cte(*also)


@functools.cache
def _count_query() -> Update:
    """The item's label count moved by ``delta`` (parameters ``b_item_id``, ``b_delta``)."""
    return (update(Item).where(Item.id == bindparam("b_item_id"))
            .values(n_labels=Item.n_labels + bindparam("b_delta"))
            .execution_options(synchronize_session=False))


@functools.cache
def _lease_query() -> Update:
    """The user's open lease on the item completed (parameters ``b_item_id``, ``b_user_id``,
    ``b_created_at``)."""
    return (update(Assignment).where(Assignment.item_id == bindparam("b_item_id"),
                                     Assignment.user_id == bindparam("b_user_id"),
                                     Assignment.released_at.is_(None),
                                     Assignment.completed_at.is_(None))
            .values(completed_at=bindparam("b_created_at"))
            .execution_options(synchronize_session=False))


def _append(session: Session, revision: dict[str, Any], previous: Annotation | None, *,
            served_round: bool = False, complete_lease: bool = False) -> Annotation:
    """Insert the revision (superseding ``previous``, the chain's head, if any) with the item's
    label count; with ``complete_lease``, complete its author's lease on the item.

    ``INSERT ... ON CONFLICT DO NOTHING``: a lost race (the chain's place or the client key
    taken meanwhile by a concurrent revision) inserts nothing, leaves the transaction usable
    (no savepoint needed) and surfaces as Conflict, or as the twin row of a retried request.
    On PostgreSQL the whole write is one statement.
    """
    params: dict[str, Any] = {c: revision.get(c) for c in _WRITTEN}
    params["created_at"] = params["created_at"] or utcnow()
    delta = ((params["labels"] is not None)
             - (previous is not None and previous.labels is not None))
    dialect = dialect_of(session)
    binds = {f"b_{c}": v for c, v in params.items()}
    binds["b_delta"] = delta
    inserted = session.execute(_insert_query(dialect, served_round, delta != 0, complete_lease),
                               binds).scalar_one_or_none()
    if inserted is None:
        twin = _by_client_key(session, params["user_id"], params["client_key"],
                              params["item_id"])
        if twin is not None:
            return twin
        if params["supersedes_id"] is not None:
            raise Conflict(f"revision {params['supersedes_id']} was superseded meanwhile: "
                           "reload the item's history and correct its current revision")
        raise Conflict(f"user {params['annotator_id']} already has a label on item "
                       f"{params['item_id']}: pass supersedes=<current revision id> to "
                       "correct it")
    if dialect != "postgresql":
        if delta:
            session.execute(_count_query(), binds)
        if complete_lease:
            session.execute(_lease_query(), binds)
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
             reason: str | None = None, now: datetime | None = None,
             require_lease: bool = False) -> Annotation:
    """Append the user's label for the item and complete the user's lease on it.

    Without ``supersedes`` a first label starts the user's chain and a later one corrects the
    user's current revision. With ``supersedes`` (e.g. a reviewer correcting someone) the new
    revision extends that revision's chain; a revision already superseded raises Conflict.
    A repeated ``client_key`` of the same user returns the existing row unchanged.
    ``round_id`` defaults to the latest finished round (the ranking being served).
    With ``require_lease`` a first label is refused (Forbidden) unless the item was handed to
    the user (a lease, even an expired one, not given back): what keeps the project's overlap
    and gold mixing whole when annotators label through the API.
    """
    project = get_or_raise(session, Project, project_id)
    if supersedes is None:
        twin, target, leased = _item_twin_head(session, project_id, user_id, client_key,
                                               item_id)
        if require_lease and twin is None and target is None and not leased:
            raise Forbidden(f"item {item_id} was not handed to you: label the items "
                            "GET /projects/{id}/tasks/next gives you (an owner may allow "
                            "labeling any item with the setting free_labeling)")
    else:
        item = item_in_project(session, project_id, item_id)
        twin, target = _by_client_key(session, user_id, client_key, item_id), None
    if twin is not None:
        return twin
    checked = _check_labels(project, labels, item_in_project(session, project_id, item_id)
                            if project.task == "spans" else None)
    if duration_ms is not None and duration_ms < 0:
        raise InvalidInput(f"duration_ms must be >= 0, got {duration_ms}")
    if supersedes is not None:
        target = _target(session, item, supersedes)
    return _append(session, {
        "project_id": project_id, "item_id": item_id, "user_id": user_id,
        "annotator_id": user_id if target is None else target.annotator_id,
        "kind": "label" if target is None else "correction", "labels": checked,
        "duration_ms": duration_ms, "supersedes_id": None if target is None else target.id,
        "round_id": round_id, "client_key": client_key, "reason": reason,
        "guidelines_version": project.guidelines_version, "created_at": now or utcnow()},
        target, served_round=round_id is None, complete_lease=True)


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
        kind, new_labels = "correction", _check_labels(project, labels, item)
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


@dataclass(frozen=True)
class LabelsMark:
    """What tells one set of current labels of a project from another, read from their
    revision ids alone: the newest, how many, and their sum (a label, a correction, an undo or
    a withdrawal each change it, as each adds or removes a current revision)."""

    newest: int
    count: int
    total: int

    @classmethod
    def of(cls, annotation_ids: Any) -> LabelsMark:
        """The mark of these current revision ids (an integer array)."""
        ids = [int(a) for a in annotation_ids]
        return cls(max(ids, default=0), len(ids), sum(ids))


def current_labels_mark(session: Session, project_id: int) -> LabelsMark:
    """:class:`LabelsMark` of the project's current labels in one aggregate query: what
    :func:`current_labels` would return, told apart without reading it."""
    newest, count, total = session.execute(
        select(func.max(Annotation.id), func.count(Annotation.id), func.sum(Annotation.id))
        .where(Annotation.project_id == project_id, is_current_label())).one()
    return LabelsMark(int(newest or 0), int(count), int(total or 0))


def count_current(session: Session, project_id: int, annotation_ids: Collection[int]) -> int:
    """How many of these revisions of the project are current labels still."""
    ids, found = sorted({int(a) for a in annotation_ids}), 0
    for start in range(0, len(ids), 500):
        found += int(session.execute(select(func.count(Annotation.id)).where(
            Annotation.project_id == project_id, Annotation.id.in_(ids[start:start + 500]),
            is_current_label())).scalar_one())
    return found


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


def _labeled_since(project_id: Any, watermark: Any) -> Select[int]:
    """Count of items whose current label was given after revision ``watermark``."""
    return (select(func.count(func.distinct(Annotation.item_id)))
            .where(Annotation.project_id == project_id, Annotation.id > watermark,
                   Annotation.kind != "review_accept", is_current_label()))


def count_labeled_since(session: Session, project_id: int, watermark: int) -> int:
    """Items whose current label (of any annotator) was given after revision ``watermark``:
    the labels a round that read up to ``watermark`` has not seen. A reviewer's accept keeps
    the labels as they were, so it does not count.

    Costs what the revisions since the watermark cost (the ``(project_id, id)`` index), not
    what all labels cost: it runs after every annotation.
    """
    return int(session.execute(_labeled_since(project_id, watermark)).scalar_one())


@dataclass(frozen=True)
class RoundDue:
    """What decides whether the labels call for a round."""

    #: A round of the project is queued or running.
    pending: bool
    #: At least the asked-for count of items was labeled since the latest finished round
    #: read the labels (its watermark); None when no finished round recorded a watermark.
    reached: bool | None


@functools.cache
def _round_due_query() -> Select[bool, int | None, bool]:
    project_id: BindParameter[int] = bindparam("project_id", type_=Integer)
    at_least: BindParameter[int] = bindparam("at_least", type_=Integer)
    last = last_finished_round_id(project_id).scalar_subquery()
    watermark = select(Round.label_watermark).where(Round.id == last).scalar_subquery()
    pending = exists().where(Round.project_id == project_id,
                             Round.status.in_(PENDING_STATUSES))
    # Revisions since the watermark bound the items labeled since (each labels one item):
    # counting them stops at ``at_least`` and reads the (project_id, id) index only, so the
    # exact count, which checks that each label is still current, runs only once the bound
    # allows a round. Without the bound, each annotation would read every label since the
    # last round (all of them in a project whose rounds are far apart).
    # Before that: revision ids only grow, so fewer than ``at_least`` of them lie between the
    # watermark and the project's newest revision when their difference is smaller; that
    # reads one index entry, and the bounded count runs only as a round comes near (with a
    # large ``retrain_every_labels``, counting read thousands of entries per annotation).
    newest = (select(Annotation.id).where(Annotation.project_id == project_id)
              .order_by(Annotation.id.desc()).limit(1).scalar_subquery())
    recent = (select(Annotation.id).where(Annotation.project_id == project_id,
                                          Annotation.id > watermark)
              .limit(at_least).subquery())
    revisions = select(func.count()).select_from(recent).scalar_subquery()
    exact = _labeled_since(project_id, watermark).scalar_subquery()
    reached = case((newest - watermark < at_least, false()),
                   (revisions < at_least, false()), else_=exact >= at_least)
    return select(pending, watermark, reached)


def round_due(session: Session, project_id: int, at_least: int) -> RoundDue:
    """Whether a round is pending and whether at least ``at_least`` items were labeled since
    the last one, in one query (it runs after every annotation) that reads at most
    ``at_least`` revisions until the labels may reach it."""
    if at_least < 1:
        raise InvalidInput(f"at_least must be >= 1, got {at_least}")
    pending, watermark, reached = session.execute(
        _round_due_query(), {"project_id": project_id, "at_least": at_least}).one()
    return RoundDue(bool(pending), None if watermark is None else bool(reached))
