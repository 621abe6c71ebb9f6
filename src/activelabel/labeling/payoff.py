"""What active learning pays, measured on audit draws (tasks drawn uniformly at random from
the unlabeled pool, :func:`activelabel.store.queue.next_tasks`).

The active model never trains on audit labels, so its accuracy on them estimates its accuracy
on the pool without bias; a model trained on the audit labels alone traces random sampling's
learning curve (computed by each round, :func:`audit_curve`), which says how many random
labels the model's accuracy would have cost. The maths is in :mod:`activelabel.estimates`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session

from ..estimates import (
    ACCURACY,
    CURVE_MEASURE,
    ENTITY_F1,
    F1_MIN_ENTITIES,
    LABEL_F1,
    MIN_CURVE_LABELS,
    TASK_MEASURES,
    AccuracyEstimate,
    accuracy_estimate,
    audit_curve_counts,
    curve_draws,
    f1_estimate,
    label_set_counts,
    random_labels,
    random_sampling_curve,
    target_status,
)
from ..store import (
    ArrayStore,
    active_model_version,
    current_labels,
    is_current_label,
    settings_of,
)
from ..store.models import Annotation, Item, Project, Round, RoundStatus
from ..store.settings import REMOTE_MODEL
from .consensus import (
    DAWID_SKENE,
    consensus_method,
    item_majority,
    project_consensus,
    span_tie,
)
from .span_rounds import entity_counts, predicted_spans, span_predictions, span_truth
from .stats import labels_spent
from .tasks import model_probs

__all__ = ["MIN_CURVE_LABELS", "audit_curve", "audit_rows", "payoff"]

CONFIDENCE = 0.95
#: What the payoff measures: a classifier's accuracy (a share of the audit labels: Wilson
#: interval); a multi-label model's label F1, micro over the audit items' labels; a span
#: model's entity F1, micro over the audit sentences' entities (F1 is a ratio: bootstrap
#: interval over the items). A share of label sets given exactly is no measure where most
#: items carry no label: a model that gives none scores it (wnut17's entity types, 64% of
#: tweets with none: 20 random labels "reached" a 500-label model's 65%).


def audit_rows(session: Session, project_id: int) -> list[int]:
    """Rows of the project's audit draws, in the order they were drawn."""
    stmt = (select(Item.row).where(Item.project_id == project_id,
                                   Item.audit_drawn_at.is_not(None), Item.purged_at.is_(None))
            .order_by(Item.audit_drawn_at, Item.id))
    return [int(r) for r in session.execute(stmt).scalars()]


def audit_curve(X: Any, rows: Sequence[int], truth: Mapping[int, Any],
                make_model: Callable[[], Any], *, unlabeled: Any = None) -> list[list[float]]:
    """``[[labels, accuracy], ...]`` of a model trained on the first audit labels, scored on
    the later ones (empty below :data:`MIN_CURVE_LABELS` labeled draws); ``unlabeled`` goes
    to each fit, as the round's model had it (self-training)."""
    labeled = [r for r in rows if r in truth and r < X.shape[0]]
    counts = audit_curve_counts(len(labeled))
    if not counts:
        return []
    index = np.asarray(labeled, dtype=np.intp)
    y = [truth[r] for r in labeled]
    curve = random_sampling_curve(X[index], y, counts, make_model, unlabeled=unlabeled)
    return [[m, acc] for m, acc in curve]


def _audit_answers(session: Session, project: Project) -> dict[int, Any]:
    """Row -> the consensus of the current labels of each labeled audit draw, by the
    project's method as training counts it (:mod:`.consensus`): the majority
    (:func:`~activelabel.labeling.consensus.item_majority`: per label for multi-label; ties
    left out), or Dawid-Skene fitted on every current label of the project; for spans, the
    annotators' spans by vote (:func:`~.span_rounds.span_truth`: a span kept by more than
    half of them, as training reads it; an item where a span has exactly half of the votes
    left out). Purged items are left out."""
    if consensus_method(project.task, project.settings or {}) == DAWID_SKENE:
        rows = {int(i): int(r) for i, r in session.execute(select(Item.id, Item.row).where(
            Item.project_id == project.id, Item.audit_drawn_at.is_not(None),
            Item.purged_at.is_(None)))}
        if not rows:
            return {}
        agreed = project_consensus(project, current_labels(session, project.id))
        return {rows[i]: v for i, v in agreed.as_dict().items()
                if i in rows and v is not None}
    stmt = (select(Item.row, Annotation.labels).join(Annotation, Annotation.item_id == Item.id)
            .where(Item.project_id == project.id, Item.audit_drawn_at.is_not(None),
                   Item.purged_at.is_(None), is_current_label()))
    per_row: dict[int, list[list[Any]]] = {}
    for row, labels in session.execute(stmt):
        per_row.setdefault(int(row), []).append(list(labels))
    if project.task == "spans":  # ties left out, as a classifier's are
        voted = span_truth(per_row, {}, allow_overlap=bool(
            settings_of(project.settings).span_overlap))
        return {r: v for r, v in voted.items() if not span_tie(per_row[r])}
    multilabel = project.task == "multilabel"
    out: dict[int, Any] = {}
    for row, given in per_row.items():
        answer = item_majority(given, multilabel)
        if answer is not None:
            out[row] = answer
    return out


def _model_answers(project: Project, probs: np.ndarray[Any, Any],
                   rows: list[int]) -> list[Any] | None:
    """The model's answer per audit row: a label, or a multi-label model's labels above 0.5
    (as its predict gives them); None when the model was trained on another label set."""
    labels = list(project.labels)
    if probs.shape[1] != len(labels):
        return None
    p = np.asarray(probs[np.asarray(rows, dtype=np.intp)], dtype=np.float64).reshape(
        len(rows), len(labels))
    if project.task == "multilabel":
        return [[labels[j] for j in np.flatnonzero(q > 0.5)] for q in p]
    return [labels[int(j)] for j in p.argmax(axis=1)]


def _hits(project: Project, probs: np.ndarray[Any, Any], rows: list[int],
          answers: Mapping[int, Any]) -> np.ndarray[Any, np.dtype[np.bool_]]:
    """Per audit row, whether a classifier's answer is the people's; none when the model was
    trained on another label set."""
    given = _model_answers(project, probs, rows) if rows else None
    if given is None:
        return np.zeros(0, dtype=bool)
    return np.asarray([g == answers[r] for g, r in zip(given, rows, strict=True)], dtype=bool)


def _estimate(project: Project, arrays: ArrayStore, probs: np.ndarray[Any, Any] | None,
              rows: list[int], answers: Mapping[int, Any]) -> AccuracyEstimate:
    """The active model's score on the audit rows: accuracy; a multi-label model's label F1
    (micro over the items' labels); a span model's entity F1 (from its stored spans); no rows
    without a model."""
    if probs is None or not rows:
        return accuracy_estimate(np.zeros(0, dtype=bool), CONFIDENCE)
    if project.task == "classification":
        return accuracy_estimate(_hits(project, probs, rows, answers), CONFIDENCE)
    if project.task == "multilabel":
        given = _model_answers(project, probs, rows)
        if given is None:
            return f1_estimate(np.zeros((0, 3)), CONFIDENCE)
        return f1_estimate(label_set_counts(given, [answers[r] for r in rows]), CONFIDENCE)
    spans = span_predictions(arrays, project.id, project.task)
    if spans is None:  # no span model's arrays
        return f1_estimate(np.zeros((0, 3)), CONFIDENCE)
    found = predicted_spans(spans, rows, list(project.labels))
    return f1_estimate([entity_counts(answers[r], found[r]) for r in rows], CONFIDENCE)


#: Rounds back from the latest that the payoff looks through for a traced curve: a run of
#: re-ranking rounds is short, and every `GET .../stats` would otherwise read every round's
#: metrics of a project that never traces one (audit draws off).
CURVE_LOOKBACK = 20


def _last_curve(session: Session, project_id: int, measure: str) -> list[tuple[int, float]]:
    """The random-sampling curve of the latest round that traced one of ``measure`` (a
    re-ranking round trains nothing and traces none), within the last
    :data:`CURVE_LOOKBACK` rounds. A curve recorded without its measure is a span round's
    entity F1 or a classifier's accuracy (a multi-label project's exact label sets, read
    against its label F1 no more)."""
    stmt = (select(Round.metrics).where(Round.project_id == project_id,
                                        Round.status == RoundStatus.DONE)
            .order_by(Round.number.desc()).limit(CURVE_LOOKBACK))
    for metrics in session.execute(stmt).scalars():
        curve = (metrics or {}).get("random_curve")
        traced = (metrics or {}).get(CURVE_MEASURE) or (
            ENTITY_F1 if measure == ENTITY_F1 else ACCURACY)
        if curve and traced == measure:
            return [(int(m), float(a)) for m, a in curve]
    return []


def _note(measure: str, audit_share: float, n_labels: int, entities: int | None,
          has_model: bool, n_answers: int = 0) -> str:
    """Why there is no score yet (``n_labels``: the labeled audit draws the active model
    scored; ``n_answers``: all of them)."""
    if n_labels == 0 and n_answers and has_model:
        return (f"{n_answers} audit labels on items the active model has not scored yet: the "
                "next round measures them")
    if n_labels == 0:
        if not audit_share:
            return "audit draws are off (audit_share 0): nothing measures the model"
        return (f"no audit labels yet: {100 * audit_share:.1f}% of tasks are drawn at random "
                "to measure the model")
    if not has_model:
        return f"{n_labels} audit labels in; no model to measure yet"
    if measure == ENTITY_F1 and entities is not None and entities < F1_MIN_ENTITIES:
        return (f"{n_labels} audit sentences labeled, holding {entities} entities: entity F1 is "
                f"measured from {F1_MIN_ENTITIES}")
    if measure == LABEL_F1 and entities is not None and entities < F1_MIN_ENTITIES:
        return (f"{n_labels} audit items labeled, holding {entities} labels: label F1 is "
                f"measured from {F1_MIN_ENTITIES}")
    if measure == ENTITY_F1:
        return ("the active span model's predictions are not stored: the next round's model is "
                "measured")
    return ("the active model's answers do not fit the project's labels (trained on another "
            "label set): the next round's model is measured")


def payoff(session: Session, arrays: ArrayStore, project: Project) -> dict[str, Any]:
    """The dashboard's headline: the active model's accuracy on the audit labels with its 95%
    Wilson interval, the labels spent, the random labels the same accuracy needed (from the
    latest random-sampling curve; ``extrapolated`` beyond its last point, given only when the
    interval's high end is within reach too: :func:`~activelabel.estimates.random_labels`) and
    the same count at the interval's two ends, and the distance to ``target_accuracy`` with
    where the interval stands against it (``target_status``). A multi-label
    project measures label F1 and a span project entity F1 (``measure`` says which; a
    bootstrap interval; ``audit_positives``: the labels or entities the audit answers hold),
    the score their target names too. ``note`` says why there is no score yet."""
    settings = settings_of(project.settings)
    answers = _audit_answers(session, project)
    active = active_model_version(session, project.id)
    probs = None if active is None else model_probs(arrays, project.id)
    labeled = sorted(answers) if probs is None else sorted(r for r in answers
                                                           if r < probs.shape[0])
    est = _estimate(project, arrays, probs, [] if probs is None else labeled, answers)
    spans = project.task == "spans"
    # a model served over HTTP trains where it runs: no round fits it on the audit labels
    # (span projects always train their own CRF), and a curve from before it is not its own
    traced = not (settings.model == REMOTE_MODEL and not spans)
    # no round traces a curve from fewer labeled audit draws: nothing to look for
    measure = TASK_MEASURES[project.task]
    curve = (_last_curve(session, project.id, measure)
             if traced and len(answers) >= MIN_CURVE_LABELS else [])
    # the count and the same read at the interval's ends: what it is worth with this many
    # audit labels (none where an extrapolation's range has no high end)
    read = None if est.accuracy is None else random_labels(
        curve, est.accuracy, est.low, est.high, draws=curve_draws(curve))
    # what F1 counts: the audit answers' entities, or a multi-label project's labels
    positives = None if measure == ACCURACY else sum(len(answers[r]) for r in labeled)
    target = settings.target_accuracy
    read_target = None if target is None or est.accuracy is None else target_status(
        est.accuracy, est.low, est.high, float(target))
    return {
        "audit_share": settings.audit_share,
        "audit_draws": len(audit_rows(session, project.id)),
        "audit_labels": len(labeled),
        "audit_entities": positives if spans else None,
        "audit_positives": positives,
        "model_version": None if active is None else active.version,
        "measure": measure,
        "accuracy": est.accuracy, "low": est.low, "high": est.high,
        "confidence": est.confidence,
        "interval": "wilson" if measure == ACCURACY else "bootstrap",
        "note": None if est.accuracy is not None else _note(
            measure, settings.audit_share, len(labeled), positives, probs is not None,
            len(answers)),
        "labels_spent": labels_spent(session, project.id),
        "n_train": None if active is None else active.n_train,
        "random_curve": [[m, a] for m, a in curve],
        "curve_min_labels": MIN_CURVE_LABELS if traced else None,
        "random_labels_needed": None if read is None else round(read[0][0]),
        "random_extrapolated": None if read is None else read[0][1],
        "random_labels_range": None if read is None else [
            None if end is None else round(end) for end in read[1]],
        "target_accuracy": target,
        "to_target": None if target is None or est.accuracy is None
        else round(float(target) - float(est.accuracy), 6),
        "target_status": read_target,
    }
