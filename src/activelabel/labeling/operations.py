"""What operators watch, per project, read at once from the database (so every API process of a
server reports the same numbers): the queue, leases, labeling pace, rounds and their duration,
the model's holdout accuracy, drift of new items and staleness of the model, waiting and failed
jobs."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from ..estimates import TASK_MEASURES
from ..store import JobStatus, RoundStatus
from ..store.models import Annotation, Assignment, Item, Job, Project, Round, utcnow
from ..store.queue import SCORED_BASE, active_lease_filter
from .drift import latest_drift, staleness
from .stats import SPENT_SPLIT

__all__ = ["PACE_WINDOW", "ProjectGauges", "project_gauges"]

#: Labels per minute are counted over this window.
PACE_WINDOW = timedelta(minutes=10)


@dataclass(frozen=True)
class ProjectGauges:
    project_id: int
    name: str
    queued: int  # unlabeled items a round ranked
    unlabeled: int
    leased: int
    labels_per_minute: float
    rounds: dict[str, int]  # status -> rounds
    last_round_seconds: float | None
    holdout_accuracy: float | None
    holdout_measure: str  # the task's score: accuracy, label_f1, entity_f1
    holdout_score: float | None
    jobs_waiting: int
    jobs_failed: int
    drift_psi: dict[str, float]  # view (confidence, embedding) -> PSI of the newest report
    drift_shifted: bool | None  # None: no report yet
    model_stale: bool | None  # None: no model yet
    model_labels_behind: int | None  # labels since the active model was trained


def _by_project(session: Session, stmt: object) -> dict[int, int]:
    return {int(p): int(n) for p, n in session.execute(stmt)}  # type: ignore[call-overload]


def project_gauges(session: Session, *, now: datetime | None = None) -> list[ProjectGauges]:
    """One :class:`ProjectGauges` per project, in a handful of grouped queries."""
    now = now or utcnow()
    unlabeled = Item.n_labels == 0
    queued = _by_project(session, select(Item.project_id, func.count()).where(
        unlabeled, Item.queue_rank < SCORED_BASE).group_by(Item.project_id))
    open_items = _by_project(session, select(Item.project_id, func.count()).where(
        unlabeled, Item.split == "pool").group_by(Item.project_id))
    leased = _by_project(session, select(Assignment.project_id, func.count()).where(
        active_lease_filter(now)).group_by(Assignment.project_id))
    recent = _by_project(session, select(Annotation.project_id, func.count())
                         .join(Item, Item.id == Annotation.item_id).where(
        Annotation.kind == "label", Annotation.created_at >= now - PACE_WINDOW,
        Item.split == SPENT_SPLIT).group_by(Annotation.project_id))
    waiting = _by_project(session, select(Job.project_id, func.count()).where(
        Job.status.in_((JobStatus.QUEUED, JobStatus.RUNNING)), Job.project_id.is_not(None))
        .group_by(Job.project_id))
    failed = _by_project(session, select(Job.project_id, func.count()).where(
        Job.status == JobStatus.FAILED, Job.project_id.is_not(None)).group_by(Job.project_id))
    rounds: dict[int, dict[str, int]] = {}
    for pid, status, n in session.execute(select(Round.project_id, Round.status, func.count())
                                          .group_by(Round.project_id, Round.status)):
        rounds.setdefault(int(pid), {})[str(status)] = int(n)
    latest: dict[int, Round] = {}
    for rnd in session.execute(select(Round).where(Round.status == RoundStatus.DONE)
                               .order_by(Round.project_id, Round.number)).scalars():
        latest[rnd.project_id] = rnd
    out = []
    for pid, name, task in session.execute(select(Project.id, Project.name, Project.task)
                                           .order_by(Project.id)):
        drift = latest_drift(session, pid)
        stale = staleness(session, pid, now=now)
        last = latest.get(pid)
        accuracy = None if last is None else (last.metrics or {}).get("accuracy")
        measure = TASK_MEASURES[task]
        score = None if last is None else (last.metrics or {}).get(measure)
        seconds = None if last is None else (last.timings or {}).get("total_s")
        out.append(ProjectGauges(
            project_id=pid, name=name, queued=queued.get(pid, 0),
            unlabeled=open_items.get(pid, 0), leased=leased.get(pid, 0),
            labels_per_minute=recent.get(pid, 0) / (PACE_WINDOW.total_seconds() / 60),
            rounds=rounds.get(pid, {}),
            last_round_seconds=None if seconds is None else float(seconds),
            holdout_accuracy=None if accuracy is None else float(accuracy),
            holdout_measure=measure, holdout_score=None if score is None else float(score),
            jobs_waiting=waiting.get(pid, 0), jobs_failed=failed.get(pid, 0),
            drift_psi={} if drift is None else {
                view: float(drift[f"{view}_psi"]) for view in ("confidence", "embedding")
                if drift.get(f"{view}_psi") is not None},
            drift_shifted=None if drift is None else bool(drift["shifted"]),
            model_stale=None if stale is None else bool(stale["stale"]),
            model_labels_behind=None if stale is None else int(stale["labels_since"])))
    return out
