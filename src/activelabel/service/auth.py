"""Who is calling: Bearer API tokens, one database session per request, project roles.

Every endpoint except ``/health`` and ``/auth/login`` depends on :data:`Writer` or
:data:`Reader`: a :class:`Caller` holding the authenticated user and the request's session.
A ``Writer`` session commits when the endpoint returns and rolls back when it raises (before
the response is sent, so a 2xx answer means the change is stored); a ``Reader`` session is
read-only (on SQLite it never takes the write lock, so reads never wait for writers).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy import update
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from ..store import get_project, require_role, user_for_token
from ..store.models import ApiToken, Project, User
from .config import Storage
from .errors import Unauthorized

__all__ = [
    "RANK",
    "Caller",
    "Reader",
    "Writer",
    "bearer",
    "reader",
    "storage_of",
    "writer",
]

logger = logging.getLogger("activelabel.service")

#: Role order: owner > reviewer > annotator.
RANK = {"annotator": 0, "reviewer": 1, "owner": 2}

bearer = HTTPBearer(auto_error=False, description=(
    "An API token (`activelabel tokens create NAME`, `POST /api/v1/tokens`) or the token "
    "returned by `POST /api/v1/auth/login`."))


def storage_of(request: Request) -> Storage:
    """The app's opened storage (set by :func:`activelabel.service.app.create_app`)."""
    storage: Storage = request.app.state.storage
    return storage


@dataclass
class Caller:
    """The authenticated user of a request, its session and the storage."""

    user: User
    session: Session
    storage: Storage

    @property
    def is_admin(self) -> bool:
        return bool(self.user.is_admin)

    def project(self, project_id: int, minimum: str = "annotator") -> tuple[Project, str]:
        """The project and the caller's effective role, at least ``minimum``.

        Admins act as owners. Non-members get NotFound (404: the project stays hidden), members
        with a lower role Forbidden (403).
        """
        role = require_role(self.session, project_id, self.user, minimum)
        return get_project(self.session, project_id), role


def _authenticate(session: Session, credentials: HTTPAuthorizationCredentials | None) -> User:
    if credentials is None or not credentials.credentials:
        raise Unauthorized("missing credentials: send the header 'Authorization: Bearer "
                           "<token>' (create a token with `activelabel tokens create NAME` or "
                           "POST /api/v1/auth/login)")
    user = user_for_token(session, credentials.credentials)
    if user is None:
        raise Unauthorized("invalid token: it is unknown, revoked, or its user is disabled; "
                           "log in again or create a new token")
    return user


Credentials = Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]


def _writer(request: Request, credentials: Credentials) -> Iterator[Caller]:
    """A write session for the request: committed after the endpoint, rolled back on error."""
    storage = storage_of(request)
    with storage.sessions() as session:
        try:
            user = _authenticate(session, credentials)
            yield Caller(user, session, storage)
            session.commit()
        except BaseException:
            session.rollback()
            raise


def _detach_token_touches(session: Session) -> list[tuple[int, datetime]]:
    """Take the ``last_used_at`` updates made while authenticating out of a read session."""
    touched: list[tuple[int, datetime]] = []
    for obj in list(session.dirty):
        if isinstance(obj, ApiToken) and obj.last_used_at is not None:
            touched.append((obj.id, obj.last_used_at))
        session.expunge(obj)
    return touched


def _record_token_use(storage: Storage, touched: list[tuple[int, datetime]]) -> None:
    """Best effort: store when tokens were last used (at most once a minute per token)."""
    try:
        with storage.sessions() as session, session.begin():
            for token_id, when in touched:
                session.execute(update(ApiToken).where(ApiToken.id == token_id)
                                .values(last_used_at=when))
    except SQLAlchemyError as exc:  # never fail a read for this bookkeeping
        logger.warning("could not record token use: %s", exc)


def _reader(request: Request, credentials: Credentials) -> Iterator[Caller]:
    """A read-only session for the request (never takes SQLite's write lock)."""
    storage = storage_of(request)
    with storage.read_sessions() as session:
        try:
            user = _authenticate(session, credentials)
            touched = _detach_token_touches(session)
            if touched:
                _record_token_use(storage, touched)
            yield Caller(user, session, storage)
        finally:
            session.rollback()


writer = Depends(_writer, scope="function")
reader = Depends(_reader, scope="function")
#: The caller of a writing endpoint (its session commits when the endpoint returns).
Writer = Annotated[Caller, writer]
#: The caller of a reading endpoint (read-only session).
Reader = Annotated[Caller, reader]
