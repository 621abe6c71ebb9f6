"""Score a pool stored as Parquet shards and select a batch, shard by shard in parallel.

Map (one task per shard, :func:`map_shard`): read the shard, score it with the current model,
and keep its best candidates for the strategy. Reduce (:func:`reduce_candidates`): merge the
candidates of every shard and pick the batch among them with the strategy's own code. A task
holds one shard, never the pool, so memory per worker is bounded by the shard size.

What a shard keeps and what the reduce does depends on the strategy:

- per-item scores (``least_confidence``, ``margin``, ``entropy``, ``vote_entropy``, ``bald``,
  ``density``): the shard's top ``k`` by the strategy's score, the batch is the top ``k`` of
  the merge: exactly the single-process batch (``density`` weighs by the shard's density, not
  the pool's);
- ``cluster_margin``: the shard's ``candidate_factor * k`` smallest margins, then cluster-margin
  on the merge: exactly the single-process batch, since it clusters those candidates only;
- with equal scores at the cut (a model of one class scores every item alike) both are a
  seeded random choice among the tied, as in one process, but not the same choice: each shard
  draws among its tied items with a seed of its own (:func:`shard_seed`), the reduce among the
  shards' candidates, one process among every tied item;
- ``kcenter``, ``kmeans``, ``typiclust``, ``badge``: the strategy picks ``candidate_factor * k``
  items in each shard, then runs again on their union (two-level selection, as distributed
  k-center; for ``typiclust`` the second level clusters the candidates, whose cluster sizes
  are candidate counts, not the pool's density);
- ``random``: a seeded uniform key per item, smallest ``k`` keys: a uniform sample of the pool.

The same functions run in-process (``executor="local"``, for a small pool or a check) and on
Ray (``executor="ray"``): a local Ray started on first use, or a cluster by ``address``.
"""

from __future__ import annotations

import math
import os
import resource
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from ..strategies import STRATEGIES, get_strategy
from ..strategies._base import Selection, tie_rng, top_k
from .neighbors import neighbor_mask
from .shards import Shard, list_shards, read_shard

__all__ = [
    "POINTWISE",
    "SCORE_CHUNK",
    "ScaleQuery",
    "ScaleResult",
    "ShardResult",
    "map_shard",
    "reduce_candidates",
    "score_and_select",
    "strategy_probs",
]

#: Rows scored per predict_proba call inside a task.
SCORE_CHUNK = 50_000
#: Strategies whose score of an item does not depend on the other items picked.
POINTWISE = frozenset({"least_confidence", "margin", "entropy", "vote_entropy", "bald",
                       "density", "random"})


@dataclass(frozen=True)
class ScaleQuery:
    """What every map task reads (shipped once to the workers).

    ``model`` has ``predict_proba``; ``committee`` (for ``vote_entropy`` / ``bald``) returns
    (n_members, n, n_classes). ``exclude`` are pool rows never to pick (labeled items,
    holdout, gold). ``labeled_embeddings`` (m, d) feed the diversity strategies and the
    restriction to the ``n_neighbors`` nearest neighbours of labeled items (None: no
    restriction). ``keep_probs`` returns every row's probabilities (a round ranks the whole
    queue by them); without it a task returns its candidates only.
    """

    strategy: str
    k: int
    model: Any
    committee: Any = None
    exclude: NDArray[np.int64] = field(default_factory=lambda: np.empty(0, dtype=np.int64))
    labeled_embeddings: NDArray[np.float32] | None = None
    class_weights: NDArray[np.float64] | None = None
    multilabel: bool = False
    n_neighbors: int | None = None
    candidate_factor: float = 10.0
    seed: int = 0
    keep_probs: bool = False

    def check(self) -> None:
        """Raise ValueError with what to fix when the query cannot run."""
        if self.strategy not in STRATEGIES:
            raise ValueError(f"unknown strategy {self.strategy!r}; choose one of: "
                             f"{', '.join(STRATEGIES)}")
        if isinstance(self.k, bool) or not isinstance(self.k, int | np.integer) or self.k < 1:
            raise ValueError(f"k must be a whole number of items >= 1, got {self.k!r}")
        if STRATEGIES[self.strategy].needs_committee and self.committee is None:
            raise ValueError(f"strategy {self.strategy!r} reads a committee's probabilities: "
                             "pass committee=..., or pick an uncertainty strategy such as "
                             "'entropy'")
        if not self.candidate_factor >= 1:
            raise ValueError(f"candidate_factor must be >= 1, got {self.candidate_factor}")
        if self.n_neighbors is not None and (isinstance(self.n_neighbors, bool)
                                             or int(self.n_neighbors) < 1):
            raise ValueError(f"n_neighbors must be >= 1 or None, got {self.n_neighbors!r}")


@dataclass
class ShardResult:
    """A map task's answer: the shard's candidates (pool ``rows``, the strategy's ``probs``
    and ``embeddings`` of each, their ``scores``) and what the task cost."""

    rows: NDArray[np.int64]
    probs: NDArray[np.float64] | None
    embeddings: NDArray[np.float32]
    scores: NDArray[np.float64]
    n_rows: int
    n_scored: int
    seconds: float
    pid: int
    peak_rss_mb: float
    all_rows: NDArray[np.int64] | None = None
    all_probs: NDArray[np.float32] | None = None


@dataclass
class ScaleResult:
    """The batch (pool ``rows`` best first, their ``scores``), every row's probabilities when
    asked (``probs``, row = pool row; rows no shard holds are zero), and per-shard costs."""

    rows: NDArray[np.int64]
    scores: NDArray[np.float64]
    probs: NDArray[np.float32] | None
    shards: list[ShardResult]

    @property
    def n_candidates(self) -> int:
        return int(sum(s.rows.shape[0] for s in self.shards))

    def peak_rss_mb_per_worker(self) -> dict[int, float]:
        """The highest resident memory each worker process reached, by process id."""
        peaks: dict[int, float] = {}
        for s in self.shards:
            peaks[s.pid] = max(peaks.get(s.pid, 0.0), s.peak_rss_mb)
        return peaks


def strategy_probs(probs: NDArray[Any], multilabel: bool) -> NDArray[np.float64]:
    """Rows summing to 1 for the strategies, as a project's round gives them: multi-label,
    the least certain label as ``[0.5 + u, 0.5 - u]`` with ``u = min_j |p_j - 0.5|``."""
    p = np.asarray(probs, dtype=np.float64)
    if multilabel:
        u = np.abs(p - 0.5).min(axis=1)
        return np.stack([0.5 + u, 0.5 - u], axis=1)
    total = p.sum(axis=1, keepdims=True)
    return np.divide(p, total, out=np.full_like(p, 1.0 / p.shape[1]), where=total > 0)


def _predict(model: Any, X: Any) -> NDArray[np.float32]:
    n = int(X.shape[0])
    if n == 0:
        return np.empty((0, 0), dtype=np.float32)
    return np.concatenate([np.asarray(model.predict_proba(X[s:s + SCORE_CHUNK]), np.float32)
                           for s in range(0, n, SCORE_CHUNK)])


def _map_plan(q: ScaleQuery) -> tuple[str, int]:
    """(strategy run on a shard, items a shard keeps)."""
    wide = max(q.k, math.ceil(q.candidate_factor * q.k))
    if q.strategy == "cluster_margin":
        return "margin", wide
    if q.strategy in POINTWISE:
        return q.strategy, q.k
    return q.strategy, wide


def _candidate_rows(shard: Shard, q: ScaleQuery, keep: int) -> NDArray[np.intp]:
    """Positions in the shard that may be picked: not excluded, and (with ``n_neighbors`` and
    labeled items) near a labeled item, unless that leaves fewer than ``keep``."""
    free = ~np.isin(shard.rows, q.exclude)
    if q.n_neighbors is not None and q.labeled_embeddings is not None \
            and q.labeled_embeddings.shape[0] > 0:
        near = free & neighbor_mask(shard.embeddings, q.labeled_embeddings,
                                    int(q.n_neighbors),
                                    index_path=shard.path.with_suffix(".hnsw"))
        if np.count_nonzero(near) >= keep:
            free = near
    return np.flatnonzero(free)


def shard_seed(seed: int, shard_no: int) -> int:
    """The seed a shard's strategy runs with: the query's own for the first shard (a pool of
    one shard picks what one process picks), one drawn from both for the others, so shards of
    one size do not make the same random choices (the same offsets among tied rows)."""
    if shard_no == 0:
        return seed
    return int(np.random.SeedSequence([seed, shard_no]).generate_state(1)[0])


def _query_kwargs(name: str, q: ScaleQuery, probs: Any, embeddings: Any,
                  seed: int | None = None) -> dict[str, Any]:
    cls = STRATEGIES[name]
    kwargs: dict[str, Any] = {"embeddings": embeddings,
                              "random_state": q.seed if seed is None else seed}
    if cls.needs_probs:
        kwargs["probs"] = probs
        kwargs["class_weights"] = q.class_weights
    if cls.needs_embeddings:
        kwargs["labeled_embeddings"] = q.labeled_embeddings
    return kwargs


def map_shard(path: str | Path, q: ScaleQuery, shard_no: int = 0) -> ShardResult:
    """Score one shard and keep its best candidates for ``q.strategy`` (the map step)."""
    started = time.perf_counter()
    shard = read_shard(path)
    name, keep = _map_plan(q)
    cand = _candidate_rows(shard, q, keep)
    all_probs = _predict(q.model, shard.X) if q.keep_probs else None
    committee = STRATEGIES[name].needs_committee
    probs: Any = None
    if committee:
        probs = np.asarray(q.committee.predict_proba(shard.X[cand]), dtype=np.float64)
    elif STRATEGIES[name].needs_probs:
        raw = all_probs[cand] if all_probs is not None else _predict(q.model, shard.X[cand])
        probs = strategy_probs(raw, q.multilabel)
    # the candidates' embeddings are copied only for a strategy that reads them on the shard
    emb = (np.ascontiguousarray(shard.embeddings[cand]) if STRATEGIES[name].needs_embeddings
           else None)
    if cand.shape[0] == 0:
        picked, scores = np.empty(0, dtype=np.intp), np.empty(0)
    elif name == "random":  # uniform keys: the smallest k of the merge are a uniform sample
        keys = np.asarray(np.random.default_rng([q.seed, shard_no]).random(int(cand.shape[0])))
        picked = top_k(-keys, keep)
        scores = -keys[picked]
    else:
        sel = get_strategy(name).query(min(keep, cand.shape[0]),
                                       **_query_kwargs(name, q, probs, emb,
                                                       shard_seed(q.seed, shard_no)))
        picked, scores = np.asarray(sel.indices, dtype=np.intp), np.asarray(sel.scores, float)
    n_scored = shard.rows.shape[0] if q.keep_probs else cand.shape[0]
    return ShardResult(
        rows=shard.rows[cand[picked]], scores=scores,
        probs=None if probs is None else (probs[:, picked] if committee else probs[picked]),
        embeddings=np.ascontiguousarray(shard.embeddings[cand[picked]]) if emb is None
        else emb[picked], n_rows=len(shard), n_scored=int(n_scored),
        seconds=time.perf_counter() - started, pid=os.getpid(), peak_rss_mb=_peak_rss_mb(),
        all_rows=shard.rows if q.keep_probs else None, all_probs=all_probs)


def _peak_rss_mb() -> float:
    """This process's peak resident memory so far (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def reduce_candidates(results: Sequence[ShardResult], q: ScaleQuery) -> Selection:
    """The batch among the merged candidates: pool rows (best first) and their scores."""
    nonempty = [r for r in results if r.rows.shape[0]]
    if not nonempty:
        return Selection(np.empty(0, dtype=np.intp), np.empty(0))
    rows = np.concatenate([r.rows for r in nonempty])
    order = np.argsort(rows, kind="stable")  # pool order: one merge whatever shard ends first
    rows = rows[order]
    scores = np.concatenate([r.scores for r in nonempty])[order]
    if q.strategy in POINTWISE:  # equal scores in a seeded random order (not one process's)
        idx = top_k(scores, q.k, tie_rng(q.seed))
        out = np.zeros(idx.shape[0]) if q.strategy == "random" else scores[idx]
        return Selection(rows[idx].astype(np.intp), out)
    emb = np.concatenate([r.embeddings for r in nonempty])[order]
    probs = None
    if STRATEGIES[q.strategy].needs_probs:
        probs = np.concatenate([r.probs for r in nonempty if r.probs is not None])[order]
    params = {"candidate_factor": q.candidate_factor} if q.strategy == "cluster_margin" else {}
    sel = get_strategy(q.strategy, **params).query(
        min(q.k, rows.shape[0]), **_query_kwargs(q.strategy, q, probs, emb))
    idx = np.asarray(sel.indices, dtype=np.intp)
    return Selection(rows[idx].astype(np.intp), np.asarray(sel.scores, dtype=np.float64))


def _gather_probs(results: Sequence[ShardResult]) -> NDArray[np.float32] | None:
    parts = [r for r in results if r.all_rows is not None and r.all_rows.shape[0]]
    if not parts:
        return None
    n = int(max(int(r.all_rows.max()) for r in parts if r.all_rows is not None)) + 1
    width = max(int(r.all_probs.shape[1]) for r in parts if r.all_probs is not None)
    probs = np.zeros((n, width), dtype=np.float32)
    for r in parts:
        if r.all_rows is not None and r.all_probs is not None:
            probs[r.all_rows] = r.all_probs
    return probs


def score_and_select(shards: str | Path | Sequence[str | Path], query: ScaleQuery, *,
                     executor: str = "ray", address: str | None = None,
                     num_cpus: int | None = None) -> ScaleResult:
    """Score every shard and select ``query.k`` items (map on each shard, reduce on the
    candidates). ``shards``: a folder of shards or a list of shard files, readable by every
    worker at the same path.

    ``executor="ray"`` runs the map tasks on Ray: the running Ray of this process when there is
    one, else ``ray.init(address=address)`` (``None``: the cluster in ``RAY_ADDRESS``, or a new
    local Ray of ``num_cpus`` CPUs; ``"auto"`` or ``"ray://head:10001"``: a cluster), which
    stays up for the next call. ``executor="local"`` maps in this process, one shard at a time.
    """
    query.check()
    paths = list_shards(shards)
    if executor == "local":
        results = [map_shard(p, query, i) for i, p in enumerate(paths)]
    elif executor == "ray":
        results = _map_on_ray(paths, query, address=address, num_cpus=num_cpus)
    else:
        raise ValueError(f"executor must be 'ray' or 'local', got {executor!r}")
    sel = reduce_candidates(results, query)
    return ScaleResult(np.asarray(sel.indices, dtype=np.int64), sel.scores,
                       _gather_probs(results), results)


def _map_on_ray(paths: list[Path], q: ScaleQuery, *, address: str | None,
                num_cpus: int | None) -> list[ShardResult]:
    from .cluster import connect

    ray = connect(address=address, num_cpus=num_cpus)
    task = ray.remote(num_cpus=1, max_retries=2)(map_shard)
    shared = ray.put(q)  # the model and the excluded rows travel once, not once per shard
    results: list[ShardResult] = ray.get([task.remote(str(p), shared, i)
                                          for i, p in enumerate(paths)])
    return results
