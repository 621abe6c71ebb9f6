"""Map on shards, reduce on candidates (in one process): the batch a single process picks over
the whole pool, for the strategies where the split is exact; k distinct free rows for all."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from activelabel.models import BootstrapCommittee, make_model
from activelabel.scale import ScaleQuery, score_and_select, strategy_probs
from activelabel.strategies import STRATEGIES, get_strategy

EXCLUDE = np.arange(0, 2500, 7, dtype=np.int64)  # labeled, holdout...: never picked


def fitted(X: Any, y: Any) -> Any:
    return make_model("logistic_regression", classes=[0, 1, 2], random_state=0).fit(X[:60],
                                                                                   y[:60])


def single_process(name: str, X: Any, model: Any, k: int, **params: Any) -> tuple[Any, Any]:
    """What a round does in one process: score the free rows, run the strategy on them."""
    free = np.setdiff1d(np.arange(X.shape[0]), EXCLUDE)
    sel = get_strategy(name, **params).query(
        k, probs=strategy_probs(model.predict_proba(X[free]), False), embeddings=X[free],
        random_state=3)
    return free[sel.indices], sel.scores


@pytest.mark.parametrize("name", ["margin", "entropy", "least_confidence", "cluster_margin"])
def test_exact_strategies_pick_what_one_process_picks(pool: tuple[Any, Any, Path],
                                                      name: str) -> None:
    X, y, shards = pool
    model = fitted(X, y)
    q = ScaleQuery(name, 20, model, exclude=EXCLUDE, seed=3)
    got = score_and_select(shards, q, executor="local")
    rows, scores = single_process(name, X, model, 20)
    np.testing.assert_array_equal(got.rows, rows)
    np.testing.assert_allclose(got.scores, scores, rtol=1e-6)
    assert got.n_candidates == (5 * 200 if name == "cluster_margin" else 5 * 20)


def test_committee_strategies_read_the_committee(pool: tuple[Any, Any, Path]) -> None:
    X, y, shards = pool
    committee = BootstrapCommittee(n_members=3, classes=[0, 1, 2], random_state=0).fit(
        X[:60], y[:60])
    q = ScaleQuery("bald", 15, fitted(X, y), committee=committee, exclude=EXCLUDE)
    got = score_and_select(shards, q, executor="local")
    free = np.setdiff1d(np.arange(X.shape[0]), EXCLUDE)
    want = get_strategy("bald").query(15, probs=committee.predict_proba(X[free]))
    np.testing.assert_array_equal(got.rows, free[want.indices])
    with pytest.raises(ValueError, match="committee"):
        score_and_select(shards, ScaleQuery("bald", 5, fitted(X, y)), executor="local")


@pytest.mark.parametrize("name", sorted(STRATEGIES))
def test_every_strategy_returns_k_distinct_free_rows(pool: tuple[Any, Any, Path],
                                                     name: str) -> None:
    X, y, shards = pool
    committee = None
    if STRATEGIES[name].needs_committee:
        committee = BootstrapCommittee(n_members=3, random_state=0).fit(X[:60], y[:60])
    q = ScaleQuery(name, 25, fitted(X, y), committee=committee, exclude=EXCLUDE,
                   labeled_embeddings=X[:10], seed=1)
    got = score_and_select(shards, q, executor="local")
    assert got.rows.shape == (25,)
    assert np.unique(got.rows).shape == (25,)
    assert not np.isin(got.rows, EXCLUDE).any()
    again = score_and_select(shards, q, executor="local")
    np.testing.assert_array_equal(got.rows, again.rows)  # seeded


def test_random_is_uniform_over_the_pool_not_the_shards(tmp_path: Path) -> None:
    """Shards of 900 and 100 rows: a uniform sample takes about 10% from the small one."""
    from activelabel.scale import write_shards

    X = np.zeros((1000, 2), dtype=np.float32)
    write_shards(tmp_path, X[:900], shard_rows=900)
    write_shards(tmp_path, X[900:], rows=np.arange(900, 1000), start_index=1)
    from_small = [np.count_nonzero(score_and_select(
        tmp_path, ScaleQuery("random", 100, None, seed=s), executor="local").rows >= 900)
        for s in range(20)]
    assert 6 <= np.mean(from_small) <= 14  # 50 per draw if shards counted alike


class _OneClass:
    """A model that has seen one class: every item scores alike."""

    def predict_proba(self, X: Any) -> Any:
        return np.tile(np.asarray([[1.0, 0.0]], dtype=np.float32), (X.shape[0], 1))


@pytest.mark.parametrize("name", ["margin", "cluster_margin"])
def test_shards_of_one_size_draw_their_ties_apart(pool: tuple[Any, Any, Path], name: str) -> None:
    """Every item tied: each shard keeps a seeded draw of its own, not the same offsets as
    every other shard of its size (one seed for all kept rows 0-19 + 500 s alike)."""
    _, _, shards = pool
    got = score_and_select(shards, ScaleQuery(name, 20, _OneClass(), seed=3), executor="local")
    offsets = [frozenset((s.rows % 500).tolist()) for s in got.shards]
    assert len(set(offsets)) == len(offsets)
    assert len(got.rows) == len(set(got.rows.tolist())) == 20
    again = score_and_select(shards, ScaleQuery(name, 20, _OneClass(), seed=3), executor="local")
    np.testing.assert_array_equal(got.rows, again.rows)  # seeded


def test_keep_probs_returns_every_row_and_a_small_pool_whole(pool: tuple[Any, Any, Path]) -> None:
    X, y, shards = pool
    model = fitted(X, y)
    got = score_and_select(shards, ScaleQuery("margin", 5000, model, exclude=EXCLUDE,
                                              keep_probs=True), executor="local")
    assert got.probs is not None
    np.testing.assert_allclose(got.probs, model.predict_proba(X), rtol=1e-5, atol=1e-6)
    assert got.rows.shape[0] == 2500 - EXCLUDE.shape[0]  # k above the pool: all free rows
    assert all(s.n_scored == 500 for s in got.shards)


def test_bad_queries_say_what_to_fix(pool: tuple[Any, Any, Path]) -> None:
    _, _, shards = pool
    with pytest.raises(ValueError, match="unknown strategy 'nope'"):
        score_and_select(shards, ScaleQuery("nope", 5, None), executor="local")
    with pytest.raises(ValueError, match="k must be"):
        score_and_select(shards, ScaleQuery("margin", 0, None), executor="local")
    with pytest.raises(ValueError, match="executor must be"):
        score_and_select(shards, ScaleQuery("margin", 5, None), executor="spark")
