"""activelabel: self-hosted active-learning labeling.

The engine is usable on its own: :func:`select` picks what to label next from a model's
probabilities and the pool's embeddings; :mod:`activelabel.strategies` holds the strategies,
:mod:`activelabel.models`, :mod:`activelabel.features`, :mod:`activelabel.metrics` and
:mod:`activelabel.stopping` the rest of the loop.
"""

from __future__ import annotations

from .strategies import DEFAULT_STRATEGY, STRATEGIES, select

__all__ = ["DEFAULT_STRATEGY", "STRATEGIES", "__version__", "select"]

__version__ = "0.1.0"
