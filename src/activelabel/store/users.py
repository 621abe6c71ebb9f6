"""Users, argon2 password hashes, and API tokens stored only as SHA-256 hashes."""

from __future__ import annotations

import functools
import hashlib
import hmac
import re
import secrets
from collections.abc import Collection
from datetime import datetime, timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import Select, String, bindparam, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from ._util import get_or_raise
from .errors import Conflict, InvalidInput, NotFound
from .models import ApiToken, User, utcnow

__all__ = [
    "TOKEN_PREFIX",
    "accept_token",
    "authenticate_password",
    "check_username",
    "create_token",
    "create_user",
    "get_user",
    "get_user_by_name",
    "hash_password",
    "hash_token",
    "list_tokens",
    "list_users",
    "record_token_use",
    "revoke_token",
    "set_password",
    "token_query",
    "user_for_token",
    "usernames",
]

TOKEN_PREFIX = "al_"
MIN_PASSWORD_LENGTH = 8
#: last_used_at is written at most this often per token (saves a write per request).
LAST_USED_RESOLUTION = timedelta(seconds=60)
_USERNAME = re.compile(r"^[A-Za-z0-9_.@-]{1,64}$")
_hasher = PasswordHasher()


def hash_token(token: str) -> str:
    """SHA-256 hex digest of a plaintext token (what the database keeps)."""
    return hashlib.sha256(token.encode()).hexdigest()


def check_username(username: str) -> None:
    """Raise :class:`InvalidInput` unless ``username`` is 1-64 letters, digits or ``_.@-``."""
    if not _USERNAME.match(username):
        raise InvalidInput(f"invalid username {username!r}: use 1-64 letters, digits or _.@-")


def hash_password(password: str) -> str:
    """The argon2 hash stored for ``password`` (at least 8 characters); deliberately slow,
    tens of milliseconds, and free of the GIL, so many can be hashed on threads."""
    if len(password) < MIN_PASSWORD_LENGTH:
        raise InvalidInput(f"password too short: {len(password)} characters, "
                           f"use at least {MIN_PASSWORD_LENGTH}")
    return _hasher.hash(password)


def create_user(session: Session, username: str, password: str | None = None, *,
                is_admin: bool = False) -> User:
    """Add a user; without a password the user can only authenticate with tokens."""
    check_username(username)
    if get_user_by_name(session, username) is not None:
        raise Conflict(f"user {username!r} already exists: pick another name")
    user = User(username=username, is_admin=is_admin, disabled=False,
                password_hash=None if password is None else hash_password(password))
    try:
        with session.begin_nested():
            session.add(user)
    except IntegrityError as exc:
        raise Conflict(f"user {username!r} already exists: pick another name") from exc
    return user


def get_user(session: Session, user_id: int) -> User:
    return get_or_raise(session, User, user_id)


def get_user_by_name(session: Session, username: str) -> User | None:
    return session.execute(select(User).where(User.username == username)).scalar_one_or_none()


def set_password(session: Session, user_id: int, password: str) -> None:
    get_user(session, user_id).password_hash = hash_password(password)


def authenticate_password(session: Session, username: str, password: str) -> User | None:
    """The user when the password matches and the account is enabled, else None."""
    user = get_user_by_name(session, username)
    if user is None or user.disabled or user.password_hash is None:
        _hasher.hash(password)  # spend the same time whether or not the user exists
        return None
    try:
        _hasher.verify(user.password_hash, password)
    except (VerificationError, InvalidHashError):
        return None
    if _hasher.check_needs_rehash(user.password_hash):
        user.password_hash = _hasher.hash(password)
    return user


def create_token(session: Session, user_id: int, name: str, *,
                 expires_at: datetime | None = None,
                 idle_seconds: int | None = None) -> tuple[ApiToken, str]:
    """New API token: returns the row and the plaintext, which is never stored nor shown again.
    It is never valid after ``expires_at`` and, with ``idle_seconds``, expires when unused for
    that long (a login's token)."""
    get_user(session, user_id)
    if not name or len(name) > 100:
        raise InvalidInput(f"token name must be 1-100 characters, got {len(name)}")
    if idle_seconds is not None and idle_seconds < 60:
        raise InvalidInput(f"idle_seconds must be at least 60, got {idle_seconds}")
    plaintext = TOKEN_PREFIX + secrets.token_urlsafe(32)
    token = ApiToken(user_id=user_id, name=name, token_hash=hash_token(plaintext),
                     prefix=plaintext[:10], expires_at=expires_at, idle_seconds=idle_seconds)
    session.add(token)
    session.flush()
    return token, plaintext


@functools.cache
def token_query() -> Select[ApiToken, User]:
    """The statement reading ``(ApiToken, User)`` of a presented token, built once: its
    parameter ``digest`` is the token's :func:`hash_token` (check the row with
    :func:`accept_token`); callers may add columns and joins."""
    return (select(ApiToken, User).join(User, User.id == ApiToken.user_id)
            .where(ApiToken.token_hash == bindparam("digest", type_=String)))


def accept_token(token: ApiToken, user: User, digest: str, *,
                 now: datetime | None = None) -> bool:
    """Whether the token read by :func:`token_query` is valid (unrevoked, unexpired, not idle
    for longer than it may be, its user enabled); records when it was last used (at most once
    per :data:`LAST_USED_RESOLUTION`, which also restarts its idle clock)."""
    if not hmac.compare_digest(token.token_hash, digest):
        return False
    if token.revoked_at is not None or user.disabled:
        return False
    now = now or utcnow()
    if token.expires_at is not None and now >= token.expires_at:
        return False
    if token.idle_seconds is not None and (
            now - (token.last_used_at or token.created_at)).total_seconds() > token.idle_seconds:
        return False
    if token.last_used_at is None or now - token.last_used_at > LAST_USED_RESOLUTION:
        token.last_used_at = now
    return True


def user_for_token(session: Session, plaintext: str, *, now: datetime | None = None) -> User | None:
    """The enabled user owning this unrevoked token, else None; records when it was last used."""
    digest = hash_token(plaintext)
    row = session.execute(token_query(), {"digest": digest}).one_or_none()
    if row is None:
        return None
    token, user = row
    return user if accept_token(token, user, digest, now=now) else None


def list_tokens(session: Session, user_id: int) -> list[ApiToken]:
    stmt = select(ApiToken).where(ApiToken.user_id == user_id).order_by(ApiToken.id)
    return list(session.execute(stmt).scalars())


def revoke_token(session: Session, user_id: int, token_id: int, *,
                 now: datetime | None = None) -> ApiToken:
    token = session.get(ApiToken, token_id)
    if token is None or token.user_id != user_id:
        raise NotFound(f"token {token_id} does not exist for user {user_id}: list the tokens")
    if token.revoked_at is None:
        token.revoked_at = now or utcnow()
    return token


def list_users(session: Session) -> list[User]:
    """Every user, by id."""
    return list(session.execute(select(User).order_by(User.id)).scalars())


def usernames(session: Session, user_ids: Collection[int | None]) -> dict[int, str]:
    """User id -> username of the given ids (None and unknown ids left out)."""
    wanted = sorted({int(i) for i in user_ids if i is not None})
    if not wanted:
        return {}
    stmt = select(User.id, User.username).where(User.id.in_(wanted))
    return {int(i): str(name) for i, name in session.execute(stmt)}


def record_token_use(session: Session, touched: Collection[tuple[int, datetime]]) -> None:
    """Store when tokens were last used: ``(token id, when)`` pairs."""
    for token_id, when in touched:
        session.execute(update(ApiToken).where(ApiToken.id == token_id)
                        .values(last_used_at=when))
