"""Query by committee: vote entropy and BALD-style mutual information.

Both take a committee's probabilities stacked on axis 0: ``probs`` of shape
(n_members, n_pool, n_classes), e.g. ``BootstrapCommittee(...).fit(X, y).predict_proba(X_pool)``
from :mod:`activelabel.models`, or the predictions of an ensemble or of MC-dropout passes.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from ._base import (
    QueryStrategy,
    Selection,
    as_class_weights,
    as_committee_probs,
    check_k,
    chunks,
    tie_rng,
    top_k,
    weight_by_class_value,
)

__all__ = ["BALD", "VoteEntropy"]


def _entropy_rows(p: NDArray[np.floating[Any]]) -> NDArray[np.float64]:
    from scipy.special import entr  # here: `import activelabel.strategies` stays light

    return entr(p).sum(axis=-1)


class _Committee(QueryStrategy):
    needs_probs = True
    needs_committee = True

    def _score(self, block: NDArray[np.floating[Any]]) -> NDArray[np.float64]:
        raise NotImplementedError

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
        p = as_committee_probs(self._require("probs", probs))
        n_pool, n_classes = p.shape[1], p.shape[2]
        weights = as_class_weights(class_weights, n_classes)
        scores = np.empty(n_pool, dtype=np.float64)
        for start, stop in chunks(n_pool):
            scores[start:stop] = self._score(p[:, start:stop, :])
        if weights is not None:
            scores = weight_by_class_value(scores, p.mean(axis=0), weights)
        idx = top_k(scores, k, tie_rng(random_state))
        return Selection(idx, scores[idx])


class VoteEntropy(_Committee):
    """Entropy of the committee's hard votes (Dagan & Engelson 1995), in [0, 1].

    Each member votes for its most likely class; the score is the entropy of the vote shares
    divided by ``log(min(n_members, n_classes))``. Ties between equal vote splits are broken by
    the entropy of the averaged probabilities (a fraction of the smallest vote-entropy step).
    """

    name = "vote_entropy"

    def _score(self, block: NDArray[np.floating[Any]]) -> NDArray[np.float64]:
        n_members, n_rows, n_classes = block.shape
        votes = block.argmax(axis=2)  # (members, rows)
        counts = np.zeros((n_rows, n_classes), dtype=np.float64)
        rows = np.arange(n_rows)
        for member_votes in votes:
            counts[rows, member_votes] += 1.0
        hard = _entropy_rows(counts / n_members) / np.log(min(n_members, n_classes))
        soft = _entropy_rows(block.mean(axis=0)) / np.log(n_classes)
        return hard + 1e-3 * soft / n_members


class BALD(_Committee):
    """Bayesian active learning by disagreement (Houlsby et al. 2011).

    Mutual information between the label and the model: entropy of the mean prediction minus
    the mean entropy of the members, ``H[mean_m p_m] - mean_m H[p_m]``, in nats.
    """

    name = "bald"

    def _score(self, block: NDArray[np.floating[Any]]) -> NDArray[np.float64]:
        total = _entropy_rows(block.mean(axis=0))
        expected = _entropy_rows(block).mean(axis=0)
        return np.maximum(total - expected, 0.0)
