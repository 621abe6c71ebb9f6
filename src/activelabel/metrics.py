"""Evaluation metrics: accuracy, macro-F1, calibration error, learning curves, labels saved.

``probs`` is (n, n_classes) predicted probabilities; single-label ``y_true`` holds column
indices into ``probs``; multi-label ``Y_true`` is an (n, n_classes) 0/1 indicator.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray
from sklearn.metrics import accuracy_score, f1_score

__all__ = [
    "accuracy",
    "area_under_learning_curve",
    "evaluate",
    "evaluate_multilabel",
    "expected_calibration_error",
    "labels_saved",
    "labels_to_target",
    "macro_f1",
]

FloatArray = NDArray[np.float64]


def _check_pair(y_true: ArrayLike, y_pred: ArrayLike) -> tuple[NDArray[Any], NDArray[Any]]:
    t, p = np.asarray(y_true), np.asarray(y_pred)
    if t.ndim != 1 or p.ndim != 1 or t.shape != p.shape:
        raise ValueError(
            f"y_true and y_pred must be 1-D of the same length, got shapes {t.shape} and {p.shape}"
        )
    if t.shape[0] == 0:
        raise ValueError("cannot score 0 predictions; evaluate on at least one item")
    return t, p


def accuracy(y_true: ArrayLike, y_pred: ArrayLike) -> float:
    """Fraction of the n items whose predicted label equals the true one; inputs (n,)."""
    t, p = _check_pair(y_true, y_pred)
    return float(accuracy_score(t, p))


def macro_f1(y_true: ArrayLike, y_pred: ArrayLike) -> float:
    """Unweighted mean of per-class F1 over the classes in ``y_true`` or ``y_pred``.

    A class with no true and no predicted item is not counted; undefined precision or recall
    (no predictions of a class, or no true items of it) counts as 0.
    """
    t, p = _check_pair(y_true, y_pred)
    return float(f1_score(t, p, average="macro", zero_division=0))


def _check_probs(probs: ArrayLike, name: str = "probs") -> FloatArray:
    arr = np.asarray(probs, dtype=np.float64)
    if arr.ndim != 2 or arr.shape[1] < 1:
        raise ValueError(f"{name} must have shape (n_items, n_classes), got shape {arr.shape}")
    if arr.shape[0] == 0:
        raise ValueError(f"{name} has 0 rows; evaluate on at least one item")
    if not np.isfinite(arr).all() or arr.min() < -1e-9 or arr.max() > 1 + 1e-9:
        raise ValueError(
            f"{name} must hold probabilities in [0, 1] (found [{np.nanmin(arr):g}, "
            f"{np.nanmax(arr):g}]); pass predict_proba output, not scores or logits"
        )
    return arr


def _check_targets(y_true: ArrayLike, n_rows: int, n_classes: int) -> NDArray[np.intp]:
    y = np.asarray(y_true)
    if y.ndim != 1 or y.shape[0] != n_rows:
        raise ValueError(
            f"y_true must be 1-D with one entry per probs row ({n_rows}), got shape {y.shape}"
        )
    if y.dtype.kind not in "iub" and not (y.dtype.kind == "f" and np.array_equal(y, np.round(y))):
        raise ValueError(
            f"y_true must hold column indices into probs (ints), got dtype {y.dtype}; "
            "map labels to indices with classes_.index(label)"
        )
    codes = y.astype(np.intp)
    if codes.size and (codes.min() < 0 or codes.max() >= n_classes):
        raise ValueError(
            f"y_true holds indices in [{codes.min()}, {codes.max()}] but probs has "
            f"{n_classes} columns; indices must be in [0, {n_classes - 1}]"
        )
    return codes


def expected_calibration_error(probs: ArrayLike, y_true: ArrayLike, n_bins: int = 15) -> float:
    """Expected calibration error of the top prediction (Guo et al. 2017), in [0, 1].

    The confidence ``max(probs[i])`` of each of the n items falls into one of ``n_bins``
    equal-width bins ``(b/n_bins, (b+1)/n_bins]`` (0 goes to the first); the result is
    ``sum_b (n_b / n) * |accuracy_b - mean confidence_b|``. ``probs`` (n, n_classes),
    ``y_true`` (n,) column indices. Ties in the argmax go to the lower column.
    """
    p = _check_probs(probs)
    y = _check_targets(y_true, p.shape[0], p.shape[1])
    confidence = np.clip(p.max(axis=1), 0.0, 1.0)
    correct = (np.argmax(p, axis=1) == y).astype(np.float64)
    return _binned_gap(confidence, correct, n_bins)


def _binned_gap(confidence: FloatArray, correct: FloatArray, n_bins: int) -> float:
    """Weighted |accuracy - confidence| over equal-width confidence bins; inputs (n,)."""
    if isinstance(n_bins, bool) or not isinstance(n_bins, int | np.integer) or n_bins < 1:
        raise ValueError(f"n_bins must be a positive integer, got {n_bins!r}")
    n_bins = int(n_bins)
    bins = np.clip(np.ceil(confidence * n_bins).astype(np.intp) - 1, 0, n_bins - 1)
    conf_sum = np.bincount(bins, weights=confidence, minlength=n_bins)
    hit_sum = np.bincount(bins, weights=correct, minlength=n_bins)
    gap = float(np.abs(hit_sum - conf_sum).sum() / confidence.shape[0])
    return min(max(gap, 0.0), 1.0)


def evaluate(probs: ArrayLike, y_true: ArrayLike, n_bins: int = 15) -> dict[str, float]:
    """``{"accuracy", "macro_f1", "ece"}`` of ``probs`` (n, n_classes) against ``y_true``
    (n,) column indices; the prediction is the argmax column."""
    p = _check_probs(probs)
    y = _check_targets(y_true, p.shape[0], p.shape[1])
    pred = np.argmax(p, axis=1)
    return {
        "accuracy": accuracy(y, pred),
        "macro_f1": macro_f1(y, pred),
        "ece": expected_calibration_error(p, y, n_bins=n_bins),
    }


def evaluate_multilabel(probs: ArrayLike, Y_true: ArrayLike, n_bins: int = 15) -> dict[str, float]:
    """Multi-label scores of ``probs`` (n, n_labels) against the 0/1 ``Y_true`` (n, n_labels).

    A label is predicted when its probability is above 0.5. ``accuracy``: subset accuracy
    (every label of the item right); ``label_f1``: micro F1 over the (item, label) pairs
    (0.0 when nothing is true or predicted), the measure where most items carry few labels or
    none (there a model that gives none scores the subset accuracy); ``macro_f1``: mean F1
    over the labels that are true or predicted somewhere (0.0 when none is); ``ece``:
    calibration error over all n * n_labels probabilities, each read as a binary prediction.
    """
    p = _check_probs(probs)
    Y = np.asarray(Y_true)
    if Y.shape != p.shape or not np.isin(Y, (0, 1)).all():
        raise ValueError(
            f"Y_true must be a 0/1 indicator with the shape of probs {p.shape}, got shape {Y.shape}"
        )
    Y = Y.astype(np.intp)
    pred = (p > 0.5).astype(np.intp)
    active = np.flatnonzero(Y.any(axis=0) | pred.any(axis=0))
    f1 = 0.0
    if active.size:
        f1 = float(f1_score(Y[:, active], pred[:, active], average="macro", zero_division=0))
    flat = p.reshape(-1)
    confidence = np.maximum(flat, 1.0 - flat)
    correct = ((flat > 0.5) == (Y.reshape(-1) == 1)).astype(np.float64)
    hits, true, given = int((pred & Y).sum()), int(Y.sum()), int(pred.sum())
    return {
        "accuracy": float(np.mean((pred == Y).all(axis=1))),
        "label_f1": 2.0 * hits / (true + given) if true + given else 0.0,
        "macro_f1": f1,
        "ece": _binned_gap(confidence, correct, n_bins),
    }


def _check_curve(
    n_labeled: Sequence[float] | ArrayLike, scores: Sequence[float] | ArrayLike
) -> tuple[FloatArray, FloatArray]:
    x = np.asarray(n_labeled, dtype=np.float64)
    s = np.asarray(scores, dtype=np.float64)
    if x.ndim != 1 or s.ndim != 1 or x.shape != s.shape:
        raise ValueError(
            f"n_labeled and scores must be 1-D of the same length, got {x.shape} and {s.shape}"
        )
    if x.shape[0] == 0:
        raise ValueError("a learning curve needs at least one point")
    if not (np.isfinite(x).all() and np.isfinite(s).all()):
        raise ValueError("n_labeled and scores must be finite")
    steps = np.diff(x)
    if (steps <= 0).any():
        at = int(np.argmax(steps <= 0))
        raise ValueError(
            f"n_labeled must be strictly increasing; point {at + 1} ({x[at + 1]:g}) follows "
            f"{x[at]:g}. Sort the points by n_labeled and merge repeats"
        )
    return x, s


def area_under_learning_curve(n_labeled: ArrayLike, scores: ArrayLike) -> float:
    """Trapezoid area under ``scores`` over ``n_labeled``, divided by the ``n_labeled`` span.

    The result is the curve's mean score (in [0, 1] for scores in [0, 1]); a single point
    gives its score. ``n_labeled`` (m,) strictly increasing, ``scores`` (m,).
    """
    x, s = _check_curve(n_labeled, scores)
    if x.shape[0] == 1:
        return float(s[0])
    area = float(np.sum(np.diff(x) * (s[1:] + s[:-1]) / 2.0))
    return area / float(x[-1] - x[0])


def labels_to_target(n_labeled: ArrayLike, scores: ArrayLike, target: float) -> int | None:
    """The first ``n_labeled`` at which the score reaches ``target`` (``score >= target``).

    A later dip below the target does not move the answer. ``None`` if the curve never gets
    there. ``n_labeled`` (m,) strictly increasing, ``scores`` (m,).
    """
    x, s = _check_curve(n_labeled, scores)
    hit = np.flatnonzero(s >= target)
    return int(x[hit[0]]) if hit.size else None


def labels_saved(n_strategy: float | None, n_baseline: float | None) -> float | None:
    """``1 - n_strategy / n_baseline``: the fraction of the baseline's labels a strategy saved.

    Negative when the strategy needed more labels; ``None`` when either count is ``None``
    (a run that never reached the target).
    """
    if n_strategy is None or n_baseline is None:
        return None
    if n_baseline <= 0:
        raise ValueError(f"n_baseline must be a positive number of labels, got {n_baseline}")
    if n_strategy < 0:
        raise ValueError(f"n_strategy must be a non-negative number of labels, got {n_strategy}")
    return 1.0 - float(n_strategy) / float(n_baseline)
