"""Array store: round trip, memory map, atomic replace, names, project deletion."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from activelabel.store import ArrayStore


def test_save_load_round_trip_and_mmap(tmp_path: Path) -> None:
    store = ArrayStore(tmp_path)
    emb = np.arange(12, dtype=np.float32).reshape(4, 3)
    store.save(1, "embeddings", emb)
    loaded = store.load(1, "embeddings")
    assert isinstance(loaded, np.memmap)
    np.testing.assert_array_equal(loaded, emb)
    assert store.load(1, "embeddings", mmap=False).dtype == np.float32  # type: ignore[union-attr]
    assert store.load(1, "scores") is None
    assert store.load(2, "embeddings") is None
    assert store.exists(1, "embeddings")
    assert store.names(1) == ["embeddings"]


def test_replace_is_atomic_and_leaves_no_temp_files(tmp_path: Path) -> None:
    store = ArrayStore(tmp_path)
    store.save(1, "scores", np.zeros(5))
    held = store.load(1, "scores")  # a reader mapping the old file keeps its data
    store.save(1, "scores", np.ones(7))
    np.testing.assert_array_equal(held, np.zeros(5))
    np.testing.assert_array_equal(store.load(1, "scores"), np.ones(7))
    assert sorted(p.name for p in store.project_dir(1).iterdir()) == ["scores.npy"]


def test_failed_write_keeps_the_old_array(tmp_path: Path) -> None:
    store = ArrayStore(tmp_path)
    store.save(1, "x", np.arange(3))
    with pytest.raises(ValueError, match="object"):
        store.save(1, "x", np.array([{"a": 1}], dtype=object))
    np.testing.assert_array_equal(store.load(1, "x"), np.arange(3))


def test_names_are_checked_and_projects_deleted(tmp_path: Path) -> None:
    store = ArrayStore(tmp_path)
    for bad in ("../escape", "", "a/b", "x.npy"):
        with pytest.raises(ValueError, match="invalid array name"):
            store.save(1, bad, np.zeros(1))
    store.save(3, "a", np.zeros(1))
    assert store.delete(3, "a")
    assert not store.delete(3, "a")
    store.save(3, "b", np.zeros(1))
    store.delete_project(3)
    assert not store.project_dir(3).exists()
    assert store.names(3) == []
