"""Strategies for span labeling: which sentences a sequence model (a CRF) should see labeled.

Inputs are arrays over the pool's n sentences with T tokens in all:

- ``sequence_probs`` (n,): probability of the model's best tag sequence of each sentence;
- ``token_probs`` (T, n_tags): each token's marginal distribution over the tags, sentences one
  after the other, with ``lengths`` (n,) tokens per sentence;
- ``embeddings`` (n, n_features): one vector per sentence (TF-IDF or hashed token features);
- ``entity_cues`` (n,): how many tokens look like part of a name (see
  :func:`activelabel.spans.entity_cues`), for the cold start.

Uncertainty: least confidence of the best sequence (Culotta and McCallum 2005), token entropy
summed or averaged over the sentence, the count of uncertain tokens (Settles and Craven 2008).
:class:`DiverseTokenEntropy` spreads a batch of uncertain sentences over clusters of sentence
vectors so that it does not ask about the same entity again and again; :class:`EntityColdStart`
covers sentences that likely hold entities before any model exists.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from ._base import Selection, as_embeddings, as_rng, check_k, top_k
from ._geometry import fit_centroids
from .hybrid import _assign, _round_robin

__all__ = [
    "SEQUENCE_STRATEGIES",
    "DiverseTokenEntropy",
    "EntityColdStart",
    "SequenceLeastConfidence",
    "SequenceRandom",
    "SequenceStrategy",
    "TokenEntropy",
    "UncertainTokens",
    "sentence_token_entropy",
]


def _as_vector(values: ArrayLike, name: str, n: int | None = None) -> NDArray[np.float64]:
    arr = np.asarray(values, dtype=np.float64)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be 1-D, one value per sentence; got shape {arr.shape}")
    if n is not None and arr.shape[0] != n:
        raise ValueError(f"{name} has {arr.shape[0]} values for {n} sentences")
    if not np.isfinite(arr).all():
        raise ValueError(f"{name} holds NaN or infinite values")
    return arr


def _token_inputs(token_probs: ArrayLike, lengths: ArrayLike
                  ) -> tuple[NDArray[np.float64], NDArray[np.intp]]:
    p = np.asarray(token_probs, dtype=np.float64)
    n_tok = np.asarray(lengths)
    if p.ndim != 2:
        raise ValueError(f"token_probs must be (n_tokens, n_tags), got shape {p.shape}")
    if n_tok.ndim != 1 or (n_tok.size and (n_tok.min() < 0 or n_tok.dtype.kind not in "iu")):
        raise ValueError("lengths must be a 1-D array of non-negative token counts")
    if int(n_tok.sum()) != p.shape[0]:
        raise ValueError(f"lengths add up to {int(n_tok.sum())} tokens but token_probs has "
                         f"{p.shape[0]} rows: give one row of marginals per token")
    if p.size and (not np.isfinite(p).all() or p.min() < 0):
        raise ValueError("token_probs must be finite and non-negative")
    return p, n_tok.astype(np.intp)


def _per_sentence(values: NDArray[np.float64], lengths: NDArray[np.intp]) -> NDArray[np.float64]:
    """Sum of per-token ``values`` within each sentence (0 for an empty one)."""
    out = np.zeros(lengths.shape[0], dtype=np.float64)
    nonempty = lengths > 0
    if values.size:
        starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])[nonempty]
        out[nonempty] = np.add.reduceat(values, starts)
    return out


def sentence_token_entropy(token_probs: ArrayLike, lengths: ArrayLike,
                           aggregate: str = "sum") -> NDArray[np.float64]:
    """Token entropy (nats) of each sentence, summed or averaged over its tokens."""
    p, n_tok = _token_inputs(token_probs, lengths)
    ent = -(p * np.log(np.clip(p, 1e-12, 1.0))).sum(axis=1)
    total = _per_sentence(ent, n_tok)
    if aggregate == "sum":
        return total
    if aggregate == "mean":
        return np.divide(total, n_tok, out=np.zeros_like(total), where=n_tok > 0)
    raise ValueError(f"aggregate must be 'sum' or 'mean', got {aggregate!r}")


class SequenceStrategy:
    """Base class of the sequence strategies: ``query(k, **arrays)`` returns a
    :class:`~activelabel.strategies.Selection` of ``k`` sentences, best first."""

    name: str = ""
    #: The arrays :meth:`query` reads (the others may be left out).
    needs: frozenset[str] = frozenset()

    def query(self, k: int, *, sequence_probs: ArrayLike | None = None,
              token_probs: ArrayLike | None = None, lengths: ArrayLike | None = None,
              embeddings: ArrayLike | None = None, entity_cues: ArrayLike | None = None,
              random_state: int | np.random.Generator | None = None) -> Selection:
        k = check_k(k)
        given = {"sequence_probs": sequence_probs, "token_probs": token_probs,
                 "lengths": lengths, "embeddings": embeddings, "entity_cues": entity_cues}
        missing = sorted(name for name in self.needs if given[name] is None)
        if missing:
            raise ValueError(f"strategy {self.name!r} needs {', '.join(missing)}; pass them "
                             "as keyword arrays (see activelabel.strategies.sequence)")
        return self._query(k, given, as_rng(random_state))

    def _query(self, k: int, given: dict[str, Any], rng: np.random.Generator) -> Selection:
        raise NotImplementedError

    def __repr__(self) -> str:
        params = ", ".join(f"{k}={v!r}" for k, v in vars(self).items())
        return f"{type(self).__name__}({params})"


def _best(scores: NDArray[np.float64], k: int, rng: np.random.Generator) -> Selection:
    idx = top_k(scores, min(k, scores.shape[0]), rng)
    return Selection(idx, scores[idx])


class SequenceRandom(SequenceStrategy):
    """Uniformly random sentences: the baseline. Reads ``lengths`` for the pool's size."""

    name = "random"
    needs = frozenset({"lengths"})

    def _query(self, k: int, given: dict[str, Any], rng: np.random.Generator) -> Selection:
        n = np.asarray(given["lengths"]).shape[0]
        idx = rng.permutation(n)[:k].astype(np.intp)
        return Selection(idx, np.zeros(idx.shape[0]))


class SequenceLeastConfidence(SequenceStrategy):
    """Least confidence of the best sequence: ``1 - P(best tag sequence | sentence)``."""

    name = "sequence_least_confidence"
    needs = frozenset({"sequence_probs"})

    def _query(self, k: int, given: dict[str, Any], rng: np.random.Generator) -> Selection:
        p = _as_vector(given["sequence_probs"], "sequence_probs")
        if p.size and (p.min() < 0 or p.max() > 1 + 1e-9):
            raise ValueError("sequence_probs must be probabilities in [0, 1]")
        return _best(1.0 - p, k, rng)


class TokenEntropy(SequenceStrategy):
    """Token entropy of the marginals, summed over the sentence (favours long sentences with
    many unsure tokens) or averaged (``aggregate="mean"``)."""

    needs = frozenset({"token_probs", "lengths"})

    def __init__(self, aggregate: str = "sum") -> None:
        self.aggregate = aggregate

    @property
    def name(self) -> str:  # type: ignore[override]
        return f"token_entropy_{self.aggregate}"

    def _query(self, k: int, given: dict[str, Any], rng: np.random.Generator) -> Selection:
        return _best(sentence_token_entropy(given["token_probs"], given["lengths"],
                                            self.aggregate), k, rng)


class UncertainTokens(SequenceStrategy):
    """Count of uncertain tokens: tokens whose most likely tag has a marginal under
    ``threshold``; ties broken by summed token entropy (added as a fraction below 1)."""

    name = "uncertain_tokens"
    needs = frozenset({"token_probs", "lengths"})

    def __init__(self, threshold: float = 0.9) -> None:
        self.threshold = threshold

    def _query(self, k: int, given: dict[str, Any], rng: np.random.Generator) -> Selection:
        if not 0 < self.threshold <= 1:
            raise ValueError(f"threshold must be in (0, 1], got {self.threshold}")
        p, n_tok = _token_inputs(given["token_probs"], given["lengths"])
        unsure = (p.max(axis=1) < self.threshold).astype(np.float64) if p.size else p[:, 0]
        counts = _per_sentence(unsure, n_tok)
        ent = sentence_token_entropy(p, n_tok)
        tie = ent / (1.0 + ent.max()) if ent.size else ent
        return _best(counts + tie, k, rng)


class DiverseTokenEntropy(SequenceStrategy):
    """Uncertainty with diversity: the ``candidate_factor * k`` sentences of highest summed
    token entropy are clustered by their sentence vectors into ``k`` groups (k-means on the
    candidates only), and the batch takes the most uncertain sentence of each group in turn
    (as :class:`~activelabel.strategies.ClusterMargin` does for classes). Near-identical
    sentences about one entity fall in one group, so the batch asks about each once."""

    name = "diverse_token_entropy"
    needs = frozenset({"token_probs", "lengths", "embeddings"})

    def __init__(self, candidate_factor: float = 5.0, aggregate: str = "sum") -> None:
        self.candidate_factor = candidate_factor
        self.aggregate = aggregate

    def _query(self, k: int, given: dict[str, Any], rng: np.random.Generator) -> Selection:
        if not self.candidate_factor >= 1:
            raise ValueError(f"candidate_factor must be >= 1, got {self.candidate_factor}")
        scores = sentence_token_entropy(given["token_probs"], given["lengths"], self.aggregate)
        X = as_embeddings(given["embeddings"], n_rows=scores.shape[0])
        return _spread(scores, X, k, self.candidate_factor, rng)


def _spread(scores: NDArray[np.float64], X: Any, k: int, factor: float,
            rng: np.random.Generator) -> Selection:
    """The top ``factor * k`` by score, round-robin over k clusters of their vectors."""
    n_cand = min(scores.shape[0], max(k, int(np.ceil(factor * k))))
    cand = top_k(scores, n_cand, rng)
    if n_cand <= k:
        return Selection(cand, scores[cand])
    Xc = np.ascontiguousarray(X[cand], dtype=np.float64)
    centroids = fit_centroids(Xc, k, rng)
    picked = _round_robin(_assign(Xc, centroids), k)
    idx = cand[picked]
    return Selection(idx, scores[idx])


class EntityColdStart(SequenceStrategy):
    """Seed batch before any model: sentences with the most entity cues (capitalised words
    inside the sentence, mentions, hashtags; no gazetteer), spread over k clusters of sentence
    vectors, so the first labels cover many entities rather than one topic. Sentences without
    cues fill the batch only when too few have any. Scores are the cue counts."""

    name = "entity_cold_start"
    needs = frozenset({"entity_cues", "embeddings"})

    def __init__(self, candidate_factor: float = 4.0) -> None:
        self.candidate_factor = candidate_factor

    def _query(self, k: int, given: dict[str, Any], rng: np.random.Generator) -> Selection:
        cues = _as_vector(given["entity_cues"], "entity_cues")
        X = as_embeddings(given["embeddings"], n_rows=cues.shape[0])
        # A small random jitter breaks ties among equal counts without favouring file order.
        jitter = rng.random(cues.shape[0]) * 1e-3
        with_cues = int((cues > 0).sum())
        factor = self.candidate_factor if with_cues < k else min(
            self.candidate_factor, with_cues / k)
        return _spread(cues + jitter, X, k, factor, rng)


#: Sequence strategies by name (what a span project's ``span_strategy`` setting accepts).
SEQUENCE_STRATEGIES: dict[str, Any] = {
    "random": SequenceRandom,
    "sequence_least_confidence": SequenceLeastConfidence,
    "token_entropy_sum": lambda: TokenEntropy("sum"),
    "token_entropy_mean": lambda: TokenEntropy("mean"),
    "uncertain_tokens": UncertainTokens,
    "diverse_token_entropy": DiverseTokenEntropy,
}
