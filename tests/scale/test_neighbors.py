"""Candidate restriction: only nearest neighbours of labeled items are candidates, the shard's
index is built once and reused, and a shard with too few neighbours falls back to all rows."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from activelabel.scale import ScaleQuery, score_and_select, write_shards

from .conftest import need


def test_candidates_are_the_neighbours_of_labeled_items(tmp_path: Path) -> None:
    need("faiss")
    from activelabel.scale.neighbors import neighbor_mask

    rng = np.random.default_rng(0)
    far = rng.normal(0, 1, size=(500, 4)).astype(np.float32)
    near = (np.array([50, 50, 50, 50]) + rng.normal(0, 0.1, size=(10, 4))).astype(np.float32)
    E = np.vstack([far, near])
    mask = neighbor_mask(E, near[:2], 10, index_path=tmp_path / "x.hnsw")
    np.testing.assert_array_equal(np.flatnonzero(mask), np.arange(500, 510))
    assert (tmp_path / "x.hnsw").is_file()
    with pytest.raises(ValueError, match="n_neighbors must be"):
        neighbor_mask(E, near, 0)


def test_restricted_selection_scores_only_neighbours(tmp_path: Path) -> None:
    need("faiss")
    from activelabel.models import make_model

    rng = np.random.default_rng(1)
    X = rng.normal(size=(4000, 8)).astype(np.float32)
    y = (X[:, 0] > 0).astype(int)
    write_shards(tmp_path, X, shard_rows=1000)
    model = make_model("logistic_regression", classes=[0, 1], random_state=0).fit(X[:40], y[:40])
    labeled = np.arange(40)
    q = ScaleQuery("margin", 10, model, exclude=labeled, labeled_embeddings=X[labeled],
                   n_neighbors=20)
    got = score_and_select(tmp_path, q, executor="local")
    assert sorted(p.name for p in tmp_path.glob("*.hnsw")) == [
        f"shard-0000{i}.hnsw" for i in range(4)]  # kept for the next round
    scored = sum(s.n_scored for s in got.shards)
    assert 10 * 4 <= scored <= 40 * 20 * 4  # at most k neighbours of each labeled item a shard
    d2 = ((X[got.rows][:, None, :] - X[labeled][None, :, :]) ** 2).sum(-1).min(axis=1)
    kth = np.sort(((X[:, None, :] - X[labeled][None]) ** 2).sum(-1), axis=0)[80]
    assert (d2 <= kth.max()).all()  # every pick is close to some labeled item
    again = score_and_select(tmp_path, q, executor="local")
    np.testing.assert_array_equal(got.rows, again.rows)  # the saved index gives the same picks


def test_too_few_neighbours_fall_back_to_the_whole_shard(tmp_path: Path) -> None:
    need("faiss")
    X = np.random.default_rng(2).normal(size=(300, 4)).astype(np.float32)
    write_shards(tmp_path, X, shard_rows=300)
    q: Any = ScaleQuery("random", 50, None, labeled_embeddings=X[:1], n_neighbors=5)
    got = score_and_select(tmp_path, q, executor="local")
    assert got.rows.shape == (50,)  # 5 neighbours could not fill a batch of 50
