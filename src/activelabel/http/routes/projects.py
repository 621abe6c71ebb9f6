"""Projects: create, list the visible ones, read, change settings; members; the audit trail."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response

from ...labeling.projects import (
    ModelImportCheck,
    change_project,
    create_project,
    remove_role,
    set_role,
    visible_projects,
)
from ...store import MAX_ID, Forbidden, Role, list_audit, list_members, usernames
from ..auth import Reader, Writer
from ..schemas import (
    AuditOut,
    MemberIn,
    MemberOut,
    PathId,
    ProjectIn,
    ProjectOut,
    ProjectPatch,
    audit_out,
    project_out,
)

router = APIRouter(tags=["projects"])


def _may_import(caller: Writer) -> ModelImportCheck:
    """Who may name a model by import path: server admins, and owners within the server's
    ``model_import_prefixes`` (docs/models.md)."""
    return lambda path: caller.is_admin or caller.settings.permits_model_import(path)


@router.post("/projects", status_code=201, response_model=ProjectOut)
def create(body: ProjectIn, caller: Writer) -> ProjectOut:
    """A new project; the caller becomes its owner. Settings not given take their defaults.
    Admins only, unless the server's ``project_creators`` is ``everyone``."""
    if caller.settings.project_creators == "admins" and not caller.is_admin:
        raise Forbidden(f"only admins create projects on this server; {caller.user.username} "
                        "is not one: ask an admin (or the server's operator may set "
                        "ACTIVELABEL_PROJECT_CREATORS=everyone)")
    project = create_project(caller.session, caller.user, name=body.name, task=body.task,
                             labels=body.labels, guidelines=body.guidelines,
                             settings=body.settings.model_dump(exclude_unset=True),
                             private_fields=body.private_fields,
                             may_import=_may_import(caller),
                             model_hosts=caller.settings.model_host_rules())
    return project_out(project, Role.OWNER)


@router.get("/projects", response_model=list[ProjectOut])
def projects(caller: Reader) -> list[ProjectOut]:
    """The projects the caller may see: all for admins, else those they are a member of."""
    return [project_out(p, role) for p, role in visible_projects(caller.session, caller.user)]


@router.get("/projects/{project_id}", response_model=ProjectOut)
def project(project_id: PathId, caller: Reader) -> ProjectOut:
    """One project (any member)."""
    found, role = caller.project(project_id)
    return project_out(found, role)


@router.patch("/projects/{project_id}", response_model=ProjectOut)
def update(project_id: PathId, body: ProjectPatch, caller: Writer) -> ProjectOut:
    """Change the name, guidelines or labels (new ones appended, a label in use is never
    removed; either bumps guidelines_version and stores that version), settings (merged into the current ones and validated;
    a new model_url on a host the server's ``model_hosts`` does not allow gets 422) or
    private fields. Every change is in the audit trail with before and after. Owners only."""
    found, role = caller.project(project_id, Role.OWNER)
    changed = change_project(caller.session, found, caller.user.id,
                             body.model_dump(exclude_unset=True), may_import=_may_import(caller),
                             model_hosts=caller.settings.model_host_rules())
    return project_out(changed, role)


@router.get("/projects/{project_id}/members", response_model=list[MemberOut])
def members(project_id: PathId, caller: Reader) -> list[MemberOut]:
    """Members and their roles (reviewers and owners)."""
    caller.project(project_id, Role.REVIEWER)
    return [MemberOut(user_id=u.id, username=u.username, role=role)  # type: ignore[arg-type]
            for u, role in list_members(caller.session, project_id)]


@router.post("/projects/{project_id}/members", status_code=201, response_model=MemberOut)
def put_member(project_id: PathId, body: MemberIn, caller: Writer) -> MemberOut:
    """Give a user a role in the project (replacing any earlier role). Owners only."""
    caller.project(project_id, Role.OWNER)
    user = set_role(caller.session, project_id, caller.user.id, body.username, body.role)
    return MemberOut(user_id=user.id, username=user.username, role=body.role)


@router.delete("/projects/{project_id}/members/{username}", status_code=204,
               response_class=Response)
def delete_member(project_id: PathId, username: str, caller: Writer) -> Response:
    """Remove a member (404 when the user is not one). Owners only; the last owner cannot
    be removed."""
    caller.project(project_id, Role.OWNER)
    remove_role(caller.session, project_id, caller.user.id, username)
    return Response(status_code=204)


@router.get("/projects/{project_id}/audit", response_model=list[AuditOut])
def audit(project_id: PathId, caller: Reader,
          limit: Annotated[int, Query(ge=1, le=1000)] = 100,
          before_id: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None) -> list[AuditOut]:
    """The project's audit trail, newest first (owners). Page with ``before_id``."""
    caller.project(project_id, Role.OWNER)
    events = list_audit(caller.session, project_id=project_id, before_id=before_id, limit=limit)
    names = usernames(caller.session, {e.actor_id for e in events})
    return [audit_out(e, names.get(e.actor_id) if e.actor_id is not None else None)
            for e in events]
