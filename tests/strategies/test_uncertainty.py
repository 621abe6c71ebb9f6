from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

import activelabel
from activelabel.strategies import Entropy, LeastConfidence, Margin, uncertainty_scores


@st.composite
def prob_matrices(draw, max_rows=60, max_classes=6):
    n = draw(st.integers(1, max_rows))
    c = draw(st.integers(2, max_classes))
    raw = draw(arrays(np.float64, (n, c), elements=st.floats(0.0, 1.0)))
    raw += 1e-3
    return raw / raw.sum(axis=1, keepdims=True)


def brute_force(probs: np.ndarray, measure: str) -> np.ndarray:
    if measure == "least_confidence":
        return 1 - probs.max(axis=1)
    if measure == "margin":
        s = np.sort(probs, axis=1)
        return 1 - (s[:, -1] - s[:, -2])
    p = np.clip(probs, 1e-300, 1)
    return -(probs * np.log(p)).sum(axis=1) / np.log(probs.shape[1])


@settings(max_examples=60, deadline=None)
@given(prob_matrices(), st.sampled_from(["least_confidence", "margin", "entropy"]), st.integers(1, 70))
def test_picks_the_top_scores_with_ties_to_the_lower_index(probs, measure, k) -> None:
    expected_scores = brute_force(probs, measure)
    got = activelabel.select(measure, k, probs=probs)
    order = np.lexsort((np.arange(len(probs)), -np.round(expected_scores, 9)))
    expected = order[: min(k, len(probs))]
    assert np.allclose(expected_scores[got], expected_scores[expected], atol=1e-9)
    scores = uncertainty_scores(probs, measure)
    assert np.allclose(scores, expected_scores, atol=1e-9)
    assert (scores >= -1e-12).all()
    assert (scores <= 1 + 1e-12).all()


def test_exact_ties_go_to_the_lower_index() -> None:
    probs = np.tile([[0.5, 0.5]], (10, 1))
    probs[[2, 5]] = [0.9, 0.1]
    assert activelabel.select("margin", 4, probs=probs).tolist() == [0, 1, 3, 4]


@settings(max_examples=60, deadline=None)
@given(prob_matrices(), st.sampled_from(["least_confidence", "margin", "entropy"]),
       st.integers(1, 70), st.integers(0, 2**32 - 1))
def test_with_a_seed_ties_are_drawn_at_random_and_the_scores_picked_are_the_same(
        probs, measure, k, seed) -> None:
    """A seed changes which of equal scores are picked and their order, never the scores."""
    plain = activelabel.select(measure, k, probs=probs)
    seeded = activelabel.select(measure, k, probs=probs, random_state=seed)
    scores = uncertainty_scores(probs, measure)
    assert np.array_equal(scores[seeded], scores[plain])
    assert len(set(seeded.tolist())) == len(seeded)


@pytest.mark.parametrize("name", ["margin", "entropy", "least_confidence", "cluster_margin",
                                  "density"])
def test_a_model_of_one_class_does_not_hand_out_the_pool_in_file_order(name: str) -> None:
    """A seed batch of one class: the model gives that class probability 1 everywhere and
    every item scores the same. The lower index is the file's order: a sorted upload's next
    rows, of the same class, round after round (280 labels of a two-class set, none of the
    second). With the round's seed the tied items are drawn at random."""
    n, k = 3_000, 20
    probs = np.tile([[1.0, 0.0]], (n, 1))
    emb = np.random.default_rng(0).normal(size=(n, 8))
    picks = [activelabel.select(name, k, probs=probs, embeddings=emb, random_state=seed)
             for seed in range(5)]
    for picked in picks:
        assert len(set(picked.tolist())) == k
        assert np.median(picked) > n / 4  # not the first rows: spread over the pool
    assert len({tuple(sorted(p.tolist())) for p in picks}) == 5  # each seed its own draw
    first = activelabel.select(name, k, probs=probs, embeddings=emb, random_state=7)
    assert first.tolist() == activelabel.select(name, k, probs=probs, embeddings=emb,
                                                random_state=7).tolist()  # reproducible


def test_margin_breaks_ties_that_least_confidence_cannot() -> None:
    # same top probability, different runner-up: margin prefers the closer race
    probs = np.array([[0.5, 0.45, 0.05], [0.5, 0.25, 0.25]])
    assert Margin().query(1, probs=probs).indices.tolist() == [0]
    lc = LeastConfidence().query(2, probs=probs)
    assert lc.scores[0] == pytest.approx(lc.scores[1])


def test_entropy_prefers_spread_over_two_way_ties() -> None:
    probs = np.array([[0.5, 0.5, 0.0, 0.0], [0.25, 0.25, 0.25, 0.25]])
    sel = Entropy().query(2, probs=probs)
    assert sel.indices.tolist() == [1, 0]
    assert sel.scores[0] == pytest.approx(1.0)


def test_float32_probs_are_scored_without_error() -> None:
    rng = np.random.default_rng(0)
    p = rng.dirichlet(np.ones(10), size=1000).astype(np.float32)
    idx = activelabel.select("entropy", 10, probs=p)
    ref = brute_force(p.astype(np.float64), "entropy")
    assert set(idx.tolist()) == set(np.argsort(-ref)[:10].tolist())


def test_multilabel_scores_each_label_as_binary() -> None:
    # rows need not sum to 1; the item with labels near 0.5 is the uncertain one
    probs = np.array([[0.95, 0.02, 0.9], [0.5, 0.55, 0.1], [0.99, 0.99, 0.99]])
    for cls in (LeastConfidence, Margin, Entropy):
        sel = cls(multilabel=True).query(3, probs=probs)
        assert sel.indices.tolist()[0] == 1
        assert sel.indices.tolist()[-1] == 2


def test_multilabel_probs_are_rejected_without_the_flag() -> None:
    with pytest.raises(ValueError, match="multilabel=True"):
        activelabel.select("margin", 1, probs=np.array([[0.9, 0.8], [0.1, 0.3]]))


def test_class_weights_raise_items_of_valuable_classes() -> None:
    # two equally uncertain items: one torn between classes 0/1, the other between 0/2
    probs = np.array([[0.45, 0.45, 0.10], [0.45, 0.10, 0.45], [0.9, 0.05, 0.05]])
    assert activelabel.select("margin", 1, probs=probs, class_weights=[1, 1, 5]).tolist() == [1]
    assert activelabel.select("margin", 1, probs=probs, class_weights=[1, 5, 1]).tolist() == [0]


@pytest.mark.parametrize("weights", [[1, -1, 1], [0, 0, 0], [1, np.nan, 1]])
def test_bad_class_weights_rejected(weights) -> None:
    probs = np.full((4, 3), 1 / 3)
    with pytest.raises(ValueError, match="class_weights must be finite"):
        activelabel.select("entropy", 1, probs=probs, class_weights=weights)
