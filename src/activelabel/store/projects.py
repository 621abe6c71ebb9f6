"""Projects (task, label set, settings) and per-project roles."""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Integer, Select, and_, bindparam, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from ..strategies import DEFAULT_STRATEGY, STRATEGIES
from ._util import get_or_raise
from .db import dialect_of, upsert
from .errors import Conflict, Forbidden, InvalidInput, NotFound
from .governance import record_project_version
from .models import ROLES, TASKS, ApiToken, Membership, Project, Role, User
from .users import accept_token, hash_token, token_query

__all__ = [
    "DEFAULT_SETTINGS",
    "MAX_ID",
    "add_member",
    "create_project",
    "get_project",
    "list_members",
    "list_projects",
    "project_access",
    "project_with_role",
    "remove_member",
    "require_role",
    "role_of",
    "token_with_project",
    "validate_labels",
    "validate_settings",
]

#: Every project setting, with its default. Units are in the names.
DEFAULT_SETTINGS: dict[str, Any] = {
    "strategy": DEFAULT_STRATEGY,
    "model": "logistic_regression",
    "featurizer": "text",
    "featurizer_params": {},
    "batch_size": 50,
    "overlap": 1,
    "retrain_every_labels": 50,
    "lease_seconds": 900,
    "target_accuracy": None,
    "label_budget": None,
    "random_state": 0,
    # Show the model's suggestion and confidence to annotators (off: they label unbiased).
    "show_suggestions": True,
    # Quality: how consensus is reached, the agreement target (Krippendorff's alpha), gold.
    "consensus": "majority",
    # Which items get `overlap` annotators (others one): all, a share, or the uncertain ones.
    "overlap_policy": "all",
    "overlap_share": 1.0,
    "agreement_target": None,
    "gold_rate": 0.0,
    "gold_alert_below": None,
}
CONSENSUS_METHODS = ("majority", "dawid_skene")
_POSITIVE_INTS = ("batch_size", "overlap", "retrain_every_labels", "lease_seconds")


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


def validate_settings(settings: Mapping[str, Any] | None) -> dict[str, Any]:
    """Defaults merged with ``settings``; unknown keys and bad values raise InvalidInput."""
    from ..models import MODEL_NAMES  # here: scikit-learn loads only when settings are checked

    given = dict(settings or {})
    unknown = sorted(set(given) - set(DEFAULT_SETTINGS))
    if unknown:
        raise InvalidInput(f"unknown settings {', '.join(unknown)}: known ones are "
                           f"{', '.join(sorted(DEFAULT_SETTINGS))}")
    merged = {**DEFAULT_SETTINGS, **given}
    if merged["strategy"] not in STRATEGIES:
        raise InvalidInput(f"unknown strategy {merged['strategy']!r}: use one of "
                           f"{', '.join(sorted(STRATEGIES))}")
    if merged["model"] not in MODEL_NAMES:
        raise InvalidInput(f"unknown model {merged['model']!r}: use one of "
                           f"{', '.join(MODEL_NAMES)}")
    for key in _POSITIVE_INTS:
        value = merged[key]
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise InvalidInput(f"setting {key} must be a positive integer, got {value!r}")
    target = merged["target_accuracy"]
    if target is not None and not (isinstance(target, (int, float)) and 0 < target <= 1):
        raise InvalidInput(f"target_accuracy must be in (0, 1], got {target!r}")
    budget = merged["label_budget"]
    if budget is not None and (isinstance(budget, bool) or not isinstance(budget, int)
                               or budget < 1):
        raise InvalidInput(f"label_budget must be a positive number of labels or null, got "
                           f"{budget!r}")
    if not isinstance(merged["show_suggestions"], bool):
        raise InvalidInput(f"show_suggestions must be true or false, got "
                           f"{merged['show_suggestions']!r}")
    _check_quality(merged)
    if not isinstance(merged["featurizer_params"], dict):
        raise InvalidInput("featurizer_params must be an object of keyword arguments")
    return merged


def _share(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _check_quality(merged: Mapping[str, Any]) -> None:
    if merged["consensus"] not in CONSENSUS_METHODS:
        raise InvalidInput(f"unknown consensus {merged['consensus']!r}: use one of "
                           f"{', '.join(CONSENSUS_METHODS)}")
    target = merged["agreement_target"]
    if target is not None and not (_share(target) and -1 <= target <= 1):
        raise InvalidInput(f"agreement_target (Krippendorff's alpha) must be in [-1, 1] or "
                           f"null, got {target!r}")
    if merged["overlap_policy"] not in ("all", "share", "uncertain"):
        raise InvalidInput(f"unknown overlap_policy {merged['overlap_policy']!r}: use all, "
                           "share (with overlap_share) or uncertain")
    share = merged["overlap_share"]
    if not (_share(share) and 0 <= share <= 1):
        raise InvalidInput(f"overlap_share is the share of items that get `overlap` "
                           f"annotators, in [0, 1]; got {share!r}")
    rate = merged["gold_rate"]
    if not (_share(rate) and 0 <= rate < 1):
        raise InvalidInput(f"gold_rate is the share of tasks that are gold items, in [0, 1); "
                           f"got {rate!r} (e.g. 0.1 for one in ten)")
    alert = merged["gold_alert_below"]
    if alert is not None and not (_share(alert) and 0 < alert <= 1):
        raise InvalidInput(f"gold_alert_below is an accuracy in (0, 1] or null, got {alert!r}")


def create_project(session: Session, name: str, task: str, labels: Sequence[Any], *,
                   guidelines: str = "", settings: Mapping[str, Any] | None = None,
                   private_fields: Sequence[str] = (), created_by: int | None = None) -> Project:
    """New project; its creator (if given) becomes its owner."""
    if not name or len(name) > 200:
        raise InvalidInput(f"project name must be 1-200 characters, got {len(name)}")
    project = Project(name=name, task=task, labels=validate_labels(task, labels),
                      guidelines=guidelines, guidelines_version=1,
                      settings=validate_settings(settings), private_fields=list(private_fields),
                      created_by=created_by)
    if session.execute(select(Project.id).where(Project.name == name)).first() is not None:
        raise Conflict(f"project {name!r} already exists: pick another name")
    try:
        with session.begin_nested():
            session.add(project)
    except IntegrityError as exc:
        raise Conflict(f"project {name!r} already exists: pick another name") from exc
    if created_by is not None:
        add_member(session, project.id, created_by, "owner")
    record_project_version(session, project, created_by)
    return project


def get_project(session: Session, project_id: int) -> Project:
    return get_or_raise(session, Project, project_id)


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
    role = "owner" if user.is_admin else member_role
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
