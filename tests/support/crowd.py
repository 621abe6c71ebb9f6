"""A planted crowd: annotators of known accuracy label items of known truth (numpy only, so
that scripts/crowd_kit_reference.py can run it beside crowd-kit without activelabel)."""

from __future__ import annotations

import numpy as np

__all__ = ["planted_crowd"]


def planted_crowd(seed: int = 0, n_items: int = 300, k: int = 3,
                  accuracy: tuple[float, ...] = (0.9, 0.88, 0.92, 0.9, 0.35)
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(truth, items, workers, labels): annotator ``w`` labels every item, right with
    probability ``accuracy[w]``, else one of the other ``k - 1`` classes at random."""
    rng = np.random.default_rng(seed)
    truth = rng.integers(0, k, n_items)
    items, workers, labels = [], [], []
    for w, acc in enumerate(accuracy):
        right = rng.random(n_items) < acc
        wrong = (truth + rng.integers(1, k, n_items)) % k
        items += list(range(n_items))
        workers += [w] * n_items
        labels += np.where(right, truth, wrong).tolist()
    return truth, np.array(items), np.array(workers), np.array(labels)
