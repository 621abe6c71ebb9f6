"""What a strategy reads, computed only when it reads it: one definition for the simulation
loop (:mod:`activelabel.simulation`) and a project's rounds (:mod:`activelabel.labeling.rounds`).

Expensive inputs are passed as functions (``probs=lambda: model.predict_proba(X_pool)``) and
called only for a strategy that reads them (``needs_probs``, ``needs_committee``,
``needs_embeddings`` on its class).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from numpy.typing import ArrayLike

from ._base import QueryStrategy

__all__ = ["COMMITTEE_MEMBERS", "strategy_inputs"]

#: Members of the bootstrap committee whose probabilities committee strategies read.
COMMITTEE_MEMBERS = 5


def strategy_inputs(
    strategy: type[QueryStrategy],
    *,
    embeddings: ArrayLike,
    probs: Callable[[], ArrayLike],
    committee_probs: Callable[[], ArrayLike] | None = None,
    labeled_embeddings: Callable[[], ArrayLike] | None = None,
) -> dict[str, Any]:
    """The keyword arguments of ``strategy().query`` for one pool.

    - ``embeddings`` (n_pool, n_features): always passed (random sampling reads the pool size
      from it, diversity and hybrid strategies the geometry);
    - ``probs``: for a strategy that reads probabilities, ``committee_probs()``
      (n_members, n_pool, n_classes) for a committee strategy, else ``probs()``
      (n_pool, n_classes);
    - ``labeled_embeddings()`` (n_labeled, n_features): for a strategy that reads embeddings,
      unless None (nothing labeled to cover yet).
    """
    kwargs: dict[str, Any] = {"embeddings": embeddings}
    if strategy.needs_probs:
        if not strategy.needs_committee:
            kwargs["probs"] = probs()
        elif committee_probs is None:
            raise ValueError(f"strategy {strategy.name!r} reads a committee's probabilities: "
                             "pass committee_probs=..., or pick an uncertainty strategy "
                             "such as 'entropy'")
        else:
            kwargs["probs"] = committee_probs()
    if strategy.needs_embeddings and labeled_embeddings is not None:
        kwargs["labeled_embeddings"] = labeled_embeddings()
    return kwargs
