"""The contract every strategy passes: k distinct pool indices, best first, deterministic under a
seed, the whole pool when k >= n, clear errors for what is missing or malformed."""

from __future__ import annotations

import numpy as np
import pytest

import activelabel
from activelabel.strategies import STRATEGIES, get_strategy
from tests.support.pools import make_pool

COMMITTEE = {"vote_entropy", "bald"}
ALL = sorted(STRATEGIES)


def inputs(name: str, n: int = 300, seed: int = 0) -> dict:
    probs, emb = make_pool(n=n, seed=seed)
    if name in COMMITTEE:
        rng = np.random.default_rng(seed)
        noise = rng.dirichlet(np.ones(probs.shape[1]), size=(5, n))
        probs = 0.5 * probs[None] + 0.5 * noise
    return {"probs": probs, "embeddings": emb, "labeled_embeddings": emb[:5] + 0.1}


@pytest.mark.parametrize("name", ALL)
def test_returns_k_distinct_pool_indices(name: str) -> None:
    sel = get_strategy(name).query(25, random_state=0, **inputs(name))
    assert sel.indices.shape == (25,)
    assert sel.scores.shape == (25,)
    assert len(set(sel.indices.tolist())) == 25
    assert sel.indices.min() >= 0
    assert sel.indices.max() < 300
    assert np.isfinite(sel.scores).all() or name == "kcenter"


@pytest.mark.parametrize("name", ALL)
def test_select_matches_strategy_query(name: str) -> None:
    data = inputs(name)
    idx = activelabel.select(name, 10, random_state=3, **data)
    assert np.array_equal(idx, get_strategy(name).query(10, random_state=3, **data).indices)
    assert idx.dtype.kind == "i"


@pytest.mark.parametrize("name", ALL)
def test_deterministic_under_seed(name: str) -> None:
    data = inputs(name)
    a = activelabel.select(name, 20, random_state=7, **data)
    b = activelabel.select(name, 20, random_state=7, **data)
    assert np.array_equal(a, b)


@pytest.mark.parametrize("name", ALL)
@pytest.mark.parametrize("k", [40, 41, 500])
def test_k_at_least_pool_returns_whole_pool(name: str, k: int) -> None:
    data = inputs(name, n=40)
    idx = activelabel.select(name, k, random_state=0, **data)
    assert sorted(idx.tolist()) == list(range(40))


@pytest.mark.parametrize("name", ALL)
@pytest.mark.parametrize("k", [0, -3])
def test_rejects_non_positive_k(name: str, k: int) -> None:
    with pytest.raises(ValueError, match="k must be at least 1"):
        activelabel.select(name, k, **inputs(name))


@pytest.mark.parametrize("name", ALL)
def test_rejects_non_integer_k(name: str) -> None:
    with pytest.raises(TypeError, match="k must be an integer"):
        activelabel.select(name, 2.5, **inputs(name))  # type: ignore[arg-type]


@pytest.mark.parametrize("name", [n for n in ALL if STRATEGIES[n].needs_probs])
def test_missing_probs_is_named(name: str) -> None:
    data = inputs(name)
    data.pop("probs")
    with pytest.raises(ValueError, match=rf"strategy '{name}' needs probs"):
        activelabel.select(name, 5, **data)


@pytest.mark.parametrize("name", [n for n in ALL if STRATEGIES[n].needs_embeddings])
def test_missing_embeddings_is_named(name: str) -> None:
    data = inputs(name)
    data.pop("embeddings")
    with pytest.raises(ValueError, match=rf"strategy '{name}' needs embeddings"):
        activelabel.select(name, 5, **data)


def test_random_needs_a_pool_size() -> None:
    with pytest.raises(ValueError, match="pool size"):
        activelabel.select("random", 5)


@pytest.mark.parametrize("name", [n for n in ALL if STRATEGIES[n].needs_probs and n not in COMMITTEE])
def test_rejects_bad_probs(name: str) -> None:
    data = inputs(name)
    with pytest.raises(ValueError, match=r"shape \(n_pool, n_classes\)"):
        activelabel.select(name, 5, **{**data, "probs": data["probs"][:, 0]})
    bad = data["probs"].copy()
    bad[3] *= 0.5
    with pytest.raises(ValueError, match="row 3"):
        activelabel.select(name, 5, **{**data, "probs": bad})
    logits = np.log(data["probs"])
    with pytest.raises(ValueError, match=r"probabilities in \[0, 1\]"):
        activelabel.select(name, 5, **{**data, "probs": logits})
    nan = data["probs"].copy()
    nan[7, 1] = np.nan
    with pytest.raises(ValueError, match=r"probabilities in \[0, 1\]"):
        activelabel.select(name, 5, **{**data, "probs": nan})


@pytest.mark.parametrize("name", [n for n in ALL if STRATEGIES[n].needs_embeddings])
def test_rejects_bad_embeddings(name: str) -> None:
    data = inputs(name)
    with pytest.raises(ValueError, match=r"shape \(n_items, n_features\)"):
        activelabel.select(name, 5, **{**data, "embeddings": data["embeddings"][:, 0]})
    nan = data["embeddings"].copy()
    nan[11, 2] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        activelabel.select(name, 5, **{**data, "embeddings": nan})
    with pytest.raises(ValueError, match="features"):
        activelabel.select(
            name, 5, **{**data, "labeled_embeddings": data["labeled_embeddings"][:, :3]}
        )


@pytest.mark.parametrize(
    "name", [n for n in ALL if STRATEGIES[n].needs_probs and STRATEGIES[n].needs_embeddings]
)
def test_rejects_probs_and_embeddings_of_different_pools(name: str) -> None:
    data = inputs(name)
    with pytest.raises(ValueError, match="same pool"):
        activelabel.select(name, 5, **{**data, "embeddings": data["embeddings"][:-1]})


@pytest.mark.parametrize("name", [n for n in ALL if STRATEGIES[n].needs_probs])
def test_class_weights_of_wrong_length_rejected(name: str) -> None:
    with pytest.raises(ValueError, match="one weight per class"):
        activelabel.select(name, 5, class_weights=[1.0, 2.0], **inputs(name))


@pytest.mark.parametrize("name", [n for n in ALL if not STRATEGIES[n].needs_probs])
def test_class_weights_rejected_where_probabilities_are_not_read(name: str) -> None:
    with pytest.raises(ValueError, match="class"):
        activelabel.select(name, 5, class_weights=[1, 1, 1, 1], **inputs(name))


def test_unknown_strategy_lists_the_valid_names() -> None:
    with pytest.raises(ValueError, match="choose one of: random, least_confidence"):
        activelabel.select("uncertainty", 5, probs=np.full((3, 2), 0.5))


def test_single_item_pool() -> None:
    for name in ALL:
        data = inputs(name, n=1)
        assert activelabel.select(name, 3, random_state=0, **data).tolist() == [0]
