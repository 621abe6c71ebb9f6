"""No strategy may build an n x n matrix: extra memory stays linear in the pool."""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest

import activelabel
from activelabel.strategies import STRATEGIES

N, D, C = 60_000, 16, 5


@pytest.fixture(scope="module")
def big_pool():
    rng = np.random.default_rng(0)
    emb = rng.normal(size=(N, D)).astype(np.float32)
    logits = rng.normal(size=(N, C)).astype(np.float32)
    probs = np.exp(logits)
    probs /= probs.sum(axis=1, keepdims=True)
    committee = np.stack([np.roll(probs, s, axis=1) for s in range(3)])
    return probs, emb, committee


@pytest.mark.parametrize("name", sorted(STRATEGIES))
def test_peak_memory_is_linear_in_the_pool(name, big_pool) -> None:
    probs, emb, committee = big_pool
    p = committee if name in ("vote_entropy", "bald") else probs
    tracemalloc.start()
    try:
        activelabel.select(name, 50, probs=p, embeddings=emb, labeled_embeddings=emb[:200], random_state=0)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # an n x n float32 matrix would be 14 GB; allow a generous linear budget instead:
    # 30 float64 values per pool item plus a fixed 40 MB for chunk-sized blocks
    assert peak < N * 8 * 30 + 40 * 2**20, f"{name} peaked at {peak / 2**20:.0f} MiB"
