"""Rounds in the background: request one, and run one (train, evaluate, score, select, record).

A round reads everything it needs with read sessions (which never take SQLite's write lock),
computes over arrays (features cached by :mod:`.featurize`), and writes its results in one
short transaction at the end, so annotators keep getting tasks and saving labels meanwhile.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import os
import pickle
import tempfile
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray
from sqlalchemy import select
from sqlalchemy.orm import Session

from .. import metrics as metric_fns
from ..estimates import ACCURACY, CURVE_MEASURE, LABEL_F1, TASK_MEASURES
from ..models import BootstrapCommittee, make_model, pseudo_label_rows
from ..pace import resumed_strategy, schedule_strategy
from ..sequence import CrfTagger
from ..stopping import (
    KAPPA_METRIC,
    Budget,
    LowUncertainty,
    RoundState,
    StabilizingPredictions,
    StoppingRule,
    TargetAccuracy,
    stop_set_kappa,
)
from ..store import (
    InvalidInput,
    Storage,
    activate_model_version,
    active_model_version,
    count_labeled_items,
    count_labeled_since,
    create_model_version,
    create_round,
    current_labels,
    enqueue_job,
    finish_round,
    get_model_version,
    get_project,
    get_round,
    iter_items,
    label_watermark,
    last_finished_round,
    lock_project,
    record_audit,
    record_selection,
    round_due,
    settings_of,
)
from ..store.db import dialect_of, for_update_skip_locked
from ..store.governance import LABELS_UPTO, add_decision
from ..store.models import Item, Job, JobStatus, Project, Round, RoundStatus, utcnow
from ..store.settings import AUTO_STRATEGY, REMOTE_MODEL
from ..strategies import (
    COMMITTEE_MEMBERS,
    COMMITTEE_STRATEGIES,
    STRATEGIES,
    KMeansSampling,
    get_strategy,
    strategy_inputs,
)
from .consensus import collect_votes, consensus_method, votes_consensus
from .drift import round_drift
from .featurize import (
    ProjectFeatures,
    ensure_features,
    project_records,
    transform_items,
)
from .pace import cadence_plan, plan_record, retrain_after
from .payoff import audit_curve, audit_rows
from .predictions import prediction_priors
from .ranking import full_ranking, save_ranking_meta, seeded_order, write_full_ranking
from .remote_model import (
    ModelHosts,
    RemoteModel,
    RemoteModelError,
    item_pages,
    training_items,
)
from .scaled import on_ray, score_on_ray
from .span_rounds import SPAN_PREDICTIONS, span_predictions, span_round
from .stats import labels_spent

log = logging.getLogger("activelabel.rounds")

__all__ = [
    "COLD_START_STRATEGY",
    "SCORE_CHUNK",
    "after_annotation",
    "labels_since_round",
    "request_rerank",
    "request_round",
    "run_round",
]

#: Strategy recorded for seed batches picked from features alone.
COLD_START_STRATEGY = "cold_start"
#: Strategy recorded for seed batches picked among what imported predictions were least
#: sure of (their scores as priors), from that many times the batch.
PRIOR_COLD_START_STRATEGY = "cold_start_priors"
PRIOR_SHORTLIST = 4
#: Items scored per predict_proba call (bounds the temporaries of scoring a large pool).
SCORE_CHUNK = 50_000
Progress = Callable[[dict[str, Any]], None]


# ---- requesting ------------------------------------------------------------------------------


def _project_is_free(session: Session, project_id: int) -> bool:
    """Lock the project row unless another transaction holds it (PostgreSQL; always True on
    SQLite, whose write transaction is alone). A request that already holds item rows asks this
    instead of waiting: waiting for the project while holding items is the order that
    deadlocks with a transaction holding the project and waiting for those items."""
    stmt = for_update_skip_locked(select(Project.id).where(Project.id == project_id),
                                  dialect_of(session))
    return session.execute(stmt).first() is not None


def _queued_round(session: Session, project_id: int) -> Round | None:
    stmt = (select(Round).where(Round.project_id == project_id, Round.status == RoundStatus.QUEUED)
            .order_by(Round.number).limit(1))
    return session.execute(stmt).scalar_one_or_none()


def _new_round(session: Session, project: Project, payload: dict[str, Any],
               requested_by: int | None) -> Round:
    settings = settings_of(project.settings)
    # a span project's rounds pick by its span strategy (``strategy`` is a classifier's)
    strategy = str(payload.get("strategy") or (
        settings.span_strategy if project.task == "spans" else settings.strategy))
    batch = settings.batch_size if isinstance(settings.batch_size, int) else 50  # auto: at run
    rnd = create_round(session, project.id, strategy=strategy, batch_size=batch)
    job = enqueue_job(session, "round", {"round_id": rnd.id, **payload}, project_id=project.id)
    rnd.job_id = job.id
    session.flush()
    record_audit(session, "request", "round", rnd.id, project_id=project.id,
                 actor_id=requested_by, after={"number": rnd.number, "job_id": job.id, **payload})
    return rnd


def request_round(session: Session, project_id: int, *, requested_by: int | None,
                  reason: str) -> tuple[Round, bool]:
    """Queue a round (and its job) for the project; (round, created).

    When a round of the project is already queued, that one is returned with ``False``: it
    will see every label saved before it starts. The caller commits.
    """
    project = lock_project(session, project_id)  # two requests cannot both queue a round
    queued = _queued_round(session, project_id)
    if queued is not None:
        return queued, False
    return _new_round(session, project, {"reason": reason}, requested_by), True


def request_training(session: Session, project_id: int, *, requested_by: int | None,
                     reason: str, not_versions: set[int], active_gone: bool) -> Round:
    """Queue a round that trains (as :func:`request_round`). A queued re-rank (a rollback)
    that can no longer do its work, because its version is among ``not_versions`` (their
    files are gone) or because ``active_gone`` (the active model lost its file and a re-rank
    would leave it so), becomes that round while no worker holds its job; one a worker holds
    already gets a training round after it. The caller commits."""
    project = lock_project(session, project_id)
    queued = _queued_round(session, project_id)
    if queued is None:
        return _new_round(session, project, {"reason": reason}, requested_by)
    rerank = queued_rerank(session, project_id)
    if rerank is None or not (active_gone or rerank in not_versions):
        return queued  # a training round is queued already, or the re-rank still serves
    job = session.get(Job, queued.job_id) if queued.job_id is not None else None
    if job is None or job.status != JobStatus.QUEUED:
        return _new_round(session, project, {"reason": reason}, requested_by)
    job.payload = {"round_id": queued.id, "reason": reason}
    record_audit(session, "request", "round", queued.id, project_id=project_id,
                 actor_id=requested_by, before={"model_version": rerank},
                 after={"number": queued.number, "job_id": job.id, "reason": reason})
    return queued


def queued_rerank(session: Session, project_id: int) -> int | None:
    """The model version the project's queued round re-ranks with (a rollback), if any."""
    queued = _queued_round(session, project_id)
    version = None if queued is None else _job_payload(session, queued).get("model_version")
    return version if isinstance(version, int) else None


def request_rerank(session: Session, project_id: int, version: int, *,
                   requested_by: int | None) -> tuple[Round, bool]:
    """Queue a round that re-scores the pool with model ``version`` (no training) and re-ranks
    the queue: what follows ``activate_model_version`` on a rollback. The caller commits."""
    project = lock_project(session, project_id)  # two requests cannot both queue a round
    get_model_version(session, project_id, version)  # NotFound for an unknown version
    queued = _queued_round(session, project_id)
    if queued is not None and (queued.job_id is None or _job_payload(session, queued).get(
            "model_version") == version):
        return queued, False
    payload = {"reason": "rollback", "model_version": int(version)}
    return _new_round(session, project, payload, requested_by), True


def _job_payload(session: Session, rnd: Round) -> dict[str, Any]:
    job = session.get(Job, rnd.job_id) if rnd.job_id is not None else None
    return dict(job.payload or {}) if job is not None else {}


def labels_since_round(session: Session, last: Round | None, project_id: int, *,
                       at_most: int | None = None) -> int:
    """Items labeled since ``last`` (the project's latest finished round) read the labels.

    With the round's watermark, the count covers only the revisions after it (cheap: it runs
    after every annotation); a round finished before watermarks were recorded falls back to
    all labeled items minus the labels it used. On PostgreSQL a label saved while the round
    was reading may land on either side of the watermark: the count is exact when nobody
    labels during that read, and off by the labels in flight otherwise. Without a watermark
    the count stops at ``at_most`` (when only "at least that many?" matters), so that a
    project that never finished a round does not count all its labels after each one.
    """
    if last is not None and last.label_watermark is not None:
        return count_labeled_since(session, project_id, last.label_watermark)
    used = 0 if last is None else int(last.n_labels_used or 0)
    bound = None if at_most is None else at_most + used
    return max(count_labeled_items(session, project_id, at_most=bound) - used, 0)


def after_annotation(session: Session, project_id: int) -> Round | None:
    """Queue a round (reason ``retrain_every_labels``) once the items labeled since the last
    finished round (:func:`labels_since_round`) reach the project's ``retrain_every_labels``
    (``auto``: what the last round planned, :func:`.pace.retrain_after`); None otherwise.

    No second round is queued while one is queued or running (it will count those labels).
    """
    project = get_project(session, project_id)
    every = settings_of(project.settings).retrain_every_labels
    if not isinstance(every, int):
        every = retrain_after(project, last_finished_round(session, project_id))
    due = round_due(session, project_id, every)
    if due.pending:
        return None
    reached = due.reached
    if reached is None:  # no finished round recorded a watermark
        reached = labels_since_round(session, last_finished_round(session, project_id),
                                     project_id, at_most=every) >= every
    if not reached:
        return None
    if not _project_is_free(session, project_id):
        return None  # busy (a round being queued or recorded, an import): the next label checks
    rnd, _ = request_round(session, project_id, requested_by=None,
                           reason="retrain_every_labels")
    return rnd


# ---- reading the project ---------------------------------------------------------------------


@dataclass
class _Snapshot:
    """What a round reads from the database, all as plain values and arrays."""

    project_id: int
    task: str
    classes: list[Any]
    settings: dict[str, Any]
    item_ids: NDArray[np.int64]
    splits: NDArray[np.str_]
    labels: dict[int, list[list[Any]]]  # row -> each annotator's current labels
    n_labels: int
    active_version_id: int | None
    previous: dict[str, Any] | None
    history: list[RoundState] = field(default_factory=list)
    annotators: dict[int, list[int]] = field(default_factory=dict)  # row -> who, as labels
    gold: dict[int, list[Any]] = field(default_factory=dict)  # row -> known answer
    label_watermark: int = 0  # the newest revision id when the labels were read
    items_known: int | None = None  # items the previous finished round ranked
    audit: list[int] = field(default_factory=list)  # audit draws' rows, in draw order
    plan: dict[str, Any] = field(default_factory=dict)  # batch and cadence (metrics["pace"])
    scheduled_before: str | None = None  # strategy: auto, the last round's choice
    purged: NDArray[np.intp] = field(default_factory=lambda: np.empty(0, np.intp))  # rows


def _previous_round(session: Session, project_id: int, number: int) -> dict[str, Any] | None:
    """Holdout metrics and labels of the last finished round before ``number`` that had them."""
    stmt = (select(Round).where(Round.project_id == project_id, Round.status == RoundStatus.DONE,
                                Round.number < number).order_by(Round.number.desc()))
    for rnd in session.execute(stmt).scalars():
        if rnd.metrics and rnd.metrics.get("accuracy") is not None:
            return {"metrics": dict(rnd.metrics), "n_labels": rnd.n_labels_used or 0}
    return None


def _history(session: Session, project_id: int, number: int) -> list[RoundState]:
    stmt = (select(Round.n_labels_used, Round.metrics).where(
        Round.project_id == project_id, Round.status == RoundStatus.DONE, Round.number < number)
        .order_by(Round.number))
    return [RoundState(n_labeled=int(n or 0), metrics={
        k: float(v) for k, v in (m or {}).items() if isinstance(v, (int, float))})
        for n, m in session.execute(stmt)]


def _snapshot(storage: Storage, project_id: int, number: int) -> _Snapshot:
    with storage.read_sessions() as session:
        project = get_project(session, project_id)
        # Before the labels: every revision up to the watermark is among what follows.
        watermark = label_watermark(session, project_id)
        ids: list[int] = []
        splits: list[str] = []
        # a purged item's labels stay (people's work), but its payload is gone: no round
        # learns from it, measures with it or picks it
        purged: set[int] = set()
        for batch in iter_items(session, project_id, with_data=False):
            ids.extend(int(r.id) for r in batch)
            splits.extend(str(r.split) for r in batch)
            purged.update(int(r.row) for r in batch if r.purged_at is not None)
        labels: dict[int, list[list[Any]]] = {}
        annotators: dict[int, list[int]] = {}
        for cur in current_labels(session, project_id):
            if int(cur.row) in purged:
                continue
            labels.setdefault(int(cur.row), []).append(list(cur.labels))
            annotators.setdefault(int(cur.row), []).append(int(cur.annotator_id))
        active = active_model_version(session, project_id)
        settings = settings_of(project.settings)
        plan, pace, seconds = cadence_plan(session, project)
        last = last_finished_round(session, project_id)
        before = ((last.metrics or {}).get("schedule") or {}).get("strategy") if last else None
        return _Snapshot(
            project_id=project_id, task=project.task, classes=list(project.labels),
            settings=settings_of(project.settings).model_dump(), item_ids=np.asarray(ids, dtype=np.int64),
            splits=np.asarray(splits, dtype=str), labels=labels,
            n_labels=labels_spent(session, project_id), label_watermark=watermark,
            active_version_id=None if active is None else active.id,
            previous=_previous_round(session, project_id, number),
            history=_history(session, project_id, number), annotators=annotators,
            gold=_gold_answers(session, project_id),
            audit=[r for r in audit_rows(session, project_id) if r not in purged],
            purged=np.asarray(sorted(purged), dtype=np.intp),
            items_known=_items_known(session, project_id),
            plan=plan_record(plan, pace, seconds, settings.max_model_lag),
            scheduled_before=before if isinstance(before, str) else None)


def _items_known(session: Session, project_id: int) -> int | None:
    last = last_finished_round(session, project_id)
    known = None if last is None else (last.metrics or {}).get("n_items")
    return None if known is None else int(known)


def _gold_answers(session: Session, project_id: int) -> dict[int, list[Any]]:
    stmt = select(Item.row, Item.gold_labels).where(Item.project_id == project_id,
                                                    Item.gold_labels.is_not(None))
    return {int(r): list(g) for r, g in session.execute(stmt)}


def _consensus_rows(snap: _Snapshot) -> dict[int, Any]:
    """Row -> training label: the consensus of the current labels by the project's method
    (:mod:`.consensus`); a labeled gold item trains on its known answer."""
    out = _crowd_consensus(snap)
    multilabel = snap.task == "multilabel"
    for row, answer in snap.gold.items():
        if row in snap.labels and row < snap.item_ids.shape[0] and answer:
            out[row] = sorted(answer, key=str) if multilabel else answer[0]
    return out


def _crowd_consensus(snap: _Snapshot) -> dict[int, Any]:
    votes = collect_votes(((row, who, given) for row, labels in snap.labels.items()
                           for who, given in zip(snap.annotators[row], labels, strict=True)),
                          snap.classes)
    agreed = votes_consensus(votes, multilabel=snap.task == "multilabel",
                             method=consensus_method(snap.task, snap.settings))
    n = snap.item_ids.shape[0]
    return {row: value for row, value in agreed.as_dict().items()
            if value is not None and row < n}


# ---- computing -------------------------------------------------------------------------------


def _rows(X: Any, rows: NDArray[np.intp]) -> Any:
    return X[rows]


def _score(model: Any, X: Any, n_items: int) -> NDArray[np.float32]:
    """(n_items, n_classes) float32 probabilities, predicted in chunks of rows."""
    parts = [np.asarray(model.predict_proba(X[start:start + SCORE_CHUNK]), dtype=np.float32)
             for start in range(0, n_items, SCORE_CHUNK)]
    return np.concatenate(parts)


def _evaluate(model: Any, X: Any, snap: _Snapshot,
              truth: dict[int, Any]) -> dict[str, float | None]:
    """Holdout accuracy, macro-F1 and ECE; None values when no holdout item is labeled."""
    rows = np.asarray(sorted(r for r in truth if snap.splits[r] == "holdout"), dtype=np.intp)
    if rows.shape[0] == 0:
        return {"accuracy": None, "macro_f1": None, "ece": None, "n_holdout": 0}
    probs = model.predict_proba(_rows(X, rows))
    index = {c: j for j, c in enumerate(snap.classes)}
    if snap.task == "multilabel":
        Y = np.zeros((rows.shape[0], len(snap.classes)), dtype=np.int8)
        for i, r in enumerate(rows):
            Y[i, [index[x] for x in truth[int(r)] if x in index]] = 1
        scores = metric_fns.evaluate_multilabel(probs, Y)
    else:
        y = np.asarray([index[truth[int(r)]] for r in rows], dtype=np.intp)
        scores = metric_fns.evaluate(probs, y)
    return {**{k: float(v) for k, v in scores.items()}, "n_holdout": int(rows.shape[0])}


def _candidates(snap: _Snapshot) -> NDArray[np.intp]:
    """Rows a round may select: pool items nobody has a current label on, not purged."""
    mask = snap.splits == "pool"
    labeled = np.fromiter(snap.labels.keys(), dtype=np.intp, count=len(snap.labels))
    for rows in (labeled, snap.purged):
        mask[rows[rows < mask.shape[0]]] = False
    return np.flatnonzero(mask)


def _unaudited(rows: NDArray[np.intp], audit: list[int]) -> NDArray[np.intp]:
    """``rows`` without the audit draws, in their order."""
    return rows[~np.isin(rows, np.asarray(audit, dtype=np.intp))]


def _strategy_probs(probs: NDArray[np.float32], multilabel: bool) -> NDArray[np.float64]:
    """Rows summing to 1 for the strategies. Multi-label: the item's least certain label as a
    binary distribution ``[0.5 + u, 0.5 - u]``, ``u = min_j |p_j - 0.5|``."""
    p = probs.astype(np.float64)
    if multilabel:
        u = np.abs(p - 0.5).min(axis=1)
        return np.stack([0.5 + u, 0.5 - u], axis=1)
    total = p.sum(axis=1, keepdims=True)
    return np.divide(p, total, out=np.full_like(p, 1.0 / p.shape[1]), where=total > 0)


@dataclass(frozen=True)
class _Picked:
    rows: NDArray[np.intp]
    scores: list[float | None]
    strategy: str


def _select(snap: _Snapshot, strategy: str, k: int, probs: NDArray[np.float32] | None,
            feats: ProjectFeatures, train_rows: NDArray[np.intp], committee: Any,
            seed: int) -> _Picked:
    """``k`` candidate rows by ``strategy``, computing only the inputs the strategy reads
    (:func:`~activelabel.strategies.strategy_inputs`)."""
    pool = _candidates(snap)
    if pool.shape[0] == 0:
        return _Picked(pool, [], strategy)

    def model_probs() -> NDArray[np.float64]:
        assert probs is not None
        return _strategy_probs(probs[pool], snap.task == "multilabel")

    def committee_probs() -> Any:
        return committee.predict_proba(_rows(feats.X, pool))

    def labeled_embeddings() -> Any:
        return np.asarray(feats.embeddings[train_rows])

    kwargs = strategy_inputs(
        STRATEGIES[strategy], embeddings=np.asarray(feats.embeddings[pool]), probs=model_probs,
        committee_probs=None if committee is None else committee_probs,
        labeled_embeddings=labeled_embeddings if train_rows.shape[0] else None)
    chosen = get_strategy(strategy).query(min(k, pool.shape[0]), random_state=seed,
                                          class_weights=_class_weights(snap, strategy),
                                          **kwargs)
    idx = np.asarray(chosen.indices, dtype=np.intp)[:k]
    scores = [float(s) for s in np.asarray(chosen.scores)[:k]]
    return _Picked(pool[idx], list(scores), strategy)


def _select_on_ray(storage: Storage, snap: _Snapshot, strategy: str, k: int, model: Any,
                   feats: ProjectFeatures, train_rows: NDArray[np.intp], committee: Any,
                   seed: int) -> tuple[NDArray[np.float32], _Picked]:
    """What ``_score`` and :func:`_select` do, on Ray (``ray_above_items``): every item's
    probabilities and the batch, one task per shard of the pool (:mod:`.scaled`)."""
    probs, rows, scores = score_on_ray(
        storage, snap.project_id, feats, model, strategy=strategy, k=k,
        candidates=_candidates(snap), labeled_rows=train_rows, settings=snap.settings,
        committee=committee, class_weights=_class_weights(snap, strategy),
        multilabel=snap.task == "multilabel", seed=seed)
    return probs, _Picked(rows, [float(s) for s in scores], strategy)


def _class_weights(snap: _Snapshot, strategy: str) -> NDArray[np.float64] | None:
    """The ``class_weights`` setting as one weight per class (1 for labels it leaves out), for
    single-label strategies that read probabilities; None when unset or not read."""
    weights = snap.settings.get("class_weights") or {}
    if not weights or snap.task == "multilabel" or not STRATEGIES[strategy].needs_probs:
        return None
    return np.asarray([float(weights.get(str(c), 1.0)) for c in snap.classes])


def _cold_start(snap: _Snapshot, feats: ProjectFeatures, k: int, seed: int,
                priors: NDArray[np.float64] | None = None) -> _Picked:
    """Seed batch from the embeddings of unlabeled pool items (k-means: representative and
    diverse, as :func:`activelabel.strategies.cold_start`, keeping its cluster-size scores).

    With ``priors`` (the imported predictions' scores by row, NaN where none) covering at
    least ``k`` candidates, the k-means runs over the ``PRIOR_SHORTLIST * k`` candidates the
    imported model was least sure of: diverse items where a label teaches most."""
    pool = _candidates(snap)
    if pool.shape[0] == 0:
        return _Picked(pool, [], COLD_START_STRATEGY)
    strategy = COLD_START_STRATEGY
    if priors is not None and priors.shape[0] >= feats.n_items:
        scores = priors[pool]
        known = np.isfinite(scores)
        if int(known.sum()) >= k:
            order = seeded_order(scores[known], pool[known], seed,
                                 snap.project_id)[:PRIOR_SHORTLIST * k]
            pool, strategy = pool[known][order], PRIOR_COLD_START_STRATEGY
    chosen = KMeansSampling().query(min(k, pool.shape[0]),
                                    embeddings=np.asarray(feats.embeddings[pool]),
                                    random_state=seed)
    idx = np.asarray(chosen.indices, dtype=np.intp)[:k]
    return _Picked(pool[idx], [float(s) for s in np.asarray(chosen.scores)[:k]], strategy)


def _pseudo_labels(settings: dict[str, Any]) -> float | None:
    """The ``pseudo_labels`` setting for :func:`~activelabel.models.make_model` (None: the
    model's own default)."""
    value = settings.get("pseudo_labels", "auto")
    return None if value == "auto" else float(value)


def _training_set(snap: _Snapshot, truth: dict[int, Any]) -> tuple[NDArray[np.intp], list[Any]]:
    """Labeled pool rows (holdout, gold and audit draws measure, they do not train)."""
    audit = set(snap.audit)
    rows = sorted(r for r in truth if snap.splits[r] == "pool" and r not in audit)
    return np.asarray(rows, dtype=np.intp), [truth[r] for r in rows]


def _training_hash(snap: _Snapshot, rows: NDArray[np.intp], y: list[Any],
                   unlabeled: NDArray[np.intp] | None = None) -> str:
    """SHA-256 of what a fit learned from: each training item's id and label, in row order,
    then, for a fit that learned pseudo-labels, the ids of the unlabeled pool items it was
    handed (the same labels beside another pool make another model)."""
    digest = hashlib.sha256()
    for r, label in zip(rows.tolist(), y, strict=True):
        digest.update(f"{int(snap.item_ids[r])}:{label!r};".encode())
    if unlabeled is not None:
        digest.update(b"unlabeled:")
        digest.update(np.asarray(snap.item_ids[unlabeled], dtype="<i8").tobytes())
    return digest.hexdigest()


#: Items of the stop set (evenly spaced rows) whose predictions successive models compare.
STOP_SET_SIZE = 5000
#: Mean pool uncertainty (1 - the top probability) under which the low-uncertainty rule stops.
LOW_UNCERTAINTY_MEAN = 0.05


def _stop_rows(n: int) -> NDArray[np.intp]:
    """The stop set: at most :data:`STOP_SET_SIZE` evenly spaced rows of the first ``n``."""
    return np.unique(np.linspace(0, n - 1, min(n, STOP_SET_SIZE)).astype(np.intp))


def _stop_signals(snap: _Snapshot, old: NDArray[Any] | None,
                  new: NDArray[np.float32]) -> dict[str, Any]:
    """The new model's uncertainty over the unlabeled pool and its kappa with the model before
    on the stop set (what the stable-predictions and low-uncertainty rules read)."""
    multilabel = snap.task == "multilabel"
    pool = _candidates(snap)
    pool = pool[pool < new.shape[0]]
    out: dict[str, Any] = {"pool_uncertainty": 1.0 - _strategy_probs(new[pool], multilabel)
                           .max(axis=1) if pool.size else np.zeros(0)}
    if snap.task == "spans":  # the span round compared the two models' tags (stop_kappa)
        return out
    if old is not None and old.ndim == 2 and old.shape[1] == new.shape[1]:
        rows = _stop_rows(min(old.shape[0], new.shape[0]))

        def predicted(p: NDArray[Any]) -> NDArray[Any]:
            return np.asarray(p > 0.5) if multilabel else np.argmax(p, axis=1)

        if rows.size:
            out[KAPPA_METRIC] = stop_set_kappa(predicted(old[rows]), predicted(new[rows]))
    return out


def _stopping(snap: _Snapshot, holdout: Mapping[str, Any],
              signals: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
    """Every stopping rule's verdict on this round (recorded, never acted on): the budget and
    the target when set, stable predictions and low pool uncertainty always."""
    signals = signals or {}
    rules: list[StoppingRule] = []
    if snap.settings["label_budget"] is not None:
        rules.append(Budget(int(snap.settings["label_budget"])))
    if snap.settings["target_accuracy"] is not None:
        rules.append(TargetAccuracy(float(snap.settings["target_accuracy"]),
                                    metric=TASK_MEASURES[snap.task]))
    rules += [StabilizingPredictions(), LowUncertainty(LOW_UNCERTAINTY_MEAN, "mean")]
    metrics = {k: float(v) for k, v in holdout.items() if isinstance(v, float)}
    if signals.get(KAPPA_METRIC) is not None:
        metrics[KAPPA_METRIC] = float(signals[KAPPA_METRIC])
    state = RoundState(n_labeled=snap.n_labels, metrics=metrics,
                       pool_uncertainty=signals.get("pool_uncertainty"))
    history = [*snap.history, state]
    return [{"rule": d.rule, "stop": d.stop, "reason": d.reason}
            for d in (rule.check(history) for rule in rules)]


def _gain(snap: _Snapshot, holdout: Mapping[str, Any]) -> dict[str, Any] | None:
    """What the holdout's scores moved since the previous measured model: ``score`` is the
    task's own (``measure``: accuracy, a multi-label label F1, a span entity F1), and
    ``per_100_labels`` is that change per 100 labels added (None where the previous round
    did not measure it)."""
    prev = snap.previous
    if prev is None or holdout.get("accuracy") is None:
        return None
    before = prev["metrics"]
    d_acc = float(holdout["accuracy"]) - float(before.get("accuracy") or 0.0)
    d_f1 = float(holdout.get("macro_f1") or 0.0) - float(before.get("macro_f1") or 0.0)
    measure = TASK_MEASURES[snap.task]
    now, then = holdout.get(measure), before.get(measure)
    d_score = None if now is None or then is None else float(now) - float(then)
    added = snap.n_labels - int(prev["n_labels"])
    return {"accuracy": d_acc, "macro_f1": d_f1, "measure": measure, "score": d_score,
            "per_100_labels": None if added <= 0 or d_score is None
            else 100.0 * d_score / added,
            "labels_added": added}


# ---- artifacts -------------------------------------------------------------------------------


def _model_path(storage: Storage, project_id: int, version: int) -> Path:
    return storage.location.models_dir / f"project_{project_id}" / f"v{version}.pkl"


def _dump_artifact(storage: Storage, project_id: int, artifact: dict[str, Any]) -> Path:
    """Pickle the model (and its featurizer) to a temporary file in the project's model folder;
    it is renamed to ``v<version>.pkl`` once the version number is known."""
    folder = storage.location.models_dir / f"project_{project_id}"
    folder.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".model.", suffix=".tmp", dir=folder)
    with os.fdopen(fd, "wb") as handle:
        pickle.dump(artifact, handle, protocol=5)
        handle.flush()
        os.fsync(handle.fileno())
    return Path(tmp)


def _load_artifact(path: str) -> dict[str, Any]:
    try:
        with open(path, "rb") as handle:
            artifact: dict[str, Any] = pickle.load(handle)  # written by this module
    except FileNotFoundError as exc:  # removed since its version was read (a purge)
        raise InvalidInput(f"the model file {path} is gone (removed by a purge of items it "
                           "may have learned from); activate another version, or request "
                           "a new round") from exc
    return artifact


# ---- running ---------------------------------------------------------------------------------


@dataclass
class _Outcome:
    picked: _Picked
    holdout: dict[str, Any]
    timings: dict[str, float]
    probs: NDArray[np.float32] | None = None
    artifact_tmp: Path | None = None
    model_version: int | None = None  # rerank: the existing version used
    n_train: int = 0
    training_hash: str | None = None
    drift: dict[str, Any] | None = None  # items imported since the previous round
    schedule: dict[str, Any] | None = None  # strategy: auto, what it chose and why
    signals: dict[str, Any] = field(default_factory=dict)  # for the stopping rules


def _schedule(snap: _Snapshot, y: list[Any], holdout: Mapping[str, Any]) -> dict[str, Any]:
    """``strategy: auto``: the strategy for this round by the model's maturity, and why."""
    counts = dict.fromkeys(map(str, snap.classes), 0)
    for label in y:
        for one in (label if isinstance(label, list) else [label]):
            if str(one) in counts:
                counts[str(one)] += 1
    accuracies = [h.metrics.get("accuracy") for h in snap.history]
    accuracies.append(holdout.get("accuracy"))
    name, why = schedule_strategy(list(counts.values()), accuracies,
                                  previous=snap.scheduled_before)
    return {"strategy": name, "reason": why, "previous": snap.scheduled_before,
            "switched": name != snap.scheduled_before}


def _begin(storage: Storage, job: Job) -> tuple[int, int, str, int] | None:
    """Mark the round running; (project_id, round_id, strategy, number) or None when it
    already finished (a job requeued after its round was recorded)."""
    payload = job.payload or {}
    if job.project_id is None or payload.get("round_id") is None:
        raise InvalidInput(f"round job {job.id} has no project or round_id in its payload")
    with storage.sessions() as session, session.begin():
        rnd = get_round(session, job.project_id, int(payload["round_id"]))
        if rnd.status in (RoundStatus.DONE, RoundStatus.FAILED):
            return None
        rnd.status, rnd.started_at, rnd.error = RoundStatus.RUNNING, utcnow(), None
        return rnd.project_id, rnd.id, rnd.strategy, rnd.number


def _span_outcome(storage: Storage, snap: _Snapshot, feats: ProjectFeatures, batch_size: int,
                  seed: int, progress: Progress, timings: dict[str, float]) -> _Outcome:
    """Span projects: the CRF round of :mod:`.span_rounds`, recorded as any round."""
    out = span_round(storage, snap.project_id, item_ids=snap.item_ids, splits=snap.splits,
                     labels=snap.labels, gold=snap.gold, audit=snap.audit,
                     candidates=_candidates(snap), embeddings=feats.embeddings,
                     settings=snap.settings, batch_size=batch_size, seed=seed,
                     progress=progress, timings=timings,
                     **_span_stop_inputs(storage, snap))
    picked = _Picked(out.rows, out.scores, out.strategy)
    if out.model is None or out.predictions is None:
        return _Outcome(picked, {}, timings)
    storage.arrays.save(snap.project_id, SPAN_PREDICTIONS, out.predictions)
    tmp = _dump_artifact(storage, snap.project_id, {
        "model": out.model, "fingerprint": feats.fingerprint, "classes": snap.classes,
        "task": snap.task})
    return _Outcome(picked, out.holdout, timings, out.probs, tmp, None, out.n_train,
                    out.training_hash, signals=_span_kappa(out.stop_kappa))


def _span_stop_inputs(storage: Storage, snap: _Snapshot) -> dict[str, Any]:
    """The model before's span predictions and the stop set, for the span round's kappa: the
    rows that model tagged (its ``probs``, saved with its spans, say how many), as the
    classifier's stop set is; an item imported since reads as untagged there."""
    before = storage.arrays.load(snap.project_id, "probs")
    tagged = 0 if before is None else int(before.shape[0])
    return {"previous": span_predictions(storage.arrays, snap.project_id, snap.task),
            "stop_rows": _stop_rows(min(tagged, int(snap.item_ids.shape[0])))}


def _span_kappa(kappa: float | None) -> dict[str, Any]:
    return {} if kappa is None else {KAPPA_METRIC: kappa}


def _stored_artifact(storage: Storage, project_id: int, version: int
                     ) -> tuple[dict[str, Any], dict[str, Any]]:
    """Model ``version``'s stored artifact and holdout metrics (a clear error when its file
    is gone)."""
    with storage.read_sessions() as session:
        mv = get_model_version(session, project_id, version)
        path, mv_metrics = mv.artifact_path, dict(mv.metrics or {})
    if not path or not Path(path).exists():
        raise InvalidInput(f"model version {version} has no artifact on disk ({path}); "
                           "activate a version whose file exists, or request a new round")
    return _load_artifact(path), mv_metrics


def _span_rerank(storage: Storage, snap: _Snapshot, feats: ProjectFeatures, strategy: str,
                 batch_size: int, seed: int, version: int, progress: Progress,
                 timings: dict[str, float]) -> _Outcome:
    """Span projects: tag the pool with a stored version's CRF and select again (no
    training); its spans become the suggestions again."""
    artifact, mv_metrics = _stored_artifact(storage, snap.project_id, version)
    if not isinstance(artifact.get("model"), CrfTagger):
        raise InvalidInput(f"model version {version} holds no span model; activate a version "
                           "trained by a span round, or request a new round")
    out = span_round(storage, snap.project_id, item_ids=snap.item_ids, splits=snap.splits,
                     labels=snap.labels, gold=snap.gold, audit=snap.audit,
                     candidates=_candidates(snap), embeddings=feats.embeddings,
                     settings=snap.settings, batch_size=batch_size, seed=seed,
                     progress=progress, timings=timings, tagger=artifact["model"])
    assert out.predictions is not None
    storage.arrays.save(snap.project_id, SPAN_PREDICTIONS, out.predictions)
    holdout = {k: v for k, v in mv_metrics.items() if k in (
        "accuracy", "macro_f1", "ece", "entity_f1", "entity_precision", "entity_recall",
        "n_holdout")}
    return _Outcome(_Picked(out.rows, out.scores, out.strategy), holdout, timings, out.probs,
                    None, version)


def _train_round(storage: Storage, snap: _Snapshot, feats: ProjectFeatures, strategy: str,
                 batch_size: int, seed: int, progress: Progress, timings: dict[str, float],
                 model_hosts: ModelHosts) -> _Outcome:
    if snap.task == "spans":
        return _span_outcome(storage, snap, feats, batch_size, seed, progress, timings)
    truth = _consensus_rows(snap)
    rows, y = _training_set(snap, truth)
    if rows.shape[0] == 0:
        progress({"stage": "cold_start"})
        start = time.perf_counter()
        picked = _cold_start(snap, feats, batch_size, seed,
                             prediction_priors(storage, snap.project_id, feats.n_items))
        timings["select_s"] = time.perf_counter() - start
        return _Outcome(picked, {}, timings)
    if snap.settings["model"] == REMOTE_MODEL:
        return _remote_train_round(storage, snap, feats, strategy, batch_size, seed,
                                   (rows, y, truth), progress, timings, model_hosts)
    multilabel = snap.task == "multilabel"
    progress({"stage": "train", "n_train": int(rows.shape[0])})
    start = time.perf_counter()
    name = str(snap.settings["model"])
    pseudo = _pseudo_labels(snap.settings)
    model = make_model(name, classes=snap.classes, random_state=seed, multilabel=multilabel,
                       pseudo_labels=pseudo)
    X_train = _rows(feats.X, rows)
    # the pool's unlabeled items for self-training: this fit's (while its labels are few) and
    # the random-sampling curve's, whose fits on the audit labels are fewer still. Audit draws
    # not answered yet are left out: they measure the model, so it must not learn its own
    # guess for them (that would make the payoff's estimate partly one of its training fit)
    pool_rows = None if multilabel or model.pseudo_labels == 0 else pseudo_label_rows(
        _unaudited(_candidates(snap), snap.audit), seed)
    unlabeled = None if pool_rows is None else _rows(feats.X, pool_rows)
    model.fit(X_train, y, unlabeled=unlabeled)
    committee = None
    if strategy in COMMITTEE_STRATEGIES and not multilabel:
        committee = BootstrapCommittee(make_model(name, classes=snap.classes).estimator,
                                       n_members=COMMITTEE_MEMBERS, classes=snap.classes,
                                       random_state=seed).fit(X_train, y)
    timings["train_s"] = time.perf_counter() - start
    holdout: dict[str, Any] = _evaluate(model, feats.X, snap, truth)
    holdout["pseudo_labels"] = model.n_pseudo_
    # what random sampling buys, from the audit draws alone (the same model, pseudo-labels
    # and all, so the comparison is like for like)
    holdout["random_curve"] = audit_curve(feats.X, snap.audit, truth, lambda: make_model(
        name, classes=snap.classes, random_state=seed, multilabel=multilabel,
        pseudo_labels=pseudo), unlabeled=unlabeled)
    # what the curve scores (the payoff reads a curve of its own measure only)
    holdout[CURVE_MEASURE] = LABEL_F1 if multilabel else ACCURACY
    progress({"stage": "score", "n_items": feats.n_items})
    start = time.perf_counter()
    ray = on_ray(snap.settings, feats.n_items)  # scored with the selection, on Ray
    probs = None if ray else _score(model, feats.X, feats.n_items)
    timings["score_s"] = time.perf_counter() - start
    start = time.perf_counter()
    schedule = None
    if strategy == AUTO_STRATEGY:
        schedule = _schedule(snap, y, holdout)
        strategy = schedule["strategy"]
    if committee is None and strategy in COMMITTEE_STRATEGIES:
        strategy = "entropy"  # committees need single-label classes: closest uncertainty rule
    if ray:
        probs, picked = _select_on_ray(storage, snap, strategy, batch_size, model, feats, rows,
                                       committee, seed)
    else:
        picked = _select(snap, strategy, batch_size, probs, feats, rows, committee, seed)
    timings["select_s"] = time.perf_counter() - start
    assert probs is not None
    drift = _drift(snap, feats, probs, rows, seed, timings)
    tmp = _dump_artifact(storage, snap.project_id, {
        "model": model, "fingerprint": feats.fingerprint, "classes": snap.classes,
        "task": snap.task, "featurizer_settings": {
            "featurizer": snap.settings["featurizer"],
            "featurizer_params": snap.settings["featurizer_params"]}})
    return _Outcome(picked, holdout, timings, probs, tmp, None, int(rows.shape[0]),
                    _training_hash(snap, rows, y, pool_rows if model.n_pseudo_ else None),
                    drift, schedule)


def _drift(snap: _Snapshot, feats: ProjectFeatures, probs: NDArray[np.float32],
           rows: NDArray[np.intp], seed: int, timings: dict[str, float]) -> dict[str, Any] | None:
    """The drift report of the items imported since the previous round (None: first round,
    or not measured: a report, never a reason for the round to fail)."""
    first_new = snap.items_known
    if first_new is None:
        return None
    start = time.perf_counter()
    labeled = np.asarray(sorted(snap.labels), dtype=np.intp)
    drift = None
    try:
        drift = round_drift(feats.X, probs, snap.splits, rows, labeled, first_new,
                            snap.settings, seed, multilabel=snap.task == "multilabel")
    except Exception:
        log.warning("drift of project %s not measured", snap.project_id, exc_info=True)
    timings["drift_s"] = time.perf_counter() - start
    return drift


# ---- a model served elsewhere (model: http) ---------------------------------------------------


class _ScoredRows:
    """Probabilities already computed for every row, looked up by row (``X`` holds row
    numbers), so the holdout is evaluated exactly as a built-in model's."""

    def __init__(self, probs: NDArray[np.float32]) -> None:
        self.probs = probs

    def predict_proba(self, X: Any) -> NDArray[np.float32]:
        return self.probs[np.asarray(X, dtype=np.intp)[:, 0]]


def _remote_project(snap: _Snapshot) -> dict[str, Any]:
    return {"id": snap.project_id, "task": snap.task, "labels": list(snap.classes)}


def _remote_scores(storage: Storage, remote: RemoteModel, model_id: str | None,
                   snap: _Snapshot, n_items: int
                   ) -> tuple[NDArray[np.float32], NDArray[np.float32] | None]:
    """(probabilities, embeddings or None) of every item from the model server, page by page."""
    probs: list[NDArray[np.float32]] = []
    vectors: list[NDArray[np.float32] | None] = []
    for page in item_pages(storage, snap.project_id, n_items):
        p, e = remote.predict(_remote_project(snap), model_id, page, snap.classes,
                              multilabel=snap.task == "multilabel")
        probs.append(p)
        vectors.append(e)
    if sum(p.shape[0] for p in probs) != n_items:
        raise RemoteModelError(f"the project has {n_items} items but "
                               f"{sum(p.shape[0] for p in probs)} were read for {remote.url}")
    if all(v is None for v in vectors):
        return np.concatenate(probs), None
    if any(v is None for v in vectors) or len({v.shape[1] for v in vectors if v is not None}) > 1:
        raise RemoteModelError(f"model server {remote.url}/predict: embeddings must be given "
                               "for every item or none, all of one length")
    return np.concatenate(probs), np.concatenate([v for v in vectors if v is not None])


def _remote_train_round(storage: Storage, snap: _Snapshot, feats: ProjectFeatures,
                        strategy: str, batch_size: int, seed: int,
                        labeled: tuple[NDArray[np.intp], list[Any], dict[int, Any]],
                        progress: Progress, timings: dict[str, float],
                        model_hosts: ModelHosts) -> _Outcome:
    """Train and score with the model served at ``model_url`` (:mod:`.remote_model`); then
    evaluate, select and record as with a built-in model. The server's embeddings, when it
    gives them, replace the features' for the strategies. A host ``model_hosts`` does not
    allow fails the round before any call."""
    rows, y, truth = labeled
    remote = RemoteModel.from_settings(snap.settings, model_hosts)
    progress({"stage": "train", "n_train": int(rows.shape[0]), "model_url": remote.url})
    start = time.perf_counter()
    items = training_items(storage, snap.project_id, rows.tolist(), y,
                           multilabel=snap.task == "multilabel")
    model_id = remote.train(_remote_project(snap), items)
    timings["train_s"] = time.perf_counter() - start
    progress({"stage": "score", "n_items": feats.n_items, "model_url": remote.url})
    start = time.perf_counter()
    probs, embeddings = _remote_scores(storage, remote, model_id, snap, feats.n_items)
    timings["score_s"] = time.perf_counter() - start
    holdout: dict[str, Any] = _evaluate(_ScoredRows(probs), np.arange(feats.n_items)[:, None],
                                        snap, truth)
    start = time.perf_counter()
    schedule = None
    if strategy == AUTO_STRATEGY:
        schedule = _schedule(snap, y, holdout)
        strategy = schedule["strategy"]
    if strategy in COMMITTEE_STRATEGIES:
        strategy = "entropy"  # one served model, no committee: closest uncertainty rule
    chosen = feats if embeddings is None else dataclasses.replace(feats, embeddings=embeddings)
    picked = _select(snap, strategy, batch_size, probs, chosen, rows, None, seed)
    timings["select_s"] = time.perf_counter() - start
    drift = _drift(snap, feats, probs, rows, seed, timings)
    tmp = _dump_artifact(storage, snap.project_id, {
        "model": None, "remote": {"url": remote.url, "model_id": model_id},
        "fingerprint": feats.fingerprint, "classes": snap.classes, "task": snap.task,
        "featurizer_settings": {"featurizer": snap.settings["featurizer"],
                                "featurizer_params": snap.settings["featurizer_params"]}})
    return _Outcome(picked, holdout, timings, probs, tmp, None, int(rows.shape[0]),
                    _training_hash(snap, rows, y), drift, schedule)


def _rerank(storage: Storage, snap: _Snapshot, feats: ProjectFeatures, strategy: str,
            batch_size: int, seed: int, version: int, progress: Progress,
            timings: dict[str, float], model_hosts: ModelHosts) -> _Outcome:
    """Score the pool with a stored model version and select again (no training)."""
    artifact, mv_metrics = _stored_artifact(storage, snap.project_id, version)
    X = feats.X
    if artifact.get("fingerprint") != feats.fingerprint and artifact.get("featurizer"):
        featurizer = artifact["featurizer"]
        X, _ = transform_items(featurizer, project_records(storage, snap.project_id, featurizer))
    progress({"stage": "score", "n_items": feats.n_items, "model_version": version})
    start = time.perf_counter()
    remote = artifact.get("remote")
    if remote is not None:  # a served model: its server scores the pool again
        client = RemoteModel.from_settings({**snap.settings, "model_url": remote["url"]},
                                           model_hosts)
        probs, _ = _remote_scores(storage, client, remote.get("model_id"), snap, feats.n_items)
    else:
        probs = _score(artifact["model"], X, feats.n_items)
    timings["score_s"] = time.perf_counter() - start
    start = time.perf_counter()
    if strategy == AUTO_STRATEGY:
        strategy = resumed_strategy(snap.scheduled_before)
    if strategy in COMMITTEE_STRATEGIES:
        strategy = "entropy"  # no committee is stored with a version
    truth_rows = np.asarray(sorted(_consensus_rows(snap)), dtype=np.intp)
    train_rows = truth_rows[snap.splits[truth_rows] == "pool"] if truth_rows.size else truth_rows
    train_rows = _unaudited(train_rows, snap.audit)
    picked = _select(snap, strategy, batch_size, probs, feats, train_rows, None, seed)
    timings["select_s"] = time.perf_counter() - start
    # the model's holdout scores, the task's own (a multi-label label F1) with them
    holdout = {k: v for k, v in mv_metrics.items()
               if k in ("accuracy", "macro_f1", "ece", "label_f1", "n_holdout")}
    return _Outcome(picked, holdout, timings, probs, None, version)


def _record(storage: Storage, snap: _Snapshot, round_id: int, out: _Outcome,
            reason: str) -> dict[str, Any]:
    """One short write transaction: model version, selection (= the queue), round results."""
    metrics: dict[str, Any] = {**out.holdout, "n_train": out.n_train, "reason": reason,
                               "n_candidates": int(_candidates(snap).shape[0]),
                               "n_items": int(snap.item_ids.shape[0])}
    if out.drift is not None:
        metrics["drift"] = out.drift
    stopping = _stopping(snap, out.holdout, out.signals)
    if out.signals.get(KAPPA_METRIC) is not None:
        metrics[KAPPA_METRIC] = round(float(out.signals[KAPPA_METRIC]), 6)
    uncertainty = out.signals.get("pool_uncertainty")
    if uncertainty is not None and len(uncertainty):
        metrics["pool_uncertainty_mean"] = round(float(np.mean(uncertainty)), 6)
    metrics["stopping"] = stopping
    metrics["stop"] = any(d["stop"] for d in stopping)
    metrics["pace"] = dict(snap.plan)
    if out.schedule is not None:
        metrics["schedule"] = out.schedule
    item_ids = [int(snap.item_ids[r]) for r in out.picked.rows]
    start = time.perf_counter()
    with storage.sessions() as session, session.begin():
        mv_id: int | None = None
        version: int | None = out.model_version
        if out.artifact_tmp is not None and snap.task == "spans" and _purged_since(
                session, snap):
            # a span model keeps the words of the sentences it trained on, and a purge since
            # the labels were read may have removed some of them: the model is not kept
            out.artifact_tmp.unlink(missing_ok=True)
            out.artifact_tmp = None
            metrics["model_discarded"] = ("items were purged while the round ran; the next "
                                          "round trains without them")
            request_round(session, snap.project_id, requested_by=None, reason="purge")
        if out.artifact_tmp is not None:
            mv = create_model_version(
                session, snap.project_id, round_id=round_id, parent_id=snap.active_version_id,
                training_set_hash=out.training_hash, n_train=out.n_train,
                metrics={**{k: v for k, v in out.holdout.items()
                            if k not in ("random_curve", CURVE_MEASURE)},
                         # no label newer than this can be in the model (a purge asks)
                         LABELS_UPTO: label_watermark(session, snap.project_id)})
            target = _model_path(storage, snap.project_id, mv.version)
            os.replace(out.artifact_tmp, target)
            mv.artifact_path = str(target)
            activate_model_version(session, snap.project_id, mv.version)
            mv_id, version = mv.id, mv.version
        elif version is not None:
            mv_id = get_model_version(session, snap.project_id, version).id
        record_selection(session, snap.project_id, round_id, item_ids, out.picked.scores,
                         model_version_id=mv_id, strategy=out.picked.strategy)
        out.timings["write_s"] = time.perf_counter() - start
        rnd = finish_round(session, snap.project_id, round_id, model_version_id=mv_id,
                           n_labels_used=snap.n_labels, label_watermark=snap.label_watermark,
                           metrics=metrics, gain=_gain(snap, out.holdout),
                           timings={k: round(v, 4) for k, v in out.timings.items()})
        rnd.batch_size = int(snap.plan.get("batch_size") or rnd.batch_size)  # auto: planned
        if out.schedule is not None and out.schedule["switched"]:
            add_decision(session, snap.project_id, None, "strategy",
                         f"strategy auto: {out.schedule['strategy']} from round {rnd.number}"
                         + (f" (was {out.schedule['previous']})" if out.schedule["previous"]
                            else "") + f": {out.schedule['reason']}", from_round=rnd.number)
    return {"round_id": round_id, "selected": len(item_ids), "model_version": version,
            "strategy": out.picked.strategy, "metrics": metrics}


def _purged_since(session: Session, snap: _Snapshot) -> bool:
    """Whether labeled pool items of ``snap`` (what a span round trains on) were purged
    since it read them; the project's lock orders the answer with a purge's transaction,
    committed or not."""
    lock_project(session, snap.project_id)
    rows = session.execute(select(Item.row).where(
        Item.project_id == snap.project_id, Item.purged_at.is_not(None))).scalars()
    new = set(map(int, rows)) - set(snap.purged.tolist())
    return any(r in snap.labels and snap.splits[r] != "holdout" for r in new)


def _keep_previous_probs(storage: Storage, project_id: int) -> None:
    """Copy the outgoing model's probabilities to ``probs_previous`` (the dashboard shows how
    the pool's confidence moved between the two models)."""
    old = storage.arrays.load(project_id, "probs", mmap=False)
    if old is not None:
        storage.arrays.save(project_id, "probs_previous", old)


def run_round(storage: Storage, job: Job, *, progress: Progress,
              model_hosts: ModelHosts) -> dict[str, Any]:
    """The worker's handler for a ``round`` job: cold start, train + select, or rerank.

    Heavy work runs outside write transactions; results are written in one short transaction.
    Raises on failure (the worker marks the job and the round failed with the message).
    ``model_hosts``: the hosts a model served elsewhere may be called at (the server's
    ``model_hosts``, which the worker passes; ``ModelHosts()``: any host). Required, so no
    caller skips the operator's list by forgetting it."""
    begun = _begin(storage, job)
    if begun is None:
        return {"skipped": "round already finished"}
    project_id, round_id, strategy, number = begun
    payload = job.payload or {}
    started = time.perf_counter()
    timings: dict[str, float] = {"featurize_s": 0.0, "train_s": 0.0, "score_s": 0.0,
                                 "select_s": 0.0}
    progress({"stage": "read", "round_id": round_id})
    snap = _snapshot(storage, project_id, number)
    batch_size = int(snap.plan["batch_size"])
    seed = int(snap.settings["random_state"]) + number
    progress({"stage": "featurize"})
    start = time.perf_counter()
    feats = ensure_features(storage, project_id)
    timings["featurize_s"] = time.perf_counter() - start
    if feats.n_items != snap.item_ids.shape[0]:  # items imported meanwhile: align to features
        n = min(feats.n_items, snap.item_ids.shape[0])
        snap.item_ids, snap.splits = snap.item_ids[:n], snap.splits[:n]
    if payload.get("model_version") is not None and snap.task == "spans":
        out = _span_rerank(storage, snap, feats, strategy, batch_size, seed,
                           int(payload["model_version"]), progress, timings)
    elif payload.get("model_version") is not None:
        out = _rerank(storage, snap, feats, strategy, batch_size, seed,
                      int(payload["model_version"]), progress, timings, model_hosts)
    else:
        out = _train_round(storage, snap, feats, strategy, batch_size, seed, progress, timings,
                           model_hosts)
    progress({"stage": "record"})  # still this worker's job? (nothing is written before)
    if out.probs is not None:
        out.signals = {**out.signals, **_stop_signals(
            snap, storage.arrays.load(project_id, "probs", mmap=False), out.probs)}
        if out.model_version is not None:  # a re-ranking round: no new model to compare
            out.signals.pop(KAPPA_METRIC, None)
        _keep_previous_probs(storage, project_id)
        storage.arrays.save(project_id, "probs", out.probs)
        storage.arrays.save(project_id, "scores", 1.0 - out.probs.max(axis=1))
    ranking = None
    if out.probs is not None:
        start = time.perf_counter()
        ranking = full_ranking(snap.splits, out.picked.rows, out.probs,
                               multilabel=snap.task == "multilabel",
                               seed=int(snap.settings["random_state"]), project_id=project_id,
                               left_out=snap.purged)
        timings["rank_s"] = time.perf_counter() - start
    timings["total_s"] = time.perf_counter() - started
    try:
        result = _record(storage, snap, round_id, out, str(payload.get("reason", "")))
        if ranking is not None:  # the rest of the pool behind the batch, by the model
            write_full_ranking(storage, project_id, ranking)
            save_ranking_meta(storage, project_id, ranking, number)  # what imports place by
        return result
    finally:
        if out.artifact_tmp is not None:
            out.artifact_tmp.unlink(missing_ok=True)
