"""Estimates from audit draws: items drawn uniformly at random from the unlabeled pool.

The model's accuracy on the pool is estimated by its accuracy on the audit labels (none of
them trains it), with a Wilson score interval; a model trained on the audit labels alone, at
growing counts, traces what random sampling buys (:func:`random_sampling_curve`), and
:func:`labels_needed` reads off how many random labels reach a given accuracy.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

__all__ = [
    "ACCURACY",
    "CURVE_MEASURE",
    "ENTITY_F1",
    "F1_MIN_ENTITIES",
    "LABEL_F1",
    "MAX_EXTRAPOLATION",
    "MEASURE_NAMES",
    "MIN_CURVE_LABELS",
    "TASK_MEASURES",
    "AccuracyEstimate",
    "accuracy_estimate",
    "audit_curve_counts",
    "curve_bounds",
    "curve_counts",
    "curve_draws",
    "f1_estimate",
    "label_set_counts",
    "labels_needed",
    "micro_f1",
    "random_labels",
    "random_sampling_curve",
    "target_status",
    "wilson_interval",
]


def _z(confidence: float) -> float:
    from scipy.stats import norm

    return float(norm.ppf(0.5 + confidence / 2.0))


def wilson_interval(successes: int, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """Wilson score interval of a binomial proportion (``(0, 1)`` when ``n`` is 0)."""
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    if n < 0 or not 0 <= successes <= n:
        raise ValueError(f"need 0 <= successes <= n, got {successes} of {n}")
    if n == 0:
        return 0.0, 1.0
    z = _z(confidence)
    p = successes / n
    denom = 1.0 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    low = 0.0 if successes == 0 else max(0.0, min(p, centre - half))
    high = 1.0 if successes == n else min(1.0, max(p, centre + half))
    return low, high


@dataclass(frozen=True)
class AccuracyEstimate:
    """Accuracy on ``n`` random draws, with its ``confidence`` interval [low, high]."""

    accuracy: float | None
    low: float
    high: float
    n: int
    confidence: float


def accuracy_estimate(correct: ArrayLike, confidence: float = 0.95) -> AccuracyEstimate:
    """The share of ``correct`` (booleans, one per audit label) and its Wilson interval."""
    hits = np.asarray(correct, dtype=bool).ravel()
    n = int(hits.shape[0])
    k = int(hits.sum())
    low, high = wilson_interval(k, n, confidence)
    return AccuracyEstimate(k / n if n else None, low, high, n, confidence)


def micro_f1(hit: float, true: float, pred: float) -> float:
    """Micro F1 from entity counts: ``2 * hit / (true + pred)``; 0.0 when there is nothing to
    find and nothing is found (as :func:`activelabel.spans.entity_scores` and seqeval)."""
    return 2.0 * hit / (true + pred) if true + pred else 0.0


#: Bootstrap resamples of :func:`f1_estimate`.
F1_RESAMPLES = 2000
#: Entities the audit sentences must hold before :func:`f1_estimate` gives an F1: below, a
#: handful of sentences make an interval that looks sure and is not (a bootstrap of 3 right
#: sentences is [1, 1]).
F1_MIN_ENTITIES = 20
#: Resampled values held at once (memory stays linear in the sentences).
_F1_CHUNK_VALUES = 1_000_000


def f1_estimate(counts: ArrayLike, confidence: float = 0.95, *, seed: int = 0,
                min_entities: int = F1_MIN_ENTITIES) -> AccuracyEstimate:
    """Micro F1 over ``n`` audit sentences from their ``(n, 3)`` counts (entities found right,
    true, predicted), with a percentile bootstrap interval over the sentences (seeded, so the
    same labels give the same interval). F1 is a ratio, not a share: the Wilson interval does
    not apply, the bootstrap does. No F1 (None, interval [0, 1]) while the sentences hold
    fewer than ``min_entities`` true entities."""
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    c = np.asarray(counts, dtype=np.float64).reshape(-1, 3)
    n = int(c.shape[0])
    if n == 0 or c[:, 1].sum() < max(1, min_entities):
        return AccuracyEstimate(None, 0.0, 1.0, n, confidence)
    point = micro_f1(*c.sum(axis=0))
    rng = np.random.default_rng(seed)
    chunk = max(1, _F1_CHUNK_VALUES // (3 * n))
    scores = []
    for start in range(0, F1_RESAMPLES, chunk):
        size = min(chunk, F1_RESAMPLES - start)
        sums = c[rng.integers(0, n, size=(size, n))].sum(axis=1)  # (size, 3)
        denom = sums[:, 1] + sums[:, 2]
        scores.append(np.where(denom > 0, 2.0 * sums[:, 0] / np.maximum(denom, 1e-300), 0.0))
    low, high = np.quantile(np.concatenate(scores), [(1 - confidence) / 2, (1 + confidence) / 2])
    return AccuracyEstimate(point, float(min(low, point)), float(max(high, point)), n,
                            confidence)


def curve_counts(n: int, *, smallest: int = 10, held_out: int = 10) -> list[int]:
    """Label counts for the random-sampling curve: doubling from ``smallest`` while at least
    ``held_out`` labels stay out to evaluate on."""
    counts: list[int] = []
    m = smallest
    while m <= n - held_out:
        counts.append(m)
        m *= 2
    if counts and counts[-1] < n - held_out:
        counts.append(n - held_out)
    return counts


#: Audit labels needed before a round traces the random-sampling curve.
MIN_CURVE_LABELS = 20


def audit_curve_counts(n: int) -> list[int]:
    """The training counts of the random-sampling curve over ``n`` labeled audit draws (the
    first ``m`` train, the rest score): none below :data:`MIN_CURVE_LABELS`, and a fifth of
    the draws (at least 10) always left to score on."""
    return [] if n < MIN_CURVE_LABELS else curve_counts(n, held_out=max(10, n // 5))


def label_set_counts(predicted: Sequence[Any], truth: Sequence[Any]) -> np.ndarray[Any, Any]:
    """``(n, 3)`` counts of multi-label answers for :func:`f1_estimate` and
    :func:`micro_f1`: per item, the labels both give, the true labels, the predicted ones."""
    out = np.zeros((len(truth), 3), dtype=np.float64)
    for i, (p, t) in enumerate(zip(predicted, truth, strict=True)):
        got, want = set(map(str, p)), set(map(str, t))
        out[i] = (len(got & want), len(want), len(got))
    return out


#: What an audit score and a random-sampling curve measure: a classifier's accuracy, a
#: multi-label model's label F1 (micro over the items' labels), a span model's entity F1;
#: a round records its curve's measure under ``CURVE_MEASURE``.
ACCURACY, LABEL_F1, ENTITY_F1 = "accuracy", "label_f1", "entity_f1"
CURVE_MEASURE = "random_curve_measure"
#: A task's score: what the payoff measures, and what ``target_accuracy`` and its forecast
#: read on the holdout (a multi-label holdout's exact label sets and a span holdout's tokens
#: are right for a model that gives nothing wherever most items hold nothing).
TASK_MEASURES = {"classification": ACCURACY, "multilabel": LABEL_F1, "spans": ENTITY_F1}
#: Each measure as a sentence names it.
MEASURE_NAMES = {ACCURACY: "accuracy", LABEL_F1: "label F1", ENTITY_F1: "entity F1"}


def _answer_key(answer: Any) -> Any:
    """What two answers must share to be the same: the label, or a multi-label answer's set."""
    return tuple(sorted(map(str, answer))) if isinstance(answer, list | tuple) else answer


def random_sampling_curve(X: Any, y: Sequence[Any], counts: Sequence[int],
                          make_model: Callable[[], Any], *,
                          unlabeled: Any = None) -> list[tuple[int, float]]:
    """``(m, score)`` for each ``m`` in ``counts``: a model trained on the first ``m``
    random draws (``X``, ``y`` in draw order), scored on the draws after them: accuracy, or
    for multi-label answers (lists) micro F1 over the labels, as the payoff measures them (a
    share of label sets given exactly rewards a model that gives none where most items have
    none). A prefix holding one answer predicts that answer. ``unlabeled``: passed to each
    fit (a :class:`~activelabel.models.Classifier` self-training on it)."""
    answers = list(y)
    keys = [_answer_key(a) for a in answers]
    multilabel = any(isinstance(a, list | tuple) for a in answers)
    out: list[tuple[int, float]] = []
    for m in counts:
        if not 0 < m < len(answers):
            continue
        if len(set(keys[:m])) < 2:
            predicted = [keys[0]] * (len(answers) - m)
        else:
            model = make_model()
            extra = {} if unlabeled is None else {"unlabeled": unlabeled}
            model.fit(X[:m], answers[:m], **extra)
            predicted = [_answer_key(p) for p in model.predict(X[m:])]
        if multilabel:
            score = micro_f1(*label_set_counts(predicted, keys[m:]).sum(axis=0))
        else:
            score = float(np.mean([p == k for p, k in zip(predicted, keys[m:], strict=True)]))
        out.append((int(m), float(score)))
    return out


#: Farthest a power law fitted on the random-sampling curve is read: this many times the curve's
#: last labels (two more doublings of its counts). Beyond, a fit on a few noisy points says
#: nothing (a 151-class project's first 41 audit labels "needed" 969,158 labels).
MAX_EXTRAPOLATION = 4.0


def labels_needed(curve: Sequence[tuple[int, float]], accuracy: float, *,
                  reach: float = MAX_EXTRAPOLATION) -> tuple[float, bool] | None:
    """Random labels needed to reach ``accuracy`` on the curve, and whether that is an
    extrapolation. Within the curve: linear interpolation on its running maximum. Beyond it:
    a power law of the error rate, ``err(m) = a * m ** -b``, fitted in log-log space to the
    curve's points, and never fewer than the curve's last labels; None when it does not
    decrease, or when it would need more than ``reach`` times the curve's last labels (the
    curve cannot tell yet). Never decreases as ``accuracy`` grows."""
    points = sorted((int(m), float(a)) for m, a in curve)
    if not points:
        return None
    ms = np.asarray([m for m, _ in points], dtype=np.float64)
    acc = np.maximum.accumulate(np.asarray([a for _, a in points], dtype=np.float64))
    if accuracy <= acc[0]:
        return float(ms[0]), False
    if accuracy <= acc[-1]:
        j = int(np.searchsorted(acc, accuracy, side="left"))
        lo, hi = j - 1, j
        if acc[hi] == acc[lo]:
            return float(ms[hi]), False
        t = (accuracy - acc[lo]) / (acc[hi] - acc[lo])
        return float(ms[lo] + t * (ms[hi] - ms[lo])), False
    err = 1.0 - np.asarray([a for _, a in points], dtype=np.float64)
    keep = err > 0
    if keep.sum() < 2 or accuracy >= 1.0:
        return None
    slope, intercept = np.polyfit(np.log(ms[keep]), np.log(err[keep]), 1)
    if slope >= 0:
        return None
    log_m = (math.log(1.0 - accuracy) - intercept) / slope  # in logs: a flat fit overflows
    if log_m > math.log(reach * ms[-1]):
        return None
    # above the curve's best accuracy needs at least its last labels, however the fit runs
    return max(math.exp(log_m), float(ms[-1])), True


def curve_draws(curve: Sequence[tuple[int, float]]) -> int | None:
    """The labeled audit draws a random-sampling curve was traced from: the fewest whose
    :func:`audit_curve_counts` end at the curve's last point (two counts of draws can end
    there; the fewer leave fewer to score, so the wider intervals). None for a curve no count
    of draws gives."""
    if not curve:
        return None
    last = int(curve[-1][0])
    # its last count is n - max(10, n // 5): n = last + 10 below 50 draws, else about 5/4 of
    # it (a few candidates, not a search: the payoff reads it on every dashboard poll)
    near = 5 * last // 4
    for n in [last + 10, *range(max(near - 2, 50), near + 3)]:
        if audit_curve_counts(n)[-1:] == [last]:
            return n
    return None


def curve_bounds(curve: Sequence[tuple[int, float]], draws: int,
                 confidence: float = 0.95) -> tuple[list[tuple[int, float]],
                                                    list[tuple[int, float]]]:
    """The curve at its points' interval ends, ``(low curve, high curve)``: the point at
    ``m`` labels was scored on the ``draws - m`` draws after them, a Wilson interval over
    that many (for F1, read as a share of them: an approximation)."""
    low: list[tuple[int, float]] = []
    high: list[tuple[int, float]] = []
    for m, score in curve:
        n = max(int(draws) - int(m), 0)
        lo, hi = wilson_interval(min(max(round(float(score) * n), 0), n), n, confidence)
        low.append((int(m), lo))
        high.append((int(m), hi))
    return low, high


def random_labels(curve: Sequence[tuple[int, float]], accuracy: float, low: float,
                  high: float, *, draws: int | None = None
                  ) -> tuple[tuple[float, bool], list[float | None]] | None:
    """What the payoff says random sampling would have needed: ``((labels, extrapolated),
    [fewest labels, most labels])`` for an accuracy and its interval, or None when the
    curve cannot tell. With ``draws`` (the labeled audit draws the curve was traced from,
    :func:`curve_draws`) the range holds the curve's own error too: its points were each
    scored on a few draws (23 audit labels: points scored on 13 and 10 draws, all right, read
    "10 to 10" random labels for a model at 100% in 85.7-100%). The fewest is read on the
    curve's high ends at the interval's low end, the most on its low ends at the high end.
    An extrapolated count is given only when the interval's high end is within the curve's
    reach too: past the curve, a fit on a few noisy points read at one accuracy of an
    unbounded range is a figure the data does not back (a served ag_news run, 33 audit
    labels, 93.9% in 80.4-98.3%: "about 64" random labels beside 603 spent, where random
    sampling's measured curve on ag_news is at 0.83 with 1,000 labels)."""
    needed = labels_needed(curve, accuracy)
    if needed is None:
        return None
    worse, better = curve_bounds(curve, draws) if draws is not None else (curve, curve)
    ends = [labels_needed(better, low), labels_needed(worse, high)]
    if needed[1] and ends[1] is None:
        return None
    return needed, [None if end is None else end[0] for end in ends]


#: The target read against the audit estimate: the whole interval at or above it, the
#: estimate at or above it (not its low end), the estimate below it (not the high end), the
#: whole interval below it.
TARGET_STATUSES = ("reached", "reached_by_estimate", "below_by_estimate", "below")


def target_status(accuracy: float, low: float, high: float, target: float) -> str:
    """Where the audit estimate and its interval stand against ``target`` (one of
    :data:`TARGET_STATUSES`): a target reached by the estimate alone is not said to be
    reached while the interval's low end is under it."""
    if low >= target:
        return "reached"
    if accuracy >= target:
        return "reached_by_estimate"
    return "below_by_estimate" if high >= target else "below"
