"""Random sampling: the baseline every other strategy must beat."""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

from ._base import QueryStrategy, Selection, as_embeddings, as_probs, as_rng, check_k

__all__ = ["RandomSampling"]


class RandomSampling(QueryStrategy):
    """Pick ``k`` pool items uniformly at random, without replacement.

    The pool size is read from ``probs`` or ``embeddings`` (whichever is given). Scores are all
    zero: nothing ranks the picks.
    """

    name = "random"

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
        if class_weights is not None:
            raise ValueError(
                "random sampling ignores class values; drop class_weights or pick a strategy "
                "that reads probabilities (margin, entropy, ...)"
            )
        if probs is not None:
            n = as_probs(probs).shape[0]
        elif embeddings is not None:
            n = as_embeddings(embeddings).shape[0]
        else:
            raise ValueError(
                "random sampling needs to know the pool size: pass probs=... or embeddings=..."
            )
        rng = as_rng(random_state)
        idx = rng.choice(n, size=min(k, n), replace=False).astype(np.intp)
        return Selection(idx, np.zeros(idx.shape[0], dtype=np.float64))
