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
    """A pool of 1.2M rows (about 150 MB of features) in 12 shards: no worker grows by
    anything near the pool, only by about a shard (12 MB)."""
    from activelabel.scale import write_shards

    X, y = blobs(100_000, d=32)
    for i in range(12):
        write_shards(tmp_path, X, rows=np.arange(i * 100_000, (i + 1) * 100_000),
                     shard_rows=100_000, start_index=i)
    q = ScaleQuery("margin", 50, fitted(X, y), keep_probs=False)
    got = score_and_select(tmp_path, q, executor="ray")
    assert got.rows.shape == (50,)
    assert sum(s.n_rows for s in got.shards) == 1_200_000
    baseline = ray_local.get(ray_local.remote(_peak_rss_mb_of_a_fresh_task).remote())
    peaks = got.peak_rss_mb_per_worker()
    pool_mb = 1_200_000 * 32 * 4 / 2**20
    assert max(peaks.values()) - baseline < pool_mb / 2, (peaks, baseline)


def _peak_rss_mb_of_a_fresh_task() -> float:
    import resource


    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


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
