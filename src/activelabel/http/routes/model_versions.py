"""Model versions: list them, activate one (a rollback) and re-rank the queue with it."""

from __future__ import annotations

from fastapi import APIRouter

from ...labeling.versions import activate_version
from ...store import Role, list_models
from ..auth import Reader, Writer
from ..schemas import Activated, ModelOut, PathId, model_out

router = APIRouter(tags=["models"])


@router.get("/projects/{project_id}/models", response_model=list[ModelOut])
def models(project_id: PathId, caller: Reader) -> list[ModelOut]:
    """Every model version of the project, oldest first (reviewers and owners)."""
    caller.project(project_id, Role.REVIEWER)
    return [model_out(m) for m in list_models(caller.session, project_id)]


@router.post("/projects/{project_id}/models/{version}/activate", status_code=202,
             response_model=Activated)
def activate(project_id: PathId, version: PathId, caller: Writer) -> Activated:
    """Make ``version`` the active model (e.g. roll back to an earlier one) and queue a round
    that re-scores the pool with it and re-ranks the queue. Owners only."""
    caller.project(project_id, Role.OWNER)
    model, rnd, created = activate_version(caller.session, project_id, version,
                                           caller.user.id)
    return Activated(model=model_out(model), round_id=rnd.id, job_id=rnd.job_id,
                     created=created)
