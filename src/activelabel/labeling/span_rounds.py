"""A round of a span project (task ``spans``): train a CRF on the labeled sentences, measure
it on the holdout, tag the whole pool, pick the next batch with a sequence strategy.

The round module calls :func:`span_round` in place of its classifier steps and records the
result as any round's. What the rest of the system reads stays the same shape:

- ``probs`` (n_items, 2): ``[P(best tag sequence), 1 - P(best tag sequence)]`` per item, so
  the queue's ranking behind the batch, the pool-uncertainty stopping rule and the
  dashboard's confidence read a span model as they read a classifier;
- ``span_predictions`` (m, 5) in the array store: ``row, start, end, type index,
  confidence`` of every span the model predicts (sorted by row), what the labeling page
  shows as suggestions (:func:`span_suggestion`) and the payoff reads (:func:`predicted_spans`).

The payoff of a span project measures the model's entity F1 on the audit sentences (each
sentence's counts from :func:`entity_counts`), and the round traces random sampling's curve in
that measure (:func:`span_audit_curve`).

Training labels are the consensus of the annotators' spans by voting
(:func:`activelabel.spans.vote_spans`); a labeled gold item trains on its known answer.
Holdout metrics: ``entity_f1`` (micro, seqeval's), ``macro_f1`` (over entity types),
``accuracy`` (the share of holdout tokens tagged right).
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from ..estimates import CURVE_MEASURE, ENTITY_F1, audit_curve_counts, micro_f1
from ..sequence import CrfTagger, SequencePredictions
from ..spans import (
    SpanError,
    entity_cues,
    entity_scores,
    item_tokens,
    span_key,
    spans_to_tags,
    tags_to_spans,
    vote_spans,
)
from ..stopping import stop_set_kappa
from ..store import ArrayStore, Storage, get_project, iter_items
from ..store.settings import ProjectSettings
from ..strategies.sequence import SEQUENCE_STRATEGIES, EntityColdStart

__all__ = ["SPAN_PREDICTIONS", "SpanRound", "entity_counts", "predicted_spans", "span_audit_curve",
           "span_predictions", "span_round", "span_suggestion", "span_truth"]

#: Array-store name of the active model's predicted spans.
SPAN_PREDICTIONS = "span_predictions"
#: Strategy recorded for a seed batch picked before any span model.
SPAN_COLD_START = "entity_cold_start"

Progress = Callable[[dict[str, Any]], None]

#: The span strategy of a project that names none: the declaration's default.
SPAN_STRATEGY_DEFAULT = str(ProjectSettings.model_fields["span_strategy"].default)


@dataclass
class SpanRound:
    """What a span round computed: the picked rows (best first) with their scores, the
    strategy, holdout metrics, and (after training) the items' probabilities, the predicted
    spans and the model to store."""

    rows: NDArray[np.intp]
    scores: list[float | None]
    strategy: str
    holdout: dict[str, Any]
    probs: NDArray[np.float32] | None = None
    predictions: NDArray[np.float64] | None = None
    model: CrfTagger | None = None
    n_train: int = 0
    training_hash: str | None = None
    #: Cohen's kappa of the BIO tags this model and the one before give the stop set's tokens
    #: (None without a model before): what "stable predictions" compares for spans
    stop_kappa: float | None = None


@dataclass
class _Sentences:
    tokens: list[list[str]]
    offsets: list[list[tuple[int, int]]]


def _sentences(storage: Storage, project_id: int, n_items: int) -> _Sentences:
    """Every item's tokens and offsets in row order (an item whose text no longer tokenizes,
    e.g. a purged one, is an empty sentence)."""
    tokens: list[list[str]] = []
    offsets: list[list[tuple[int, int]]] = []
    with storage.read_sessions() as session:
        for batch in iter_items(session, project_id, with_data=True):
            for item in batch:
                try:
                    text, offs = item_tokens(item.data or {})
                except SpanError:
                    text, offs = "", []
                tokens.append([text[s:e] for s, e in offs])
                offsets.append(offs)
    return _Sentences(tokens[:n_items], offsets[:n_items])


def span_truth(labels: Mapping[int, Sequence[Sequence[Any]]], gold: Mapping[int, Sequence[Any]],
               *, allow_overlap: bool = False) -> dict[int, list[dict[str, Any]]]:
    """Row -> training spans: the annotators' spans by vote (more than half of them), a
    labeled gold item's known answer in their place."""
    out = {row: [{k: s[k] for k in ("start", "end", "label")}
                 for s in vote_spans([list(a) for a in answers], allow_overlap=allow_overlap)]
           for row, answers in labels.items() if answers}
    for row, answer in gold.items():
        if row in out:
            out[row] = [dict(s) for s in answer]
    return out


def _training_hash(item_ids: NDArray[np.int64], rows: Sequence[int],
                   truth: Mapping[int, list[dict[str, Any]]]) -> str:
    digest = hashlib.sha256()
    for r in rows:
        digest.update(f"{int(item_ids[r])}:{sorted(span_key(s) for s in truth[r])!r};".encode())
    return digest.hexdigest()


def entity_counts(true: Sequence[Mapping[str, Any]],
                  found: Sequence[Mapping[str, Any]]) -> tuple[int, int, int]:
    """One sentence's entities found right (start, end and type), true and predicted: what
    micro F1 sums (as :func:`~activelabel.spans.entity_scores` counts them)."""
    t, p = set(map(span_key, true)), set(map(span_key, found))
    return len(t & p), len(t), len(p)


def predicted_spans(predictions: NDArray[Any], rows: Sequence[int],
                    classes: Sequence[Any]) -> dict[int, list[dict[str, Any]]]:
    """Row -> the spans the model predicts there (none: an empty list; each with its
    confidence), from the stored ``span_predictions``."""
    return {row: _row_spans(predictions, row, classes) for row in rows}


def _row_spans(predictions: NDArray[Any], row: int,
               classes: Sequence[Any]) -> list[dict[str, Any]]:
    """The predicted spans of the item at ``row``, each with its confidence."""
    lo, hi = np.searchsorted(predictions[:, 0], [row, row + 1])
    return [{"start": int(p[1]), "end": int(p[2]), "label": classes[int(p[3])],
             "confidence": round(float(p[4]), 4)}
            for p in predictions[lo:hi] if 0 <= int(p[3]) < len(classes)]


def span_audit_curve(tokens: Sequence[Sequence[str]], offsets: Sequence[list[tuple[int, int]]],
                     rows: Sequence[int], truth: Mapping[int, Sequence[Mapping[str, Any]]]
                     ) -> list[list[float]]:
    """``[[labels, entity F1], ...]`` of a CRF trained on the first labeled audit draws
    (``rows`` in draw order), scored on the later ones (micro F1,
    :func:`~activelabel.estimates.micro_f1`); empty below
    :data:`~activelabel.estimates.MIN_CURVE_LABELS` labeled draws."""
    labeled = [r for r in rows if r in truth and r < len(tokens)]
    curve: list[list[float]] = []
    for m in audit_curve_counts(len(labeled)):
        train, test = labeled[:m], labeled[m:]
        tagger = CrfTagger().fit([tokens[r] for r in train],
                                 [spans_to_tags(offsets[r], truth[r]) for r in train])
        found = tagger.predict([tokens[r] for r in test])
        counts = np.asarray([entity_counts(truth[r], tags_to_spans(offsets[r], t))
                             for r, t in zip(test, found, strict=True)]).reshape(-1, 3)
        curve.append([m, micro_f1(*counts.sum(axis=0))])
    return curve


def _holdout(tagger: CrfTagger, sents: _Sentences, rows: list[int],
             truth: Mapping[int, list[dict[str, Any]]]) -> dict[str, Any]:
    if not rows:
        return {"accuracy": None, "macro_f1": None, "entity_f1": None, "ece": None,
                "n_holdout": 0}
    tags = tagger.predict([sents.tokens[r] for r in rows])
    found = [tags_to_spans(sents.offsets[r], t) for r, t in zip(rows, tags, strict=True)]
    scores = entity_scores([truth[r] for r in rows], found)
    right = total = 0
    for r, t in zip(rows, tags, strict=True):
        gold = spans_to_tags(sents.offsets[r], truth[r])
        right += sum(a == b for a, b in zip(gold, t, strict=True))
        total += len(gold)
    per_type = [v["f1"] for v in scores["per_type"].values()]
    return {"accuracy": right / total if total else None,
            "macro_f1": float(np.mean(per_type)) if per_type else 0.0,
            "entity_f1": float(scores["f1"]), "entity_precision": float(scores["precision"]),
            "entity_recall": float(scores["recall"]), "ece": None, "n_holdout": len(rows)}


def _predictions(pred: SequencePredictions, sents: _Sentences,
                 classes: Sequence[Any]) -> NDArray[np.float64]:
    """(m, 5) ``row, start, end, type index, confidence`` of every predicted span; the
    confidence is the smallest marginal of the span's predicted tags."""
    index = {str(c): j for j, c in enumerate(classes)}
    tag_col = {t: j for j, t in enumerate(pred.tag_names)}
    out: list[tuple[float, float, float, float, float]] = []
    first = np.concatenate([[0], np.cumsum(pred.lengths)[:-1]]).astype(np.intp)
    for row, tags in enumerate(pred.tags):
        offs = sents.offsets[row]
        for span in tags_to_spans(offs, tags):
            if span["label"] not in index:
                continue
            tok = [i for i, (s, e) in enumerate(offs) if s >= span["start"] and e <= span["end"]]
            conf = min(float(pred.marginals[first[row] + i, tag_col[tags[i]]]) for i in tok)
            out.append((row, span["start"], span["end"], index[span["label"]], conf))
    return np.asarray(out, dtype=np.float64).reshape(-1, 5)


def _pool_inputs(pred: SequencePredictions, rows: NDArray[np.intp]) -> dict[str, Any]:
    """The sequence strategies' arrays for ``rows`` (taken out of the whole pool's)."""
    first = np.concatenate([[0], np.cumsum(pred.lengths)[:-1]]).astype(np.intp)
    lengths = pred.lengths[rows]
    token_rows = (np.concatenate([np.arange(first[r], first[r] + n) for r, n in
                                  zip(rows, lengths, strict=True)])
                  if rows.size else np.zeros(0, dtype=np.intp)).astype(np.intp)
    return {"sequence_probs": pred.sequence_probs[rows], "lengths": lengths,
            "token_probs": pred.marginals[token_rows]}


def _cold_start(sents: _Sentences, candidates: NDArray[np.intp], embeddings: Any, k: int,
                seed: int) -> SpanRound:
    cues = np.asarray([entity_cues(sents.tokens[r]) for r in candidates], dtype=np.float64)
    chosen = EntityColdStart().query(min(k, candidates.shape[0]), entity_cues=cues,
                                     embeddings=np.asarray(embeddings[candidates]),
                                     random_state=seed)
    idx = np.asarray(chosen.indices, dtype=np.intp)[:k]
    return SpanRound(candidates[idx], [float(s) for s in chosen.scores[:k]], SPAN_COLD_START, {})


def span_round(storage: Storage, project_id: int, *, item_ids: NDArray[np.int64],
               splits: NDArray[np.str_], labels: Mapping[int, Sequence[Sequence[Any]]],
               gold: Mapping[int, Sequence[Any]], audit: Sequence[int],
               candidates: NDArray[np.intp], embeddings: Any, settings: Mapping[str, Any],
               batch_size: int, seed: int, progress: Progress,
               timings: dict[str, float], tagger: CrfTagger | None = None,
               previous: NDArray[Any] | None = None,
               stop_rows: NDArray[np.intp] | None = None) -> SpanRound:
    """Cold start (no labeled pool sentence yet) or train, evaluate, tag and select.

    With ``tagger`` (a stored model version's CRF: a re-ranking round) nothing is trained:
    the pool is tagged with it and the batch picked again; the holdout metrics are the
    version's own (left empty here) and no new model is returned. ``previous``: the model
    before's ``span_predictions``, compared with a new model's on ``stop_rows``."""
    with storage.read_sessions() as session:
        classes = list(get_project(session, project_id).labels)
    n = int(item_ids.shape[0])
    sents = _sentences(storage, project_id, n)
    truth = span_truth(labels, gold, allow_overlap=bool(settings.get("span_overlap")))
    audit_rows = set(audit)
    train = sorted(r for r in truth if r < n and splits[r] == "pool" and r not in audit_rows)
    if tagger is not None:  # a re-ranking round: no new model, nothing to compare
        return _tag_and_select(tagger, sents, candidates, embeddings, classes, settings,
                               batch_size, seed, progress, timings)
    if not train:
        progress({"stage": "cold_start"})
        start = time.perf_counter()
        out = _cold_start(sents, candidates, embeddings, batch_size, seed) \
            if candidates.size else SpanRound(candidates, [], SPAN_COLD_START, {})
        timings["select_s"] = time.perf_counter() - start
        return out
    progress({"stage": "train", "n_train": len(train)})
    start = time.perf_counter()
    tagger = CrfTagger().fit([sents.tokens[r] for r in train],
                             [spans_to_tags(sents.offsets[r], truth[r]) for r in train])
    timings["train_s"] = time.perf_counter() - start
    holdout = _holdout(tagger, sents, [r for r in sorted(truth)
                                       if r < n and splits[r] == "holdout"], truth)
    holdout["random_curve"] = span_audit_curve(sents.tokens, sents.offsets, audit, truth)
    holdout[CURVE_MEASURE] = ENTITY_F1
    out = _tag_and_select(tagger, sents, candidates, embeddings, classes, settings, batch_size,
                          seed, progress, timings)
    out.holdout, out.model, out.n_train = holdout, tagger, len(train)
    out.training_hash = _training_hash(item_ids, train, truth)
    out.stop_kappa = _stop_kappa(previous, out.predictions, sents.offsets, stop_rows)
    return out


def _stop_kappa(previous: NDArray[Any] | None, current: NDArray[Any] | None,
                offsets: Sequence[list[tuple[int, int]]],
                rows: NDArray[np.intp] | None) -> float | None:
    """Cohen's kappa of the BIO tags two span models give the tokens of the stop set's
    ``rows`` (their stored ``span_predictions``); None without both."""
    if previous is None or current is None or rows is None or previous.ndim != 2 or \
            previous.shape[1] != 5 or current.ndim != 2 or current.shape[1] != 5:
        return None
    rows = rows[rows < len(offsets)]
    if not rows.size:
        return None

    def tags(predictions: NDArray[Any]) -> list[str]:
        types = [str(t) for t in range(int(predictions[:, 3].max(initial=0)) + 1)]
        return [tag for r in rows for tag in spans_to_tags(
            offsets[r], _row_spans(predictions, int(r), types))]

    return stop_set_kappa(np.asarray(tags(previous)), np.asarray(tags(current)))


def _tag_and_select(tagger: CrfTagger, sents: _Sentences, candidates: NDArray[np.intp],
                    embeddings: Any, classes: Sequence[Any], settings: Mapping[str, Any],
                    batch_size: int, seed: int, progress: Progress,
                    timings: dict[str, float]) -> SpanRound:
    """Tag the whole pool with ``tagger`` and pick the batch by the project's span strategy
    (the round's model, metrics and training hash are the caller's to fill in)."""
    n = len(sents.tokens)
    progress({"stage": "score", "n_items": n})
    start = time.perf_counter()
    pred = tagger.predict_marginals(sents.tokens)
    probs = np.stack([pred.sequence_probs, 1.0 - pred.sequence_probs], axis=1).astype(np.float32)
    predictions = _predictions(pred, sents, classes)
    timings["score_s"] = time.perf_counter() - start
    start = time.perf_counter()
    name = str(settings.get("span_strategy") or SPAN_STRATEGY_DEFAULT)
    picked: NDArray[np.intp] = candidates[:0]
    scores: list[float | None] = []
    if candidates.size:
        chosen = SEQUENCE_STRATEGIES[name]().query(
            min(batch_size, candidates.shape[0]), **_pool_inputs(pred, candidates),
            embeddings=np.asarray(embeddings[candidates]), random_state=seed)
        picked = candidates[np.asarray(chosen.indices, dtype=np.intp)]
        scores = [float(s) for s in chosen.scores]
    timings["select_s"] = time.perf_counter() - start
    return SpanRound(picked, scores, name, {}, probs, predictions)


def span_predictions(arrays: ArrayStore, project_id: int, task: str) -> NDArray[Any] | None:
    """The active span model's predicted spans (``row, start, end, type index, confidence``
    rows, sorted by row) as the array store holds them; None for a project of another task,
    before a span model, or for an array of another shape."""
    if task != "spans":
        return None
    found = arrays.load(project_id, SPAN_PREDICTIONS, mmap=False)
    return found if found is not None and found.ndim == 2 and found.shape[1] == 5 else None


def span_suggestion(predictions: NDArray[Any] | None, probs: NDArray[Any] | None, row: int,
                    classes: Sequence[Any]) -> tuple[list[dict[str, Any]], float] | None:
    """The model's spans of the item at ``row`` (each with its confidence) and the
    probability of its whole tagging; None when the arrays do not describe a span model."""
    if predictions is None or probs is None or predictions.ndim != 2 or \
            predictions.shape[1] != 5 or probs.ndim != 2 or row >= probs.shape[0]:
        return None
    return _row_spans(predictions, row, classes), float(probs[row, 0])
