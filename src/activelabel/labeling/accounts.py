"""Accounts: logging in (a password traded for a token, throttled), logging out, API tokens,
and users created by an admin. Each of these is an audit event (never with a secret)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from ..store import (
    LoginPolicy,
    NotFound,
    Storage,
    TooManyAttempts,
    authenticate_password,
    clear_login_failures,
    create_token,
    create_user,
    get_user,
    login_wait,
    record_audit,
    record_login_failure,
    revoke_token,
)
from ..store.models import ApiToken, User, utcnow
from ..store.users import hash_token

__all__ = ["LOGIN_TOKEN_NAME", "LoginRules", "add_user", "drop_token", "login", "logout",
           "new_token"]

#: Name of the tokens that logging in creates.
LOGIN_TOKEN_NAME = "login"


@dataclass(frozen=True)
class LoginRules:
    """How logins are throttled and how long their tokens last (the server's settings)."""

    policy: LoginPolicy
    idle: timedelta
    lifetime: timedelta


def login(storage: Storage, username: str, password: str, *, address: str,
          rules: LoginRules) -> tuple[str, User] | None:
    """A new token (plaintext) and its user for a right username and password of an enabled
    account; None for a wrong one (counted). TooManyAttempts when the username or the address
    has to wait. Known and unknown usernames take the same path and the same time: the
    password is checked (argon2, deliberately slow) either way, outside any write transaction."""
    with storage.read_sessions() as session:
        wait = login_wait(session, username, address, rules.policy)
        if wait > 0:
            raise TooManyAttempts(
                f"too many wrong passwords for this user or from this address: wait "
                f"{math.ceil(wait)} s, then try again (ask an admin if the password is lost)",
                retry_after=math.ceil(wait))
        user = authenticate_password(session, username, password)
        user_id = None if user is None else user.id
        session.rollback()
    with storage.sessions() as session, session.begin():
        if user_id is None:
            record_login_failure(session, username, address, rules.policy)
            return None
        clear_login_failures(session, username)
        now = utcnow()
        token, plaintext = create_token(session, user_id, LOGIN_TOKEN_NAME,
                                        expires_at=now + rules.lifetime,
                                        idle_seconds=int(rules.idle.total_seconds()))
        record_audit(session, "login", "user", user_id, actor_id=user_id,
                     after={"token_id": token.id, "address": address})
        found = get_user(session, user_id)
        session.expunge(found)
    return plaintext, found


def logout(session: Session, user: User, plaintext: str) -> None:
    """Revoke the token the caller logged in with (it stops working at once)."""
    token = session.execute(select(ApiToken).where(
        ApiToken.token_hash == hash_token(plaintext), ApiToken.user_id == user.id)
    ).scalar_one_or_none()
    if token is None:
        raise NotFound("the token of this request is not one of yours: nothing to log out")
    revoke_token(session, user.id, token.id)
    record_audit(session, "logout", "token", token.id, actor_id=user.id)


def new_token(session: Session, user: User, name: str, *,
              expires_in_days: int | None = None) -> tuple[ApiToken, str]:
    """A new API token of ``user`` (never expiring unless ``expires_in_days``)."""
    expires = None if expires_in_days is None else utcnow() + timedelta(days=expires_in_days)
    token, plaintext = create_token(session, user.id, name, expires_at=expires)
    record_audit(session, "create", "token", token.id, actor_id=user.id,
                 after={"name": name, "prefix": token.prefix,
                        "expires_at": None if expires is None else expires.isoformat()})
    return token, plaintext


def drop_token(session: Session, user: User, token_id: int) -> ApiToken:
    """Revoke one of ``user``'s tokens (others' are NotFound)."""
    token = revoke_token(session, user.id, token_id)
    record_audit(session, "revoke", "token", token.id, actor_id=user.id,
                 before={"name": token.name, "prefix": token.prefix})
    return token


def add_user(session: Session, actor_id: int, username: str, password: str | None, *,
             is_admin: bool = False) -> User:
    """A new user created by ``actor_id`` (an admin), with an audit event. Without a password
    the user can only use API tokens."""
    user = create_user(session, username, password, is_admin=is_admin)
    session.flush()
    record_audit(session, "create", "user", user.id, actor_id=actor_id,
                 after={"username": user.username, "is_admin": bool(user.is_admin)})
    return user
