"""The caller's next tasks (leased items with a suggestion and why they were chosen), release.

Fields listed in the project's ``private_fields`` are removed from the item data sent to
annotators; reviewers and owners see everything. Gold items look like pool items to
annotators: their split reads ``pool`` and, in a project that mixes gold in (``gold_rate`` >
0), no task shows annotators ``why`` it was chosen (a gold item has no round behind it).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any

import numpy as np
from fastapi import APIRouter, Query, Response
from pydantic import TypeAdapter

from ...store import ArrayStore, next_tasks, release_task
from ...store.models import Project
from ..auth import RANK, Caller, Turn, Writer
from ..schemas import Suggestion, TaskItem, TaskOut, Why, json_response

router = APIRouter(tags=["tasks"])

MAX_TASKS_PER_CALL = 100
#: Name of the array of the active model's class probabilities (row = item.row).
PROBS_ARRAY = "probs"


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


def _suggestion(project: Project, probs: np.ndarray[Any, Any] | None, row: int,
                version: int) -> Suggestion | None:
    """The model's label for the item (single label: the most likely class; multilabel: the
    labels at p >= 0.5) and its confidence."""
    labels = list(project.labels)
    if probs is None or probs.ndim != 2 or probs.shape[1] != len(labels) or row >= len(probs):
        return None
    p = np.asarray(probs[row], dtype=np.float64)
    if not np.all(np.isfinite(p)):
        return None
    if project.task == "multilabel":
        chosen = [label for label, q in zip(labels, p, strict=True) if q >= 0.5]
        confidence = float(np.min(np.maximum(p, 1.0 - p)))
        return Suggestion(label=chosen, confidence=confidence, model_version=version)
    best = int(np.argmax(p))
    return Suggestion(label=labels[best], confidence=float(p[best]), model_version=version)


def _data(data: Mapping[str, Any], private: frozenset[str]) -> dict[str, Any]:
    return {k: v for k, v in data.items() if k not in private} if private else dict(data)


_TASKS = TypeAdapter(list[TaskOut])


@router.get("/projects/{project_id}/tasks/next", response_model=list[TaskOut])
async def next_(project_id: int, turn: Turn,
                n: Annotated[int, Query(ge=1, le=MAX_TASKS_PER_CALL,
                                        description="How many tasks (1-100)")] = 10) -> Response:
    """Lease up to ``n`` items to the caller: first the caller's unexpired leases (renewed),
    then the queue (the latest round's ranking first). Each comes with the model's suggestion
    and why it was chosen (no suggestion when the project's ``show_suggestions`` is off, so
    annotators are not biased). An item is leased to at most ``overlap`` annotators at once; leases
    expire after ``lease_seconds`` (project settings). Fewer than ``n`` (or none) means the
    queue is exhausted for the caller right now. Any member."""
    return await turn.run(lambda caller: json_response(_TASKS, _next(caller, project_id, n)))


def _next(caller: Caller, project_id: int, n: int) -> list[TaskOut]:
    project, role = caller.project(project_id)
    settings = project.settings
    gold_rate = float(settings.get("gold_rate") or 0.0)
    tasks = next_tasks(caller.session, project_id, caller.user.id, n,
                       lease_seconds=int(settings.get("lease_seconds", 900)),
                       overlap=int(settings.get("overlap", 1)), gold_rate=gold_rate,
                       overlap_policy=str(settings.get("overlap_policy") or "all"),
                       overlap_share=float(settings.get("overlap_share", 1.0)))
    if not tasks:
        return []
    annotator = RANK[role] < RANK["reviewer"]
    private = frozenset(project.private_fields or []) if annotator else frozenset()
    hide_why = annotator and gold_rate > 0
    model = tasks[0].active_model_version if settings.get("show_suggestions", True) else None
    probs = None if model is None else _probs.get(caller.storage.arrays, project_id)
    out: list[TaskOut] = []
    for task in tasks:
        item, sel = task.item, task.selection
        why = None if sel is None or hide_why else Why(
            strategy=sel.strategy, score=sel.score, round=task.round_number,
            round_id=sel.round_id, rank=sel.rank, model_version=task.model_version)
        out.append(TaskOut(
            item=TaskItem(id=item.id, external_id=item.external_id,
                          split="pool" if annotator and item.split == "gold" else item.split,
                          data=_data(item.data, private)),
            suggestion=None if model is None else _suggestion(project, probs, item.row, model),
            why=why, lease_expires_at=task.expires_at))
    return out


@router.post("/projects/{project_id}/tasks/{item_id}/release")
def release(project_id: int, item_id: int, caller: Writer) -> dict[str, Any]:
    """Give a leased item back to the queue before its lease expires (any member; 404 when
    the caller holds no active lease on it)."""
    caller.project(project_id)
    release_task(caller.session, project_id, caller.user.id, item_id)
    return {"item_id": item_id, "released": True}
