"""Distances and k-means pieces computed in row chunks, never as a pool x pool matrix."""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
from numpy.typing import NDArray

from ..samples import sorted_sample
from ._base import FloatArray, chunks

__all__ = [
    "assign_to_centroids",
    "fit_centroids",
    "min_sq_dist_to_set",
    "nearest_member_per_cluster",
    "row_sq_norms",
    "sq_dist_to_point",
]

#: Upper bound on the entries of one (chunk x reference set) distance block.
_BLOCK_ENTRIES = 1 << 22


def row_sq_norms(X: FloatArray) -> NDArray[np.floating[Any]]:
    """Squared L2 norm of each row, shape (n,), in the dtype of ``X``."""
    out = np.empty(X.shape[0], dtype=X.dtype)
    for start, stop in chunks(X.shape[0]):
        block = X[start:stop]
        out[start:stop] = np.einsum("ij,ij->i", block, block)
    return out


def sq_dist_to_point(
    X: FloatArray,
    sq_norms: NDArray[np.floating[Any]],
    x: NDArray[np.floating[Any]],
    out: NDArray[np.floating[Any]],
) -> NDArray[np.floating[Any]]:
    """Squared distances from every row of ``X`` (n, d) to ``x`` (d,), written into ``out``.

    Uses ``|a|^2 - 2 a.b + |b|^2`` with precomputed row norms, in place: one matrix-vector
    product and three O(n) passes, no temporaries of size n x d.
    """
    np.dot(X, x, out=out)
    out *= -2.0
    out += sq_norms
    out += float(np.dot(x, x))
    np.maximum(out, 0.0, out=out)
    return out


def _block_rows(n_ref: int) -> int:
    return max(1, min(65_536, _BLOCK_ENTRIES // max(n_ref, 1)))


def _sq_dists_block(
    block: FloatArray, block_norms: NDArray[np.floating[Any]], ref: FloatArray, ref_norms: Any
) -> NDArray[np.floating[Any]]:
    d2 = block @ ref.T
    d2 *= -2.0
    d2 += block_norms[:, None]
    d2 += ref_norms[None, :]
    np.maximum(d2, 0.0, out=d2)
    return d2


def _nearest_in_blocks(X: FloatArray, sq_norms: NDArray[np.floating[Any]], ref: FloatArray,
                       *, index: bool) -> NDArray[Any]:
    """Per row of ``X``, the squared distance to (``index``: the position of) its nearest row
    of ``ref``, in blocks of at most ~4M distances."""
    ref = ref.astype(X.dtype, copy=False)
    ref_norms = row_sq_norms(ref)
    out = np.empty(X.shape[0], dtype=np.intp if index else X.dtype)
    for start, stop in chunks(X.shape[0], _block_rows(ref.shape[0])):
        d2 = _sq_dists_block(X[start:stop], sq_norms[start:stop], ref, ref_norms)
        out[start:stop] = d2.argmin(axis=1) if index else d2.min(axis=1)
    return out


def min_sq_dist_to_set(
    X: FloatArray, sq_norms: NDArray[np.floating[Any]], ref: FloatArray
) -> NDArray[np.floating[Any]]:
    """For each row of ``X`` (n, d), the squared distance to its nearest row of ``ref`` (m, d).

    Computed in blocks of at most ~4M distances, so memory stays O(n + m).
    """
    return _nearest_in_blocks(X, sq_norms, ref, index=False)


def assign_to_centroids(X: FloatArray, centroids: FloatArray) -> NDArray[np.intp]:
    """The nearest centroid of every row of ``X``, shape (n,), in blocks of ~4M distances."""
    return _nearest_in_blocks(X, row_sq_norms(X), centroids, index=True)


def nearest_member_per_cluster(
    X: FloatArray, sq_norms: NDArray[np.floating[Any]], centroids: FloatArray
) -> tuple[NDArray[np.intp], NDArray[np.int64], NDArray[np.float64]]:
    """Assign every row of ``X`` to its nearest centroid in one chunked pass.

    Returns, per centroid: the index of its closest member (-1 when it has no member), its
    member count, and the members' mean squared distance to it.
    """
    n_clusters = centroids.shape[0]
    centroids = centroids.astype(X.dtype, copy=False)
    c_norms = row_sq_norms(centroids)
    best_d2 = np.full(n_clusters, np.inf)
    best_idx = np.full(n_clusters, -1, dtype=np.intp)
    counts = np.zeros(n_clusters, dtype=np.int64)
    sum_d2 = np.zeros(n_clusters, dtype=np.float64)
    for start, stop in chunks(X.shape[0], _block_rows(n_clusters)):
        d2 = _sq_dists_block(X[start:stop], sq_norms[start:stop], centroids, c_norms)
        label = d2.argmin(axis=1)
        own = d2[np.arange(label.shape[0]), label].astype(np.float64)
        counts += np.bincount(label, minlength=n_clusters)
        sum_d2 += np.bincount(label, weights=own, minlength=n_clusters)
        # closest member per cluster inside this block: sort by (cluster, distance)
        order = np.lexsort((own, label))
        first = np.ones(order.shape[0], dtype=bool)
        first[1:] = label[order][1:] != label[order][:-1]
        winners = order[first]
        cl = label[winners]
        better = own[winners] < best_d2[cl]
        best_d2[cl[better]] = own[winners][better]
        best_idx[cl[better]] = winners[better] + start
    mean_d2 = np.divide(sum_d2, counts, out=np.zeros(n_clusters), where=counts > 0)
    return best_idx, counts, mean_d2


def fit_centroids(
    X: FloatArray,
    n_clusters: int,
    rng: np.random.Generator,
    *,
    max_fit_rows: int = 20_000,
    max_iter: int = 100,
) -> FloatArray:
    """k-means centroids (n_clusters, d) fitted on at most ``max_fit_rows`` sampled rows.

    Centroids of a uniform sample estimate the pool's centroids well; fitting on a sample keeps
    the cost independent of the pool size. The caller assigns the full pool in one pass.
    """
    # scikit-learn here, not at the top: `import activelabel.strategies` stays light
    from sklearn.cluster import KMeans
    from sklearn.exceptions import ConvergenceWarning

    n = X.shape[0]
    rows = max(max_fit_rows, 4 * n_clusters)
    fit_on = X if n <= rows else X[sorted_sample(n, rows, rng)]
    seed = int(rng.integers(0, 2**31 - 1))
    km = KMeans(n_clusters=n_clusters, n_init=1, max_iter=max_iter, random_state=seed)
    with warnings.catch_warnings():
        # fewer distinct points than clusters: callers top up empty clusters themselves
        warnings.simplefilter("ignore", ConvergenceWarning)
        # in float64: scikit-learn computes float32 distances in upcast chunks, slower
        km.fit(np.asarray(fit_on, dtype=np.float64))
    return np.asarray(km.cluster_centers_, dtype=X.dtype)
