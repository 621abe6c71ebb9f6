"""Label Studio's ML backend protocol, per project: ``/projects/{id}/ls-ml/health``,
``/setup``, ``/predict`` and ``/webhook`` (the shapes of the ``label-studio-ml`` package).

In Label Studio (Settings > Model > Connect model) the backend URL is
``http://<host>/api/v1/projects/<id>/ls-ml`` with basic authentication: any user name and
an API token as the password (``label-studio-ml`` backends check HTTP basic auth, which is
what Label Studio sends); ``Authorization: Bearer <token>`` works too. Predictions need a
reviewer's or owner's token, webhooks (which write labels and make annotator accounts) an
owner's. Every call reads stored results or a loaded model: none trains, none waits for a
round.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Iterator
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Request
from fastapi.responses import JSONResponse
from fastapi.security import HTTPAuthorizationCredentials
from pydantic import BaseModel, ConfigDict, Field

from ...labeling.ml_backend import health, predict, record_event, setup
from ...store import Role
from ..auth import Caller, ReadSlot, WriteSlot, _reader, _writer
from ..errors import Unauthorized
from ..schemas import PathId

router = APIRouter(prefix="/projects/{project_id}/ls-ml", tags=["label studio ml backend"])


def _credentials(request: Request) -> HTTPAuthorizationCredentials | None:
    """The API token of a Bearer header, or the password of a Basic one."""
    scheme, _, value = request.headers.get("authorization", "").partition(" ")
    value = value.strip()
    if scheme.lower() == "bearer" and value:
        return HTTPAuthorizationCredentials(scheme="Bearer", credentials=value)
    if scheme.lower() == "basic" and value:
        try:
            decoded = base64.b64decode(value, validate=True).decode()
        except (binascii.Error, ValueError):
            raise Unauthorized("the Basic credentials are not base64 of 'user:password': in "
                               "Label Studio give any user name and an API token as the "
                               "password") from None
        _, colon, password = decoded.partition(":")
        if colon and password:
            return HTTPAuthorizationCredentials(scheme="Bearer", credentials=password)
    return None


def _ls_reader(request: Request, _slot: ReadSlot) -> Iterator[Caller]:
    yield from _reader(request, _credentials(request), None)


def _ls_writer(request: Request, _slot: WriteSlot) -> Iterator[Caller]:
    yield from _writer(request, _credentials(request), None)


LsReader = Annotated[Caller, Depends(_ls_reader, scope="function")]
LsWriter = Annotated[Caller, Depends(_ls_writer, scope="function")]


class LsSetupIn(BaseModel):
    """What Label Studio sends to ``/setup``."""

    model_config = ConfigDict(extra="allow", populate_by_name=True)

    project: str | int | None = Field(None, description="'<id>.<created timestamp>'")
    label_config: str | None = Field(None, alias="schema", description="The labeling config.")
    extra_params: dict[str, Any] | str | None = None


#: A Label Studio task: its data object is what is matched and predicted (the rule stated for
#: clients; the answer of a task without one is a 400 naming it).
LsTask = Annotated[dict[str, Any], Field(json_schema_extra={
    "required": ["data"], "properties": {"data": {"type": "object", "minProperties": 1}}})]


class LsPredictIn(BaseModel):
    """What Label Studio sends to ``/predict``."""

    model_config = ConfigDict(extra="allow")

    tasks: list[LsTask] | LsTask = Field(
        description="Label Studio tasks: {id, data, meta, ...}")
    label_config: str | None = None
    project: str | int | None = None
    model_version: str | None = None
    params: dict[str, Any] | None = None


@router.get("/health")
@router.get("/")
def ls_health(project_id: PathId, caller: LsReader) -> dict[str, Any]:
    """``{"status": "UP", "model_class", "model_version"}``. Reviewers and owners."""
    project, _ = caller.project(project_id, Role.REVIEWER)
    return health(caller.session, project)


@router.post("/setup")
def ls_setup(project_id: PathId, body: LsSetupIn, caller: LsReader) -> dict[str, Any]:
    """Check the Label Studio project's labeling config against this project's task and
    labels (400 with what differs); answers the model version. Reviewers and owners."""
    project, _ = caller.project(project_id, Role.REVIEWER)
    return setup(caller.session, project, body.label_config)


@router.post("/predict")
def ls_predict(project_id: PathId, body: LsPredictIn, caller: LsReader) -> dict[str, Any]:
    """``{"results": [{"result", "score", "model_version"}]}``, one per task in order, from
    the active model (stored probabilities, or the model run on a task that is no item here);
    ``score`` is the model's confidence (1 - uncertainty). Empty before the first model.
    Reviewers and owners."""
    project, _ = caller.project(project_id, Role.REVIEWER)
    return predict(caller.session, caller.storage, project, body.tasks, body.label_config)


@router.post("/webhook", status_code=201, responses={200: {
    "description": "An event this backend does not act on: acknowledged and ignored.",
    "content": {"application/json": {"schema": {"type": "object"}}}}})
def ls_webhook(project_id: PathId, caller: LsWriter,
               body: Annotated[dict[str, Any], Body(
                   description="A Label Studio webhook: {action, annotation, task, project}",
                   json_schema_extra={"required": ["action"],
                                      "properties": {"action": {"type": "string"}}})],
               ) -> JSONResponse:
    """An annotation created or updated in Label Studio becomes a revision of its
    annotator's label (the annotator's account ``ls.<email>`` is made on first sight unless a
    project member has that name), a deleted one withdraws it, ``START_TRAINING`` queues a
    round; a repeated delivery is stored once. May queue a round (``retrain_every_labels``).
    Owners."""
    project, _ = caller.project(project_id, Role.OWNER)
    status, answer = record_event(caller.session, project, body, caller.user.id)
    return JSONResponse(answer, status_code=status)
