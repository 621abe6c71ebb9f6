"""The scale extra's tests: Ray and faiss-cpu come with ``pip install -e '.[scale]'`` (the
test extra includes it, so ``make test`` runs them). Without it they are skipped with the
reason, and fail in CI (CI=true), where a skip would hide that nothing ran."""

from __future__ import annotations

import importlib
import os
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pytest


def need(module: str) -> ModuleType:
    """The module, or a skip (a failure in CI) saying how to install it."""
    try:
        return importlib.import_module(module)
    except ImportError:
        reason = f"{module} is not installed: pip install -e '.[scale]' (the scale extra)"
        if os.environ.get("CI") == "true":
            pytest.fail(reason)
        pytest.skip(reason)


@pytest.fixture(scope="session")
def ray_local() -> Iterator[Any]:
    """A local Ray of 2 CPUs for the whole session, shut down at its end."""
    ray = need("ray")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        yield ray
    finally:
        ray.shutdown()


def blobs(n: int, *, d: int = 8, n_classes: int = 3, seed: int = 0) -> tuple[Any, Any]:
    """(X float32 (n, d), y (n,)): Gaussian blobs, one per class."""
    rng = np.random.default_rng(seed)
    centers = rng.normal(0, 3, size=(n_classes, d))
    y = rng.integers(n_classes, size=n)
    X = (centers[y] + rng.normal(size=(n, d))).astype(np.float32)
    return X, y


@pytest.fixture
def pool(tmp_path: Path) -> tuple[Any, Any, Path]:
    """2,500 items in 5 dense shards of 500 rows: (X, y, shard folder)."""
    from activelabel.scale import write_shards

    X, y = blobs(2500)
    write_shards(tmp_path / "shards", X, shard_rows=500)
    return X, y, tmp_path / "shards"
