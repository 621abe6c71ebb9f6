"""Acquisition strategies: which unlabeled items are worth a person's time next.

Every strategy is a small class with one job: given the pool (the model's probabilities and/or
one embedding per item), return the indices of ``k`` items in priority order with the score
each was ranked by. No database, no I/O. :func:`select` is the one-call form::

    import activelabel
    idx = activelabel.select("margin", 10, probs=model.predict_proba(X_pool))
    idx = activelabel.select("cluster_margin", 10, probs=P, embeddings=E)

Committee strategies (``"vote_entropy"``, ``"bald"``) take the committee's probabilities
stacked on axis 0, ``probs`` of shape (n_members, n_pool, n_classes), for example
``BootstrapCommittee(n_members=5).fit(X, y).predict_proba(X_pool)`` from
:mod:`activelabel.models`.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from ._base import QueryStrategy, Selection
from .committee import BALD, VoteEntropy
from .diversity import DensityWeighted, KCenterGreedy, KMeansSampling, TypiClust, cold_start
from .hybrid import Badge, ClusterMargin
from .inputs import COMMITTEE_MEMBERS, strategy_inputs
from .random import RandomSampling
from .uncertainty import Entropy, LeastConfidence, Margin, UncertaintySampling, uncertainty_scores

__all__ = [
    "BALD",
    "COMMITTEE_MEMBERS",
    "COMMITTEE_STRATEGIES",
    "DEFAULT_STRATEGY",
    "STRATEGIES",
    "Badge",
    "ClusterMargin",
    "DensityWeighted",
    "Entropy",
    "KCenterGreedy",
    "KMeansSampling",
    "LeastConfidence",
    "Margin",
    "QueryStrategy",
    "RandomSampling",
    "Selection",
    "UncertaintySampling",
    "VoteEntropy",
    "cold_start",
    "get_strategy",
    "select",
    "strategy_inputs",
    "uncertainty_scores",
]

#: Strategy names accepted by :func:`select` and :func:`get_strategy`.
STRATEGIES: dict[str, type[QueryStrategy]] = {
    "random": RandomSampling,
    "least_confidence": LeastConfidence,
    "margin": Margin,
    "entropy": Entropy,
    "vote_entropy": VoteEntropy,
    "bald": BALD,
    "kcenter": KCenterGreedy,
    "kmeans": KMeansSampling,
    "typiclust": TypiClust,
    "density": DensityWeighted,
    "cluster_margin": ClusterMargin,
    "badge": Badge,
}

#: Strategies whose ``probs`` come from a committee, shape (n_members, n_pool, n_classes).
COMMITTEE_STRATEGIES = frozenset(name for name, cls in STRATEGIES.items() if cls.needs_committee)

#: What a new project uses unless told otherwise: uncertainty for label efficiency, clustering
#: so a batch is not a run of near-duplicates (see docs/benchmarks.md for the measurements).
DEFAULT_STRATEGY = "cluster_margin"


def get_strategy(name: str, **params: Any) -> QueryStrategy:
    """The strategy registered under ``name``, built with ``params``.

    >>> get_strategy("cluster_margin", candidate_factor=5)
    ClusterMargin(candidate_factor=5, max_iter=100)
    """
    try:
        cls = STRATEGIES[name]
    except (KeyError, TypeError):
        raise ValueError(
            f"unknown strategy {name!r}; choose one of: {', '.join(STRATEGIES)}"
        ) from None
    try:
        return cls(**params)
    except TypeError as exc:
        raise ValueError(f"bad parameters for strategy {name!r}: {exc}") from None


def select(
    strategy: str,
    k: int,
    *,
    probs: ArrayLike | None = None,
    embeddings: ArrayLike | None = None,
    labeled_embeddings: ArrayLike | None = None,
    class_weights: ArrayLike | None = None,
    random_state: int | np.random.Generator | None = None,
) -> np.ndarray:
    """Indices of the ``k`` pool items to label next, distinct, best first.

    Parameters
    ----------
    strategy:
        A name from :data:`STRATEGIES`.
    k:
        How many items to pick; a pool smaller than ``k`` is returned whole, in priority order.
    probs:
        (n_pool, n_classes) class probabilities of the current model, rows summing to 1;
        committee strategies take (n_members, n_pool, n_classes).
    embeddings:
        (n_pool, n_features) one vector per pool item, for diversity and hybrid strategies.
    labeled_embeddings:
        (n_labeled, n_features) vectors of already-labeled items, so diversity strategies cover
        what is not yet covered.
    class_weights:
        (n_classes,) non-negative value of each class: items likely to belong to valuable
        classes are raised (probability-based strategies only).
    random_state:
        Seed or ``numpy.random.Generator`` for strategies that draw at random.

    Raises
    ------
    ValueError
        Unknown strategy, missing input the strategy needs, or inputs of the wrong shape.
    """
    chosen = get_strategy(strategy)
    return chosen.query(
        k,
        probs=probs,
        embeddings=embeddings,
        labeled_embeddings=labeled_embeddings,
        class_weights=class_weights,
        random_state=random_state,
    ).indices
