"""The same map and reduce on a local Ray (2 CPUs): the same batch as in one process, the work
spread over worker processes, each holding a shard and not the pool."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from activelabel.models import make_model
from activelabel.scale import ScaleQuery, score_and_select

from .conftest import blobs

pytestmark = pytest.mark.slow  # a Ray of its own, seconds per test


def fitted(X: Any, y: Any) -> Any:
    return make_model("logistic_regression", classes=[0, 1, 2], random_state=0).fit(X[:60],
                                                                                   y[:60])


@pytest.mark.parametrize("name", ["margin", "cluster_margin", "kcenter"])
def test_ray_picks_what_one_process_picks(ray_local: Any, pool: tuple[Any, Any, Path],
                                          name: str) -> None:
    X, y, shards = pool
    q = ScaleQuery(name, 20, fitted(X, y), exclude=np.arange(0, 2500, 7),
                   labeled_embeddings=X[:10], seed=5, keep_probs=True)
    on_ray = score_and_select(shards, q, executor="ray")
    local = score_and_select(shards, q, executor="local")
    np.testing.assert_array_equal(on_ray.rows, local.rows)
    np.testing.assert_allclose(on_ray.scores, local.scores)
    assert on_ray.probs is not None
    np.testing.assert_allclose(on_ray.probs, q.model.predict_proba(X), rtol=1e-5, atol=1e-6)
    assert {s.pid for s in on_ray.shards} != {os.getpid()}  # mapped in Ray's workers


def test_worker_memory_follows_the_shard_not_the_pool(ray_local: Any, tmp_path: Path) -> None:
    """Shards of 50,000 rows (6 MB): a pool of 200,000 rows, then one of 1.2M (146 MB). The
    same workers reach about the same peak for both: none grows by half the bigger pool (a
    worker holding the pool would)."""
    from activelabel.scale import write_shards

    X, y = blobs(50_000, d=32)
    model = fitted(X, y)
    peaks = []
    for n_shards in (4, 24):
        folder = tmp_path / str(n_shards)
        for i in range(n_shards):
            write_shards(folder, X, rows=np.arange(i * 50_000, (i + 1) * 50_000),
                         shard_rows=50_000, start_index=i)
        got = score_and_select(folder, ScaleQuery("cluster_margin", 50, model), executor="ray")
        assert got.rows.shape == (50,)
        assert sum(s.n_rows for s in got.shards) == n_shards * 50_000
        peaks.append(got.peak_rss_mb_per_worker())
    small, big = peaks
    both = set(small) & set(big)
    assert both, (small, big)
    pool_mb = 1_200_000 * 32 * 4 / 2**20
    assert max(big[pid] - small[pid] for pid in both) < pool_mb / 2, (small, big)


def test_a_process_without_ray_starts_a_local_one_on_first_use() -> None:
    """What a worker process does on its first round on Ray (no RAY_ADDRESS): a local Ray,
    kept for the next call."""
    import subprocess
    import sys

    code = ("from activelabel.scale.cluster import connect\n"
            "ray = connect(num_cpus=1)\n"
            "assert connect() is ray\n"
            "print(ray.cluster_resources()['CPU'])\n")
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=300, check=False, env=env)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip().splitlines()[-1] == "1.0"
