"""Users, passwords, tokens, projects, settings and roles."""

from __future__ import annotations

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from activelabel.store import (
    Conflict,
    Forbidden,
    InvalidInput,
    NotFound,
    add_member,
    authenticate_password,
    create_project,
    create_token,
    create_user,
    get_project,
    list_projects,
    require_role,
    revoke_token,
    role_of,
    user_for_token,
)
from activelabel.store.models import ApiToken, Project, User
from activelabel.store.users import hash_token


def test_passwords_are_argon2_hashed_and_verified(session: Session) -> None:
    user = create_user(session, "alice", "correct horse")
    assert user.password_hash is not None
    assert user.password_hash.startswith("$argon2")
    assert "correct horse" not in user.password_hash
    assert authenticate_password(session, "alice", "correct horse") is user
    assert authenticate_password(session, "alice", "wrong password") is None
    assert authenticate_password(session, "nobody", "correct horse") is None
    user.disabled = True
    assert authenticate_password(session, "alice", "correct horse") is None


def test_user_validation(session: Session) -> None:
    create_user(session, "bob")
    with pytest.raises(Conflict, match="already exists"):
        create_user(session, "bob")
    with pytest.raises(InvalidInput, match="username"):
        create_user(session, "has space")
    with pytest.raises(InvalidInput, match="too short"):
        create_user(session, "carol", "short")


def test_tokens_are_stored_hashed_and_revocable(session: Session, owner: User) -> None:
    token, plaintext = create_token(session, owner.id, "ci")
    stored = session.execute(select(ApiToken.token_hash)).scalars().all()
    assert plaintext not in stored
    assert hash_token(plaintext) in stored
    assert plaintext.startswith(token.prefix)
    assert user_for_token(session, plaintext) is owner
    assert token.last_used_at is not None
    assert user_for_token(session, plaintext + "x") is None
    revoke_token(session, owner.id, token.id)
    assert user_for_token(session, plaintext) is None


def test_disabled_users_tokens_fail(session: Session, owner: User) -> None:
    _, plaintext = create_token(session, owner.id, "t")
    owner.disabled = True
    assert user_for_token(session, plaintext) is None


def test_create_project_validates_and_makes_creator_owner(session: Session, owner: User) -> None:
    project = create_project(session, "news", "multilabel", ["a", "b"], created_by=owner.id,
                             settings={"batch_size": 10, "strategy": "margin"})
    assert get_project(session, project.id) is project
    assert project.settings["batch_size"] == 10
    assert project.settings["overlap"] == 1
    assert role_of(session, project.id, owner.id) == "owner"
    assert list_projects(session, owner.id) == [project]
    with pytest.raises(Conflict):
        create_project(session, "news", "multilabel", ["a", "b"])


@pytest.mark.parametrize(("task", "labels", "settings", "match"), [
    ("regression", ["a", "b"], None, "unknown task"),
    ("classification", [], None, "non-empty"),
    ("classification", ["a", "a"], None, "distinct"),
    ("classification", ["a"], None, "at least 2"),
    ("classification", ["a", "b"], {"colour": 1}, "unknown settings colour"),
    ("classification", ["a", "b"], {"strategy": "magic"}, "unknown strategy"),
    ("classification", ["a", "b"], {"overlap": 0}, "settings.overlap: Input should be greater"),
    ("classification", ["a", "b"], {"model": "gpt"}, "unknown model"),
    ("classification", ["a", "b"], {"label_budget": "lots"}, "settings.label_budget"),
    ("classification", ["a", "b"], {"label_budget": 0}, "settings.label_budget"),
    ("classification", ["a", "b"], {"target_accuracy": 1.5}, "settings.target_accuracy"),
])
def test_create_project_rejects_bad_input(session: Session, task: str, labels: list[str],
                                          settings: dict[str, object] | None, match: str) -> None:
    with pytest.raises(InvalidInput, match=match):
        create_project(session, "bad", task, labels, settings=settings)


def test_roles(session: Session, project: Project, owner: User) -> None:
    annotator = create_user(session, "ann")
    outsider = create_user(session, "out")
    admin = create_user(session, "root", is_admin=True)
    add_member(session, project.id, annotator.id, "annotator")
    assert role_of(session, project.id, annotator.id) == "annotator"
    assert require_role(session, project.id, annotator, "annotator") == "annotator"
    with pytest.raises(Forbidden, match="reviewer"):
        require_role(session, project.id, annotator, "reviewer")
    with pytest.raises(NotFound):
        require_role(session, project.id, outsider, "annotator")
    assert require_role(session, project.id, admin, "owner") == "owner"
    add_member(session, project.id, annotator.id, "reviewer")
    assert role_of(session, project.id, annotator.id) == "reviewer"
    with pytest.raises(InvalidInput):
        add_member(session, project.id, annotator.id, "boss")
    with pytest.raises(NotFound):
        get_project(session, 10**9)
