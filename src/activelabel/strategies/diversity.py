"""Diversity and representativeness: k-center greedy, k-means, TypiClust, density-weighted
uncertainty."""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

from ..samples import sorted_sample
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
    tie_rng,
    top_k,
    weight_by_class_value,
)
from ._geometry import (
    assign_to_centroids,
    fit_centroids,
    min_sq_dist_to_set,
    nearest_member_per_cluster,
    row_sq_norms,
    sq_dist_to_point,
)
from .uncertainty import scores_of_checked

__all__ = ["DensityWeighted", "KCenterGreedy", "KMeansSampling", "TypiClust", "cold_start"]


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


class TypiClust(QueryStrategy):
    """TypiClust (Hacohen, Dekel & Weinshall 2022): the most typical item of each uncovered
    cluster, for budgets too small for a model's uncertainty to mean much.

    1. k-means with ``labeled + k`` clusters (at most ``max_clusters``) over the pool and the
       labeled items, fitted on a sample of at most ``max_fit_rows`` rows; every pool and
       labeled item assigned to its nearest centroid in one chunked pass.
    2. ``k`` times: the cluster with no labeled or picked item, largest first (once every
       cluster holds one, the largest per labeled-or-picked item), and in it the most typical
       item: the inverse of its mean distance to its ``knn`` nearest fellow members (among at
       most ``max_cluster_rows`` members drawn from a large cluster).

    With many classes and a few labels a class, this covers the pool's modes with items that
    stand for them, where uncertainty sampling keeps to the classes already seen. The score of a
    pick is its cluster's size per labeled-or-picked item before the pick. Memory stays linear:
    distances are taken in blocks, and within one cluster of at most ``max_cluster_rows`` rows.
    """

    name = "typiclust"
    needs_embeddings = True

    def __init__(self, *, max_clusters: int = 500, knn: int = 20, max_cluster_rows: int = 2_000,
                 max_fit_rows: int = 20_000, max_iter: int = 50) -> None:
        self.max_clusters = max_clusters
        self.knn = knn
        self.max_cluster_rows = max_cluster_rows
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
        if self.max_clusters < 1 or self.knn < 1 or self.max_cluster_rows < 2:
            raise ValueError("typiclust needs max_clusters >= 1, knn >= 1 and "
                             f"max_cluster_rows >= 2, got {self.max_clusters}, {self.knn}, "
                             f"{self.max_cluster_rows}")
        X = as_embeddings(self._require("embeddings", embeddings))
        labeled = as_labeled_embeddings(labeled_embeddings, X.shape[1])
        n = X.shape[0]
        if k >= n:
            return Selection(np.arange(n, dtype=np.intp), np.ones(n))
        rng = as_rng(random_state)
        n_labeled = 0 if labeled is None else labeled.shape[0]
        n_clusters = int(min(n_labeled + k, max(self.max_clusters, k), n))
        # the fit sees a sample of the pool and the labeled items (part of the data too), each
        # at most max_fit_rows rows: no copy of a large pool
        rows = max(self.max_fit_rows, 4 * n_clusters)
        fit_on = X if n <= rows else X[sorted_sample(n, rows, rng)]
        if labeled is not None:
            lab = labeled if n_labeled <= rows else labeled[rng.choice(n_labeled, size=rows,
                                                                       replace=False)]
            fit_on = np.concatenate([fit_on, lab.astype(X.dtype, copy=False)])
        centroids = fit_centroids(fit_on, n_clusters, rng, max_fit_rows=fit_on.shape[0],
                                  max_iter=self.max_iter)
        del fit_on
        cluster = assign_to_centroids(X, centroids)
        sizes = np.bincount(cluster, minlength=n_clusters).astype(np.float64)
        covered = np.zeros(n_clusters, dtype=np.float64)  # labeled or picked items per cluster
        if labeled is not None:
            covered += np.bincount(assign_to_centroids(labeled.astype(X.dtype, copy=False),
                                                       centroids), minlength=n_clusters)
        order = np.argsort(cluster, kind="stable")  # pool rows grouped by cluster
        starts = np.searchsorted(cluster[order], np.arange(n_clusters + 1))
        left = sizes.copy()  # members not picked yet
        taken = np.zeros(n, dtype=bool)
        picked: list[int] = []
        scores: list[float] = []
        for _ in range(k):
            value = np.where(left > 0, sizes / (1.0 + covered), -np.inf)
            uncovered = (covered == 0) & (left > 0)
            if uncovered.any():
                value = np.where(uncovered, value, -np.inf)
            c = int(np.argmax(value))
            members = order[starts[c]:starts[c + 1]]
            members = members[~taken[members]]
            members = sorted_sample(members, self.max_cluster_rows, rng)
            i = int(members[np.argmax(_typicality(X[members], self.knn))])
            picked.append(i)
            scores.append(float(value[c]))
            taken[i] = True
            covered[c] += 1
            left[c] -= 1
        return Selection(np.asarray(picked, dtype=np.intp), np.asarray(scores))


def _typicality(X: FloatArray, knn: int) -> np.ndarray:
    """Inverse mean distance of each row to its ``knn`` nearest other rows (all rows: 1)."""
    m = X.shape[0]
    if m <= 1:
        return np.ones(m)
    sq = row_sq_norms(X)
    d2 = X @ X.T
    d2 *= -2.0
    d2 += sq[:, None]
    d2 += sq[None, :]
    np.maximum(d2, 0.0, out=d2)
    np.fill_diagonal(d2, np.inf)
    kk = min(knn, m - 1)
    near = np.partition(d2, kk - 1, axis=1)[:, :kk]
    return np.asarray(1.0 / (np.sqrt(near).mean(axis=1) + 1e-12))


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
        idx = top_k(scores, k, tie_rng(random_state))
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
