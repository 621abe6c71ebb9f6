"""A project's counts, one definition for the stats endpoint, ``activelabel status`` and the
projects table: items and labeled items per split, the pool backlog, leases, the queue, open
flags, waiting jobs, current labels per annotator and the last rounds.

Labels spent are pool labels (:data:`SPENT_SPLIT`): holdout and gold labels measure the model
and the annotators, so they never count as training labels, budget spent, "labels used" by a
round, an annotator's count or speed."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from ..store import count_pending_jobs, is_current_label, is_head
from ..store.models import SPLITS, Annotation, Assignment, Flag, Item, Round, User, utcnow
from ..store.queue import SCORED_BASE, active_lease_filter

__all__ = [
    "LAST_ROUNDS",
    "SPENT_SPLIT",
    "AnnotatorCount",
    "ProjectCounts",
    "labels_per_annotator",
    "labels_spent",
    "last_rounds",
    "own_counts",
    "project_counts",
]

#: The split whose labels are labels spent.
SPENT_SPLIT = "pool"

#: Rounds shown by the stats endpoint and ``activelabel status``.
LAST_ROUNDS = 5


@dataclass(frozen=True)
class ProjectCounts:
    """Items and labeled items (with at least one current label) per split, and the work
    waiting: leased items, queued unlabeled items, open flags, queued or running jobs; pool
    items purged before anyone labeled them are no work (see :attr:`backlog`)."""

    items: dict[str, int]
    labeled: dict[str, int]
    leased: int
    queued: int
    open_flags: int
    jobs_waiting: int
    purged_unlabeled: int = 0

    @property
    def n_items(self) -> int:
        return sum(self.items.values())

    @property
    def n_labeled(self) -> int:
        return sum(self.labeled.values())

    @property
    def backlog(self) -> int:
        """Pool items nobody has labeled yet (purged ones are handed out no more)."""
        return self.items["pool"] - self.labeled["pool"] - self.purged_unlabeled


def _per_split(session: Session,
               project_id: int) -> tuple[dict[str, int], dict[str, int], int]:
    """Items and labeled items per split, and the unlabeled pool items purged."""
    items = dict.fromkeys(SPLITS, 0)
    labeled = dict.fromkeys(SPLITS, 0)
    purged = 0
    stmt = (select(Item.split, func.count(), func.count().filter(Item.n_labels > 0),
                   func.count().filter(Item.n_labels == 0, Item.purged_at.is_not(None)))
            .where(Item.project_id == project_id).group_by(Item.split))
    for split, total, done, gone in session.execute(stmt):
        items[split], labeled[split] = int(total), int(done)
        purged += int(gone) if split == "pool" else 0
    return items, labeled, purged


def _queued(session: Session, project_id: int) -> int:
    """Unlabeled items of the latest round's batch (the head of the queue)."""
    stmt = select(func.count()).select_from(Item).where(
        Item.project_id == project_id, Item.queue_rank < SCORED_BASE, Item.n_labels == 0,
        Item.purged_at.is_(None))
    return int(session.execute(stmt).scalar_one())


def _leased(session: Session, project_id: int) -> int:
    stmt = select(func.count(func.distinct(Assignment.item_id))).where(
        Assignment.project_id == project_id, active_lease_filter(utcnow()))
    return int(session.execute(stmt).scalar_one())


def _open_flags(session: Session, project_id: int) -> int:
    stmt = select(func.count()).select_from(Flag).where(
        Flag.project_id == project_id, Flag.resolved_at.is_(None))
    return int(session.execute(stmt).scalar_one())


def project_counts(session: Session, project_id: int) -> ProjectCounts:
    """The project's counts (see :class:`ProjectCounts`)."""
    items, labeled, purged = _per_split(session, project_id)
    return ProjectCounts(items=items, labeled=labeled, purged_unlabeled=purged,
                         leased=_leased(session, project_id),
                         queued=_queued(session, project_id),
                         open_flags=_open_flags(session, project_id),
                         jobs_waiting=count_pending_jobs(session, project_id))


@dataclass(frozen=True)
class AnnotatorCount:
    user_id: int
    username: str
    labels: int


def labels_spent(session: Session, project_id: int) -> int:
    """Pool items with at least one current label: the labels a budget counts."""
    stmt = select(func.count()).select_from(Item).where(
        Item.project_id == project_id, Item.split == SPENT_SPLIT, Item.n_labels > 0)
    return int(session.execute(stmt).scalar_one())


def own_counts(session: Session, project_id: int, user_id: int) -> dict[str, Any]:
    """The user's current pool labels, pool labels in the last hour, and pool labels per hour
    of labeling time (from the submitted durations)."""
    mine = (Annotation.project_id == project_id, Annotation.annotator_id == user_id,
            Annotation.labels.is_not(None), Item.split == SPENT_SPLIT)
    joined = select(func.count()).select_from(Annotation).join(Item, Item.id == Annotation.item_id)
    total = session.execute(joined.where(*mine, is_head())).scalar_one()
    hour_ago = utcnow() - timedelta(hours=1)
    last_hour = session.execute(joined.where(
        *mine, Annotation.kind == "label", Annotation.created_at >= hour_ago)).scalar_one()
    n_timed, spent_ms = session.execute(
        select(func.count(Annotation.duration_ms), func.sum(Annotation.duration_ms))
        .join(Item, Item.id == Annotation.item_id)
        .where(*mine, Annotation.kind == "label", Annotation.duration_ms.is_not(None))).one()
    per_hour = (3_600_000.0 * int(n_timed) / float(spent_ms)) if spent_ms else None
    return {"labels": int(total), "last_hour": int(last_hour), "labels_per_hour": per_hour}


def labels_per_annotator(session: Session, project_id: int) -> list[AnnotatorCount]:
    """Current pool labels per annotator, by username."""
    stmt = (select(Annotation.annotator_id, User.username, func.count())
            .join(User, User.id == Annotation.annotator_id)
            .join(Item, Item.id == Annotation.item_id)
            .where(Annotation.project_id == project_id, is_current_label(),
                   Item.split == SPENT_SPLIT)
            .group_by(Annotation.annotator_id, User.username).order_by(User.username))
    return [AnnotatorCount(int(uid), str(name), int(n)) for uid, name, n in session.execute(stmt)]


def last_rounds(session: Session, project_id: int, n: int = LAST_ROUNDS) -> list[Round]:
    """The project's ``n`` latest rounds, oldest first."""
    stmt = (select(Round).where(Round.project_id == project_id)
            .order_by(Round.number.desc()).limit(n))
    return list(reversed(session.execute(stmt).scalars().all()))
