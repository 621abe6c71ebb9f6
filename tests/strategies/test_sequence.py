"""Sequence strategies: the shared contract (k distinct indices, deterministic, whole pool when
k >= n, clear errors), and what each ranks by."""

from __future__ import annotations

import numpy as np
import pytest

from activelabel.strategies.sequence import (
    SEQUENCE_STRATEGIES,
    DiverseTokenEntropy,
    EntityColdStart,
    SequenceLeastConfidence,
    TokenEntropy,
    UncertainTokens,
    sentence_token_entropy,
)

ALL = sorted(SEQUENCE_STRATEGIES)


def pool(n: int = 120, seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    lengths = rng.integers(0, 9, size=n)
    lengths[0] = 0  # an empty sentence among them
    marg = rng.dirichlet(np.ones(5) * 0.3, size=int(lengths.sum()))
    return {"sequence_probs": rng.random(n), "token_probs": marg, "lengths": lengths,
            "embeddings": rng.normal(size=(n, 6)), "entity_cues": rng.integers(0, 4, n)}


@pytest.mark.parametrize("name", ALL)
def test_returns_k_distinct_indices_deterministically(name: str) -> None:
    a = SEQUENCE_STRATEGIES[name]().query(20, random_state=1, **pool())
    b = SEQUENCE_STRATEGIES[name]().query(20, random_state=1, **pool())
    assert a.indices.shape == (20,)
    assert len(set(a.indices.tolist())) == 20
    assert a.indices.min() >= 0
    assert a.indices.max() < 120
    assert np.array_equal(a.indices, b.indices)
    assert np.isfinite(a.scores).all()


@pytest.mark.parametrize("name", ALL)
def test_k_above_the_pool_returns_the_whole_pool(name: str) -> None:
    sel = SEQUENCE_STRATEGIES[name]().query(500, random_state=0, **pool(30))
    assert sorted(sel.indices.tolist()) == list(range(30))


@pytest.mark.parametrize("name", [n for n in ALL if n != "random"])
def test_missing_inputs_are_named(name: str) -> None:
    with pytest.raises(ValueError, match="needs"):
        SEQUENCE_STRATEGIES[name]().query(5)


def test_bad_shapes_are_refused() -> None:
    data = pool()
    with pytest.raises(ValueError, match="lengths add up to"):
        TokenEntropy().query(5, token_probs=data["token_probs"][1:], lengths=data["lengths"])
    with pytest.raises(ValueError, match="probabilities"):
        SequenceLeastConfidence().query(5, sequence_probs=np.full(4, 2.0))
    with pytest.raises(ValueError, match="rows"):
        DiverseTokenEntropy().query(5, token_probs=data["token_probs"],
                                    lengths=data["lengths"], embeddings=np.zeros((3, 2)))


def test_token_entropy_sum_and_mean_by_hand() -> None:
    half = [0.5, 0.5]
    sure = [1.0, 0.0]
    probs = np.asarray([half, half, sure, half])
    lengths = np.asarray([2, 0, 2])
    s = sentence_token_entropy(probs, lengths, "sum")
    m = sentence_token_entropy(probs, lengths, "mean")
    assert s == pytest.approx([2 * np.log(2), 0.0, np.log(2)])
    assert m == pytest.approx([np.log(2), 0.0, np.log(2) / 2])
    assert TokenEntropy("sum").query(1, token_probs=probs, lengths=lengths).indices[0] == 0


def test_least_confidence_and_uncertain_tokens_rank_as_their_names_say() -> None:
    sel = SequenceLeastConfidence().query(2, sequence_probs=[0.9, 0.2, 0.6])
    assert sel.indices.tolist() == [1, 2]
    probs = np.asarray([[0.95, 0.05], [0.6, 0.4], [0.55, 0.45], [0.99, 0.01]])
    # sentence 0: one sure token; 1: two unsure of three; 2: one unsure
    sel = UncertainTokens(0.9).query(3, token_probs=probs[[0, 1, 2, 3, 1]],
                                     lengths=np.asarray([1, 3, 1]))
    assert sel.indices.tolist() == [1, 2, 0]


def test_diverse_batch_does_not_repeat_one_group() -> None:
    """Forty copies of one very uncertain sentence and spread-out others: uncertainty alone
    takes copies only; the diverse hybrid takes at most one per group of near-identical
    vectors."""
    rng = np.random.default_rng(0)
    n = 200
    lengths = np.full(n, 4)
    marg = np.tile([0.97, 0.03], (4 * n, 1))
    emb = rng.normal(size=(n, 8)) * 5
    marg[: 4 * 40] = [0.5, 0.5]  # sentences 0..39: the same unsure entity
    emb[:40] = emb[0] + rng.normal(scale=1e-3, size=(40, 8))
    marg[4 * 40: 4 * 80] = [0.7, 0.3]  # 40..79: less unsure, each different
    plain = TokenEntropy().query(10, token_probs=marg, lengths=lengths)
    assert set(plain.indices.tolist()) <= set(range(40))
    diverse = DiverseTokenEntropy(candidate_factor=8).query(
        10, token_probs=marg, lengths=lengths, embeddings=emb, random_state=0)
    assert sum(i < 40 for i in diverse.indices.tolist()) <= 2
    assert len(set(diverse.indices.tolist())) == 10


def test_cold_start_prefers_sentences_with_entity_cues() -> None:
    rng = np.random.default_rng(0)
    cues = np.zeros(300)
    cues[rng.choice(300, 40, replace=False)] = 2
    sel = EntityColdStart().query(20, entity_cues=cues, embeddings=rng.normal(size=(300, 5)),
                                  random_state=0)
    assert (cues[sel.indices] > 0).all()


@pytest.mark.parametrize("name", ["sequence_least_confidence", "token_entropy_sum",
                                  "uncertain_tokens"])
def test_a_tagger_sure_of_everything_does_not_hand_out_sentences_in_file_order(
        name: str) -> None:
    """Every sentence scored alike (a tagger that has seen one tag): the picks are a seeded
    draw over the pool, not its first rows."""
    n = 400
    lengths = np.full(n, 3)
    marg = np.tile([1.0, 0.0, 0.0], (3 * n, 1))
    given = {"sequence_probs": np.ones(n), "token_probs": marg, "lengths": lengths}
    picks = [SEQUENCE_STRATEGIES[name]().query(10, random_state=s, **given).indices
             for s in (1, 2)]
    assert np.median(picks[0]) > n / 4
    assert sorted(picks[0].tolist()) != sorted(picks[1].tolist())
