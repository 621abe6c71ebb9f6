"""activelabel: self-hosted active-learning labeling.

The engine is usable on its own: :func:`select` picks what to label next from a model's
probabilities and the pool's embeddings; :mod:`activelabel.strategies` holds the strategies,
:mod:`activelabel.models`, :mod:`activelabel.features`, :mod:`activelabel.metrics` and
:mod:`activelabel.stopping` the rest of the loop.

``import activelabel`` imports nothing else: ``select``, ``STRATEGIES`` and
``DEFAULT_STRATEGY`` load :mod:`activelabel.strategies` (numpy) on first use, so the command
line starts fast (tests/test_import_time.py holds the bound).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .strategies import DEFAULT_STRATEGY, STRATEGIES, select

__all__ = ["DEFAULT_STRATEGY", "STRATEGIES", "__version__", "select"]

__version__ = "0.1.0"

_FROM_STRATEGIES = frozenset({"DEFAULT_STRATEGY", "STRATEGIES", "select"})


def __getattr__(name: str) -> Any:
    if name in _FROM_STRATEGIES:
        from . import strategies

        value = getattr(strategies, name)
        globals()[name] = value  # later lookups skip this function
        return value
    raise AttributeError(f"module 'activelabel' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
