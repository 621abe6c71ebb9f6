"""What an annotator is handed: leased items with the model's suggestion and why they were
chosen, and the fields each role may see.

Fields listed in the project's ``private_fields`` are removed from the item data sent to
annotators; reviewers and owners see everything. Gold items look like pool items to
annotators: their split reads ``pool`` and, in a project that mixes gold in (``gold_rate`` >
0), no task shows annotators ``why`` it was chosen (a gold item has no round behind it).

Suggestions are handed out only as the project says: none under ``suggestion_display``
``never`` or with ``show_suggestions`` off, and none less sure than :func:`min_confidence`
(the page shows what it gets: one threshold, here). A span project's suggestions are kept
whatever the whole tagging's probability: each span carries its own confidence. Under
``after_answer`` an annotator's tasks carry no suggestion (what the browser receives, its
developer tools show): only ``group``, a number shared by the tasks of one answer that names
no label, so that the grid can put similar items together. The suggestion of an item comes
with the annotator's answer (:func:`answered_suggestions`), before it is submitted; the first
answer for an item is kept as the annotator's blind answer (:mod:`..store.blind`).

The active model's class probabilities live in the array store (``probs``, one row per
``Item.row``); :func:`model_probs` keeps them memory-mapped between requests and reopens them
when a round replaces the file.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel
from sqlalchemy.orm import Session

from ..store import (
    ArrayStore,
    Forbidden,
    NewBlindAnswer,
    ProjectSettings,
    active_model_version,
    get_item,
    get_round,
    next_tasks,
    record_blind_answers,
    settings_of,
)
from ..store.annotations import check_labels, items_handed_to
from ..store.models import Project, Role
from ..store.queue import SCORED_BASE, Task
from .span_rounds import span_predictions, span_suggestion

__all__ = [
    "PREVIOUS_PROBS_ARRAY",
    "PROBS_ARRAY",
    "Suggestion",
    "TaskView",
    "Why",
    "active_model",
    "answered_suggestions",
    "confident",
    "hidden_fields",
    "lease_tasks",
    "min_confidence",
    "model_probs",
    "suggestion",
    "visible_data",
    "why_of",
    "withholds_suggestions",
]

#: Name of the array of the active model's class probabilities (row = item.row).
PROBS_ARRAY = "probs"
#: The outgoing model's probabilities, kept by the round that replaced it.
PREVIOUS_PROBS_ARRAY = "probs_previous"


class _ProbsCache:
    """Memory-mapped probability arrays, reopened when the file is replaced (new round)."""

    def __init__(self, size: int = 64) -> None:
        self._size = size
        self._lock = threading.Lock()
        self._arrays: OrderedDict[Path, tuple[tuple[int, int], np.ndarray[Any, Any]]] = (
            OrderedDict())

    def get(self, arrays: ArrayStore, project_id: int) -> np.ndarray[Any, Any] | None:
        path = arrays.path(project_id, PROBS_ARRAY)
        try:
            stat = path.stat()
        except FileNotFoundError:
            return None
        key = (stat.st_mtime_ns, stat.st_ino)
        with self._lock:
            cached = self._arrays.get(path)
            if cached is not None and cached[0] == key:
                self._arrays.move_to_end(path)
                return cached[1]
        try:
            array = arrays.load(project_id, PROBS_ARRAY)
        except (OSError, ValueError):
            return None
        if array is None:
            return None
        with self._lock:
            self._arrays[path] = (key, array)
            while len(self._arrays) > self._size:
                self._arrays.popitem(last=False)
        return array


_probs = _ProbsCache()


def model_probs(arrays: ArrayStore, project_id: int) -> np.ndarray[Any, Any] | None:
    """The active model's probabilities over the project's items (memory-mapped), or None
    before the first trained round."""
    return _probs.get(arrays, project_id)


class Suggestion(BaseModel):
    """The model's answer for one item: a label (multilabel: a list), its confidence and the
    model version it comes from. Before the project has a model, an imported prediction
    (``source`` ``imported``, version 0, ``model`` its name, confidence its score if any)."""

    label: Any
    confidence: float | None
    model_version: int
    #: The round that trained the model (pages speak of "the model of round 3"), when known.
    model_round: int | None = None
    #: Single label: the second most likely label and its probability (why an item is hard).
    runner_up: Any = None
    runner_up_confidence: float | None = None
    source: str = "model"
    model: str | None = None


def suggestion(project: Project, probs: np.ndarray[Any, Any] | None, row: int,
               version: int, model_round: int | None = None,
               span_predictions: np.ndarray[Any, Any] | None = None) -> Suggestion | None:
    """The model's label for the item (single label: the most likely class and the runner-up;
    multilabel: the labels above p = 0.5; spans: the predicted spans, from ``span_predictions``)
    and its confidence; None when ``probs`` does not fit the project."""
    labels = list(project.labels)
    if project.task == "spans":  # the model's spans, each with its confidence
        found = span_suggestion(span_predictions, probs, row, labels)
        return None if found is None else Suggestion(label=found[0], confidence=found[1],
                                                     model_version=version,
                                                     model_round=model_round)
    if probs is None or probs.ndim != 2 or probs.shape[1] != len(labels) or row >= len(probs):
        return None
    p = np.asarray(probs[row], dtype=np.float64)
    if not np.all(np.isfinite(p)):
        return None
    if project.task == "multilabel":
        chosen = [label for label, q in zip(labels, p, strict=True) if q > 0.5]
        confidence = float(np.min(np.maximum(p, 1.0 - p)))
        return Suggestion(label=chosen, confidence=confidence, model_version=version,
                          model_round=model_round)
    order = np.argsort(-p, kind="stable")
    best = int(order[0])
    second = int(order[1]) if len(order) > 1 else None
    return Suggestion(label=labels[best], confidence=float(p[best]), model_version=version,
                      model_round=model_round,
                      runner_up=None if second is None else labels[second],
                      runner_up_confidence=None if second is None else float(p[second]))


def min_confidence(settings: ProjectSettings, n_labels: int) -> float:
    """The confidence under which no suggestion is handed out: the project's
    ``suggestion_min_confidence``, else twice the chance level (2 / number of labels), at most
    0.6."""
    if settings.suggestion_min_confidence is not None:
        return settings.suggestion_min_confidence
    return min(0.6, 2.0 / max(1, n_labels))


def confident(hint: Suggestion | None, threshold: float) -> Suggestion | None:
    """``hint`` when it is at least ``threshold`` sure (or carries no confidence, as an imported
    prediction without a score), else None."""
    if hint is None or hint.confidence is None or hint.confidence >= threshold:
        return hint
    return None


def hidden_fields(project: Project, role: str) -> frozenset[str]:
    """The payload fields ``role`` must not see: the project's private fields for annotators,
    none for reviewers and owners."""
    if Role(role).at_least(Role.REVIEWER):
        return frozenset()
    return frozenset(project.private_fields or [])


def visible_data(data: Mapping[str, Any], hidden: frozenset[str]) -> dict[str, Any]:
    """The item payload without the ``hidden`` fields."""
    return {k: v for k, v in data.items() if k not in hidden} if hidden else dict(data)


class Why(BaseModel):
    """Why an item was chosen: what ranked it (``ranked_by``: ``strategy``, ``model_score``,
    ``random`` or ``audit``), in words (``detail``), and the round, strategy, score, rank and
    model behind it (None where nothing did)."""

    strategy: str
    score: float | None
    round: int | None
    round_id: int | None
    rank: int | None
    model_version: int | None
    ranked_by: str = "strategy"
    detail: str = ""


def why_of(task: Task, *, reveal_audit: bool = True) -> Why:
    """What ranked the task's item, from its queue rank and the round that wrote the ranking.
    Without ``reveal_audit`` an audit draw reads as what its queue rank says, and no task
    ranked by the model's score shows its rank (a draw from deep in the pool would stand out
    among the ranks of the queue's head): annotators cannot tell audit draws apart; owners and
    reviewers see them."""
    kind, sel, last = task.ranked_by, task.selection, task.ranking_round
    if kind == "audit" and not reveal_audit:
        kind = task.queue_ranked_by
    if kind == "strategy" and sel is not None:
        return Why(strategy=sel.strategy, score=sel.score, round=task.round_number,
                   round_id=sel.round_id, rank=sel.rank, model_version=task.model_version,
                   ranked_by=kind, detail=f"picked by round {task.round_number}'s strategy "
                   f"{sel.strategy} (rank {sel.rank + 1})")
    if kind == "model_score" and last is not None:
        rank = int((task.item.queue_rank or SCORED_BASE) - SCORED_BASE)
        shown = f" (rank {rank + 1})" if reveal_audit else ""
        return Why(strategy="model_score", score=None, round=last[1], round_id=last[0],
                   rank=rank if reveal_audit else None, model_version=last[2], ranked_by=kind,
                   detail=f"ranked behind round {last[1]}'s batch by the model's score{shown}")
    if kind == "audit":
        return Why(strategy="audit", score=None, round=None, round_id=None, rank=None,
                   model_version=None, ranked_by=kind,
                   detail="drawn uniformly at random from the pool for the audit")
    return Why(strategy="random", score=None, round=None, round_id=None, rank=None,
               model_version=None, ranked_by="random",
               detail="random order before the first model (seeded)")


def _model_round(task: Task, version: int) -> int | None:
    """The number of the round that trained model ``version``, when the task knows it."""
    last = task.ranking_round
    if last is not None and last[2] == version:
        return last[1]
    if task.model_version == version:
        return task.round_number
    return None


@dataclass(frozen=True)
class TaskView:
    """One leased item as its annotator sees it."""

    item_id: int
    external_id: str
    split: str
    data: dict[str, Any]
    suggestion: Suggestion | None
    why: Why | None
    lease_expires_at: datetime
    #: Under ``after_answer``, for annotators: the tasks of this answer whose suggestions
    #: name one label share a number (1, 2, ... in order of first appearance); None without
    #: a confident suggestion, and in the other modes (the suggestion itself is sent).
    group: int | None = None


def withholds_suggestions(settings: ProjectSettings, project: Project, role: str) -> bool:
    """Whether ``role``'s tasks carry no suggestion until an answer: annotators of a project
    showing them ``after_answer`` (a span project's page starts from the model's spans)."""
    return (settings.suggestion_display == "after_answer" and project.task != "spans"
            and not Role(role).at_least(Role.REVIEWER))


def lease_tasks(session: Session, arrays: ArrayStore, project: Project, role: str,
                user_id: int, n: int) -> list[TaskView]:
    """Lease up to ``n`` items of ``project`` to the user (their unexpired leases first, then
    the queue) and describe each as the user's ``role`` may see it."""
    settings = settings_of(project.settings)
    gold_rate = settings.gold_rate
    tasks = next_tasks(session, project.id, user_id, n, lease_seconds=settings.lease_seconds,
                       overlap=settings.overlap, gold_rate=gold_rate,
                       overlap_policy=settings.overlap_policy,
                       overlap_share=settings.overlap_share,
                       audit_share=settings.audit_share)
    if not tasks:
        return []
    annotator = not Role(role).at_least(Role.REVIEWER)
    hidden = hidden_fields(project, role)
    hide_why = annotator and gold_rate > 0
    shown = settings.show_suggestions and settings.suggestion_display != "never"
    model = tasks[0].active_model_version if shown else None
    probs = None if model is None else model_probs(arrays, project.id)
    imported = (_imported_suggestions(session, project, [t.item.id for t in tasks])
                if shown and model is None else {})
    # spans: each suggested span carries its own confidence, the page shows them all
    threshold = 0.0 if project.task == "spans" else min_confidence(settings,
                                                                    len(project.labels))
    spans = None if model is None else span_predictions(arrays, project.id, project.task)
    withheld = withholds_suggestions(settings, project, role)
    groups: dict[str, int] = {}
    out: list[TaskView] = []
    for task in tasks:
        item = task.item
        why = None if hide_why else why_of(task, reveal_audit=not annotator)
        hint = confident(imported.get(item.id) if model is None else suggestion(
            project, probs, item.row, model, _model_round(task, model), spans), threshold)
        group = None
        if withheld and hint is not None:
            group = groups.setdefault(repr(hint.label), len(groups) + 1)
        out.append(TaskView(
            item_id=item.id, external_id=item.external_id,
            split="pool" if annotator and item.split == "gold" else item.split,
            data=visible_data(item.data, hidden),
            suggestion=None if withheld else hint,
            why=why, lease_expires_at=task.expires_at, group=group))
    return out


def answered_suggestions(session: Session, arrays: ArrayStore, project: Project, role: str,
                         user_id: int, answers: list[tuple[int, Any]]
                         ) -> list[tuple[int, Suggestion | None]]:
    """Each answered item's suggestion, as its task would have carried it (the active model's,
    or an imported prediction before any; None below the project's threshold, and for every
    item when the project shows none): ``answers`` are (item id, the labels the caller chose),
    checked as an annotation's labels are (NotFound for an item of another project). An
    annotator asks only about items handed to them or labeled by them (Forbidden otherwise,
    as a label on such an item is), unless the project's ``free_labeling`` is on.

    Where the caller's tasks carry no suggestion (:func:`withholds_suggestions`, with
    ``show_suggestions`` on), the labels chosen are the caller's blind answer: the first one
    for an item is kept with the suggestion it brought (:func:`~..store.record_blind_answers`),
    later ones are not. Nothing is kept when a check fails."""
    settings = settings_of(project.settings)
    items = []
    chosen = []
    for item_id, labels in answers:
        item = get_item(session, project.id, item_id)
        chosen.append(check_labels(project, labels, item))
        items.append(item)
    if not settings.free_labeling and not Role(role).at_least(Role.REVIEWER):
        handed = items_handed_to(session, user_id, [item.id for item in items])
        strangers = [item.id for item in items if item.id not in handed]
        if strangers:
            raise Forbidden(f"item {strangers[0]} was not handed to you: ask about the items "
                            "GET /projects/{id}/tasks/next gives you")
    if not settings.show_suggestions or settings.suggestion_display == "never":
        return [(item.id, None) for item in items]
    found = _suggestions_of(session, arrays, project, settings, items)
    if withholds_suggestions(settings, project, role):
        record_blind_answers(session, project.id, user_id, [
            NewBlindAnswer(item_id=item.id, labels=labels,
                           suggested=None if hint is None else _as_list(hint.label),
                           model_version=None if hint is None else hint.model_version)
            for item, labels, (_, hint) in zip(items, chosen, found, strict=True)])
    return found


def _as_list(label: Any) -> list[Any]:
    """A suggestion's label as an annotation's labels (a list)."""
    return list(label) if isinstance(label, list) else [label]


def _suggestions_of(session: Session, arrays: ArrayStore, project: Project,
                    settings: ProjectSettings, items: list[Any]
                    ) -> list[tuple[int, Suggestion | None]]:
    """The suggestion each of ``items`` would carry as a task (shown suggestions only)."""
    active = active_model(session, project.id)
    threshold = 0.0 if project.task == "spans" else min_confidence(settings,
                                                                    len(project.labels))
    if active is None:
        imported = _imported_suggestions(session, project, [item.id for item in items])
        return [(item.id, confident(imported.get(item.id), threshold)) for item in items]
    version, model_round = active
    probs = model_probs(arrays, project.id)
    spans = span_predictions(arrays, project.id, project.task)
    return [(item.id, confident(suggestion(project, probs, item.row, version, model_round,
                                           spans), threshold))
            for item in items]


def active_model(session: Session, project_id: int) -> tuple[int, int | None] | None:
    """The project's active model: its version and the number of the round that trained it
    (None for a model no round trained); None before the first model."""
    model = active_model_version(session, project_id)
    if model is None:
        return None
    return model.version, (None if model.round_id is None
                           else get_round(session, project_id, model.round_id).number)


def _imported_suggestions(session: Session, project: Project, item_ids: list[int]
                          ) -> dict[int, Suggestion]:
    """The imported predictions of the items as suggestions (before the first model)."""
    from .predictions import imported_suggestions  # it builds on this module's Suggestion

    return imported_suggestions(session, project, item_ids)
