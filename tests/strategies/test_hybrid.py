from __future__ import annotations

import numpy as np
import pytest

import activelabel
from activelabel.strategies import Badge, ClusterMargin
from activelabel.strategies._geometry import row_sq_norms
from activelabel.strategies.hybrid import _round_robin, _sq_dist_to_gradient


def near_duplicate_pool(seed: int = 0):
    """30 near-copies of one very uncertain item plus uncertain items spread over 5 regions."""
    rng = np.random.default_rng(seed)
    dup = rng.normal([0, 0], 0.01, size=(30, 2))
    spread = np.vstack([rng.normal(c, 0.3, size=(20, 2)) for c in [[9, 0], [0, 9], [-9, 0], [0, -9], [6, 6]]])
    X = np.vstack([dup, spread]).astype(np.float32)
    probs = np.empty((len(X), 2))
    probs[:30] = [0.5, 0.5]
    probs[30:] = np.column_stack([np.full(100, 0.6), np.full(100, 0.4)])
    probs[30:] += rng.uniform(-0.02, 0.02, size=(100, 1)) * [1, -1]
    return probs, X


def test_margin_piles_up_near_duplicates_and_cluster_margin_spreads_out() -> None:
    probs, X = near_duplicate_pool()
    plain = activelabel.select("margin", 6, probs=probs)
    assert (plain < 30).all()
    spread = activelabel.select(
        "cluster_margin", 6, probs=probs, embeddings=X, random_state=0
    )
    # candidates (60) include all 30 duplicates; round-robin takes at most one per cluster
    assert np.count_nonzero(spread < 30) <= 2
    assert len({tuple(np.round(X[i] / 5)) for i in spread}) >= 4


def test_cluster_margin_only_picks_from_the_margin_candidates() -> None:
    rng = np.random.default_rng(0)
    probs = rng.dirichlet(np.ones(3), size=500)
    X = rng.normal(size=(500, 4))
    s = np.sort(probs, axis=1)
    margin = 1 - (s[:, -1] - s[:, -2])
    candidates = set(np.argsort(-margin)[:50].tolist())
    picked = ClusterMargin(candidate_factor=5).query(10, probs=probs, embeddings=X, random_state=0)
    assert set(picked.indices.tolist()) <= candidates
    with pytest.raises(ValueError, match="candidate_factor"):
        ClusterMargin(candidate_factor=0.5).query(10, probs=probs, embeddings=X)


def test_round_robin_visits_small_clusters_first_then_cycles() -> None:
    labels = np.array([0, 0, 0, 1, 2, 2])
    assert _round_robin(labels, 6).tolist() == [3, 4, 0, 5, 1, 2]


def test_badge_distances_equal_those_of_explicit_gradient_embeddings() -> None:
    rng = np.random.default_rng(0)
    probs = rng.dirichlet(np.ones(4), size=30)
    X = rng.normal(size=(30, 5))
    A = probs.copy()
    A[np.arange(30), probs.argmax(axis=1)] -= 1
    G = (A[:, :, None] * X[:, None, :]).reshape(30, -1)  # the n x (C*d) matrix, small here
    sq = row_sq_norms(A) * row_sq_norms(X)
    for j in (0, 7, 29):
        expected = ((G - G[j]) ** 2).sum(axis=1)
        assert np.allclose(_sq_dist_to_gradient(A, X, sq, j), expected, atol=1e-9)


def test_badge_starts_with_the_largest_gradient_and_prefers_uncertain_items() -> None:
    rng = np.random.default_rng(0)
    X = rng.normal(size=(400, 6))
    probs = np.tile([0.98, 0.01, 0.01], (400, 1))
    uncertain = rng.choice(400, size=40, replace=False)
    probs[uncertain] = rng.dirichlet(np.ones(3) * 5, size=40)
    sel = Badge().query(10, probs=probs, embeddings=X, random_state=0)
    A = probs.copy()
    A[np.arange(400), probs.argmax(axis=1)] -= 1
    norms = np.linalg.norm(A, axis=1) * np.linalg.norm(X, axis=1)
    assert sel.indices[0] == int(np.argmax(norms))
    assert np.isin(sel.indices, uncertain).mean() >= 0.8


def test_badge_on_identical_items_still_returns_k_distinct() -> None:
    probs = np.tile([0.5, 0.5], (8, 1))
    X = np.ones((8, 3))
    idx = activelabel.select("badge", 8, probs=probs, embeddings=X, random_state=0)
    assert sorted(idx.tolist()) == list(range(8))
