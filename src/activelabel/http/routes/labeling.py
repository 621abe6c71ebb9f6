"""Annotations: label an item (append-only revisions), reviewers accept or correct them.

A retried submission with the same ``client_key`` returns the revision stored the first time
(never a second one), so clients can retry safely after a lost answer.
"""

from __future__ import annotations

from fastapi import APIRouter, Response
from pydantic import TypeAdapter

from ...labeling.rounds import after_annotation
from ...store import Role, annotate, review, settings_of
from ..auth import Caller, Turn, Writer, WriteTurn
from ..schemas import AnnotationIn, PathId, ReviewIn, RevisionOut, annotation_out, json_response

router = APIRouter(tags=["annotations"])


_REVISION = TypeAdapter(RevisionOut)


@router.post("/projects/{project_id}/annotations", status_code=201, response_model=RevisionOut)
async def post_annotation(project_id: PathId, body: AnnotationIn, turn: Turn) -> Response:
    """Store the caller's labels for an item and complete their lease on it. A later call for
    the same item corrects the caller's label (a new revision superseding the old one). After
    every ``retrain_every_labels`` new labels a round is queued. Any member; an annotator's
    first label on an item needs the item handed to them (``tasks/next``), unless the
    project's ``free_labeling`` is on (403 otherwise)."""
    return await answer_annotation(turn, project_id, body)


async def answer_annotation(turn: WriteTurn, project_id: int, body: AnnotationIn) -> Response:
    """The answer of ``POST annotations`` (this route's, and :mod:`..hot`'s for ordinary
    calls)."""
    return await turn.run(lambda caller: json_response(
        _REVISION, _annotate(caller, project_id, body), status_code=201))


def _annotate(caller: Caller, project_id: int, body: AnnotationIn) -> RevisionOut:
    project, role = caller.project(project_id)
    free = settings_of(project.settings).free_labeling or Role(role).at_least(Role.REVIEWER)
    revision = annotate(caller.session, project_id, caller.user.id, body.item_id,
                        list(body.labels), duration_ms=body.duration_ms,
                        client_key=body.client_key, require_lease=not free)
    after_annotation(caller.session, project_id)
    return annotation_out(revision)


@router.post("/projects/{project_id}/annotations/{annotation_id}/review", status_code=201,
             response_model=RevisionOut)
def post_review(project_id: PathId, annotation_id: PathId, body: ReviewIn,
                caller: Writer) -> RevisionOut:
    """A reviewer's verdict on a current revision: ``accept`` keeps its labels; a rejection
    with ``labels`` corrects them; a rejection without withdraws the label. ``reason`` is
    stored on the new revision. Reviewers and owners."""
    caller.project(project_id, Role.REVIEWER)
    revision = review(caller.session, project_id, caller.user.id, annotation_id,
                      accept=body.accept, labels=body.labels, client_key=body.client_key,
                      reason=body.reason)
    return annotation_out(revision)
