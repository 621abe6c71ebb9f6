"""Diversity and representativeness: k-center greedy, k-means, density-weighted uncertainty."""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

from ._base import (
    FloatArray,
    QueryStrategy,
    Selection,
    as_class_weights,
    as_embeddings,
    as_labeled_embeddings,
    as_probs,
    as_rng,
    check_k,
    chunks,
    top_k,
    weight_by_class_value,
)
from ._geometry import (
    fit_centroids,
    min_sq_dist_to_set,
    nearest_member_per_cluster,
    row_sq_norms,
    sq_dist_to_point,
)
from .uncertainty import scores_of_checked

__all__ = ["DensityWeighted", "KCenterGreedy", "KMeansSampling", "cold_start"]


def _no_class_weights(name: str, class_weights: ArrayLike | None) -> None:
    if class_weights is not None:
        raise ValueError(
            f"{name} selects by geometry alone and ignores class values; drop class_weights or "
            "use a strategy that reads probabilities (density, cluster_margin, badge, margin)"
        )


class KCenterGreedy(QueryStrategy):
    """Core-set selection by greedy k-center (Sener & Savarese 2018).

    Repeatedly picks the pool item farthest from everything labeled or already picked. Each pick
    costs one matrix-vector product over the pool: O(k * n * d) time, O(n) extra memory. Without
    labeled items the first pick is drawn at random (seeded). Scores are the distance of each pick
    to its nearest labeled-or-picked item at the moment it was picked.
    """

    name = "kcenter"
    needs_embeddings = True

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
        _no_class_weights(self.name, class_weights)
        X = as_embeddings(self._require("embeddings", embeddings))
        labeled = as_labeled_embeddings(labeled_embeddings, X.shape[1])
        n = X.shape[0]
        k = min(k, n)
        if k == 0:
            return Selection(np.empty(0, dtype=np.intp), np.empty(0))
        sq_norms = row_sq_norms(X)
        if labeled is not None:
            return _greedy_k_center(X, sq_norms, min_sq_dist_to_set(X, sq_norms, labeled), k)
        # nothing labeled: the first center is a seeded random item, its score infinite
        first = int(as_rng(random_state).integers(n))
        min_d2 = sq_dist_to_point(X, sq_norms, X[first], out=np.empty(n, dtype=X.dtype))
        min_d2[first] = -1.0
        rest = _greedy_k_center(X, sq_norms, min_d2, k - 1)
        return Selection(
            np.concatenate([[first], rest.indices]).astype(np.intp),
            np.concatenate([[np.inf], rest.scores]),
        )


def _greedy_k_center(
    X: FloatArray, sq_norms: FloatArray, min_d2: FloatArray, k: int
) -> Selection:
    """Greedy farthest-first picks given each item's squared distance to the covered set."""
    picked = np.empty(k, dtype=np.intp)
    scores = np.empty(k, dtype=np.float64)
    buf = np.empty(X.shape[0], dtype=X.dtype)
    for step in range(k):
        i = int(np.argmax(min_d2))
        picked[step] = i
        scores[step] = np.sqrt(max(float(min_d2[i]), 0.0))
        sq_dist_to_point(X, sq_norms, X[i], out=buf)
        np.minimum(min_d2, buf, out=min_d2)
        min_d2[i] = -1.0  # never again, even for exact duplicates
    return Selection(picked, scores)


class KMeansSampling(QueryStrategy):
    """Representative picks: k-means with ``k`` clusters, then the pool item nearest each centroid.

    Centroids are fitted on a uniform sample of at most ``max_fit_rows`` rows, then the whole
    pool is assigned in one chunked pass (O(n * k * d) time, O(n) memory). Picks are ordered by
    cluster size; with ``labeled_embeddings`` a cluster that already holds labeled items is
    down-weighted by ``d / (d + r)``, ``d`` the centroid's distance to the nearest labeled item
    and ``r`` the cluster's root-mean-square radius. The score is that weighted cluster size.
    """

    name = "kmeans"
    needs_embeddings = True

    def __init__(self, *, max_fit_rows: int = 20_000, max_iter: int = 100) -> None:
        self.max_fit_rows = max_fit_rows
        self.max_iter = max_iter

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
        _no_class_weights(self.name, class_weights)
        X = as_embeddings(self._require("embeddings", embeddings))
        labeled = as_labeled_embeddings(labeled_embeddings, X.shape[1])
        n = X.shape[0]
        if k >= n:
            return Selection(np.arange(n, dtype=np.intp), np.ones(n))
        rng = as_rng(random_state)
        centroids = fit_centroids(X, k, rng, max_fit_rows=self.max_fit_rows, max_iter=self.max_iter)
        sq_norms = row_sq_norms(X)
        best, counts, mean_d2 = nearest_member_per_cluster(X, sq_norms, centroids)
        weight = counts.astype(np.float64)
        if labeled is not None:
            d_lab = np.sqrt(min_sq_dist_to_set(centroids, row_sq_norms(centroids), labeled))
            radius = np.sqrt(mean_d2) + 1e-12
            weight *= d_lab / (d_lab + radius)
        keep = best >= 0
        best, weight = best[keep], weight[keep]
        order = np.lexsort((best, -weight))
        idx, scores = best[order], weight[order]
        if idx.shape[0] < k:  # duplicate-heavy pools can leave clusters empty
            idx, scores = _fill_by_distance(X, sq_norms, idx, scores, k)
        return Selection(idx, scores)


def _fill_by_distance(
    X: FloatArray, sq_norms: FloatArray, idx: np.ndarray, scores: np.ndarray, k: int
) -> tuple[np.ndarray, np.ndarray]:
    """Top up a short pick list with k-center picks around what is already chosen."""
    min_d2 = min_sq_dist_to_set(X, sq_norms, X[idx])
    min_d2[idx] = -1.0
    extra = _greedy_k_center(X, sq_norms, min_d2, k - idx.shape[0])
    return (
        np.concatenate([idx, extra.indices]).astype(np.intp),
        np.concatenate([scores, np.zeros(extra.indices.shape[0])]),
    )


def cold_start(
    embeddings: ArrayLike, k: int, *, random_state: int | np.random.Generator | None = None
) -> np.ndarray:
    """A representative, diverse seed batch from features alone (no labels, no model).

    The ``k`` pool items nearest the centroids of a ``k``-cluster k-means, biggest clusters
    first: typical items that cover the pool rather than its first ``k`` rows.
    """
    return KMeansSampling().query(k, embeddings=embeddings, random_state=random_state).indices


class DensityWeighted(QueryStrategy):
    """Information density (Settles & Craven 2008): uncertainty x representativeness.

    ``score = uncertainty(x) * density(x) ** beta`` where density is the average cosine
    similarity of ``x`` to every pool item, mapped to [0, 1] as ``(1 + cos) / 2``. The average over
    the pool is exact and linear: ``mean_j cos(x, x_j) = x_hat . mean_j x_hat_j`` with unit-norm
    rows, so no pool x pool similarity matrix is ever built.
    """

    name = "density"
    needs_probs = True
    needs_embeddings = True

    def __init__(self, measure: str = "entropy", *, beta: float = 1.0) -> None:
        self.measure = measure
        self.beta = beta

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
        if not (np.isfinite(self.beta) and self.beta >= 0):
            raise ValueError(f"beta must be a finite number >= 0, got {self.beta}")
        p = as_probs(self._require("probs", probs))
        X = as_embeddings(self._require("embeddings", embeddings), n_rows=p.shape[0])
        as_labeled_embeddings(labeled_embeddings, X.shape[1])  # checked, not used
        scores = scores_of_checked(p, self.measure)
        scores *= pool_density(X) ** self.beta
        scores = weight_by_class_value(scores, p, as_class_weights(class_weights, p.shape[1]))
        idx = top_k(scores, k)
        return Selection(idx, scores[idx])


def pool_density(X: FloatArray) -> np.ndarray:
    """Average cosine similarity of each row to all rows, as ``(1 + cos) / 2``, shape (n,)."""
    norms = np.sqrt(row_sq_norms(X)).astype(np.float64)
    norms[norms == 0] = 1.0
    mean_dir = np.zeros(X.shape[1], dtype=np.float64)
    for start, stop in chunks(X.shape[0]):
        mean_dir += (X[start:stop] / norms[start:stop, None]).sum(axis=0)
    mean_dir /= max(X.shape[0], 1)
    density = np.empty(X.shape[0], dtype=np.float64)
    for start, stop in chunks(X.shape[0]):
        density[start:stop] = (X[start:stop] @ mean_dir) / norms[start:stop]
    return np.clip((1.0 + density) / 2.0, 0.0, 1.0)
