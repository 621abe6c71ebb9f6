"""Projects (task, label set, settings) and per-project roles."""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Integer, Select, and_, bindparam, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from ._util import get_or_raise
from .db import dialect_of, upsert
from .errors import Conflict, Forbidden, InvalidInput, NotFound
from .governance import record_project_version
from .models import ROLES, TASKS, ApiToken, Membership, Project, Role, User
from .settings import validate_settings
from .users import accept_token, hash_token, token_query

__all__ = [
    "MAX_ID",
    "add_member",
    "create_project",
    "get_project",
    "get_project_by_name",
    "list_members",
    "list_projects",
    "member_roles",
    "project_access",
    "project_with_role",
    "remove_member",
    "require_role",
    "role_of",
    "token_with_project",
    "validate_labels",
]

def validate_labels(task: str, labels: Sequence[Any]) -> list[Any]:
    """Check the task and its label set: a non-empty list of distinct strings or integers."""
    if task not in TASKS:
        raise InvalidInput(f"unknown task {task!r}: use one of {', '.join(TASKS)}")
    if isinstance(labels, (str, bytes)) or not isinstance(labels, Sequence) or not labels:
        raise InvalidInput("labels must be a non-empty list, e.g. ['positive', 'negative']")
    bad = [x for x in labels if isinstance(x, bool) or not isinstance(x, (str, int)) or x == ""]
    if bad:
        raise InvalidInput(f"labels must be non-empty strings or integers; bad: {bad[:5]!r}")
    if len(set(labels)) != len(labels):
        dupes = sorted({str(x) for x in labels if list(labels).count(x) > 1})
        raise InvalidInput(f"labels must be distinct; repeated: {', '.join(dupes)}")
    if task == "classification" and len(labels) < 2:
        raise InvalidInput(f"classification needs at least 2 labels, got {len(labels)}")
    return list(labels)


def create_project(session: Session, name: str, task: str, labels: Sequence[Any], *,
                   guidelines: str = "", settings: Mapping[str, Any] | None = None,
                   private_fields: Sequence[str] = (), created_by: int | None = None) -> Project:
    """New project; its creator (if given) becomes its owner."""
    if not name or len(name) > 200:
        raise InvalidInput(f"project name must be 1-200 characters, got {len(name)}")
    labels = validate_labels(task, labels)
    project = Project(name=name, task=task, labels=labels,
                      guidelines=guidelines, guidelines_version=1,
                      settings=validate_settings(settings, labels),
                      private_fields=list(private_fields),
                      created_by=created_by)
    if session.execute(select(Project.id).where(Project.name == name)).first() is not None:
        raise Conflict(f"project {name!r} already exists: pick another name")
    try:
        with session.begin_nested():
            session.add(project)
    except IntegrityError as exc:
        raise Conflict(f"project {name!r} already exists: pick another name") from exc
    if created_by is not None:
        add_member(session, project.id, created_by, Role.OWNER)
    record_project_version(session, project, created_by)
    return project


def get_project(session: Session, project_id: int) -> Project:
    return get_or_raise(session, Project, project_id)


def get_project_by_name(session: Session, name: str) -> Project | None:
    return session.execute(select(Project).where(Project.name == name)).scalar_one_or_none()


def member_roles(session: Session, user_id: int) -> dict[int, str]:
    """Project id -> the user's membership role, for every project the user is a member of."""
    stmt = select(Membership.project_id, Membership.role).where(Membership.user_id == user_id)
    return {int(p): str(r) for p, r in session.execute(stmt)}


def list_projects(session: Session, user_id: int | None = None) -> list[Project]:
    """All projects (``user_id=None``) or those the user is a member of, by id."""
    stmt = select(Project).order_by(Project.id)
    if user_id is not None:
        stmt = stmt.join(Membership, Membership.project_id == Project.id).where(
            Membership.user_id == user_id)
    return list(session.execute(stmt).scalars())


def add_member(session: Session, project_id: int, user_id: int, role: str) -> Membership:
    """Give the user ``role`` in the project (replacing any earlier role)."""
    if role not in ROLES:
        raise InvalidInput(f"unknown role {role!r}: use one of {', '.join(ROLES)}")
    get_project(session, project_id)
    get_or_raise(session, User, user_id)
    stmt = upsert(Membership.__table__, dialect_of(session), ["project_id", "user_id"], ["role"])
    session.execute(stmt.values(project_id=project_id, user_id=user_id, role=role))
    return session.get(Membership, (project_id, user_id), populate_existing=True)  # type: ignore[return-value]


def remove_member(session: Session, project_id: int, user_id: int) -> None:
    member = session.get(Membership, (project_id, user_id))
    if member is None:
        raise NotFound(f"user {user_id} is not a member of project {project_id}")
    session.delete(member)


def list_members(session: Session, project_id: int) -> list[tuple[User, str]]:
    stmt = (select(User, Membership.role).join(Membership, Membership.user_id == User.id)
            .where(Membership.project_id == project_id).order_by(User.username))
    return [(user, role) for user, role in session.execute(stmt)]


def role_of(session: Session, project_id: int, user_id: int) -> str | None:
    """The user's role in the project, or None when not a member (admins are not implied)."""
    stmt = select(Membership.role).where(Membership.project_id == project_id,
                                         Membership.user_id == user_id)
    return session.execute(stmt).scalar_one_or_none()


#: The largest id an integer key column holds (PostgreSQL ``integer``).
MAX_ID = 2**31 - 1


def _missing(project_id: int) -> str:
    return f"project {project_id} does not exist: check the id (list projects first)"


def project_with_role(session: Session, project_id: int, user: User,
                      minimum: str) -> tuple[Project, str]:
    """The project and the caller's effective role, at least ``minimum`` (owner > reviewer >
    annotator), read in one statement.

    Admins act as owners everywhere. Non-members get NotFound (the project stays hidden);
    members with a lower role get Forbidden.
    """
    _check_minimum_role(minimum)
    if not 1 <= project_id <= MAX_ID:  # beyond the id column's range: no such project
        raise NotFound(_missing(project_id))
    stmt = (select(Project, Membership.role)
            .outerjoin(Membership, and_(Membership.project_id == Project.id,
                                        Membership.user_id == user.id))
            .where(Project.id == project_id))
    row = session.execute(stmt).one_or_none()
    project, member_role = (None, None) if row is None else row
    return _access(project_id, project, member_role, user, minimum)


def _check_minimum_role(minimum: str) -> None:
    if minimum not in ROLES:
        raise InvalidInput(f"unknown role {minimum!r}: use one of {', '.join(ROLES)}")


def project_access(project_id: int, project: Project | None, member_role: str | None,
                   user: User, minimum: str) -> tuple[Project, str]:
    """The rules of :func:`project_with_role` over a project row (None: missing) and the
    user's membership role in it (None: not a member), however they were read."""
    _check_minimum_role(minimum)
    return _access(project_id, project, member_role, user, minimum)


def _access(project_id: int, project: Project | None, member_role: str | None, user: User,
            minimum: str) -> tuple[Project, str]:
    if project is None:
        raise NotFound(_missing(project_id))
    role = Role.OWNER.value if user.is_admin else member_role
    if role is None:  # the same answer as a missing project: its existence stays hidden
        raise NotFound(_missing(project_id))
    if not Role(role).at_least(minimum):
        raise Forbidden(f"this needs the {minimum} role in project {project_id}; "
                        f"{user.username} is {role}: ask an owner to change the role")
    return project, role


@functools.cache
def _token_with_project_query() -> Select[ApiToken, User, Project, str]:
    """:func:`~activelabel.store.users.token_query` with the project ``project_id`` and the
    token user's membership role in it (both outer-joined: None when missing)."""
    return (token_query().add_columns(Project, Membership.role)
            .outerjoin(Project, Project.id == bindparam("project_id", type_=Integer))
            .outerjoin(Membership, and_(Membership.project_id == Project.id,
                                        Membership.user_id == User.id)))


def token_with_project(session: Session, plaintext: str, project_id: int, *,
                       now: datetime | None = None
                       ) -> tuple[User, Project | None, str | None] | None:
    """What a request about one project needs to know of its caller, in one statement: the
    token's user (None when the token is invalid, as :func:`user_for_token`), the project
    (None when missing) and the user's membership role in it (None: not a member). Check the
    access with :func:`project_access`."""
    digest = hash_token(plaintext)
    row = session.execute(_token_with_project_query(),
                          {"digest": digest, "project_id": project_id}).one_or_none()
    if row is None:
        return None
    token, user, project, member_role = row
    if not accept_token(token, user, digest, now=now):
        return None
    return user, project, member_role


def require_role(session: Session, project_id: int, user: User, minimum: str) -> str:
    """The caller's effective role in the project (see :func:`project_with_role`)."""
    return project_with_role(session, project_id, user, minimum)[1]
