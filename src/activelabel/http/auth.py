"""Who is calling: Bearer API tokens, one database session per request, project roles.

Every endpoint except ``/health`` and ``/auth/login`` depends on :data:`Writer` or
:data:`Reader`: a :class:`Caller` holding the authenticated user and the request's session.
A ``Writer`` session commits when the endpoint returns and rolls back when it raises (before
the response is sent, so a 2xx answer means the change is stored); a ``Reader`` session is
read-only (on SQLite it never takes the write lock, so reads never wait for writers). The
two calls annotators make all day (``tasks/next``, ``annotations``) take :data:`Turn` instead:
a ``Writer`` whose work and commit run in one trip to the thread pool (:class:`WriteTurn`).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Annotated, TypeVar

import anyio
from anyio.lowlevel import RunVar
from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from ..store import (
    MAX_ID,
    Storage,
    project_access,
    project_with_role,
    record_token_use,
    token_with_project,
    user_for_token,
)
from ..store.models import ApiToken, Project, Role, User
from .config import ServerSettings
from .errors import Unauthorized

__all__ = [
    "Caller",
    "Reader",
    "Turn",
    "WriteTurn",
    "Writer",
    "bearer",
    "reader",
    "settings_of_app",
    "storage_of",
    "writer",
]

logger = logging.getLogger("activelabel.http")
T = TypeVar("T")

bearer = HTTPBearer(auto_error=False, description=(
    "An API token (`activelabel tokens create NAME`, `POST /api/v1/tokens`) or the token "
    "returned by `POST /api/v1/auth/login`."))


def settings_of_app(request: Request) -> ServerSettings:
    """The server's settings (set by :func:`activelabel.http.app.create_app`)."""
    settings: ServerSettings = request.app.state.settings
    return settings


def storage_of(request: Request) -> Storage:
    """The app's opened storage (set by :func:`activelabel.http.app.create_app`)."""
    storage: Storage = request.app.state.storage
    return storage


@dataclass
class Caller:
    """The authenticated user of a request, its session and the storage."""

    user: User
    session: Session
    storage: Storage
    #: The server's settings.
    settings: ServerSettings
    #: The token the caller presented (what logging out revokes).
    token: str = field(default="", repr=False)
    _loaded: list[Project] = field(default_factory=list, repr=False)
    #: The request path's project and the caller's membership role in it, read with the token.
    _prefetched: dict[int, tuple[Project | None, str | None]] = field(
        default_factory=dict, repr=False)

    @property
    def is_admin(self) -> bool:
        return bool(self.user.is_admin)

    def project(self, project_id: int,
                minimum: Role = Role.ANNOTATOR) -> tuple[Project, str]:
        """The project and the caller's effective role, at least ``minimum``.

        Admins act as owners. Non-members get NotFound (404: the project stays hidden), members
        with a lower role Forbidden (403).
        """
        if project_id in self._prefetched:
            row, member_role = self._prefetched[project_id]
            project, role = project_access(project_id, row, member_role, self.user, minimum)
        else:
            project, role = project_with_role(self.session, project_id, self.user, minimum)
        # The session's identity map holds objects weakly: keeping the project here lets the
        # rest of the request (``session.get(Project, id)``) find it without another query.
        self._loaded.append(project)
        return project, role


def _path_project(request: Request) -> int | None:
    """The project id of the request's path (``/projects/{project_id}/...``), if it has one."""
    raw = request.path_params.get("project_id")
    try:
        project_id = None if raw is None else int(raw)
    except (TypeError, ValueError):
        return None  # not a number: the route's own validation answers 422
    # Beyond the id column's range no project exists, and the database would refuse the
    # number: authenticate without it (the endpoint then answers 404).
    return project_id if project_id is not None and 1 <= project_id <= MAX_ID else None


def _authenticate(request: Request, session: Session, storage: Storage,
                  credentials: HTTPAuthorizationCredentials | None) -> Caller:
    """The caller of the request. A request about one project reads the token, its user, the
    project and the user's role in it in one statement; the role is checked by
    :meth:`Caller.project`, as for any other project."""
    if credentials is None or not credentials.credentials:
        raise Unauthorized("missing credentials: send the header 'Authorization: Bearer "
                           "<token>' (create a token with `activelabel tokens create NAME` or "
                           "POST /api/v1/auth/login)")
    project_id = _path_project(request)
    prefetched: dict[int, tuple[Project | None, str | None]] = {}
    if project_id is None:
        user = user_for_token(session, credentials.credentials)
    else:
        found = token_with_project(session, credentials.credentials, project_id)
        user = None if found is None else found[0]
        if found is not None:
            prefetched[project_id] = found[1:]
    if user is None:
        raise Unauthorized("invalid token: it is unknown, revoked, or its user is disabled; "
                           "log in again or create a new token")
    return Caller(user, session, storage, settings_of_app(request), credentials.credentials,
                  _prefetched=prefetched)


Credentials = Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]

#: Requests holding a database session at once, per kind and dialect. A sync endpoint runs in
#: a thread of its own, apart from its session's dependency: with more sessions open than
#: threads or pooled connections, a request holding SQLite's write lock (or the last pooled
#: connection) could wait forever for a thread that every other request keeps busy waiting for
#: that lock. The caps keep sessions well below the 40 threads and the pool (10 + 20), with room
#: for the one extra connection a request may open. SQLite runs one writer at a time anyway, so
#: it gets one write slot: a second writer would only wait in SQLite's busy handler, which
#: sleeps in steps of up to 100 ms and so misses the moment the lock frees; waiting for the slot
#: in the event loop instead starts the next writer as soon as the last one commits (p99 of
#: tasks/next under load: 206 ms with four slots, 65 ms with one). PostgreSQL gets two: while
#: one writer waits for the server, the other runs its Python; more writers only share the GIL
#: and stretch every request (p99 with a round running: 89-135 ms with eight, 57-89 with two).
SESSION_SLOTS = {"sqlite": {"write": 1, "read": 10}, "postgresql": {"write": 2, "read": 6}}
_slots: RunVar[dict[tuple[int, str], anyio.Semaphore]] = RunVar("activelabel_session_slots")


def _semaphore(storage: Storage, kind: str) -> anyio.Semaphore:
    """The event loop's semaphore of ``kind`` ("write" / "read") for ``storage``."""
    try:
        table = _slots.get()
    except LookupError:
        table = {}
        _slots.set(table)
    key = (id(storage), kind)
    if key not in table:
        dialect = storage.engine.dialect.name
        table[key] = anyio.Semaphore(SESSION_SLOTS.get(dialect, SESSION_SLOTS["postgresql"])[kind])
    return table[key]


async def _write_slot(request: Request) -> AsyncIterator[None]:
    async with _semaphore(storage_of(request), "write"):
        yield


async def _read_slot(request: Request) -> AsyncIterator[None]:
    async with _semaphore(storage_of(request), "read"):
        yield


WriteSlot = Annotated[None, Depends(_write_slot, scope="function")]
ReadSlot = Annotated[None, Depends(_read_slot, scope="function")]


@contextmanager
def _committed(session: Session) -> Iterator[None]:
    """Commit when the block ends, roll back when it raises: what every write request does."""
    try:
        yield
        session.commit()
    except BaseException:
        session.rollback()
        raise


def _writer(request: Request, credentials: Credentials, _slot: WriteSlot) -> Iterator[Caller]:
    """A write session for the request: committed after the endpoint, rolled back on error."""
    storage = storage_of(request)
    with storage.sessions() as session, _committed(session):
        yield _authenticate(request, session, storage, credentials)


class WriteTurn:
    """The caller of a hot writing endpoint, authenticated, whose work, commit and close run
    in one trip to the thread pool (:meth:`run`).

    A sync endpoint with :data:`Writer` takes four trips between the event loop and the
    thread pool (the session's dependency in and out, the endpoint, the response's
    validation), and under load each trip waits for the GIL behind whatever else runs. A
    ``Turn`` endpoint (``async def``) takes two: authentication, as a dependency (so that a
    caller without valid credentials gets 401 before any input is checked), then
    ``await turn.run(work)``, whose result should be the finished response
    (:func:`~.schemas.json_response`). The write slot is held across both."""

    def __init__(self, caller: Caller) -> None:
        self.caller = caller
        self.closed = False

    async def run(self, work: Callable[[Caller], T]) -> T:
        """``work(caller)`` then commit (rollback if it raises), in one worker thread."""
        if self.closed:
            raise RuntimeError("this turn already ran")
        return await anyio.to_thread.run_sync(self._run, work)

    def _run(self, work: Callable[[Caller], T]) -> T:
        try:
            with _committed(self.caller.session):
                return work(self.caller)
        finally:
            self.close()

    def close(self) -> None:
        """Roll back what is not committed and give the connection back."""
        if not self.closed:
            self.closed = True
            self.caller.session.close()


def _open_turn(request: Request, credentials: HTTPAuthorizationCredentials | None) -> WriteTurn:
    storage = storage_of(request)
    session = storage.sessions()
    try:
        return WriteTurn(_authenticate(request, session, storage, credentials))
    except BaseException:
        session.close()
        raise


async def _write_turn(request: Request, credentials: Credentials) -> AsyncIterator[WriteTurn]:
    async with _semaphore(storage_of(request), "write"):
        with anyio.CancelScope(shield=True):  # a turn opened is a turn closed, even if cancelled
            turn = await anyio.to_thread.run_sync(_open_turn, request, credentials)
        try:
            yield turn
        finally:
            if not turn.closed:  # the endpoint failed before its work ran, or never ran
                # Shielded, on a limiter of its own: a cancelled request must still give its
                # connection (and on SQLite the write lock) back, without waiting for the
                # pool's threads.
                with anyio.CancelScope(shield=True):
                    await anyio.to_thread.run_sync(turn.close, limiter=anyio.CapacityLimiter(1))


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
            record_token_use(session, touched)
    except SQLAlchemyError as exc:  # never fail a read for this bookkeeping
        logger.warning("could not record token use: %s", exc)


def _reader(request: Request, credentials: Credentials, _slot: ReadSlot) -> Iterator[Caller]:
    """A read-only session for the request (never takes SQLite's write lock)."""
    storage = storage_of(request)
    with storage.read_sessions() as session:
        try:
            caller = _authenticate(request, session, storage, credentials)
            touched = _detach_token_touches(session)
            if touched:
                _record_token_use(storage, touched)
            yield caller
        finally:
            session.rollback()


writer = Depends(_writer, scope="function")
reader = Depends(_reader, scope="function")
#: The caller of a writing endpoint (its session commits when the endpoint returns).
Writer = Annotated[Caller, writer]
#: The caller of a reading endpoint (read-only session).
Reader = Annotated[Caller, reader]
#: The caller of a hot writing endpoint, whose work runs in one trip (:class:`WriteTurn`).
Turn = Annotated[WriteTurn, Depends(_write_turn, scope="function")]
