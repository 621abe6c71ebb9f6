"""The caller's next tasks (leased items with a suggestion and why they were chosen), release.

What each role sees of a task is decided in :mod:`activelabel.labeling.tasks`.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Response
from pydantic import TypeAdapter

from ...labeling.tasks import TaskView, answered_suggestions, lease_tasks
from ...store import release_task
from ..auth import Caller, Turn, Writer, WriteTurn
from ..schemas import (
    AnsweredSuggestion,
    AnswersIn,
    PathId,
    TaskItem,
    TaskOut,
    json_response,
)

router = APIRouter(tags=["tasks"])

MAX_TASKS_PER_CALL = 100


def _task_out(task: TaskView) -> TaskOut:
    return TaskOut(item=TaskItem(id=task.item_id, external_id=task.external_id,
                                 split=task.split, data=task.data),
                   suggestion=task.suggestion, why=task.why,
                   lease_expires_at=task.lease_expires_at, group=task.group)


_TASKS = TypeAdapter(list[TaskOut])


@router.get("/projects/{project_id}/tasks/next", response_model=list[TaskOut])
async def next_(project_id: PathId, turn: Turn,
                n: Annotated[int, Query(ge=1, le=MAX_TASKS_PER_CALL,
                                        description="How many tasks (1-100)")] = 10) -> Response:
    """Lease up to ``n`` items to the caller: first the caller's unexpired leases (renewed),
    then the queue (the latest round's ranking first). Each comes with the model's suggestion
    and why it was chosen (no suggestion when the project's ``show_suggestions`` is off or
    ``suggestion_display`` is never, so annotators are not biased; under ``after_answer`` an
    annotator's tasks carry none either, only ``group``: the suggestion comes with the
    answer, ``POST tasks/suggestions``). An item is leased to at most ``overlap`` annotators at once; leases
    expire after ``lease_seconds`` (project settings). Fewer than ``n`` (or none) means the
    queue is exhausted for the caller right now. Any member."""
    return await answer_next(turn, project_id, n)


async def answer_next(turn: WriteTurn, project_id: int, n: int) -> Response:
    """The answer of ``tasks/next`` (this route's, and :mod:`..hot`'s for ordinary calls)."""
    # A lease lost in a crash of the database is harmless (the item goes back to the queue, as
    # when a lease expires): its commit need not wait for the disk.
    return await turn.run(lambda caller: json_response(_TASKS, _next(caller, project_id, n)),
                          durable=False)


def _next(caller: Caller, project_id: int, n: int) -> list[TaskOut]:
    project, role = caller.project(project_id)
    return [_task_out(task) for task in lease_tasks(caller.session, caller.storage.arrays,
                                                    project, role, caller.user.id, n)]


@router.post("/projects/{project_id}/tasks/suggestions",
             response_model=list[AnsweredSuggestion])
def suggestions_after_answers(project_id: PathId, body: AnswersIn,
                              caller: Writer) -> list[AnsweredSuggestion]:
    """The model's suggestion for each item the caller has answered (the labels chosen, not
    yet submitted), to compare before submitting: what the labeling page shows under
    ``suggestion_display`` after_answer, where tasks carry none. The same suggestion a task
    carries otherwise (null below the project's threshold, and always under never or with
    show_suggestions off). Under after_answer an annotator's first answer for an item is
    kept as their blind answer, with the suggestion it brought (``GET anchoring`` counts
    how often the label submitted then differs); asking again keeps the first. No label is
    submitted. Any member; an annotator only about the items handed to them or labeled by
    them (403 otherwise, unless free_labeling is on)."""
    project, role = caller.project(project_id)
    found = answered_suggestions(caller.session, caller.storage.arrays, project, role,
                                 caller.user.id, [(a.item_id, a.labels) for a in body.answers])
    return [AnsweredSuggestion(item_id=item_id, suggestion=hint) for item_id, hint in found]


@router.post("/projects/{project_id}/tasks/{item_id}/release")
def release(project_id: PathId, item_id: PathId, caller: Writer) -> dict[str, Any]:
    """Give a leased item back to the queue before its lease expires (any member; 404 when
    the caller holds no active lease on it)."""
    caller.project(project_id)
    release_task(caller.session, project_id, caller.user.id, item_id)
    return {"item_id": item_id, "released": True}
