"""A sequence model for span labeling: a linear-chain CRF over token features (CRFsuite,
through python-crfsuite), trained in seconds on a CPU, with per-token marginals.

:class:`CrfTagger` is fitted on token lists and BIO tag lists and gives, for new sentences,
the best tag sequence, its probability (what least-confidence ranks by) and every token's
marginal distribution over the tags (what token entropy ranks by). :func:`token_features` is
the feature map: the word, its shape, prefixes and suffixes, and its neighbours'.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

__all__ = ["CrfTagger", "SequencePredictions", "token_features"]


def _shape(word: str) -> str:
    """Xxxx -> "Xx", 2010 -> "d", e-mail -> "x-x": character classes with runs collapsed."""
    out: list[str] = []
    for ch in word[:12]:
        c = "X" if ch.isupper() else "x" if ch.islower() else "d" if ch.isdigit() else ch
        if not out or out[-1] != c:
            out.append(c)
    return "".join(out)


def _word_features(word: str, tag: str) -> list[str]:
    low = word.lower()
    return [f"{tag}w={low}", f"{tag}shape={_shape(word)}", f"{tag}title={word.istitle()}",
            f"{tag}upper={word.isupper()}", f"{tag}s3={low[-3:]}"]


def token_features(tokens: Sequence[str]) -> list[list[str]]:
    """CRFsuite attributes of each token: the word (lower case), its shape, capitalisation,
    prefixes and suffixes of 2-3 characters, whether it is a mention, hashtag, URL or number,
    and the word, shape and capitalisation of the tokens one and two to each side."""
    n = len(tokens)
    out: list[list[str]] = []
    for i, word in enumerate(tokens):
        low = word.lower()
        feats = ["bias", *_word_features(word, ""), f"p2={low[:2]}", f"p3={low[:3]}",
                 f"s2={low[-2:]}", f"len={min(len(word), 8)}",
                 f"kind={_kind(word)}"]
        for d in (-2, -1, 1, 2):
            j = i + d
            if 0 <= j < n:
                feats += _word_features(tokens[j], f"{d}:")
            else:
                feats.append(f"{d}:edge")
        if i == 0:
            feats.append("first")
        out.append(feats)
    return out


def _kind(word: str) -> str:
    if word.startswith("@") and len(word) > 1:
        return "mention"
    if word.startswith("#") and len(word) > 1:
        return "hashtag"
    if word.startswith(("http://", "https://", "www.")):
        return "url"
    if any(ch.isdigit() for ch in word):
        return "number"
    if not any(ch.isalnum() for ch in word):
        return "punct"
    return "word"


@dataclass(frozen=True)
class SequencePredictions:
    """A tagger's predictions over n sentences with T tokens in all.

    ``tags``: the best tag sequence of each sentence; ``sequence_probs`` (n,): the
    probability of that sequence; ``marginals`` (T, n_tags): each token's distribution over
    ``tag_names`` (sentences one after the other); ``lengths`` (n,): tokens per sentence.
    """

    tags: list[list[str]]
    sequence_probs: NDArray[np.float64]
    marginals: NDArray[np.float32]
    lengths: NDArray[np.intp]
    tag_names: list[str]


class CrfTagger:
    """Linear-chain CRF (L-BFGS with elastic-net penalties ``c1``, ``c2``) over
    :func:`token_features`. The fitted model lives in memory (``model_bytes_``), so the tagger
    pickles as plain bytes."""

    def __init__(self, *, c1: float = 0.05, c2: float = 0.05, max_iterations: int = 60,
                 min_freq: float = 0.0) -> None:
        self.c1 = c1
        self.c2 = c2
        self.max_iterations = max_iterations
        self.min_freq = min_freq

    def fit(self, tokens: Sequence[Sequence[str]], tags: Sequence[Sequence[str]]) -> CrfTagger:
        """Train on sentences (token lists) and their BIO tags (one per token)."""
        import pycrfsuite

        if len(tokens) != len(tags):
            raise ValueError(f"{len(tokens)} sentences but {len(tags)} tag lists: give one tag "
                             "list per sentence")
        if not tokens:
            raise ValueError("a tagger needs at least one labeled sentence to train on")
        trainer = pycrfsuite.Trainer(verbose=False)
        for i, (words, ys) in enumerate(zip(tokens, tags, strict=True)):
            if len(words) != len(ys):
                raise ValueError(f"sentence {i} has {len(words)} tokens but {len(ys)} tags")
            if words:
                trainer.append(token_features(words), list(ys))
        trainer.set_params({"c1": self.c1, "c2": self.c2, "max_iterations": self.max_iterations,
                            "feature.minfreq": self.min_freq,
                            "feature.possible_transitions": True})
        fd, path = tempfile.mkstemp(suffix=".crfsuite")
        os.close(fd)
        try:
            trainer.train(path)
            with open(path, "rb") as handle:
                self.model_bytes_ = handle.read()
        finally:
            os.unlink(path)
        self.tag_names_ = sorted(self._tagger().labels())
        return self

    def _tagger(self) -> Any:
        import pycrfsuite

        if not hasattr(self, "model_bytes_"):
            raise ValueError("this tagger is not fitted yet: call fit(tokens, tags) first")
        tagger = pycrfsuite.Tagger()
        tagger.open_inmemory(self.model_bytes_)
        return tagger

    def predict(self, tokens: Sequence[Sequence[str]]) -> list[list[str]]:
        """The best tag sequence of each sentence."""
        tagger = self._tagger()
        return [list(tagger.tag(token_features(words))) if words else [] for words in tokens]

    def predict_marginals(self, tokens: Sequence[Sequence[str]]) -> SequencePredictions:
        """Best sequences, their probabilities and every token's tag marginals."""
        tagger = self._tagger()
        names = list(self.tag_names_)
        lengths = np.asarray([len(w) for w in tokens], dtype=np.intp)
        marginals = np.zeros((int(lengths.sum()), len(names)), dtype=np.float32)
        seq_probs = np.ones(len(tokens), dtype=np.float64)
        best: list[list[str]] = []
        row = 0
        for i, words in enumerate(tokens):
            if not words:
                best.append([])
                continue
            tagger.set(token_features(words))
            ys = list(tagger.tag())
            best.append(ys)
            seq_probs[i] = tagger.probability(ys)
            for t in range(len(words)):
                marginals[row + t] = [tagger.marginal(name, t) for name in names]
            row += len(words)
        return SequencePredictions(best, seq_probs, marginals, lengths, names)
