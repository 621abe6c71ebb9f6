"""Seeded samples of rows: one rule for every place that caps how many rows it reads.

A pool, a drift sample or the rows a self-training fit predicts are read whole up to a cap and
as a uniform sample above it, drawn without replacement and sorted, so the rows keep their
order (and a sorted index reads a matrix or a table in one pass).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray

__all__ = ["sorted_sample"]


def sorted_sample(rows: int | NDArray[Any], size: int,
                  rng: np.random.Generator) -> NDArray[Any]:
    """``rows`` (an array of row numbers, or ``n`` for ``0 .. n-1``) whole when there are at
    most ``size`` of them, else ``size`` of them drawn uniformly without replacement, sorted.

    ``rng`` is drawn from only when a sample is taken, so a caller's later draws do not depend
    on whether its rows were under the cap. Sorted ``rows`` give the same sample as their
    positions would: ``sorted_sample(rows, k, rng) == rows[sorted_sample(len(rows), k, rng)]``.
    """
    if size < 0:
        raise ValueError(f"size must be 0 or more, got {size}")
    if isinstance(rows, int | np.integer):
        n = int(rows)
        if n < 0:
            raise ValueError(f"rows must be 0 or more, got {n}")
        if n <= size:
            return np.arange(n, dtype=np.intp)
        return np.sort(rng.choice(n, size=size, replace=False)).astype(np.intp, copy=False)
    if rows.shape[0] <= size:
        return rows
    return np.sort(rng.choice(rows, size=size, replace=False))
