"""Uncertainty sampling: least confidence, margin (breaking ties) and entropy.

Each scores every pool item in one chunked pass over ``probs`` (validation fused into the same
pass while the chunk is in cache), then keeps the top ``k`` with ``argpartition``: O(n * classes)
time, O(n) extra memory.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from ._base import (
    FloatArray,
    QueryStrategy,
    Selection,
    as_class_weights,
    as_probs,
    check_k,
    chunks,
    tie_rng,
    top_k,
    weight_by_class_value,
)

__all__ = [
    "Entropy",
    "LeastConfidence",
    "Margin",
    "UncertaintySampling",
    "scores_of_checked",
    "uncertainty_scores",
]

ScoreFn = Callable[[NDArray[np.floating[Any]]], NDArray[np.floating[Any]]]


# Each measure takes a chunk transposed to (n_classes, rows), C-contiguous: reductions over
# classes then run as vectorised row-wise operations instead of slow short-axis reductions.
def _least_confidence(pt: NDArray[np.floating[Any]]) -> NDArray[np.floating[Any]]:
    return 1.0 - pt.max(axis=0)


def _margin(pt: NDArray[np.floating[Any]]) -> NDArray[np.floating[Any]]:
    first = pt[0].copy()
    second = np.zeros_like(first)
    for row in pt[1:]:
        np.maximum(second, np.minimum(first, row), out=second)
        np.maximum(first, row, out=first)
    first -= second
    return 1.0 - first


def _entropy(pt: NDArray[np.floating[Any]]) -> NDArray[np.floating[Any]]:
    logs = np.log(np.maximum(pt, np.finfo(pt.dtype).tiny))
    logs *= pt
    return -logs.sum(axis=0) / np.log(pt.shape[0])


# Multi-label probabilities are independent per label: each column is a binary problem whose
# uncertainty is averaged over the labels.
def _least_confidence_ml(pt: NDArray[np.floating[Any]]) -> NDArray[np.floating[Any]]:
    return np.minimum(pt, 1.0 - pt).mean(axis=0)


def _margin_ml(pt: NDArray[np.floating[Any]]) -> NDArray[np.floating[Any]]:
    return 1.0 - np.abs(2.0 * pt - 1.0).mean(axis=0)


def _entropy_ml(pt: NDArray[np.floating[Any]]) -> NDArray[np.floating[Any]]:
    from scipy.special import entr  # here: `import activelabel.strategies` stays light

    return ((entr(pt) + entr(1.0 - pt)) / np.log(2.0)).mean(axis=0)


_MEASURES: dict[str, tuple[ScoreFn, ScoreFn]] = {
    "least_confidence": (_least_confidence, _least_confidence_ml),
    "margin": (_margin, _margin_ml),
    "entropy": (_entropy, _entropy_ml),
}


def uncertainty_scores(
    probs: ArrayLike, measure: str = "margin", *, multilabel: bool = False
) -> NDArray[np.float64]:
    """Per-item uncertainty in [0, 1], higher meaning less sure, shape (n_pool,).

    ``measure`` is ``"least_confidence"`` (1 - max p), ``"margin"`` (1 - (p1 - p2)) or
    ``"entropy"`` (Shannon entropy / log(n_classes)). ``probs`` is (n_pool, n_classes); with
    ``multilabel=True`` each column is an independent label probability and the binary
    uncertainties are averaged over labels.
    """
    return scores_of_checked(as_probs(probs, multilabel=multilabel), measure, multilabel)


def scores_of_checked(p: FloatArray, measure: str, multilabel: bool = False) -> NDArray[np.float64]:
    """:func:`uncertainty_scores` for ``probs`` already checked by ``as_probs`` (no second pass)."""
    if measure not in _MEASURES:
        raise ValueError(f"unknown uncertainty measure {measure!r}; use one of {sorted(_MEASURES)}")
    fn = _MEASURES[measure][1 if multilabel else 0]
    out = np.empty(p.shape[0], dtype=np.float64)
    for start, stop in chunks(p.shape[0]):
        out[start:stop] = fn(np.ascontiguousarray(p[start:stop].T))
    return out


class UncertaintySampling(QueryStrategy):
    """Pick the ``k`` items the model is least sure about (Lewis & Gale 1994).

    Parameters
    ----------
    measure:
        ``"least_confidence"``, ``"margin"`` or ``"entropy"``.
    multilabel:
        Treat ``probs`` columns as independent label probabilities (rows need not sum to 1).
    """

    needs_probs = True

    def __init__(self, measure: str = "margin", *, multilabel: bool = False) -> None:
        self.measure = measure
        self.multilabel = multilabel

    @property
    def name(self) -> str:  # type: ignore[override]
        return self.measure

    def query(
        self,
        k: int,
        *,
        probs: ArrayLike | None = None,
        embeddings: ArrayLike | None = None,
        labeled_embeddings: ArrayLike | None = None,
        class_weights: ArrayLike | None = None,
        random_state: int | np.random.Generator | None = None,
    ) -> Selection:
        k = check_k(k)
        p: FloatArray = as_probs(self._require("probs", probs), multilabel=self.multilabel)
        scores = scores_of_checked(p, self.measure, self.multilabel)
        weights = as_class_weights(class_weights, p.shape[1])
        scores = weight_by_class_value(scores, p, weights)
        idx = top_k(scores, k, tie_rng(random_state))
        return Selection(idx, scores[idx])


class LeastConfidence(UncertaintySampling):
    """Uncertainty sampling by ``1 - max_c p(c|x)``."""

    def __init__(self, *, multilabel: bool = False) -> None:
        super().__init__("least_confidence", multilabel=multilabel)


class Margin(UncertaintySampling):
    """Uncertainty sampling by the gap between the two most likely classes ("breaking ties",
    Scheffer et al. 2001); the score is ``1 - (p1 - p2)``."""

    def __init__(self, *, multilabel: bool = False) -> None:
        super().__init__("margin", multilabel=multilabel)


class Entropy(UncertaintySampling):
    """Uncertainty sampling by the normalised Shannon entropy of the predicted distribution."""

    def __init__(self, *, multilabel: bool = False) -> None:
        super().__init__("entropy", multilabel=multilabel)
