"""Drift and staleness of a project's model (the statistics live in :mod:`activelabel.drift`).

- Every round compares the items imported since the previous round with what the model
  knows: their confidence under the new model against the older unlabeled pool's (both unseen
  by it), and their features against the training items' (:func:`round_drift`; kept in the
  round's metrics as ``drift``).
- An import into a project with a model checks its new items at once: their features against
  the training items' (:func:`import_drift`); a shift queues a round (``retrain_on_drift``) and
  is kept in the import job's result. The confidence view waits for the round: the active
  model reads features from a featurizer fitted on the old pool (TF-IDF's vocabulary), which
  makes any item it has not seen look less familiar, so their confidence would differ
  whatever their content.
- The active model is stale when too many labels arrived since it was trained, or when it is
  too old while labels or items arrived (:func:`staleness`); the worker queues a round for
  stale models every minute (``retrain_when_stale``, :func:`request_stale_rounds`).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import datetime, timezone
from typing import Any

import numpy as np
from numpy.typing import NDArray
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from ..drift import MAX_SAMPLE, drift_report, max_confidence, stale_reasons
from ..samples import sorted_sample
from ..store import (
    Storage,
    active_model_version,
    get_project,
    last_finished_round,
    settings_of,
)
from ..store.models import Item, Job, JobStatus, Project, Round, RoundStatus, Split, utcnow
from .featurize import featurize_records

__all__ = ["import_drift", "latest_drift", "request_stale_rounds", "round_drift", "staleness"]

log = logging.getLogger("activelabel.drift")


def round_drift(X: Any, probs: NDArray[Any], splits: NDArray[np.str_],
                train_rows: NDArray[np.intp], labeled_rows: NDArray[np.intp], first_new_row: int,
                settings: Mapping[str, Any], seed: int, *, multilabel: bool = False
                ) -> dict[str, Any] | None:
    """The drift of the unlabeled pool items from row ``first_new_row`` on (imported since the
    previous round), or None when there are none (or no training items to compare with).
    Each side is subsampled (``MAX_SAMPLE`` rows) before its features are sliced."""
    n = int(probs.shape[0])
    unlabeled = np.ones(n, dtype=bool)
    unlabeled[labeled_rows[labeled_rows < n]] = False
    pool = (splits[:n] == Split.POOL) & unlabeled
    new = np.flatnonzero(pool & (np.arange(n) >= first_new_row))
    old = np.flatnonzero(pool & (np.arange(n) < first_new_row))
    if new.size == 0 or train_rows.size < 3:
        return None
    rng = np.random.default_rng(seed)
    old, new = sorted_sample(old, MAX_SAMPLE, rng), sorted_sample(new, MAX_SAMPLE, rng)
    train_rows = sorted_sample(np.asarray(train_rows), MAX_SAMPLE, rng)
    report = drift_report(
        confidence_reference=max_confidence(probs[old], multilabel) if old.size else None,
        confidence_new=max_confidence(probs[new], multilabel),
        features_reference=X[train_rows], features_new=X[new],
        psi_alert=float(settings["drift_psi_alert"]), p_alert=float(settings["drift_p_alert"]),
        seed=seed)
    return {**report.as_dict(), "first_new_row": int(first_new_row)}


def _payloads(session: Session, project_id: int, rows: NDArray[np.int64]) -> list[Any]:
    """Payloads of the items at ``rows`` (in row order), read in pages."""
    out: list[Any] = []
    for start in range(0, rows.size, 5000):
        chunk = [int(r) for r in rows[start:start + 5000]]
        out.extend(data or {} for data in session.execute(
            select(Item.data).where(Item.project_id == project_id, Item.row.in_(chunk))
            .order_by(Item.row)).scalars())
    return out


def import_drift(storage: Storage, project_id: int, first_row: int) -> dict[str, Any] | None:
    """Drift of the pool items imported from row ``first_row`` on against the items the active
    model was trained on, in feature space; None when the project has no model yet (its first
    round ranks everything) or fewer than 3 training items.

    Both samples (at most ``MAX_SAMPLE`` items each) are featurized together by a featurizer
    of the project's settings fitted on them: a featurizer fitted on the old pool alone (TF-IDF's
    vocabulary) would make any new item look unfamiliar, whatever its content."""
    with storage.read_sessions() as session:
        project = get_project(session, project_id)
        settings = settings_of(project.settings)
        mv = active_model_version(session, project_id)
        if mv is None:
            return None
        pool = select(Item.row).where(Item.project_id == project_id, Item.split == Split.POOL)
        trained = np.asarray(session.execute(pool.where(
            Item.row < first_row, Item.n_labels > 0)).scalars().all(), dtype=np.int64)
        new = np.asarray(session.execute(pool.where(Item.row >= first_row)).scalars().all(),
                         dtype=np.int64)
        if trained.size < 3 or new.size == 0:
            return None
        rng = np.random.default_rng(settings.random_state)
        trained = sorted_sample(trained, MAX_SAMPLE, rng)
        new = sorted_sample(new, MAX_SAMPLE, rng)
        payloads = _payloads(session, project_id, trained) + _payloads(session, project_id, new)
    X = featurize_records(settings.model_dump(), payloads, storage, project_id)
    report = drift_report(features_reference=X[:trained.size], features_new=X[trained.size:],
                          psi_alert=settings.drift_psi_alert, p_alert=settings.drift_p_alert,
                          seed=settings.random_state)
    return {**report.as_dict(), "first_new_row": int(first_row), "model_version": mv.version}


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=timezone.utc)


def staleness(session: Session, project_id: int, *, now: datetime | None = None
              ) -> dict[str, Any] | None:
    """Whether the active model is stale: ``{stale, reasons, labels_since, new_items,
    seconds_since, model_version}``; None when the project has no model yet."""
    from .rounds import labels_since_round

    project = get_project(session, project_id)
    settings = settings_of(project.settings)
    mv = active_model_version(session, project_id)
    last = last_finished_round(session, project_id)
    if mv is None or last is None or last.finished_at is None:
        return None
    # A re-activated older version starts its watch when its re-ranking round finished.
    trained = max(_aware(mv.created_at), _aware(last.finished_at))
    seconds = max((_aware(now or utcnow()) - trained).total_seconds(), 0.0)
    labels = labels_since_round(session, last, project_id)
    known = (last.metrics or {}).get("n_items")  # items the last round ranked
    newer = Item.row >= int(known) if known is not None else Item.created_at > mv.created_at
    new_items = int(session.execute(select(func.count()).select_from(Item).where(
        Item.project_id == project_id, newer)).scalar_one())
    reasons = stale_reasons(labels_since=labels, seconds_since=seconds, new_items=new_items,
                            max_labels=settings.stale_after_labels,
                            max_days=settings.stale_after_days)
    return {"stale": bool(reasons), "reasons": reasons, "labels_since": labels,
            "new_items": new_items, "seconds_since": round(seconds, 1),
            "model_version": mv.version}


def request_stale_rounds(session: Session) -> list[int]:
    """Queue a round (reason ``stale``) for every project whose model is stale, that asks for
    it (``retrain_when_stale``) and has no round queued or running; the rounds' ids."""
    from .rounds import request_round

    busy = select(Round.project_id).where(
        Round.status.in_((RoundStatus.QUEUED, RoundStatus.RUNNING)))
    with_model = select(Round.project_id).where(Round.status == RoundStatus.DONE,
                                                Round.model_version_id.is_not(None))
    ids = session.execute(select(Project.id).where(
        Project.id.in_(with_model), Project.id.not_in(busy)).order_by(Project.id)).scalars()
    queued = []
    for project_id in list(ids):
        if not settings_of(get_project(session, project_id).settings).retrain_when_stale:
            continue
        newest = session.execute(select(Round.status).where(Round.project_id == project_id)
                                 .order_by(Round.number.desc()).limit(1)).scalar()
        if newest == RoundStatus.FAILED:
            continue  # the owner looks at the failure first: no new round a minute
        state = staleness(session, project_id)
        if state is None or not state["stale"]:
            continue
        rnd, created = request_round(session, project_id, requested_by=None, reason="stale")
        if created:
            log.info("project %s: round %s queued, the model is stale (%s)", project_id,
                     rnd.id, "; ".join(state["reasons"]))
            queued.append(rnd.id)
    return queued


def latest_drift(session: Session, project_id: int) -> dict[str, Any] | None:
    """The newest drift report of the project: from its last finished round or its last
    finished import, whichever came later (``source`` says which)."""
    found: list[tuple[datetime, dict[str, Any]]] = []
    rounds = select(Round).where(Round.project_id == project_id,
                                 Round.status == RoundStatus.DONE).order_by(Round.number.desc())
    for rnd in session.execute(rounds.limit(20)).scalars():
        drift = (rnd.metrics or {}).get("drift")
        if drift and rnd.finished_at is not None:
            found.append((_aware(rnd.finished_at), {**drift, "source": "round",
                                                    "round_number": rnd.number}))
            break
    imports = select(Job).where(Job.project_id == project_id, Job.kind == "import",
                                Job.status == JobStatus.DONE).order_by(Job.id.desc())
    for job in session.execute(imports.limit(20)).scalars():
        drift = (job.result or {}).get("drift")
        if drift and job.finished_at is not None:
            found.append((_aware(job.finished_at), {**drift, "source": "import",
                                                    "job_id": job.id}))
            break
    return max(found, key=lambda pair: pair[0])[1] if found else None
