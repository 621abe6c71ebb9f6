"""A project's round on Ray (``ray_above_items``) picks the batch and ranks the queue as the
same round in the worker process does, from the features written once as Parquet shards."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from sklearn.datasets import load_digits

from activelabel.runtime.settings import Storage
from activelabel.store import get_round, round_selections
from activelabel.store.models import Item
from tests.support.projects import (
    digit_rows,
    label_rows,
    new_project,
    request_and_run_round,
)

N, HOLDOUT, BATCH = 300, 60, 20


def _batch(storage: Storage, project_id: int, round_id: int) -> list[tuple[int, float]]:
    with storage.read_sessions() as session:
        rows = {i.id: i.row for i in session.query(Item).filter_by(project_id=project_id)}
        return [(rows[s.item_id], round(float(s.score or 0), 6))
                for s in round_selections(session, round_id)]


def _second_round(storage: Storage, **settings: Any) -> tuple[Any, list[tuple[int, float]]]:
    bunch = load_digits()
    images, target = np.asarray(bunch.images, dtype=np.int64), bunch.target
    seeded = new_project(storage, rows=digit_rows(images, N, HOLDOUT), settings={
        "featurizer": "image", "featurizer_params": {"field": "image"}, "batch_size": BATCH,
        **settings})
    # cold start: features only, no model
    seed = request_and_run_round(storage, seeded.project_id)["round_id"]
    seed_rows = [r for r, _ in _batch(storage, seeded.project_id, seed)]
    holdout = list(range(N - HOLDOUT, N))
    label_rows(storage, seeded, seed_rows + holdout,
               [str(int(target[r])) for r in seed_rows + holdout])
    second = request_and_run_round(storage, seeded.project_id)["round_id"]
    with storage.read_sessions() as session:
        rnd = get_round(session, seeded.project_id, second)
        assert rnd.status == "done", rnd.error
    return seeded, _batch(storage, seeded.project_id, second)


@pytest.mark.slow
@pytest.mark.parametrize("strategy", ["margin", "cluster_margin"])
def test_a_round_on_ray_is_the_round_in_one_process(ray_local: Any, engine_storage: Storage,
                                                    strategy: str) -> None:
    here, batch_here = _second_round(engine_storage, strategy=strategy)
    there, batch_there = _second_round(engine_storage, strategy=strategy, ray_above_items=N)
    assert len(batch_there) == BATCH
    assert batch_there == batch_here
    probs_here = engine_storage.arrays.load(here.project_id, "probs")
    probs_there = engine_storage.arrays.load(there.project_id, "probs")
    np.testing.assert_allclose(probs_there, probs_here, rtol=1e-5, atol=1e-6)
    shards = list(engine_storage.arrays.project_dir(there.project_id).glob("shards-*/*.parquet"))
    assert len(shards) == 1  # 300 items: one shard, written once for these features
    assert not list(engine_storage.arrays.project_dir(here.project_id).glob("shards-*"))


def test_below_the_threshold_the_round_stays_in_the_process(engine_storage: Storage) -> None:
    """No shards written, no Ray needed, when the pool is smaller than ``ray_above_items``."""
    seeded, batch = _second_round(engine_storage, strategy="margin", ray_above_items=N + 1)
    assert len(batch) == BATCH
    assert not list(engine_storage.arrays.project_dir(seeded.project_id).glob("shards-*"))


def test_shards_are_written_once_per_features(engine_storage: Storage) -> None:
    """The same features reuse their shards; new features replace them."""
    from activelabel.labeling.featurize import ProjectFeatures
    from activelabel.labeling.scaled import project_shards
    from activelabel.scale import read_shard

    X = np.arange(50, dtype=np.float32).reshape(25, 2)
    first = ProjectFeatures(X, X, "aaaa", rebuilt=True, seconds=0.0)
    folder = project_shards(engine_storage, 987_001, first, shard_rows=10)
    shards = sorted(folder.glob("*.parquet"))
    assert len(shards) == 3
    stamp = shards[0].stat().st_mtime_ns
    assert project_shards(engine_storage, 987_001, first, shard_rows=10) == folder
    assert shards[0].stat().st_mtime_ns == stamp  # not written again
    second = ProjectFeatures(X * 2, X * 2, "bbbb", rebuilt=True, seconds=0.0)
    newer = project_shards(engine_storage, 987_001, second, shard_rows=10)
    assert newer != folder
    assert not folder.exists()  # the old features' shards are gone
    np.testing.assert_array_equal(read_shard(sorted(newer.glob("*.parquet"))[2]).X, X[20:] * 2)
