"""Hybrids of uncertainty and diversity: cluster-margin and BADGE."""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

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
from ._geometry import fit_centroids, row_sq_norms
from .uncertainty import scores_of_checked

__all__ = ["Badge", "ClusterMargin"]


class ClusterMargin(QueryStrategy):
    """Cluster-margin (Citovsky et al. 2021): margin candidates, then round-robin over clusters.

    1. Take the ``candidate_factor * k`` items with the smallest margin.
    2. Cluster the candidates' embeddings into ``k`` groups (k-means on the candidates only, so
       the cost does not grow with the pool beyond one margin pass).
    3. Visit clusters from smallest to largest, taking the most uncertain remaining candidate of
       each, round after round until ``k`` are picked.

    A batch therefore spreads over the uncertain region instead of piling up near-duplicates.
    The score of each pick is its margin score ``1 - (p1 - p2)`` (times class value, if given).
    """

    name = "cluster_margin"
    needs_probs = True
    needs_embeddings = True

    def __init__(self, *, candidate_factor: float = 10.0, max_iter: int = 100) -> None:
        self.candidate_factor = candidate_factor
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
        if not self.candidate_factor >= 1:
            raise ValueError(f"candidate_factor must be >= 1, got {self.candidate_factor}")
        p = as_probs(self._require("probs", probs))
        X = as_embeddings(self._require("embeddings", embeddings), n_rows=p.shape[0])
        as_labeled_embeddings(labeled_embeddings, X.shape[1])  # checked, not used
        scores = scores_of_checked(p, "margin")
        scores = weight_by_class_value(scores, p, as_class_weights(class_weights, p.shape[1]))
        n_cand = min(p.shape[0], max(k, int(np.ceil(self.candidate_factor * k))))
        rng = as_rng(random_state)
        return self._spread(k, X, self._candidates(p, scores, n_cand, rng), scores, rng)

    def _candidates(self, probs: FloatArray, scores: NDArray[np.float64], n_cand: int,
                    rng: np.random.Generator) -> NDArray[np.intp]:
        """The ``n_cand`` candidates, most uncertain first (a variant draws them otherwise;
        equal scores in a random order, not the pool's)."""
        return top_k(scores, n_cand, rng)

    def _spread(self, k: int, X: FloatArray, cand: NDArray[np.intp],
                scores: NDArray[np.float64], rng: np.random.Generator) -> Selection:
        """Steps 2 and 3: cluster the candidates into ``k`` groups, round-robin over them."""
        if cand.shape[0] <= k:
            return Selection(cand, scores[cand])
        Xc = np.ascontiguousarray(X[cand])
        centroids = fit_centroids(Xc, k, rng, max_iter=self.max_iter)
        idx = cand[_round_robin(_assign(Xc, centroids), k)]
        return Selection(idx, scores[idx])


def _assign(X: FloatArray, centroids: FloatArray) -> NDArray[np.intp]:
    c_norms = row_sq_norms(centroids)
    d2 = row_sq_norms(X)[:, None] - 2.0 * (X @ centroids.T) + c_norms[None, :]
    return d2.argmin(axis=1).astype(np.intp)


def _round_robin(labels: NDArray[np.intp], k: int) -> NDArray[np.intp]:
    """Positions into ``labels`` (already in priority order) picked cluster by cluster.

    Clusters are visited smallest first; within a cluster, earlier (more uncertain) first.
    """
    sizes = np.bincount(labels)
    cluster_order = np.lexsort((np.arange(sizes.shape[0]), sizes))
    cluster_order = cluster_order[sizes[cluster_order] > 0]
    members = [list(np.flatnonzero(labels == c)) for c in cluster_order]
    picked: list[int] = []
    depth = 0
    while len(picked) < k:
        for queue in members:
            if depth < len(queue):
                picked.append(int(queue[depth]))
                if len(picked) == k:
                    break
        depth += 1
    return np.asarray(picked, dtype=np.intp)


class Badge(QueryStrategy):
    """BADGE (Ash et al. 2020): k-means++ seeding over gradient embeddings.

    The gradient embedding of item i for a linear softmax model is ``g_i = a_i (x) x_i`` with
    ``a_i = p_i - onehot(argmax p_i)`` and ``x_i`` its embedding: large when the model is unsure,
    pointing in different directions for different regions. It is never materialised: since
    ``<g_i, g_j> = (a_i . a_j)(x_i . x_j)``, every squared distance to a chosen center costs one
    (n, C) and one (n, d) matrix-vector product, O(n (C + d)) per pick and O(n) memory, instead of
    the n x (C * d) matrix. The first pick has the largest gradient norm; each next one is drawn
    with probability proportional to its squared distance to the nearest pick (seeded).
    """

    name = "badge"
    needs_probs = True
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
        p = as_probs(self._require("probs", probs))
        X = as_embeddings(self._require("embeddings", embeddings), n_rows=p.shape[0])
        as_labeled_embeddings(labeled_embeddings, X.shape[1])  # checked, not used
        A = _gradient_factor(p, as_class_weights(class_weights, p.shape[1]))
        return _kmeans_pp(A, X, min(k, p.shape[0]), as_rng(random_state))


def _gradient_factor(p: FloatArray, class_weights: FloatArray | None) -> FloatArray:
    """``a_i = p_i - onehot(argmax p_i)``, scaled by the item's class value if weights given."""
    A = np.array(p, dtype=np.float32)
    for start, stop in chunks(A.shape[0]):
        block = A[start:stop]
        block[np.arange(stop - start), block.argmax(axis=1)] -= 1.0
    if class_weights is not None:
        value = weight_by_class_value(np.ones(A.shape[0]), p, class_weights)
        A *= value[:, None].astype(np.float32)
    return A


def _kmeans_pp(A: FloatArray, X: FloatArray, k: int, rng: np.random.Generator) -> Selection:
    n = A.shape[0]
    if k == 0:
        return Selection(np.empty(0, dtype=np.intp), np.empty(0))
    sq_norm = (row_sq_norms(A) * row_sq_norms(X)).astype(np.float64)  # |g_i|^2
    picked = np.empty(k, dtype=np.intp)
    scores = np.empty(k, dtype=np.float64)
    first = int(top_k(sq_norm, 1)[0])
    picked[0], scores[0] = first, np.sqrt(sq_norm[first])
    min_d2 = _sq_dist_to_gradient(A, X, sq_norm, first)
    for step in range(1, k):
        min_d2[picked[:step]] = 0.0
        total = float(min_d2.sum())
        if total > 0 and np.isfinite(total):
            i = int(np.searchsorted(np.cumsum(min_d2), rng.random() * total, side="right"))
            i = min(i, n - 1)
        else:  # everything left duplicates a pick: fall back to a uniform draw
            rest = np.setdiff1d(np.arange(n), picked[:step])
            i = int(rng.choice(rest))
        picked[step], scores[step] = i, np.sqrt(max(min_d2[i], 0.0))
        np.minimum(min_d2, _sq_dist_to_gradient(A, X, sq_norm, i), out=min_d2)
    return Selection(picked, scores)


def _sq_dist_to_gradient(
    A: FloatArray, X: FloatArray, sq_norm: NDArray[np.float64], j: int
) -> NDArray[np.float64]:
    """``|g_i - g_j|^2`` for every i, from the factors, shape (n,)."""
    cross: NDArray[Any] = (A @ A[j]).astype(np.float64)
    cross *= X @ X[j]
    d2 = sq_norm - 2.0 * cross + sq_norm[j]
    return np.maximum(d2, 0.0)
