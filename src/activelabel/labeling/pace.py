"""The team's pace over the store: batch size and cadence of rounds, each annotator's prefetch.

Only training labels count: revisions of kind ``label`` on pool items (holdout and gold items,
corrections, reviews and undos do not). The maths is in :mod:`activelabel.pace`.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session

from ..pace import Cadence, Pace, plan_cadence, prefetch_for, round_seconds, team_pace
from ..store import settings_of
from ..store.models import Annotation, Item, Project, Round, RoundStatus, utcnow

__all__ = [
    "MAX_QUEUE_WAIT_S",
    "PACE_WINDOW_S",
    "cadence_plan",
    "plan_record",
    "project_pace",
    "recent_round_seconds",
    "retrain_after",
    "suggested_prefetch",
]

#: Labels older than this do not count towards the pace.
PACE_WINDOW_S = 900.0
#: Rounds whose durations predict the next one.
LAST_ROUNDS = 5
#: The most of a round's wait in the queue that its duration counts: a worker's chunk of idle
#: work, a label check's fit or another project's round say what the next round will wait;
#: a worker down for an hour, or a job requeued after a dead one, do not.
MAX_QUEUE_WAIT_S = 60.0


def _seconds(when: datetime) -> float:
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return when.timestamp()


def project_pace(session: Session, project_id: int, *, user_id: int | None = None,
                 now: datetime | None = None, window_s: float = PACE_WINDOW_S) -> Pace:
    """Labels per minute of the annotators active in the last ``window_s`` seconds (one of
    them with ``user_id``), from the times of their training labels, and the labels an item
    took among them."""
    now = now or utcnow()
    stmt = (select(Annotation.created_at, Annotation.annotator_id, Annotation.item_id)
            .join(Item, Item.id == Annotation.item_id)
            .where(Annotation.project_id == project_id, Annotation.kind == "label",
                   Annotation.labels.is_not(None), Item.split == "pool",
                   Item.gold_labels.is_(None),
                   Annotation.created_at >= now - timedelta(seconds=window_s)))
    if user_id is not None:
        stmt = stmt.where(Annotation.annotator_id == user_id)
    rows = session.execute(stmt).all()
    times = np.asarray([_seconds(t) for t, _, _ in rows], dtype=np.float64)
    who = np.asarray([int(w) for _, w, _ in rows], dtype=np.int64)
    items = np.asarray([int(i) for _, _, i in rows], dtype=np.int64)
    return team_pace(times, who, _seconds(now), items=items, window_s=window_s)


def recent_round_seconds(session: Session, project_id: int) -> float | None:
    """Expected time from asking for the next round to its model, from the last finished
    rounds (queued to finished: the team labels on while a round waits for a worker too,
    behind an import, a label check or another project's round; at most
    :data:`MAX_QUEUE_WAIT_S` of the wait counts)."""
    stmt = (select(Round.created_at, Round.started_at, Round.finished_at)
            .where(Round.project_id == project_id, Round.status == RoundStatus.DONE,
                   Round.started_at.is_not(None), Round.finished_at.is_not(None))
            .order_by(Round.number.desc()).limit(LAST_ROUNDS))
    durations = [_seconds(done) - _seconds(began) + min(max(
                     _seconds(began) - _seconds(asked or began), 0.0), MAX_QUEUE_WAIT_S)
                 for asked, began, done in session.execute(stmt)
                 if began is not None and done is not None]
    return round_seconds(durations[::-1], last=LAST_ROUNDS)


def cadence_plan(session: Session, project: Project, *,
                 now: datetime | None = None) -> tuple[Cadence, Pace, float | None]:
    """The plan a round records: (batch and trigger, the pace, the expected round seconds).
    A fixed ``batch_size`` or ``retrain_every_labels`` is kept as set."""
    settings = settings_of(project.settings)
    pace = project_pace(session, project.id, now=now)
    seconds = recent_round_seconds(session, project.id)
    fixed_batch = settings.batch_size if isinstance(settings.batch_size, int) else None
    plan = plan_cadence(pace.labels_per_minute, seconds, max_model_lag=settings.max_model_lag,
                        default_batch=fixed_batch or 50, labels_per_item=pace.labels_per_item)
    batch = fixed_batch or plan.batch_size
    every = settings.retrain_every_labels
    if isinstance(every, int):
        trigger, reason = every, f"retrain every {every} labels (set)"
    else:
        trigger = max(1, min(settings.max_model_lag, batch - int(np.ceil(plan.labels_per_round))))
        reason = plan.reason
    if fixed_batch is not None:
        reason = f"batch {fixed_batch} (set); " + reason
    return (Cadence(batch, trigger, plan.labels_per_round, reason), pace, seconds)


def plan_record(plan: Cadence, pace: Pace, seconds: float | None,
                max_model_lag: int) -> dict[str, Any]:
    """What a round keeps of its plan (``metrics["pace"]``)."""
    return {"labels_per_minute": round(pace.labels_per_minute, 3),
            "labels_per_item": round(pace.labels_per_item, 3),
            "active_annotators": pace.active_annotators,
            "round_seconds": None if seconds is None else round(seconds, 3),
            "batch_size": plan.batch_size, "retrain_after": plan.retrain_after,
            "labels_per_round": round(plan.labels_per_round, 3),
            "max_model_lag": max_model_lag, "reason": plan.reason}


def retrain_after(project: Project, last: Round | None) -> int:
    """Labels since the last round that queue the next one: the setting, or with ``auto`` what
    the last round planned (before any round: the lesser of 50 and ``max_model_lag``)."""
    settings = settings_of(project.settings)
    if isinstance(settings.retrain_every_labels, int):
        return settings.retrain_every_labels
    planned = ((last.metrics or {}).get("pace") or {}).get("retrain_after") if last else None
    if isinstance(planned, int) and planned >= 1:
        return min(planned, settings.max_model_lag)
    return min(50, settings.max_model_lag)


def suggested_prefetch(session: Session, project_id: int, user_id: int) -> int:
    """Tasks the user's page keeps ahead: what they label in a minute at their own pace."""
    pace = project_pace(session, project_id, user_id=user_id)
    return prefetch_for(pace.per_annotator.get(int(user_id)))
