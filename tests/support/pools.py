"""Synthetic pools for the strategy tests (numpy only)."""

from __future__ import annotations

import numpy as np

__all__ = ["make_pool"]


def make_pool(n: int = 300, n_classes: int = 4, dim: int = 8, seed: int = 0):
    """A pool whose probabilities relate to its geometry: blobs in embedding space, softmax of a
    linear map for probabilities."""
    rng = np.random.default_rng(seed)
    centers = rng.normal(scale=4.0, size=(n_classes, dim))
    labels = rng.integers(n_classes, size=n)
    emb = (centers[labels] + rng.normal(size=(n, dim))).astype(np.float32)
    logits = emb @ rng.normal(size=(dim, n_classes)) * 0.3
    probs = np.exp(logits - logits.max(axis=1, keepdims=True))
    probs /= probs.sum(axis=1, keepdims=True)
    return probs, emb
