"""Candidate restriction for huge pools: only the nearest neighbours of labeled items.

Scoring and selecting over every item of a 10M-item pool each round costs a full pass of the
model. SEALS (Coleman et al. 2022) restricts the candidates to the ``n_neighbors`` nearest
neighbours of each labeled item in embedding space, found with an approximate nearest-neighbour
index (HNSW here, from faiss-cpu, the ``scale`` extra); the candidate set grows as labels come
in. The index of a shard is built once and kept beside it (``<shard>.hnsw``), so later rounds
only search it. What the restriction costs in labels is measured in docs/benchmarks.md.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

__all__ = ["HNSW_LINKS", "neighbor_mask", "shard_index"]

#: Links per node of the HNSW graph (faiss' M): recall above 0.95 at these sizes.
HNSW_LINKS = 32
#: Breadth of the search (faiss' efSearch), raised to at least ``n_neighbors``.
_EF_SEARCH = 64


def _faiss() -> Any:
    try:
        import faiss
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise ImportError("candidate restriction needs faiss-cpu: pip install "
                          "'activelabel[scale]'") from exc
    return faiss


def shard_index(embeddings: NDArray[np.float32], path: Path | None = None) -> Any:
    """An HNSW index over ``embeddings`` (n, d): read from ``path`` when it holds one of the
    same size (written by an earlier round), else built and, with ``path``, saved there."""
    faiss = _faiss()
    X = np.ascontiguousarray(embeddings, dtype=np.float32)
    if path is not None and path.is_file():
        index = faiss.read_index(str(path))
        if index.ntotal == X.shape[0] and index.d == X.shape[1]:
            return index
    index = faiss.IndexHNSWFlat(int(X.shape[1]), HNSW_LINKS)
    index.add(X)
    if path is not None:
        tmp = path.with_suffix(".tmp")
        faiss.write_index(index, str(tmp))
        tmp.replace(path)
    return index


def neighbor_mask(embeddings: NDArray[np.float32], labeled_embeddings: NDArray[np.floating[Any]],
                  n_neighbors: int, *, index_path: Path | None = None) -> NDArray[np.bool_]:
    """(n,) True for the rows of ``embeddings`` (n, d) among the ``n_neighbors`` approximate
    nearest neighbours of some row of ``labeled_embeddings`` (m, d)."""
    if isinstance(n_neighbors, bool) or not isinstance(n_neighbors, int | np.integer) \
            or n_neighbors < 1:
        raise ValueError(f"n_neighbors must be a whole number >= 1, got {n_neighbors!r}")
    L = np.ascontiguousarray(labeled_embeddings, dtype=np.float32)
    if L.ndim != 2 or L.shape[1] != embeddings.shape[1]:
        raise ValueError(f"labeled_embeddings must have shape (m, {embeddings.shape[1]}), "
                         f"got {L.shape}")
    mask = np.zeros(embeddings.shape[0], dtype=bool)
    if L.shape[0] == 0 or embeddings.shape[0] == 0:
        return mask
    index = shard_index(embeddings, index_path)
    index.hnsw.efSearch = max(_EF_SEARCH, int(n_neighbors))
    _, found = index.search(L, min(int(n_neighbors), embeddings.shape[0]))
    hits = found[found >= 0]
    mask[hits] = True
    return mask
