"""What every acquisition strategy shares: the result type, input checks, chunked passes."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

__all__ = [
    "CHUNK_ROWS",
    "FloatArray",
    "QueryStrategy",
    "Selection",
    "as_class_weights",
    "as_embeddings",
    "as_probs",
    "chunks",
    "tie_rng",
    "top_k",
]

#: Rows handled per pass of a chunked loop: big enough for BLAS, small enough to keep memory flat.
CHUNK_ROWS = 65_536

FloatArray = NDArray[np.floating[Any]]
IntArray = NDArray[np.intp]


@dataclass(frozen=True)
class Selection:
    """The items a strategy picked, best first.

    ``indices`` are positions in the pool arrays the strategy was given (distinct, best first);
    ``scores`` is what each was ranked by (higher means more worth labeling; for purely
    diversity-driven picks, the distance or weight that made the item stand out).
    """

    indices: IntArray
    scores: NDArray[np.float64]

    def __post_init__(self) -> None:
        if self.indices.shape != self.scores.shape:
            raise ValueError("indices and scores must have the same length")

    def __len__(self) -> int:
        return int(self.indices.shape[0])


class QueryStrategy:
    """Base class: a strategy takes a pool and returns a :class:`Selection` of ``k`` items.

    Subclasses store their parameters in ``__init__`` and do all validation in :meth:`query`.
    Inputs are keyword-only so every call names the role of each array:

    - ``probs``: (n_pool, n_classes) predicted class probabilities, rows summing to 1
      (committee strategies take (n_members, n_pool, n_classes));
    - ``embeddings``: (n_pool, n_features) one vector per pool item;
    - ``labeled_embeddings``: (n_labeled, n_features) vectors of items already labeled;
    - ``class_weights``: (n_classes,) non-negative value of each class to the team.

    ``k`` larger than the pool returns the whole pool in priority order.
    """

    #: Name used by :func:`activelabel.select` and in round provenance.
    name: str = ""
    #: Whether the strategy reads ``probs`` / ``embeddings``.
    needs_probs: bool = False
    needs_embeddings: bool = False
    #: Whether its ``probs`` are a committee's, (n_members, n_pool, n_classes).
    needs_committee: bool = False

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
        raise NotImplementedError

    def __repr__(self) -> str:
        params = ", ".join(f"{k}={v!r}" for k, v in vars(self).items() if not k.endswith("_"))
        return f"{type(self).__name__}({params})"

    # ---- helpers shared by subclasses -------------------------------------------------------

    def _require(self, what: str, value: ArrayLike | None) -> ArrayLike:
        if value is None:
            raise ValueError(
                f"strategy {self.name!r} needs {what}; pass {what}=... "
                f"({_NEEDS_HELP[what]})"
            )
        return value


_NEEDS_HELP = {
    "probs": "the model's predict_proba over the pool, shape (n_pool, n_classes)",
    "embeddings": "one feature vector per pool item, shape (n_pool, n_features)",
}


def check_k(k: int) -> int:
    if isinstance(k, bool) or not isinstance(k, int | np.integer):
        raise TypeError(f"k must be an integer number of items, got {k!r}")
    if k < 1:
        raise ValueError(f"k must be at least 1, got {k}")
    return int(k)


def as_probs(probs: ArrayLike, *, multilabel: bool = False, name: str = "probs") -> FloatArray:
    """Check a (n_pool, n_classes) probability matrix; keeps float32 as float32 (no copy)."""
    arr = np.asarray(probs)
    if arr.dtype.kind not in "fiu":
        raise TypeError(f"{name} must be numeric, got dtype {arr.dtype}")
    if arr.dtype.kind != "f":
        arr = arr.astype(np.float64)
    if arr.ndim != 2:
        raise ValueError(f"{name} must have shape (n_pool, n_classes), got shape {arr.shape}")
    c = arr.shape[1]
    if c < 1 or (c < 2 and not multilabel):
        raise ValueError(f"{name} needs at least 2 classes (columns), got {c}")
    _check_prob_values(arr, multilabel=multilabel, name=name)
    return arr


def _check_prob_values(arr: FloatArray, *, multilabel: bool, name: str) -> None:
    """Values in [0, 1] and (single-label) rows summing to 1, checked chunk by chunk."""
    ones = np.ones(arr.shape[-1], dtype=arr.dtype)
    for start, stop in chunks(arr.shape[-2]):
        block = arr[..., start:stop, :]
        if block.size == 0:
            continue
        lo, hi = float(block.min()), float(block.max())
        if not (np.isfinite(lo) and np.isfinite(hi)) or lo < -1e-6 or hi > 1 + 1e-6:
            raise ValueError(
                f"{name} must hold probabilities in [0, 1] (found values in [{lo:g}, {hi:g}]); "
                "pass predict_proba output, not decision scores or logits"
            )
        if not multilabel:
            bad = np.abs(block @ ones - 1.0) > 1e-3
            if bad.any():
                row = int(np.argwhere(bad)[0][-1]) + start
                raise ValueError(
                    f"{name} rows must sum to 1, row {row} does not; for multi-label "
                    "probabilities use the strategy class with multilabel=True"
                )


def as_committee_probs(probs: ArrayLike) -> FloatArray:
    """Check a committee's (n_members, n_pool, n_classes) probabilities."""
    arr = np.asarray(probs)
    if arr.ndim != 3:
        raise ValueError(
            "committee strategies need probs of shape (n_members, n_pool, n_classes), one "
            f"predict_proba per committee member stacked on axis 0; got shape {arr.shape}"
        )
    if arr.dtype.kind != "f":
        arr = arr.astype(np.float64)
    if arr.shape[0] < 2:
        raise ValueError(f"a committee needs at least 2 members, got {arr.shape[0]}")
    if arr.shape[2] < 2:
        raise ValueError(f"probs needs at least 2 classes, got {arr.shape[2]}")
    _check_prob_values(arr, multilabel=False, name="probs")
    return arr


def as_embeddings(
    embeddings: ArrayLike, *, name: str = "embeddings", n_rows: int | None = None
) -> FloatArray:
    """Check a (n, n_features) float matrix; float32 and float64 pass through without a copy."""
    arr = np.asarray(embeddings)
    if arr.dtype.kind not in "fiu":
        raise TypeError(f"{name} must be numeric, got dtype {arr.dtype}")
    if arr.dtype.kind != "f" or arr.dtype.itemsize < 4:
        arr = arr.astype(np.float32)
    if arr.ndim != 2:
        raise ValueError(f"{name} must have shape (n_items, n_features), got shape {arr.shape}")
    if n_rows is not None and arr.shape[0] != n_rows:
        raise ValueError(
            f"{name} has {arr.shape[0]} rows but probs has {n_rows}; both must describe the "
            "same pool, row for row"
        )
    for start, stop in chunks(arr.shape[0]):
        if not np.isfinite(arr[start:stop]).all():
            raise ValueError(f"{name} contains NaN or infinite values (rows {start}-{stop - 1})")
    return arr


def as_labeled_embeddings(labeled: ArrayLike | None, n_features: int) -> FloatArray | None:
    if labeled is None:
        return None
    arr = as_embeddings(labeled, name="labeled_embeddings")
    if arr.shape[0] == 0:
        return None
    if arr.shape[1] != n_features:
        raise ValueError(
            f"labeled_embeddings has {arr.shape[1]} features but embeddings has {n_features}"
        )
    return arr


def as_class_weights(class_weights: ArrayLike | None, n_classes: int) -> FloatArray | None:
    if class_weights is None:
        return None
    w = np.asarray(class_weights, dtype=np.float64)
    if w.shape != (n_classes,):
        raise ValueError(
            f"class_weights must have one weight per class, shape ({n_classes},), got {w.shape}"
        )
    if not np.isfinite(w).all() or (w < 0).any() or not (w > 0).any():
        raise ValueError("class_weights must be finite, non-negative and not all zero")
    return w


def as_rng(random_state: int | np.random.Generator | None) -> np.random.Generator:
    if isinstance(random_state, np.random.Generator):
        return random_state
    return np.random.default_rng(random_state)


def chunks(n: int, size: int = CHUNK_ROWS) -> Iterator[tuple[int, int]]:
    """``(start, stop)`` pairs covering ``range(n)`` in blocks of ``size`` rows."""
    for start in range(0, n, size):
        yield start, min(start + size, n)


def tie_rng(random_state: int | np.random.Generator | None) -> np.random.Generator | None:
    """The generator :func:`top_k` breaks ties with: none without a seed (ties then go to
    the lower index, reproducibly)."""
    return None if random_state is None else as_rng(random_state)


def top_k(scores: NDArray[np.floating[Any]], k: int,
          rng: np.random.Generator | None = None) -> IntArray:
    """Indices of the ``k`` largest scores, best first. Equal scores go to the lower index,
    or with ``rng`` in a random order (drawn only when there are ties, so a run without any
    reads the same random stream either way): a model that has seen one class scores every
    item alike, and the lower index is the pool's order, the file's. A seed batch of one class
    then handed out the file's next rows, round after round, of that class (a two-class set
    whose 1,200 out-of-scope queries followed its 2,400 in-scope ones: 280 labels, none of the
    second class).

    Runs in O(n + k log k): one ``argpartition`` then a sort of the ``k`` winners only.
    """
    n = scores.shape[0]
    k = min(k, n)
    if k == 0:
        return np.empty(0, dtype=np.intp)
    if k < n:
        part = np.argpartition(scores, n - k)[n - k :]
        # argpartition breaks ties arbitrarily; items tied with the k-th score are decided
        # by index (or at random with rng), never by numpy's partition internals.
        kth = scores[part].min()
        n_tied = np.count_nonzero(scores == kth)
        if n_tied > np.count_nonzero(scores[part] == kth):
            above = np.flatnonzero(scores > kth)
            tied = np.flatnonzero(scores == kth)
            tied = (tied[: k - above.shape[0]] if rng is None
                    else np.sort(rng.choice(tied, k - above.shape[0], replace=False)))
            part = np.concatenate([above, tied])
    else:
        part = np.arange(n)
    won = scores[part]
    if rng is not None and np.unique(won).shape[0] < won.shape[0]:
        order = np.lexsort((rng.permutation(part.shape[0]), -won))
    else:
        order = np.lexsort((part, -won))
    return part[order].astype(np.intp, copy=False)


def weight_by_class_value(
    scores: NDArray[np.float64], probs: FloatArray, class_weights: FloatArray | None
) -> NDArray[np.float64]:
    """Scale each item's score by its expected class value ``probs @ w / max(w)``."""
    if class_weights is None:
        return scores
    w = class_weights / class_weights.max()
    value = np.empty(probs.shape[0], dtype=np.float64)
    for start, stop in chunks(probs.shape[0]):
        value[start:stop] = probs[start:stop] @ w
    return scores * value
