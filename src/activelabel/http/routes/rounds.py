"""Rounds: request one (a background job), list them, one round with its selected items."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response
from pydantic import TypeAdapter

from ...labeling.governance import decision_views
from ...labeling.rounds import request_round
from ...store import Role, get_round, list_rounds, model_version_numbers, selection_rows
from ...store.governance import decisions_for_round, list_decisions
from ..auth import Reader, Writer
from ..schemas import (
    PathId,
    RoundAccepted,
    RoundDetail,
    RoundOut,
    SelectionOut,
    json_response,
    round_fields,
)
from .governance import decision_outs

router = APIRouter(tags=["rounds"])


@router.post("/projects/{project_id}/rounds", status_code=202, response_model=RoundAccepted)
def post_round(project_id: PathId, caller: Writer) -> RoundAccepted:
    """Queue a round (train, evaluate on the holdout, score the pool, select the next batch).
    When a round is already queued, that one is returned (``created`` false). Owners only."""
    caller.project(project_id, Role.OWNER)
    rnd, created = request_round(caller.session, project_id, requested_by=caller.user.id,
                                 reason="requested")
    return RoundAccepted(round_id=rnd.id, job_id=rnd.job_id, created=created,
                         number=rnd.number, status=rnd.status)


@router.get("/projects/{project_id}/rounds", response_model=list[RoundOut])
def rounds(project_id: PathId, caller: Reader) -> list[RoundOut]:
    """Every round of the project, oldest first (reviewers and owners)."""
    project, _ = caller.project(project_id, Role.REVIEWER)
    versions = model_version_numbers(caller.session, project_id)
    log = decision_views(caller.session, list_decisions(caller.session, project_id))
    return [RoundOut(**round_fields(r, versions.get(r.model_version_id or 0), project.task),
                     decisions=decision_outs(decisions_for_round(log, r.number)))
            for r in list_rounds(caller.session, project_id)]


_ROUND = TypeAdapter(RoundDetail)


@router.get("/projects/{project_id}/rounds/{round_id}", response_model=RoundDetail)
def round_(project_id: PathId, round_id: PathId, caller: Reader,
           limit: Annotated[int, Query(ge=0, le=100_000, description="Selected items shown")]
           = 1000) -> Response:
    """A round: status, timings, holdout metrics, labels used, gain over the previous round,
    model version, and the items it selected with their scores (reviewers and owners)."""
    project, _ = caller.project(project_id, Role.REVIEWER)
    rnd = get_round(caller.session, project_id, round_id)
    version = None if rnd.model_version_id is None else model_version_numbers(
        caller.session, project_id).get(rnd.model_version_id)
    selected = [SelectionOut(item_id=item_id, external_id=external_id, rank=rank, score=score,
                             strategy=strategy, model_version=model_version)
                for item_id, external_id, rank, score, strategy, model_version
                in selection_rows(caller.session, round_id, limit)]
    return json_response(_ROUND, RoundDetail(**round_fields(rnd, version, project.task), selected=selected))
