"""Parquet shards read back as what was written: dense, sparse, with embeddings, pool rows."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp

from activelabel.scale import list_shards, read_shard, write_shards


def test_dense_shards_round_trip(tmp_path: Path) -> None:
    X = np.arange(35, dtype=np.float32).reshape(7, 5)
    paths = write_shards(tmp_path, X, shard_rows=3, rows=np.arange(100, 107))
    assert [p.name for p in paths] == [f"shard-0000{i}.parquet" for i in range(3)]
    assert list_shards(tmp_path) == paths
    parts = [read_shard(p) for p in paths]
    assert [len(s) for s in parts] == [3, 3, 1]
    np.testing.assert_array_equal(np.concatenate([s.rows for s in parts]), np.arange(100, 107))
    np.testing.assert_array_equal(np.vstack([s.X for s in parts]), X)
    assert parts[0].embeddings is parts[0].X  # no separate embeddings stored


def test_sparse_shards_keep_csr_and_embeddings(tmp_path: Path) -> None:
    X = sp.random(50, 40, density=0.1, format="csr", random_state=1, dtype=np.float32)
    E = np.random.default_rng(0).normal(size=(50, 4)).astype(np.float32)
    paths = write_shards(tmp_path, X, embeddings=E, shard_rows=20)
    parts = [read_shard(p) for p in paths]
    assert all(sp.issparse(s.X) and s.X.shape[1] == 40 for s in parts)
    np.testing.assert_allclose(sp.vstack([s.X for s in parts]).toarray(), X.toarray())
    np.testing.assert_array_equal(np.vstack([s.embeddings for s in parts]), E)


def test_bad_inputs_say_what_to_fix(tmp_path: Path) -> None:
    X = sp.random(5, 4, density=0.5, format="csr")
    with pytest.raises(ValueError, match="sparse X needs dense embeddings"):
        write_shards(tmp_path, X)
    with pytest.raises(ValueError, match="one pool row per line"):
        write_shards(tmp_path, np.ones((5, 2)), rows=[1, 2])
    with pytest.raises(ValueError, match="does not exist"):
        list_shards(tmp_path / "nowhere")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match=r"no \*\.parquet shard"):
        list_shards(tmp_path / "empty")
