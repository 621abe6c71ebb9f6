"""Accounts: logging in (a password traded for a token) and users created by an admin."""

from __future__ import annotations

from sqlalchemy.orm import Session

from ..store import (
    Storage,
    authenticate_password,
    create_token,
    create_user,
    get_user,
    record_audit,
)
from ..store.models import User

__all__ = ["LOGIN_TOKEN_NAME", "add_user", "login"]

#: Name of the tokens that logging in creates.
LOGIN_TOKEN_NAME = "login"


def login(storage: Storage, username: str, password: str) -> tuple[str, User] | None:
    """A new token (plaintext) and its user for a right username and password of an enabled
    account, else None. The password check (argon2, deliberately slow) runs outside any write
    transaction; the token is written in a short one."""
    with storage.read_sessions() as session:
        user = authenticate_password(session, username, password)
        user_id = None if user is None else user.id
        session.rollback()
    if user_id is None:
        return None
    with storage.sessions() as session, session.begin():
        _, plaintext = create_token(session, user_id, LOGIN_TOKEN_NAME)
        found = get_user(session, user_id)
        session.expunge(found)
    return plaintext, found


def add_user(session: Session, actor_id: int, username: str, password: str | None, *,
             is_admin: bool = False) -> User:
    """A new user created by ``actor_id`` (an admin), with an audit event. Without a password
    the user can only use API tokens."""
    user = create_user(session, username, password, is_admin=is_admin)
    session.flush()
    record_audit(session, "create", "user", user.id, actor_id=actor_id,
                 after={"username": user.username, "is_admin": bool(user.is_admin)})
    return user
