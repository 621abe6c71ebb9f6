"""Projects: create, list the visible ones, read, change settings; members; the audit trail."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Response
from sqlalchemy import select

from ...store import (
    Conflict,
    InvalidInput,
    add_member,
    create_project,
    get_user_by_name,
    list_audit,
    list_members,
    list_projects,
    record_audit,
    remove_member,
    role_of,
    validate_labels,
    validate_settings,
)
from ...store.governance import record_project_version
from ...store.models import Membership, Project
from ..auth import Caller, Reader, Writer
from ..schemas import (
    AuditOut,
    MemberIn,
    MemberOut,
    ProjectIn,
    ProjectOut,
    ProjectPatch,
    audit_out,
    project_out,
)

router = APIRouter(tags=["projects"])


def extend_labels(task: str, current: list[Any], given: list[Any]) -> list[Any]:
    """The new label set: it must keep every current label (labels already given to items
    stay meaningful) and may append new ones."""
    missing = [x for x in current if x not in given]
    if missing:
        raise InvalidInput(f"labels can be added, not removed: keep {missing[:5]!r} in the "
                           "list (annotations use them)")
    return validate_labels(task, given)


def _snapshot(project: Project) -> dict[str, Any]:
    """The editable state of a project, for the audit trail."""
    return {"name": project.name, "guidelines_version": project.guidelines_version,
            "labels": list(project.labels),
            "settings": dict(project.settings),
            "private_fields": list(project.private_fields or [])}


@router.post("/projects", status_code=201, response_model=ProjectOut)
def create(body: ProjectIn, caller: Writer) -> ProjectOut:
    """A new project; the caller becomes its owner. Settings not given take their defaults."""
    project = create_project(caller.session, body.name, body.task, body.labels,
                             guidelines=body.guidelines, settings=body.settings,
                             private_fields=body.private_fields, created_by=caller.user.id)
    record_audit(caller.session, "create", "project", project.id, project_id=project.id,
                 actor_id=caller.user.id,
                 after={**_snapshot(project), "task": project.task, "labels": project.labels})
    return project_out(project, "owner")


@router.get("/projects", response_model=list[ProjectOut])
def projects(caller: Reader) -> list[ProjectOut]:
    """The projects the caller may see: all for admins, else those they are a member of."""
    roles = dict(caller.session.execute(select(Membership.project_id, Membership.role).where(
        Membership.user_id == caller.user.id)).all())
    found = list_projects(caller.session, None if caller.is_admin else caller.user.id)
    return [project_out(p, "owner" if caller.is_admin else roles[p.id]) for p in found]


@router.get("/projects/{project_id}", response_model=ProjectOut)
def project(project_id: int, caller: Reader) -> ProjectOut:
    """One project (any member)."""
    found, role = caller.project(project_id)
    return project_out(found, role)


@router.patch("/projects/{project_id}", response_model=ProjectOut)
def update(project_id: int, body: ProjectPatch, caller: Writer) -> ProjectOut:
    """Change the name, guidelines or labels (new ones appended, a label in use is never
    removed; either bumps guidelines_version and stores that version), settings (merged into the current ones and validated) or
    private fields. Every change is in the audit trail with before and after. Owners only."""
    found, role = caller.project(project_id, "owner")
    given = body.model_dump(exclude_unset=True)
    if not given or all(v is None for v in given.values()):
        raise InvalidInput("nothing to change: send at least one of name, guidelines, "
                           "labels, settings, private_fields")
    before = _snapshot(found)
    if body.name is not None and body.name != found.name:
        clash = caller.session.execute(select(Project.id).where(
            Project.name == body.name, Project.id != project_id)).first()
        if clash is not None:
            raise Conflict(f"project {body.name!r} already exists: pick another name")
        found.name = body.name
    relabeled = False
    if body.labels is not None:
        labels = extend_labels(found.task, list(found.labels), list(body.labels))
        relabeled = labels != list(found.labels)
        found.labels = labels
    if body.settings is not None:
        found.settings = validate_settings({**found.settings, **body.settings})
    if body.private_fields is not None:
        found.private_fields = list(dict.fromkeys(body.private_fields))
    if body.guidelines is not None and body.guidelines != found.guidelines:
        found.guidelines = body.guidelines
        relabeled = True
    if relabeled:  # a new version of the label set and guidelines
        found.guidelines_version = (found.guidelines_version or 0) + 1
        caller.session.flush()
        record_project_version(caller.session, found, caller.user.id)
    caller.session.flush()
    record_audit(caller.session, "update", "project", project_id, project_id=project_id,
                 actor_id=caller.user.id, before=before, after=_snapshot(found))
    return project_out(found, role)


@router.get("/projects/{project_id}/members", response_model=list[MemberOut])
def members(project_id: int, caller: Reader) -> list[MemberOut]:
    """Members and their roles (reviewers and owners)."""
    caller.project(project_id, "reviewer")
    return [MemberOut(user_id=u.id, username=u.username, role=role)  # type: ignore[arg-type]
            for u, role in list_members(caller.session, project_id)]


def _owners(caller: Caller, project_id: int) -> int:
    return sum(1 for _, role in list_members(caller.session, project_id) if role == "owner")


@router.post("/projects/{project_id}/members", status_code=201, response_model=MemberOut)
def put_member(project_id: int, body: MemberIn, caller: Writer) -> MemberOut:
    """Give a user a role in the project (replacing any earlier role). Owners only."""
    caller.project(project_id, "owner")
    user = get_user_by_name(caller.session, body.username)
    if user is None:
        raise InvalidInput(f"user {body.username!r} does not exist: create it first "
                           "(activelabel users create NAME, or POST /api/v1/users)")
    before = role_of(caller.session, project_id, user.id)
    if before == "owner" and body.role != "owner" and _owners(caller, project_id) <= 1:
        raise Conflict(f"{user.username} is the last owner of project {project_id}: make "
                       "someone else owner first")
    add_member(caller.session, project_id, user.id, body.role)
    record_audit(caller.session, "set_role", "member", user.id, project_id=project_id,
                 actor_id=caller.user.id, before=None if before is None else {"role": before},
                 after={"username": user.username, "role": body.role})
    return MemberOut(user_id=user.id, username=user.username, role=body.role)


@router.delete("/projects/{project_id}/members/{username}", status_code=204,
               response_class=Response)
def delete_member(project_id: int, username: str, caller: Writer) -> Response:
    """Remove a member. Owners only; the last owner cannot be removed."""
    caller.project(project_id, "owner")
    user = get_user_by_name(caller.session, username)
    role = None if user is None else role_of(caller.session, project_id, user.id)
    if user is None or role is None:
        raise InvalidInput(f"{username!r} is not a member of project {project_id}: list the "
                           "members first")
    if role == "owner" and _owners(caller, project_id) <= 1:
        raise Conflict(f"{username} is the last owner of project {project_id}: make someone "
                       "else owner first")
    remove_member(caller.session, project_id, user.id)
    record_audit(caller.session, "remove", "member", user.id, project_id=project_id,
                 actor_id=caller.user.id, before={"username": username, "role": role})
    return Response(status_code=204)


@router.get("/projects/{project_id}/audit", response_model=list[AuditOut])
def audit(project_id: int, caller: Reader,
          limit: Annotated[int, Query(ge=1, le=1000)] = 100,
          before_id: Annotated[int | None, Query(ge=1)] = None) -> list[AuditOut]:
    """The project's audit trail, newest first (owners). Page with ``before_id``."""
    caller.project(project_id, "owner")
    return [audit_out(e) for e in list_audit(caller.session, project_id=project_id,
                                             before_id=before_id, limit=limit)]
