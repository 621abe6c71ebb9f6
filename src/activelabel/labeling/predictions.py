"""Imported predictions: the suggestions annotators see until a model of the project exists,
and how they compare with the labels people gave (the dashboard's card)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from numpy.typing import NDArray
from sqlalchemy.orm import Session

from ..store import Storage, current_labels, get_project
from ..store.imported import imported_counts, prediction_rows, predictions_of
from ..store.models import Project
from .consensus import project_consensus
from .tasks import Suggestion

__all__ = ["imported_suggestions", "prediction_comparison", "prediction_priors"]


def imported_suggestions(session: Session, project: Project, item_ids: Sequence[int]
                         ) -> dict[int, Suggestion]:
    """Item id -> the imported prediction as a suggestion (``source`` ``imported``, model
    version 0), for the items that have one."""
    multilabel = project.task == "multilabel"
    out: dict[int, Suggestion] = {}
    for item_id, p in predictions_of(session, project.id, item_ids).items():
        labels = list(p.labels or [])
        if not labels and not multilabel:
            continue
        out[item_id] = Suggestion(label=labels if multilabel else labels[0],
                                  confidence=p.score, model_version=0, source="imported",
                                  model=p.model)
    return out


def _key(labels: Any) -> str:
    values = labels if isinstance(labels, list) else [labels]
    return "|".join(sorted(map(str, values)))


def prediction_comparison(session: Session, project_id: int) -> dict[str, Any]:
    """How the imported predictions compare with people's labels: on items that have both
    (people's consensus of current labels), the share where they agree, overall and per
    predicted label, and the mean score when right and when wrong."""
    project = get_project(session, project_id)
    predicted = prediction_rows(session, project_id)
    counts = imported_counts(session, project_id)
    consensus = project_consensus(project, current_labels(session, project_id)).as_dict()
    per_label: dict[str, dict[str, int]] = {}
    agree = compared = 0
    scores: dict[bool, list[float]] = {True: [], False: []}
    for item_id, _row, labels, score in predicted:
        if item_id not in consensus:
            continue
        compared += 1
        same = _key(labels) == _key(consensus[item_id])
        agree += same
        entry = per_label.setdefault(_key(labels), {"compared": 0, "agree": 0})
        entry["compared"] += 1
        entry["agree"] += same
        if score is not None:
            scores[same].append(float(score))
    return {
        "predictions": counts["predictions"], "predicted_items": len(predicted),
        "imported_labels": counts["labels"], "compared": compared, "agree": agree,
        "agreement": None if not compared else agree / compared,
        "per_label": [{"label": k, **v, "agreement": v["agree"] / v["compared"]}
                      for k, v in sorted(per_label.items())],
        "mean_score_when_agreeing": _mean(scores[True]),
        "mean_score_when_disagreeing": _mean(scores[False])}


def _mean(values: list[float]) -> float | None:
    return sum(values) / len(values) if values else None


def prediction_priors(storage: Storage, project_id: int, n_items: int
                      ) -> NDArray[np.float64] | None:
    """The imported predictions' scores by item row (NaN where an item has none, or its
    prediction no score): what a cold start reads as priors; None without any."""
    with storage.read_sessions() as session:
        predicted = prediction_rows(session, project_id)
    scored = [(row, score) for _, row, _, score in predicted
              if score is not None and row < n_items]
    if not scored:
        return None
    out = np.full(n_items, np.nan)
    rows, scores = zip(*scored, strict=True)
    out[np.asarray(rows, dtype=np.intp)] = np.asarray(scores, dtype=np.float64)
    return out
