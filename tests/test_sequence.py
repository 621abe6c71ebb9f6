"""The CRF tagger: learns a toy entity pattern, gives marginals that sum to one per token and
a best-sequence probability, pickles as bytes."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

from activelabel.sequence import CrfTagger, token_features


def toy(n: int = 60) -> tuple[list[list[str]], list[list[str]]]:
    rng = np.random.default_rng(0)
    names = ["Paris", "Berlin", "Rome", "Oslo"]
    words = ["i", "love", "the", "city", "of", "visit", "now"]
    tokens, tags = [], []
    for _ in range(n):
        sent = list(rng.choice(words, size=4))
        at = int(rng.integers(0, 4))
        sent.insert(at, str(rng.choice(names)))
        tokens.append(sent)
        tags.append(["B-loc" if i == at else "O" for i in range(5)])
    return tokens, tags


def test_tagger_learns_and_reports_marginals() -> None:
    tokens, tags = toy()
    tagger = CrfTagger(max_iterations=50).fit(tokens, tags)
    test = [["visit", "Paris", "now"], ["i", "love", "Oslo"], []]
    assert tagger.predict(test) == [["O", "B-loc", "O"], ["O", "O", "B-loc"], []]
    pred = tagger.predict_marginals(test)
    assert pred.lengths.tolist() == [3, 3, 0]
    assert pred.marginals.shape == (6, len(pred.tag_names))
    assert np.allclose(pred.marginals.sum(axis=1), 1.0, atol=1e-4)
    assert ((pred.sequence_probs > 0) & (pred.sequence_probs <= 1)).all()
    loc = pred.tag_names.index("B-loc")
    assert pred.marginals[1, loc] > 0.5 > pred.marginals[0, loc]
    again = pickle.loads(pickle.dumps(tagger))
    assert again.predict(test) == tagger.predict(test)


def test_tagger_refuses_mismatched_input() -> None:
    with pytest.raises(ValueError, match="2 tokens but 1 tags"):
        CrfTagger().fit([["a", "b"]], [["O"]])
    with pytest.raises(ValueError, match="at least one"):
        CrfTagger().fit([], [])
    with pytest.raises(ValueError, match="not fitted"):
        CrfTagger().predict([["a"]])


def test_features_see_neighbours_and_shape() -> None:
    feats = token_features(["@bob", "Paris", "2010"])
    assert "kind=mention" in feats[0]
    assert "first" in feats[0]
    assert "shape=Xx" in feats[1]
    assert "-1:w=@bob" in feats[1]
    assert "1:w=2010" in feats[1]
    assert "kind=number" in feats[2]
    assert "1:edge" in feats[2]
