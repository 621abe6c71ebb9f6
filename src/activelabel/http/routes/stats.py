"""Project statistics: items per split, labeled, leased, queued, labels per annotator, the last
rounds. What ``activelabel status`` and dashboards show."""

from __future__ import annotations

from fastapi import APIRouter
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from ...store import active_model_version, count_labeled_items, is_current_label
from ...store.models import SPLITS, Annotation, Assignment, Flag, Item, Job, Round, User, utcnow
from ...store.queue import active_lease_filter
from ..auth import Reader
from ..schemas import AnnotatorCount, RoundSummary, Stats

router = APIRouter(tags=["stats"])

LAST_ROUNDS = 5


def _items_per_split(session: Session, project_id: int) -> dict[str, int]:
    counts = {split: 0 for split in SPLITS}
    counts.update(session.execute(select(Item.split, func.count()).where(
        Item.project_id == project_id).group_by(Item.split)).all())
    counts["total"] = sum(counts.values())
    return counts


def _queued(session: Session, project_id: int) -> int:
    labeled = Item.n_labels > 0
    return int(session.execute(select(func.count()).select_from(Item).where(
        Item.project_id == project_id, Item.queue_rank.is_not(None), ~labeled)).scalar_one())


def _leased(session: Session, project_id: int) -> int:
    return int(session.execute(select(func.count(func.distinct(Assignment.item_id))).where(
        Assignment.project_id == project_id, active_lease_filter(utcnow()))).scalar_one())


def _per_annotator(session: Session, project_id: int) -> list[AnnotatorCount]:
    stmt = (select(Annotation.annotator_id, User.username, func.count())
            .join(User, User.id == Annotation.annotator_id)
            .where(Annotation.project_id == project_id, is_current_label())
            .group_by(Annotation.annotator_id, User.username).order_by(User.username))
    return [AnnotatorCount(user_id=uid, username=name, labels=n)
            for uid, name, n in session.execute(stmt)]


def _last_rounds(session: Session, project_id: int) -> list[RoundSummary]:
    stmt = (select(Round).where(Round.project_id == project_id)
            .order_by(Round.number.desc()).limit(LAST_ROUNDS))
    out = []
    for rnd in session.execute(stmt).scalars():
        metrics = rnd.metrics or {}
        out.append(RoundSummary(id=rnd.id, number=rnd.number, status=rnd.status,
                                strategy=rnd.strategy, n_labels_used=rnd.n_labels_used,
                                accuracy=metrics.get("accuracy"),
                                macro_f1=metrics.get("macro_f1"), finished_at=rnd.finished_at))
    return out


@router.get("/projects/{project_id}/stats", response_model=Stats)
def stats(project_id: int, caller: Reader) -> Stats:
    """Progress and backlog of the project (reviewers and owners)."""
    caller.project(project_id, "reviewer")
    session = caller.session
    model = active_model_version(session, project_id)
    open_flags = session.execute(select(func.count()).select_from(Flag).where(
        Flag.project_id == project_id, Flag.resolved_at.is_(None))).scalar_one()
    waiting = session.execute(select(func.count()).select_from(Job).where(
        Job.project_id == project_id, Job.status.in_(("queued", "running")))).scalar_one()
    return Stats(project_id=project_id, items=_items_per_split(session, project_id),
                 labeled=count_labeled_items(session, project_id),
                 leased=_leased(session, project_id), queued=_queued(session, project_id),
                 open_flags=int(open_flags), jobs_waiting=int(waiting),
                 active_model_version=None if model is None else model.version,
                 labels_per_annotator=_per_annotator(session, project_id),
                 last_rounds=_last_rounds(session, project_id))
