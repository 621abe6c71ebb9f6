"""What the web pages show beside the raw resources: labeling progress, the pool's confidence
under the active model, the nearest labeled items of an item, and per-round / per-annotator
figures for the dashboard.

Plain functions over a session and arrays; the routes in ``http/routes/insights.py`` only check roles.
Nothing here builds an n x n matrix: nearest neighbours are computed against the labeled rows in
chunks of :data:`NEIGHBOUR_CHUNK`.
"""

from __future__ import annotations

import functools
import json
import threading
from collections import Counter, OrderedDict, defaultdict
from collections.abc import Mapping, Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from ..drift import answer_confidence, max_confidence
from ..estimates import ACCURACY, MEASURE_NAMES, TASK_MEASURES
from ..pace import Forecast, counts_items, forecast_labels
from ..store import (
    PENDING_STATUSES,
    InvalidInput,
    Storage,
    count_labeled_items,
    current_labels,
    held_items,
    is_head,
    label_watermark,
    last_finished_round,
    settings_of,
)
from ..store.files import atomic_write
from ..store.models import (
    Annotation,
    Item,
    Project,
    Round,
    RoundSelection,
    RoundStatus,
    User,
    utcnow,
)
from .consensus import consensus_method, project_consensus
from .pace import project_pace, recent_round_seconds, retrain_after, suggested_prefetch
from .rounds import labels_since_round
from .stats import own_counts

__all__ = [
    "NEIGHBOUR_CHUNK",
    "annotator_throughput",
    "confidence",
    "forecast",
    "histogram",
    "label_counts",
    "labeled_rows",
    "learning_curve",
    "max_confidence",
    "nearest_rows",
    "outlook",
    "progress",
    "round_effort",
    "task_gain",
    "unlabeled_pool_rows",
]

#: Labeled rows compared with the query item per pass (bounds the temporaries).
NEIGHBOUR_CHUNK = 8192


def _batch_progress(session: Session, project_id: int, rnd: Round | None) -> dict[str, int]:
    """Items the round selected, and how many of them carry a current label now."""
    if rnd is None:
        return {"selected": 0, "labeled": 0}
    selected = session.execute(select(func.count()).select_from(RoundSelection).where(
        RoundSelection.round_id == rnd.id)).scalar_one()
    labeled = session.execute(
        select(func.count(func.distinct(Annotation.item_id)))
        .join(RoundSelection, RoundSelection.item_id == Annotation.item_id)
        .where(RoundSelection.round_id == rnd.id, Annotation.project_id == project_id,
               Annotation.labels.is_not(None), is_head())).scalar_one()
    return {"selected": int(selected), "labeled": int(labeled)}


def _own_counts(session: Session, project_id: int, user_id: int) -> dict[str, Any]:
    return own_counts(session, project_id, user_id)


def task_gain(gain: Mapping[str, Any] | None, task: str) -> dict[str, Any] | None:
    """A round's gain with the task's score named: rounds from before the gain recorded its
    ``measure`` measured accuracy, which is the score of a classification project and not
    of a multi-label or span one (their ``score`` and ``per_100_labels`` are then None)."""
    if gain is None or "measure" in gain:
        return None if gain is None else dict(gain)
    measure = TASK_MEASURES[task]
    if measure == ACCURACY:
        return {**gain, "measure": measure, "score": gain.get("accuracy")}
    return {**gain, "measure": measure, "score": None, "per_100_labels": None}


def progress(session: Session, project: Project, user_id: int) -> dict[str, Any]:
    """Where labeling stands for the caller: the current batch, labels until the next model,
    the caller's own count and speed, and what the last round gained."""
    labeled = count_labeled_items(session, project.id)
    last = last_finished_round(session, project.id)
    every = retrain_after(project, last)
    since = labels_since_round(session, last, project.id)
    pending = session.execute(select(Round.number).where(
        Round.project_id == project.id, Round.status.in_(PENDING_STATUSES))
        .order_by(Round.number).limit(1)).scalar_one_or_none()
    metrics = (last.metrics or {}) if last is not None else {}
    items = session.execute(select(func.count()).select_from(Item).where(
        Item.project_id == project.id)).scalar_one()
    return {
        "project_id": project.id,
        "items": int(items),
        "labeled": labeled,
        "round": None if last is None else last.number,
        "batch": _batch_progress(session, project.id, last),
        "retrain_every_labels": every,
        "labels_since_round": max(since, 0),
        "labels_to_next_round": max(every - since, 0),
        "round_pending": pending,
        "me": {**_own_counts(session, project.id, user_id),
               "holding": held_items(session, project.id, user_id)},
        "last_round": None if last is None else {
            "number": last.number, "accuracy": metrics.get("accuracy"),
            "macro_f1": metrics.get("macro_f1"), "measure": TASK_MEASURES[project.task],
            "score": metrics.get(TASK_MEASURES[project.task]),
            "gain": task_gain(last.gain, project.task),
            "finished_at": last.finished_at},
    }


# ---- confidence of the pool ------------------------------------------------------------------


def histogram(values: NDArray[np.float64], bins: int) -> list[int]:
    """Counts of ``values`` in ``bins`` equal bins over [0, 1] (1.0 falls in the last one)."""
    counts, _ = np.histogram(np.clip(values, 0.0, 1.0), bins=bins, range=(0.0, 1.0))
    return [int(c) for c in counts]


def unlabeled_pool_rows(session: Session, project_id: int) -> NDArray[np.intp]:
    """Array-store rows of pool items without a current label."""
    labeled = Item.n_labels > 0
    rows = session.execute(select(Item.row).where(
        Item.project_id == project_id, Item.split == "pool", ~labeled)).scalars().all()
    return np.asarray(sorted(rows), dtype=np.intp)


def _summary(probs: NDArray[Any] | None, rows: NDArray[np.intp], task: str,
             n_classes: int, bins: int) -> dict[str, Any] | None:
    if probs is None or probs.ndim != 2 or probs.shape[1] != n_classes:
        return None
    rows = rows[rows < probs.shape[0]]
    conf = answer_confidence(probs[rows], task) if rows.size else np.zeros(0)
    return {"counts": histogram(conf, bins), "n": int(conf.shape[0]),
            "mean": None if conf.size == 0 else float(conf.mean()),
            "median": None if conf.size == 0 else float(np.median(conf))}


def confidence(project: Project, rows: NDArray[np.intp], probs: NDArray[Any] | None,
               previous: NDArray[Any] | None, bins: int) -> dict[str, Any]:
    """Histograms of the confidence over the unlabeled pool ``rows``: under the active model
    (``probs``) and under the model before it (``previous``), or None where missing. A span
    model's ``probs`` are ``[P(its tagging), 1 - P]`` (:mod:`.span_rounds`)."""
    n_classes = 2 if project.task == "spans" else len(project.labels)
    edges = [round(i / bins, 6) for i in range(bins + 1)]
    return {"bins": bins, "edges": edges,
            "current": _summary(probs, rows, project.task, n_classes, bins),
            "previous": _summary(previous, rows, project.task, n_classes, bins)}


# ---- related examples ------------------------------------------------------------------------


def nearest_rows(embeddings: NDArray[Any], query_row: int, candidates: NDArray[np.intp],
                 k: int) -> list[tuple[int, float]]:
    """The ``k`` candidate rows most similar (cosine) to ``query_row``, best first, as
    (row, similarity). ``embeddings`` is (n_items, n_features); the query row itself is never
    returned. Candidates are compared in chunks of :data:`NEIGHBOUR_CHUNK`."""
    candidates = candidates[(candidates != query_row) & (candidates < embeddings.shape[0])]
    if k < 1 or candidates.size == 0:
        return []
    query = np.asarray(embeddings[query_row], dtype=np.float64)
    query = query / (np.linalg.norm(query) or 1.0)
    best_rows: list[NDArray[np.intp]] = []
    best_sims: list[NDArray[np.float64]] = []
    for start in range(0, candidates.size, NEIGHBOUR_CHUNK):
        chunk = candidates[start:start + NEIGHBOUR_CHUNK]
        block = np.asarray(embeddings[chunk], dtype=np.float64)
        norms = np.linalg.norm(block, axis=1)
        sims = block @ query / np.where(norms > 0, norms, 1.0)
        keep = np.argsort(-sims, kind="stable")[:k]
        best_rows.append(chunk[keep])
        best_sims.append(sims[keep])
    rows, sims = np.concatenate(best_rows), np.concatenate(best_sims)
    order = np.argsort(-sims, kind="stable")[:k]
    return [(int(rows[i]), float(sims[i])) for i in order]


class _LabeledCache:
    """:func:`labeled_rows` per project, until a label changes (every change appends a
    revision, so the newest revision id says whether one did) or the consensus method or the
    label set does: the labeling page asks for related items of every item it shows."""

    def __init__(self, size: int = 16) -> None:
        self._lock = threading.Lock()
        self._size = size
        self._data: OrderedDict[int, tuple[Any, dict[int, dict[str, Any]]]] = OrderedDict()

    def get(self, project_id: int, key: Any) -> dict[int, dict[str, Any]] | None:
        with self._lock:
            hit = self._data.get(project_id)
            if hit is None or hit[0] != key:
                return None
            self._data.move_to_end(project_id)
            return hit[1]

    def put(self, project_id: int, key: Any, value: dict[int, dict[str, Any]]) -> None:
        with self._lock:
            self._data[project_id] = (key, value)
            self._data.move_to_end(project_id)
            while len(self._data) > self._size:
                self._data.popitem(last=False)


_labeled = _LabeledCache()


def labeled_rows(session: Session, project: Project) -> dict[int, dict[str, Any]]:
    """Row -> {item_id, external_id, label} of every labeled item; ``label`` is the consensus
    by the project's method (:func:`.consensus.project_consensus`). Kept until the labels
    change (the caller must not change the answer)."""
    key = (label_watermark(session, project.id), tuple(map(str, project.labels)),
           consensus_method(project.task, project.settings or {}))
    cached = _labeled.get(project.id, key)
    if cached is not None:
        return cached
    found = current_labels(session, project.id)
    agreed = project_consensus(project, found)
    rows = {cur.row: {"item_id": cur.item_id, "external_id": cur.external_id,
                      "label": agreed.of(cur.item_id)} for cur in found}
    _labeled.put(project.id, key, rows)
    return rows


# ---- dashboard -------------------------------------------------------------------------------


def round_effort(session: Session, project_id: int) -> dict[int, dict[str, Any]]:
    """Round id -> labels submitted while its ranking was served and the labeling time spent
    (sum of submitted durations, seconds)."""
    stmt = (select(Annotation.round_id, func.count(), func.sum(Annotation.duration_ms))
            .where(Annotation.project_id == project_id, Annotation.kind == "label",
                   Annotation.round_id.is_not(None))
            .group_by(Annotation.round_id))
    return {int(rid or 0): {"labels": int(n),
                            "seconds": None if ms is None else float(ms) / 1000.0}
            for rid, n, ms in session.execute(stmt)}


def annotator_throughput(session: Session, project_id: int) -> list[dict[str, Any]]:
    """Per annotator: current labels, labels in the last hour, median seconds per label."""
    hour_ago = utcnow() - timedelta(hours=1)
    stmt = (select(User.username, Annotation.labels, Annotation.kind, Annotation.duration_ms,
                   Annotation.created_at)
            .join(User, User.id == Annotation.annotator_id)
            .where(Annotation.project_id == project_id, Annotation.labels.is_not(None),
                   is_head()))
    current: Counter[str] = Counter()
    last_hour: Counter[str] = Counter()
    durations: dict[str, list[int]] = defaultdict(list)
    for name, _labels, kind, ms, created in session.execute(stmt):
        current[name] += 1
        if created is not None and created >= hour_ago:
            last_hour[name] += 1
        if kind == "label" and ms is not None:
            durations[name].append(int(ms))
    return [{"username": name, "labels": current[name], "last_hour": last_hour[name],
             "median_seconds": (float(np.median(durations[name])) / 1000.0
                                if durations[name] else None)}
            for name in sorted(current)]


def label_counts(session: Session, project: Project) -> dict[str, int]:
    """How often each label is the consensus of a labeled item (label -> items); in a span
    project, how many labeled sentences hold an entity of each type."""
    counts: Counter[str] = Counter()
    for info in labeled_rows(session, project).values():
        label = info["label"]
        if project.task == "spans":
            counts.update({str(span["label"]) for span in label or []})
            continue
        for one in (label if isinstance(label, list) else [label]):
            counts[str(one)] += 1
    return {str(label): counts.get(str(label), 0) for label in project.labels}


# ---- a simulation's random-sampling estimate, beside the project's learning curve ------------

#: Points of the random-sampling curve kept from an attached simulation.
MAX_CURVE_POINTS = 10_000


def simulation_path(storage: Storage, project_id: int) -> Path:
    return storage.location.data_dir / "simulations" / f"project-{int(project_id)}.json"


def _random_points(results: Mapping[str, Any]) -> list[dict[str, float | None]]:
    """The random strategy's curve of an ``activelabel simulate`` results.json, checked."""
    curves = results.get("curves") if isinstance(results, Mapping) else None
    curve = curves.get("random") if isinstance(curves, Mapping) else None
    if not isinstance(curve, list) or not curve:
        raise InvalidInput("the simulation has no random-sampling curve: run it with "
                           "--strategies random,... so it can be compared with the project")
    points = []
    for point in curve[:MAX_CURVE_POINTS]:
        try:
            n, acc = int(point["n_labeled"]), float(point["accuracy"])
            f1 = point.get("macro_f1")
            points.append({"n_labeled": n, "accuracy": acc,
                           "macro_f1": None if f1 is None else float(f1)})
        except (KeyError, TypeError, ValueError):
            raise InvalidInput("the simulation's random curve needs points {n_labeled, "
                               "accuracy[, macro_f1]}: pass the results.json that "
                               "`activelabel simulate` wrote") from None
    return sorted(points, key=lambda p: p["n_labeled"] or 0)


def attach_simulation(storage: Storage, project_id: int, results: Mapping[str, Any]) -> Path:
    """Keep the random-sampling curve of a simulation for the project's dashboard."""
    points = _random_points(results)
    path = simulation_path(storage, project_id)
    body = json.dumps({"dataset": results.get("dataset"), "random": points}).encode()
    return atomic_write(path, lambda handle: handle.write(body))


def random_estimate(storage: Storage, project_id: int) -> list[dict[str, Any]] | None:
    """The attached random-sampling curve, or None when no simulation was attached."""
    path = simulation_path(storage, project_id)
    try:
        return list(json.loads(path.read_text())["random"])
    except (FileNotFoundError, ValueError, KeyError, TypeError):
        return None


def interpolate(points: Sequence[Mapping[str, Any]], n_labeled: float, key: str) -> float | None:
    """``key`` of the curve at ``n_labeled`` (linear between points; None outside the curve)."""
    xs = [float(p["n_labeled"]) for p in points if p.get(key) is not None]
    ys = [float(p[key]) for p in points if p.get(key) is not None]
    if not xs or not xs[0] <= n_labeled <= xs[-1]:
        return None
    return float(np.interp(n_labeled, xs, ys))


# ---- pace, stopping verdicts and the forecast ------------------------------------------------


def _about(n: float) -> str:
    """``n`` to two significant figures with thousands separators: 1,234 -> 1,200."""
    if n < 10:
        return str(max(round(n), 0))
    digits = len(str(int(n))) - 2
    return f"{int(round(n, -digits)):,}"


def _duration(minutes: float) -> str:
    if minutes < 90:
        return f"{max(round(minutes), 1)} min"
    if minutes < 48 * 60:
        return f"{minutes / 60:.0f} h" if minutes >= 600 else f"{minutes / 60:.1f} h"
    return f"{minutes / 1440:.0f} days"


def learning_curve(session: Session, project_id: int,
                   measure: str = ACCURACY) -> list[tuple[int, float]]:
    """(training labels, holdout ``measure``: the task's score) of every finished round that
    has both."""
    stmt = (select(Round.metrics).where(Round.project_id == project_id,
                                        Round.status == RoundStatus.DONE)
            .order_by(Round.number))
    points = []
    for metrics in session.execute(stmt).scalars():
        n, acc = (metrics or {}).get("n_train"), (metrics or {}).get(measure)
        if isinstance(n, int) and n > 0 and isinstance(acc, int | float):
            points.append((n, float(acc)))
    return points


@functools.lru_cache(maxsize=256)
def _forecast_of(points: tuple[tuple[int, float], ...], target: float,
                 measure: str = "accuracy") -> Forecast:
    """:func:`forecast_labels` of the learning curve, kept while the curve is the same: the
    outlook is asked after every few labels by every annotator's page, the curve changes once a
    round (a forecast refits its curve hundreds of times, ~15-40 ms)."""
    return forecast_labels([p[0] for p in points], [p[1] for p in points], target,
                           measure=measure)


def forecast(points: Sequence[tuple[int, float]], target: float | None,
             items_per_minute: float | None, measure: str = ACCURACY, *,
             labels_per_item: float = 1.0) -> dict[str, Any]:
    """Labels (and at the team's pace, time) to reach ``target`` of ``measure`` (the
    points' score: labeled items), said plainly; ``items_per_minute`` is the team's pace in
    items (with overlap, fewer than its labels: ``labels_per_item`` an item)."""
    name = MEASURE_NAMES.get(measure, measure)
    out: dict[str, Any] = {"target": target, "labels_now": points[-1][0] if points else 0,
                           "labels": None, "more": None, "low": None, "high": None,
                           "minutes": None, "reached": False}
    if target is None:
        return {**out, "text": "no target accuracy set: set target_accuracy to forecast"}
    fc = _forecast_of(tuple((int(n), float(a)) for n, a in points), float(target), name)
    now = out["labels_now"]
    out.update(labels=fc.labels, low=fc.low, high=fc.high, reached=fc.reached)
    if fc.reached:
        return {**out, "more": 0, "text": f"target {name} {target:g} reached"}
    if fc.labels is None:
        return {**out, "text": fc.reason}
    more = max(fc.labels - now, 0)
    low = None if fc.low is None else max(fc.low - now, 0)
    high = None if fc.high is None else max(fc.high - now, 0)
    span = f"{_about(low or 0)}-{_about(high)}" if high is not None else \
        f"{_about(low or 0)} or far more"
    text = (f"about {_about(more)} more labels ({span}) to reach {name} {target:g}"
            if not counts_items(labels_per_item) else
            f"about {_about(more)} more labeled items ({span}; {labels_per_item:.1f} labels "
            f"an item) to reach {name} {target:g}")
    if items_per_minute:
        out["minutes"] = more / items_per_minute
        text += f", about {_duration(out['minutes'])} at the team's pace"
    return {**out, "more": more, "low_more": low, "high_more": high, "text": text}


def outlook(session: Session, project: Project, user_id: int | None = None) -> dict[str, Any]:
    """The team's pace and the cadence it sets, the last round's stopping verdicts, and the
    forecast to the target accuracy (what the dashboard, the labeling page and ``activelabel
    status`` show)."""
    settings = settings_of(project.settings)
    measure = TASK_MEASURES[project.task]  # what the target names
    last = last_finished_round(session, project.id)
    pace = project_pace(session, project.id)
    plan = dict(((last.metrics or {}).get("pace") or {}) if last is not None else {})
    metrics = (last.metrics or {}) if last is not None else {}
    return {
        "project_id": project.id,
        "round": None if last is None else last.number,
        "pace": {
            "labels_per_minute": round(pace.labels_per_minute, 3),
            "labels_per_item": round(pace.labels_per_item, 3),
            "counts": "items" if counts_items(pace.labels_per_item) else "labels",
            "active_annotators": pace.active_annotators,
            "round_seconds": recent_round_seconds(session, project.id),
            "batch_size": plan.get("batch_size") or (last.batch_size if last else None),
            "batch_auto": settings.batch_size == "auto",
            "retrain_after": retrain_after(project, last),
            "cadence_auto": settings.retrain_every_labels == "auto",
            "labels_behind": max(labels_since_round(session, last, project.id), 0),
            "max_model_lag": settings.max_model_lag,
            "plan": plan.get("reason"),
        },
        "verdicts": [{"rule": str(d.get("rule")), "stop": bool(d.get("stop")),
                      "reason": str(d.get("reason"))} for d in metrics.get("stopping") or []],
        "stop": bool(metrics.get("stop")),
        # a span project picks by its span strategy (rounds before it was recorded: "auto")
        "strategy": settings.span_strategy if project.task == "spans" else (
            (metrics.get("schedule") or {}).get("strategy")
            or (last.strategy if last is not None else settings.strategy)),
        "forecast": forecast(learning_curve(session, project.id, measure),
                             settings.target_accuracy, pace.items_per_minute or None, measure,
                             labels_per_item=pace.labels_per_item),
        "prefetch": None if user_id is None else suggested_prefetch(session, project.id,
                                                                      user_id),
    }
