"""Projects as their owners change them: create, change name, labels, guidelines, settings and
private fields (each change a new version and an audit event), members and roles, and finding a
project by id or name.

The rules that keep a project usable live here: labels are added, never removed (annotations use
them); a project always keeps an owner; every change is in the audit trail with before and after.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from ..store import (
    MAX_ID,
    Conflict,
    Forbidden,
    InvalidInput,
    NotFound,
    add_member,
    get_project_by_name,
    get_user_by_name,
    list_members,
    list_projects,
    member_roles,
    record_audit,
    remove_member,
    role_of,
    settings_of,
    validate_labels,
    validate_settings,
)
from ..store import create_project as store_create_project
from ..store.governance import record_project_version
from ..store.models import Project, Role, User
from ..store.settings import (
    REMOTE_MODEL,
    SECRET_SETTINGS,
    InvalidSettings,
    mask_secret,
    public_settings,
)
from .remote_model import ModelHosts

__all__ = [
    "EDITABLE",
    "ModelImportCheck",
    "change_project",
    "create_project",
    "extend_labels",
    "find_project",
    "remove_role",
    "set_role",
    "visible_projects",
]

#: What an owner may change with :func:`change_project`.
EDITABLE = ("name", "guidelines", "labels", "settings", "private_fields")

#: Whether the caller may name a model by this import path (``module:factory``): the worker
#: imports and runs that code, so the server decides who may (``http`` passes admins and
#: ``ACTIVELABEL_MODEL_IMPORT_PREFIXES``); None: nobody.
ModelImportCheck = Callable[[str], bool]


def _check_model_import(settings: Mapping[str, Any], current: str | None,
                        may_import: ModelImportCheck | None) -> None:
    """Forbidden when the settings name a new model import path the caller may not set."""
    model = settings.get("model")
    if not isinstance(model, str) or ":" not in model or model == current:
        return
    if may_import is None or not may_import(model):
        raise Forbidden(f"the model {model!r} is an import path, and the worker would run its "
                        "code: only server admins may set one, or owners when the server's "
                        "ACTIVELABEL_MODEL_IMPORT_PREFIXES covers its module; ask an admin, or "
                        "pick a built-in model or one an installed package offers")


def _check_model_url(settings: Mapping[str, Any], current: Mapping[str, Any],
                     hosts: ModelHosts | None) -> None:
    """InvalidSettings (422) when the validated ``settings`` set a model_url, or switch the
    model to http with one, whose host the server's ``model_hosts`` does not allow. A stored
    URL sent back unchanged passes (the worker refuses to call it; nothing stored is changed)."""
    url = settings.get("model_url")
    if hosts is None or not url:
        return
    switched = settings.get("model") == REMOTE_MODEL and current.get("model") != REMOTE_MODEL
    if (url == current.get("model_url") and not switched) or hosts.permits(url):
        return
    message = (f"{hosts.refusal(url)}: use a model server on one of those hosts, or ask the "
               "server's operator to add this one")
    raise InvalidSettings(f"invalid settings: settings.model_url: {message}", [
        {"field": "settings.model_url", "loc": ["settings", "model_url"], "message": message,
         "type": "model_host"}])


def _keep_secrets(given: Mapping[str, Any], current: Mapping[str, Any]) -> dict[str, Any]:
    """A secret sent back as the API shows it (masked) keeps its stored value."""
    out = dict(given)
    for name in SECRET_SETTINGS:
        if name in out and current.get(name) and out[name] == mask_secret(current[name]):
            out[name] = current[name]
    return out


def _state(project: Project) -> dict[str, Any]:
    """The editable state of a project, for the audit trail."""
    return {"name": project.name, "guidelines_version": project.guidelines_version,
            "labels": list(project.labels),
            "settings": public_settings(project.settings),
            "private_fields": list(project.private_fields or [])}


def create_project(session: Session, creator: User, *, name: str, task: str,
                   labels: Sequence[Any], guidelines: str = "",
                   settings: Mapping[str, Any] | None = None,
                   private_fields: Sequence[str] = (),
                   may_import: ModelImportCheck | None = None,
                   model_hosts: ModelHosts | None = None) -> Project:
    """A new project; ``creator`` becomes its owner. Settings not given take their defaults.
    A model import path needs ``may_import`` to allow it (Forbidden otherwise); a model_url,
    ``model_hosts`` (the server's; None: any host) to allow its host (InvalidSettings)."""
    _check_model_import(settings or {}, None, may_import)
    if settings and settings.get("model_url") and model_hosts is not None and model_hosts.entries:
        _check_model_url(validate_settings(settings, labels), {}, model_hosts)  # valid first
    project = store_create_project(session, name, task, labels, guidelines=guidelines,
                                   settings=settings, private_fields=private_fields,
                                   created_by=creator.id)
    record_audit(session, "create", "project", project.id, project_id=project.id,
                 actor_id=creator.id,
                 after={**_state(project), "task": project.task, "labels": project.labels})
    return project


def visible_projects(session: Session, user: User) -> list[tuple[Project, str]]:
    """The projects ``user`` may see with the user's role in each: every project for admins
    (as owners), else those the user is a member of."""
    if user.is_admin:
        return [(p, Role.OWNER.value) for p in list_projects(session)]
    roles = member_roles(session, user.id)
    return [(p, roles[p.id]) for p in list_projects(session, user.id)]


def extend_labels(task: str, current: list[Any], given: list[Any]) -> list[Any]:
    """The new label set: it must keep every current label (labels already given to items
    stay meaningful), in its place (a model's probabilities and stored predictions name
    labels by position), and may append new ones."""
    missing = [x for x in current if x not in given]
    if missing:
        raise InvalidInput(f"labels can be added, not removed: keep {missing[:5]!r} in the "
                           "list (annotations use them)")
    if list(given[:len(current)]) != list(current):
        raise InvalidInput(f"labels can be added at the end, not reordered: keep {current!r} "
                           "first, in this order (the models read labels by position), then "
                           "the new ones")
    return validate_labels(task, given)


def _rename(session: Session, project: Project, name: str) -> None:
    clash = session.execute(select(Project.id).where(
        Project.name == name, Project.id != project.id)).first()
    if clash is not None:
        raise Conflict(f"project {name!r} already exists: pick another name")
    project.name = name


def change_project(session: Session, project: Project, actor_id: int,
                   changes: Mapping[str, Any], *,
                   may_import: ModelImportCheck | None = None,
                   model_hosts: ModelHosts | None = None) -> Project:
    """Apply an owner's ``changes`` (any of :data:`EDITABLE`; None values are left as they
    are): settings are merged into the current ones and validated (a new model import path
    needs ``may_import`` to allow it; a new model_url ``model_hosts``, the server's list, to
    allow its host; a secret sent back masked keeps its value); new labels
    or guidelines make a new version of the label set and guidelines. One audit event with
    before and after (secrets masked)."""
    unknown = sorted(set(changes) - set(EDITABLE))
    if unknown:
        raise InvalidInput(f"cannot change {', '.join(unknown)}: send any of "
                           f"{', '.join(EDITABLE)}")
    given = {k: v for k, v in changes.items() if v is not None}
    if not given:
        raise InvalidInput("nothing to change: send at least one of name, guidelines, "
                           "labels, settings, private_fields")
    before = _state(project)
    if "name" in given and given["name"] != project.name:
        _rename(session, project, given["name"])
    relabeled = False
    if "labels" in given:
        labels = extend_labels(project.task, list(project.labels), list(given["labels"]))
        relabeled = labels != list(project.labels)
        project.labels = labels
    if "settings" in given:
        current = settings_of(project.settings).model_dump(mode="json")
        _check_model_import(given["settings"], current.get("model"), may_import)
        changed = _keep_secrets(given["settings"], current)
        merged = validate_settings({**current, **changed}, project.labels)
        _check_model_url(merged, current, model_hosts)
        project.settings = merged
    if "private_fields" in given:
        project.private_fields = list(dict.fromkeys(given["private_fields"]))
    if "guidelines" in given and given["guidelines"] != project.guidelines:
        project.guidelines = given["guidelines"]
        relabeled = True
    if relabeled:  # a new version of the label set and guidelines
        project.guidelines_version = (project.guidelines_version or 0) + 1
        session.flush()
        record_project_version(session, project, actor_id)
    session.flush()
    record_audit(session, "update", "project", project.id, project_id=project.id,
                 actor_id=actor_id, before=before, after=_state(project))
    return project


def _owners(session: Session, project_id: int) -> int:
    return sum(1 for _, role in list_members(session, project_id) if role == Role.OWNER)


def set_role(session: Session, project_id: int, actor_id: int, username: str,
             role: str) -> User:
    """Give the user ``role`` in the project (replacing any earlier role); the last owner
    keeps the owner role."""
    user = get_user_by_name(session, username)
    if user is None:
        raise InvalidInput(f"user {username!r} does not exist: create it first "
                           "(activelabel users create NAME, or POST /api/v1/users)")
    before = role_of(session, project_id, user.id)
    if before == Role.OWNER and role != Role.OWNER and _owners(session, project_id) <= 1:
        raise Conflict(f"{user.username} is the last owner of project {project_id}: make "
                       "someone else owner first")
    add_member(session, project_id, user.id, role)
    record_audit(session, "set_role", "member", user.id, project_id=project_id,
                 actor_id=actor_id, before=None if before is None else {"role": before},
                 after={"username": user.username, "role": str(role)})
    return user


def remove_role(session: Session, project_id: int, actor_id: int, username: str) -> None:
    """Remove a member (NotFound when ``username`` is none); the last owner cannot be
    removed."""
    user = get_user_by_name(session, username)
    role = None if user is None else role_of(session, project_id, user.id)
    if user is None or role is None:
        raise NotFound(f"{username!r} is not a member of project {project_id}: list the "
                           "members first")
    if role == Role.OWNER and _owners(session, project_id) <= 1:
        raise Conflict(f"{username} is the last owner of project {project_id}: make someone "
                       "else owner first")
    remove_member(session, project_id, user.id)
    record_audit(session, "remove", "member", user.id, project_id=project_id,
                 actor_id=actor_id, before={"username": username, "role": role})


def find_project(session: Session, ref: str) -> Project:
    """The project numbered or named ``ref`` (an id first, then a name); NotFound lists the
    projects there are."""
    ref = ref.strip()
    if ref.isdigit() and 1 <= int(ref) <= MAX_ID:
        found = session.get(Project, int(ref))
        if found is not None:
            return found
    named = get_project_by_name(session, ref)
    if named is not None:
        return named
    known = ", ".join(f"{p.id} ({p.name})" for p in list_projects(session)[:20]) or "none yet"
    raise NotFound(f"no project {ref!r}: give an id or a name; projects: {known}")
