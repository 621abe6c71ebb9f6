"""Active learning for span labeling against an oracle: entity F1 against labeled sentences.

A :class:`SpanDataset` holds sentences (tokens with character offsets) and their gold spans,
with a split per sentence (train / dev / test, as wnut17 ships). The train sentences are the
pool, every label hidden; the test sentences measure. A seed batch is picked before any model
(:class:`~activelabel.strategies.sequence.EntityColdStart`), then each strategy runs its own
loop: train a CRF on the labeled sentences, measure entity-level micro-F1 on the test set,
score the pool (sequence probability and token marginals), reveal the next batch.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from activelabel.sequence import CrfTagger, SequencePredictions
from activelabel.spans import (
    SpanError,
    check_spans,
    entity_cues,
    entity_scores,
    item_tokens,
    spans_to_tags,
    tags_to_spans,
)
from activelabel.strategies.sequence import SEQUENCE_STRATEGIES, EntityColdStart

__all__ = [
    "SpanDataset",
    "SpanSimulationResult",
    "load_span_dataset",
    "sequence_inputs",
    "simulate_spans",
]


@dataclass
class SpanDataset:
    """Sentences with gold spans: ``texts``, token ``offsets`` and ``tokens`` per sentence,
    ``spans`` (lists of ``{start, end, label}``), ``splits`` and the entity ``types``."""

    name: str
    texts: list[str]
    offsets: list[list[tuple[int, int]]]
    spans: list[list[dict[str, Any]]]
    splits: NDArray[np.str_]
    types: list[str]
    tokens: list[list[str]] = field(default_factory=list)

    def __post_init__(self) -> None:
        if not self.tokens:
            self.tokens = [[t[s:e] for s, e in offs] for t, offs in
                           zip(self.texts, self.offsets, strict=True)]

    def rows(self, split: str) -> NDArray[np.intp]:
        return np.flatnonzero(self.splits == split).astype(np.intp)

    def tags(self, rows: Sequence[int] | NDArray[np.intp]) -> list[list[str]]:
        return [spans_to_tags(self.offsets[r], self.spans[r]) for r in rows]


def load_span_dataset(path: str | Path) -> SpanDataset:
    """Read a JSONL file of ``{"text", "tokens"?, "spans", "split"?}`` rows (wnut17's form);
    rows without a split are train rows. Raises :class:`SpanError` naming the bad line."""
    texts: list[str] = []
    offsets: list[list[tuple[int, int]]] = []
    spans: list[list[dict[str, Any]]] = []
    splits: list[str] = []
    raw: list[tuple[int, Any]] = []
    with open(path, encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if line.strip():
                raw.append((number, json.loads(line)))
    types = sorted({str(s["label"]) for _, row in raw for s in row.get("spans") or []})
    for number, row in raw:
        try:
            text, offs = item_tokens(row)
            checked = check_spans(list(row.get("spans") or []), text, offs, types)
        except (SpanError, KeyError, TypeError) as exc:
            raise SpanError(f"{path} line {number}: {exc}") from None
        texts.append(text)
        offsets.append(offs)
        spans.append(checked)
        splits.append(str(row.get("split") or "train"))
    return SpanDataset(Path(path).stem, texts, offsets, spans, np.asarray(splits), types)


def sequence_inputs(pred: SequencePredictions) -> dict[str, Any]:
    """The arrays the sequence strategies read, from a tagger's predictions over the pool."""
    return {"sequence_probs": pred.sequence_probs, "token_probs": pred.marginals,
            "lengths": pred.lengths}


def sentence_vectors(texts: Sequence[str]) -> NDArray[np.float32]:
    """One dense vector per sentence (TF-IDF and its truncated SVD, as the text featurizer)."""
    from activelabel.features import TextFeaturizer

    # the embeddings alone: no LSA block or sentence vectors beside the TF-IDF, which only the
    # model would read (the span figures are measured on the LSA)
    return TextFeaturizer(lsa_weight=None, sentence_weight=None).fit_transform(
        [{"text": t} for t in texts]).embeddings


@dataclass
class SpanSimulationResult:
    """Mean curves per strategy: ``curves[name]`` is a list of ``{n_labeled, f1, precision,
    recall, f1_std}``; ``round_seconds[name]`` the mean time of a round (train, score,
    select); ``full_f1``: a tagger trained on the whole pool."""

    dataset: str
    n_pool: int
    n_test: int
    seed_size: int
    batch_size: int
    budget: int
    repeats: int
    curves: dict[str, list[dict[str, float]]]
    round_seconds: dict[str, float]
    full_f1: float

    def to_dict(self) -> dict[str, Any]:
        return dict(vars(self))


Step = Callable[[str, int, int, float], None]


def _evaluate(tagger: CrfTagger, data: SpanDataset, test: NDArray[np.intp]) -> dict[str, float]:
    pred = tagger.predict([data.tokens[r] for r in test])
    found = [tags_to_spans(data.offsets[r], tags) for r, tags in zip(test, pred, strict=True)]
    scores = entity_scores([data.spans[r] for r in test], found)
    return {k: float(scores[k]) for k in ("f1", "precision", "recall")}


def _run(data: SpanDataset, name: str, pool: NDArray[np.intp], test: NDArray[np.intp],
         seed_rows: NDArray[np.intp], vectors: NDArray[np.float32], grid: list[int],
         seed: int, tagger_params: dict[str, Any], on_step: Step | None
         ) -> tuple[list[dict[str, float]], list[float]]:
    strategy = SEQUENCE_STRATEGIES[name]()
    labeled = np.zeros(pool.shape[0], dtype=bool)
    labeled[seed_rows] = True
    points: list[dict[str, float]] = []
    times: list[float] = []
    for target in grid:
        rows = pool[labeled]
        start = time.perf_counter()
        tagger = CrfTagger(**tagger_params).fit([data.tokens[r] for r in rows], data.tags(rows))
        train_s = time.perf_counter() - start
        point = {"n_labeled": float(labeled.sum()), **_evaluate(tagger, data, test)}
        points.append(point)
        if on_step is not None:
            on_step(name, int(labeled.sum()), len(points), point["f1"])
        if target == grid[-1]:
            break
        k = grid[grid.index(target) + 1] - int(labeled.sum())
        start = time.perf_counter()
        unlabeled = np.flatnonzero(~labeled)
        if name == "random":
            chosen = strategy.query(k, lengths=np.zeros(unlabeled.shape[0], dtype=np.intp),
                                    random_state=seed + len(points))
        else:
            pred = tagger.predict_marginals([data.tokens[r] for r in pool[unlabeled]])
            chosen = strategy.query(k, **sequence_inputs(pred), embeddings=vectors[unlabeled],
                                    random_state=seed + len(points))
        labeled[unlabeled[chosen.indices]] = True
        times.append(train_s + time.perf_counter() - start)
    return points, times


def curve_budgets(seed_size: int, batch_size: int, budget: int) -> list[int]:
    """Labeled counts at which the curve is measured: the seed, then every batch."""
    grid = list(range(seed_size, budget, batch_size))
    return [*grid, budget] if not grid or grid[-1] != budget else grid


def simulate_spans(data: SpanDataset, strategies: Sequence[str], *, seed_size: int = 100,
                   batch_size: int = 100, budget: int | None = None, repeats: int = 1,
                   seed: int = 0, tagger_params: dict[str, Any] | None = None,
                   on_step: Step | None = None) -> SpanSimulationResult:
    """Run each strategy from the same seed batch (per repeat) up to ``budget`` sentences."""
    unknown = [s for s in strategies if s not in SEQUENCE_STRATEGIES]
    if unknown:
        raise ValueError(f"unknown span strategies {unknown}: use some of "
                         f"{', '.join(SEQUENCE_STRATEGIES)}")
    pool, test = data.rows("train"), data.rows("test")
    if pool.shape[0] == 0 or test.shape[0] == 0:
        raise ValueError("a span simulation needs train rows (the pool) and test rows")
    budget = min(budget or pool.shape[0], pool.shape[0])
    if not 1 <= seed_size <= budget:
        raise ValueError(f"seed_size must be from 1 to the budget {budget}, got {seed_size}")
    params = tagger_params or {}
    grid = curve_budgets(seed_size, batch_size, budget)
    vectors = sentence_vectors([data.texts[r] for r in pool])
    cues = np.asarray([entity_cues(data.tokens[r]) for r in pool], dtype=np.float64)
    runs: dict[str, list[list[dict[str, float]]]] = {s: [] for s in strategies}
    times: dict[str, list[float]] = {s: [] for s in strategies}
    for rep in range(repeats):
        seed_rows = EntityColdStart().query(seed_size, entity_cues=cues, embeddings=vectors,
                                            random_state=seed + rep).indices
        for name in strategies:
            points, secs = _run(data, name, pool, test, seed_rows, vectors, grid,
                                seed + 1000 * rep, params, on_step)
            runs[name].append(points)
            times[name] += secs
    full = CrfTagger(**params).fit([data.tokens[r] for r in pool], data.tags(pool))
    return SpanSimulationResult(
        data.name, int(pool.shape[0]), int(test.shape[0]), seed_size, batch_size, budget,
        repeats, {s: _mean(runs[s]) for s in strategies},
        {s: float(np.mean(times[s])) if times[s] else 0.0 for s in strategies},
        _evaluate(full, data, test)["f1"])


def _mean(reps: list[list[dict[str, float]]]) -> list[dict[str, float]]:
    out = []
    for points in zip(*reps, strict=True):
        f1 = [p["f1"] for p in points]
        out.append({"n_labeled": points[0]["n_labeled"],
                    **{k: float(np.mean([p[k] for p in points]))
                       for k in ("f1", "precision", "recall")},
                    "f1_std": float(np.std(f1))})
    return out
