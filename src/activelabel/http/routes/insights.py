"""What the web pages read beside the resources: labeling progress, the pool's confidence,
related examples of an item, and the dashboard's per-round and per-annotator figures."""

from __future__ import annotations

from typing import Annotated, Any

import numpy as np
from fastapi import APIRouter, Query

from ...estimates import TASK_MEASURES
from ...labeling.drift import latest_drift, staleness
from ...labeling.featurize import EMBEDDINGS
from ...labeling.insights import (
    annotator_throughput,
    confidence,
    interpolate,
    label_counts,
    labeled_rows,
    nearest_rows,
    outlook,
    progress,
    random_estimate,
    round_effort,
    task_gain,
    unlabeled_pool_rows,
)
from ...labeling.tasks import (
    PREVIOUS_PROBS_ARRAY,
    PROBS_ARRAY,
    hidden_fields,
    visible_data,
)
from ...store import Role, get_item, list_rounds
from ..auth import Reader
from ..schemas import Confidence, Dashboard, DriftOut, Outlook, PathId, Progress, RelatedItem

router = APIRouter(tags=["insights"])



@router.get("/projects/{project_id}/progress", response_model=Progress)
def get_progress(project_id: PathId, caller: Reader) -> Progress:
    """Labeling progress for the caller: the current batch (selected / labeled), labels until
    the next round (``retrain_every_labels``), the caller's own count and labels per hour, and
    the last round's holdout scores and gain. Any member."""
    project, _ = caller.project(project_id)
    return Progress.model_validate(progress(caller.session, project, caller.user.id))


@router.get("/projects/{project_id}/outlook", response_model=Outlook)
def get_outlook(project_id: PathId, caller: Reader) -> Outlook:
    """The team's pace and the batch and cadence it sets, the last round's stopping verdicts,
    the forecast of labels (and time) to ``target_accuracy``, and the caller's suggested
    prefetch. Any member."""
    project, _ = caller.project(project_id)
    return Outlook.model_validate(outlook(caller.session, project, caller.user.id))


@router.get("/projects/{project_id}/confidence", response_model=Confidence)
def get_confidence(project_id: PathId, caller: Reader,
                   bins: Annotated[int, Query(ge=2, le=100)] = 20) -> Confidence:
    """Histogram of the active model's confidence (largest class probability) over the
    unlabeled pool, and the same pool under the previous model when one was replaced.
    Reviewers and owners."""
    project, _ = caller.project(project_id, Role.REVIEWER)
    arrays = caller.storage.arrays
    rows = unlabeled_pool_rows(caller.session, project_id)
    return Confidence.model_validate(confidence(
        project, rows, arrays.load(project_id, PROBS_ARRAY),
        arrays.load(project_id, PREVIOUS_PROBS_ARRAY), bins))


#: Neighbours read beyond ``k``, in place of purged ones.
RELATED_SPARE = 5


@router.get("/projects/{project_id}/items/{item_id}/related", response_model=list[RelatedItem])
def related(project_id: PathId, item_id: PathId, caller: Reader,
            k: Annotated[int, Query(ge=1, le=50)] = 5) -> list[RelatedItem]:
    """The ``k`` labeled items nearest to the item in the project's embeddings, with their
    consensus label (null on a tie) and cosine similarity; empty before the first features
    are built; purged items left out. Private fields are removed for annotators. Any member."""
    project, role = caller.project(project_id)
    item = get_item(caller.session, project_id, item_id)
    embeddings = caller.storage.arrays.load(project_id, EMBEDDINGS)
    if embeddings is None or item.row >= embeddings.shape[0]:
        return []
    labeled = labeled_rows(caller.session, project)
    candidates = np.asarray(sorted(labeled), dtype=np.intp)
    near = nearest_rows(embeddings, item.row, candidates, k + RELATED_SPARE)
    hidden = hidden_fields(project, role)
    out: list[RelatedItem] = []
    for row, similarity in near:
        info = labeled[row]
        other = get_item(caller.session, project_id, info["item_id"])
        if other.purged_at is not None:  # its payload is gone: nothing to show
            continue
        if len(out) == k:
            break
        out.append(RelatedItem(item_id=info["item_id"], external_id=info["external_id"],
                               label=info["label"], similarity=similarity,
                               data=visible_data(other.data, hidden)))
    return out


#: A round's metrics the dashboard draws: the holdout's scores (a multi-label project's label
#: F1, a span project's entity F1 beside accuracy), the training labels and random sampling's
#: simulated scores.
_DASHBOARD_METRICS = frozenset({"accuracy", "macro_f1", "ece", "n_train", "random_accuracy",
                                "random_macro_f1", *TASK_MEASURES.values()})


@router.get("/projects/{project_id}/dashboard", response_model=Dashboard)
def dashboard(project_id: PathId, caller: Reader) -> Dashboard:
    """Per round: labels used and gathered, labeling time, holdout metrics, gain per 100
    labels and timings; per annotator: labels, last hour, median seconds per label; how
    many labeled items each label has; the newest drift report of new items and whether the
    active model is stale. Reviewers and owners."""
    project, _ = caller.project(project_id, Role.REVIEWER)
    effort = round_effort(caller.session, project_id)
    simulated = random_estimate(caller.storage, project_id)
    rounds: list[dict[str, Any]] = []
    for rnd in list_rounds(caller.session, project_id):
        spent = effort.get(rnd.id, {})
        metrics = dict(rnd.metrics or {})
        if simulated and metrics.get("n_train") is not None:
            for key in ("accuracy", "macro_f1"):
                metrics[f"random_{key}"] = interpolate(simulated, metrics["n_train"], key)
        shown = {k: v for k, v in metrics.items() if k in _DASHBOARD_METRICS}
        schedule = metrics.get("schedule")
        if isinstance(schedule, dict) and schedule.get("strategy"):  # what an `auto` round ran
            shown["schedule"] = {"strategy": schedule["strategy"]}
        rounds.append({"id": rnd.id, "number": rnd.number, "status": rnd.status,
                       "strategy": rnd.strategy, "n_labels_used": rnd.n_labels_used,
                       "labels_gathered": spent.get("labels", 0),
                       "labeling_seconds": spent.get("seconds"),
                       "metrics": shown, "gain": task_gain(rnd.gain, project.task),
                       "timings": rnd.timings, "finished_at": rnd.finished_at})
    drift = latest_drift(caller.session, project_id)
    return Dashboard.model_validate({
        "project_id": project_id, "measure": TASK_MEASURES[project.task], "rounds": rounds,
        "annotators": annotator_throughput(caller.session, project_id),
        "label_counts": label_counts(caller.session, project),
        "drift": None if drift is None else {k: v for k, v in drift.items()
                                             if k in DriftOut.model_fields},
        "staleness": staleness(caller.session, project_id)})

