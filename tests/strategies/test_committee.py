from __future__ import annotations

import numpy as np
import pytest

import activelabel
from activelabel.strategies import BALD, VoteEntropy


def test_vote_entropy_zero_when_members_agree_and_max_when_split() -> None:
    agree = np.array([[0.9, 0.1], [0.6, 0.4], [0.8, 0.2], [0.7, 0.3]])
    split = np.array([[0.9, 0.1], [0.1, 0.9], [0.8, 0.2], [0.2, 0.8]])
    probs = np.stack([agree, split], axis=1)  # (members=4, pool=2, classes=2)
    sel = VoteEntropy().query(2, probs=probs)
    assert sel.indices.tolist() == [1, 0]
    assert sel.scores[0] == pytest.approx(1.0, abs=1e-3)
    assert sel.scores[1] == pytest.approx(0.0, abs=1e-3)


def test_bald_separates_disagreement_from_shared_doubt() -> None:
    # item 0: every member unsure in the same way (aleatoric) -> BALD ~ 0
    # item 1: members confident but contradicting each other (epistemic) -> BALD high
    doubt = np.tile([0.5, 0.5], (4, 1))
    contra = np.array([[0.99, 0.01], [0.01, 0.99]] * 2)
    probs = np.stack([doubt, contra], axis=1)
    sel = BALD().query(2, probs=probs)
    assert sel.indices.tolist() == [1, 0]
    assert sel.scores[1] == pytest.approx(0.0, abs=1e-12)
    assert sel.scores[0] > 0.5


def test_bald_equals_entropy_decomposition() -> None:
    rng = np.random.default_rng(1)
    probs = rng.dirichlet(np.ones(3), size=(6, 50))
    mean = probs.mean(axis=0)
    expected = -(mean * np.log(mean)).sum(1) + (probs * np.log(probs)).sum(2).mean(0)
    sel = BALD().query(50, probs=probs)
    assert np.allclose(sel.scores, expected[sel.indices])


def test_committee_shape_is_explained() -> None:
    with pytest.raises(ValueError, match=r"\(n_members, n_pool, n_classes\)"):
        activelabel.select("bald", 2, probs=np.full((5, 2), 0.5))
    with pytest.raises(ValueError, match="at least 2 members"):
        activelabel.select("vote_entropy", 2, probs=np.full((1, 5, 2), 0.5))
