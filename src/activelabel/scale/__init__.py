"""Pools beyond one machine: score a pool stored as Parquet shards on Ray and select a batch.

Map: each shard is scored by the current model in its own task, which keeps the shard's best
candidates for the strategy; reduce: the candidates are merged and the strategy (its diversity
step included) picks the batch among them. The same code runs on a local Ray, on a Ray cluster
by address, or in one process. Optional: ``pip install 'activelabel[scale]'`` (Ray and
faiss-cpu, the latter for restricting candidates to nearest neighbours of labeled items).
This package imports the core only (strategies), never the store or the service.
"""

from __future__ import annotations

from .pool import (
    POINTWISE,
    ScaleQuery,
    ScaleResult,
    ShardResult,
    map_shard,
    reduce_candidates,
    score_and_select,
    strategy_probs,
)
from .shards import DEFAULT_SHARD_ROWS, Shard, list_shards, read_shard, write_shards

__all__ = [
    "DEFAULT_SHARD_ROWS",
    "POINTWISE",
    "ScaleQuery",
    "ScaleResult",
    "Shard",
    "ShardResult",
    "list_shards",
    "map_shard",
    "read_shard",
    "reduce_candidates",
    "score_and_select",
    "strategy_probs",
    "write_shards",
]
