"""Who is calling: Bearer API tokens, one database session per request, project roles.

Every endpoint except ``/health`` and ``/auth/login`` depends on :data:`Writer` or
:data:`Reader`: a :class:`Caller` holding the authenticated user and the request's session.
A ``Writer`` session commits when the endpoint returns and rolls back when it raises (before
the response is sent, so a 2xx answer means the change is stored); a ``Reader`` session is
read-only (on SQLite it never takes the write lock, so reads never wait for writers). The
two calls annotators make all day (``tasks/next``, ``annotations``) take :data:`Turn` instead:
a ``Writer`` whose authentication, work and commit run in one trip to the thread pool
(:class:`WriteTurn`).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Annotated, Any, TypeVar

import anyio
from anyio.lowlevel import RunVar
from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.exc import OperationalError, SQLAlchemyError
from sqlalchemy.orm import Session

from ..store import (
    MAX_ID,
    Storage,
    commit_without_waiting_for_flush,
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


_MISSING = ("missing credentials: send the header 'Authorization: Bearer <token>' (create a "
            "token with `activelabel tokens create NAME` or POST /api/v1/auth/login)")


def _authenticate(request: Request, session: Session, storage: Storage,
                  credentials: HTTPAuthorizationCredentials | None) -> Caller:
    """The caller of the request. A request about one project reads the token, its user, the
    project and the user's role in it in one statement; the role is checked by
    :meth:`Caller.project`, as for any other project."""
    if credentials is None or not credentials.credentials:
        raise Unauthorized(_MISSING)
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
    """A hot writing endpoint's turn: authentication, work and commit run in one trip to the
    thread pool (:meth:`run`), holding the write slot only for that trip, and turns waiting
    for the slot at once share the trip and its commit (group commit, :func:`_run_group`).

    A sync endpoint with :data:`Writer` takes four trips between the event loop and the
    thread pool (the session's dependency in and out, the endpoint, the response's
    validation), and under load each trip waits for the GIL behind whatever else runs; with
    the write slot held across trips, the next writer also waits for the event loop to come
    back to this request between them. A ``Turn`` endpoint (``async def``) takes at most one:
    ``await turn.run(work)``, whose result should be the finished response
    (:func:`~.schemas.json_response`). A request without credentials gets 401 at once; a
    token is checked in the trip, after FastAPI has validated the input, and when the input
    is refused first the error handler checks the token before answering 422
    (:meth:`refusal`): a bad token gets 401 whatever the input."""

    def __init__(self, request: Request, credentials: HTTPAuthorizationCredentials) -> None:
        self.request = request
        self.credentials = credentials
        self.ran = False

    async def run(self, work: Callable[[Caller], T], *, durable: bool = True) -> T:
        """Authenticate, ``work(caller)``, then commit (rollback if anything raises), in a
        worker thread holding the write slot, maybe in one transaction with the turns that
        waited for the slot beside it. The session is opened and closed in the trip: a request
        cancelled before it leaves nothing open and runs nothing.

        ``durable=False`` is for work whose loss in a crash of the database server is
        harmless (a lease): when every turn of the transaction says so, its commit does not
        wait for the log to reach the disk (:func:`~..store.db.commit_without_waiting_for_flush`)."""
        if self.ran:
            raise RuntimeError("this turn already ran")
        self.ran = True
        storage = storage_of(self.request)
        job = _Job(self, work, durable)
        waiting = _waiting(storage)
        waiting.append(job)
        try:
            async with _semaphore(storage, "write"):
                if job.state == "waiting":  # no other trip took it: lead one
                    group = _take(waiting, _group_limit(storage))
                    try:
                        await anyio.to_thread.run_sync(_run_group, storage, group)
                    finally:
                        for taken in group:
                            taken.finished.set()
        except BaseException:
            if job.state == "waiting":  # cancelled before any trip took it: it never runs
                waiting.remove(job)
            raise
        await job.finished.wait()  # taken by another trip: its answer comes with that trip
        return job.outcome()


    async def refusal(self) -> Unauthorized | None:
        """The 401 the turn's token gets (None when it is valid), read in a read session:
        asked only when the request's input was refused before the turn ran."""
        return await anyio.to_thread.run_sync(self._refusal)

    def _refusal(self) -> Unauthorized | None:
        storage = storage_of(self.request)
        with storage.read_sessions() as session:
            try:
                _authenticate(self.request, session, storage, self.credentials)
            except Unauthorized as exc:
                return exc
            finally:
                session.rollback()
        return None


@dataclass(eq=False)
class _Job:
    """A turn's work waiting for, or done by, a trip to the thread pool."""

    turn: WriteTurn
    work: Callable[[Caller], object]
    #: False: losing the work in a database crash is harmless (see :meth:`WriteTurn.run`).
    durable: bool = True
    #: ``waiting`` for a trip, ``taken`` by one, ``done`` (``result``) or ``failed`` (``error``).
    state: str = "waiting"
    result: object = None
    error: BaseException | None = None
    finished: anyio.Event = field(default_factory=anyio.Event)

    def run(self, session: Session) -> object:
        turn = self.turn
        storage = storage_of(turn.request)
        return self.work(_authenticate(turn.request, session, storage, turn.credentials))

    def outcome(self) -> Any:
        if self.state == "done":
            return self.result
        if self.state == "failed" and self.error is not None:
            raise self.error
        raise RuntimeError(f"the turn's work did not run to an end (state {self.state})")


#: How many turns one trip may run in one transaction, by dialect. SQLite runs one writer at a
#: time: turns that wait for it share its trip and commit. PostgreSQL runs each turn alone: a
#: group's transaction holds the item rows it leased and labeled until its last turn, and a
#: round re-ranking those items waited for them (groups of 8 made 2 of 11 rounds fail under
#: load, none alone).
GROUP_LIMITS = {"sqlite": 32, "postgresql": 1}
_queues: RunVar[dict[int, list[_Job]]] = RunVar("activelabel_turns_waiting")


def _waiting(storage: Storage) -> list[_Job]:
    """The event loop's turns of ``storage`` waiting for a trip, oldest first."""
    try:
        table = _queues.get()
    except LookupError:
        table = {}
        _queues.set(table)
    return table.setdefault(id(storage), [])


def _group_limit(storage: Storage) -> int:
    return GROUP_LIMITS.get(storage.engine.dialect.name, 1)


def _take(waiting: list[_Job], limit: int) -> list[_Job]:
    """The oldest ``limit`` waiting turns, marked taken."""
    group = waiting[:limit]
    del waiting[:limit]
    for job in group:
        job.state = "taken"
    return group


def _run_group(storage: Storage, group: list[_Job]) -> None:
    """Run the turns in one transaction, committed once; if any of them (or the commit)
    fails, roll it all back and run each turn alone, so a failure is its own turn's only.
    Each turn's work sees what the turns before it wrote (one session, objects expired
    between turns so that none reads another's stale attributes)."""
    if len(group) > 1:
        try:
            with storage.sessions() as session, _committed(session):
                _no_flush_wait_unless_durable(session, group)
                results = []
                for job in group:
                    results.append(job.run(session))
                    session.expire_all()
        except OperationalError as exc:
            if storage.engine.dialect.name == "sqlite":
                # Locked past the busy timeout, disk full, I/O: each turn alone would wait
                # and fail the same way, one after the other.
                for job in group:
                    job.state, job.error = "failed", exc
                return
        except Exception:  # each turn runs again alone and keeps its own error
            pass
        else:
            for job, result in zip(group, results, strict=True):
                job.state, job.result = "done", result
            return
    for job in group:
        try:
            with storage.sessions() as session, _committed(session):
                _no_flush_wait_unless_durable(session, [job])
                job.result = job.run(session)
            job.state = "done"
        except Exception as exc:  # raised again by the turn's own request
            job.state, job.error = "failed", exc


def _no_flush_wait_unless_durable(session: Session, jobs: list[_Job]) -> None:
    if not any(job.durable for job in jobs):
        commit_without_waiting_for_flush(session)


async def _write_turn(request: Request, credentials: Credentials) -> WriteTurn:
    """The turn of a hot writing endpoint; 401 at once without credentials. The token itself
    is checked in the turn's trip; should FastAPI refuse the input before, its error handler
    asks :meth:`WriteTurn.refusal` first (``request.state.token_refusal``), so that a bad
    token still gets 401 whatever the input."""
    if credentials is None or not credentials.credentials:
        raise Unauthorized(_MISSING)
    turn = WriteTurn(request, credentials)
    request.state.token_refusal = turn.refusal
    return turn


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
