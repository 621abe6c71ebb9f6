"""The two calls annotators make all day, answered without FastAPI's routing and dependencies.

``GET /projects/{id}/tasks/next`` and ``POST /projects/{id}/annotations`` are most of the
traffic. FastAPI's per-request work around them (matching the path against the routes,
solving the dependencies, validating the query and the body field by field, its exit stacks)
ran on the event loop, which every request of the process shares. :class:`HotCalls`, a plain
ASGI middleware just outside the routes, answers the ordinary case of these two calls itself:
a bearer token, ``n`` absent or a plain number from 1 to 100, a JSON body that
:class:`~.schemas.AnnotationIn` accepts. It runs the very same work in the same turn
(:class:`~.auth.WriteTurn`: token, role, work and commit in one trip to the thread pool) and
answers the same JSON. Errors the work raises get the app's own error handlers, so their
status and shape are the same too.

Anything else (no or another kind of credentials, an odd query, a body the model refuses,
another content type) goes on to the FastAPI route, which answers as it always did (401,
422 with the field-by-field details): the routes stay the single description of the calls,
in the OpenAPI schema among them.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi.security import HTTPAuthorizationCredentials
from fastapi.security.utils import get_authorization_scheme_param
from pydantic import ValidationError
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ..store import MAX_ID
from .auth import WriteTurn
from .routes import API_PREFIX
from .routes.labeling import answer_annotation
from .routes.tasks import MAX_TASKS_PER_CALL, answer_next
from .schemas import AnnotationIn

__all__ = ["HotCalls"]

_NEXT = re.compile(rf"^{re.escape(API_PREFIX)}/projects/([0-9]{{1,15}})/tasks/next$")
_ANNOTATE = re.compile(rf"^{re.escape(API_PREFIX)}/projects/([0-9]{{1,15}})/annotations$")
_N = re.compile(rb"^n=([0-9]{1,3})$")
_JSON = re.compile(rb"^application/json\s*(;\s*charset=(\"?)utf-8\2\s*)?$", re.IGNORECASE)


class _Template:
    """What the request metrics read of a matched route: its path template."""

    def __init__(self, path: str) -> None:
        self.path = path


_NEXT_ROUTE = _Template(f"{API_PREFIX}/projects/{{project_id}}/tasks/next")
_ANNOTATE_ROUTE = _Template(f"{API_PREFIX}/projects/{{project_id}}/annotations")


class HotCalls:
    """Answers the ordinary ``tasks/next`` and ``annotations`` calls without the router
    (module docstring); passes every other request on unchanged."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            method, path = scope["method"], scope["path"]
            if method == "GET" and (found := _NEXT.match(path)) and _in_range(found):
                n = _count(scope.get("query_string", b""))
                token = _token(scope)
                if n is not None and token is not None:
                    await self._next(scope, receive, send, int(found.group(1)), n, token)
                    return
            elif method == "POST" and (found := _ANNOTATE.match(path)) and _in_range(found):
                await self._annotate(scope, receive, send, int(found.group(1)))
                return
        await self.app(scope, receive, send)

    async def _next(self, scope: Scope, receive: Receive, send: Send, project_id: int, n: int,
                    token: HTTPAuthorizationCredentials) -> None:
        scope["route"] = _NEXT_ROUTE
        scope["path_params"] = {"project_id": str(project_id)}
        request = Request(scope, receive)
        await _answer(request, send, lambda: answer_next(WriteTurn(request, token), project_id, n))

    async def _annotate(self, scope: Scope, receive: Receive, send: Send,
                        project_id: int) -> None:
        token = _token(scope)
        try:
            body, complete = await _body(receive)
        except Exception as exc:  # past the body limit (413), as the route would answer
            await _answer(Request(scope, receive), send, _raise(exc))
            return
        if token is not None and complete and _is_json(scope):
            try:
                payload = AnnotationIn.model_validate_json(body)
            except ValidationError:
                payload = None  # the route says what is wrong, field by field
            if payload is not None:
                scope["route"] = _ANNOTATE_ROUTE
                scope["path_params"] = {"project_id": str(project_id)}
                request = Request(scope, receive)
                await _answer(request, send, lambda: answer_annotation(
                    WriteTurn(request, token), project_id, payload))
                return
        await self.app(scope, _replay(body, complete, receive), send)


def _in_range(found: re.Match[str]) -> bool:
    """Whether the path's project id is one the id column can hold (else the route answers
    422, as for any id out of range)."""
    return 1 <= int(found.group(1)) <= MAX_ID


def _count(query: bytes) -> int | None:
    """``n`` of the query when it is the query's only parameter, a plain number in range
    (10 without a query), else None (the route validates it)."""
    if not query:
        return 10
    found = _N.match(query)
    if found is None:
        return None
    n = int(found.group(1))
    return n if 1 <= n <= MAX_TASKS_PER_CALL else None


def _token(scope: Scope) -> HTTPAuthorizationCredentials | None:
    """The bearer token of the request, as FastAPI's ``HTTPBearer`` reads it; None without
    one (the route answers 401)."""
    header = None
    for name, value in scope.get("headers") or ():
        if name == b"authorization":
            header = value.decode("latin-1")
            break
    scheme, credentials = get_authorization_scheme_param(header)
    if not (header and scheme and credentials) or scheme.lower() != "bearer":
        return None
    return HTTPAuthorizationCredentials(scheme=scheme, credentials=credentials)


def _is_json(scope: Scope) -> bool:
    for name, value in scope.get("headers") or ():
        if name == b"content-type":
            return _JSON.match(value) is not None
    return False


#: Bodies larger than this go to the route as they come (an annotation is a few hundred bytes).
_MAX_BODY = 1 << 20


async def _body(receive: Receive) -> tuple[bytes, bool]:
    """The request's body and whether it is complete (False past :data:`_MAX_BODY`, or when
    the client went away: the rest is then left to the route)."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return b"".join(chunks), False
        chunk = message.get("body", b"")
        chunks.append(chunk)
        size += len(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks), True
        if size > _MAX_BODY:
            return b"".join(chunks), False


def _replay(body: bytes, complete: bool, receive: Receive) -> Receive:
    """A ``receive`` that gives the body read so far again, then what is left of it."""
    given = False

    async def replayed() -> Message:
        nonlocal given
        if not given:
            given = True
            return {"type": "http.request", "body": body, "more_body": not complete}
        return await receive()

    return replayed


async def _answer(request: Request, send: Send, work: Callable[[], Awaitable[Response]]) -> None:
    """Send the work's response, or the one the app's handler of its error makes (errors
    without a handler go on up, to the catch-all's 500)."""
    try:
        response = await work()
    except Exception as exc:
        handler = _handler(request, exc)
        if handler is None:
            raise
        response = await handler(request, exc)
    await response(request.scope, request.receive, send)


def _raise(exc: Exception) -> Callable[[], Awaitable[Response]]:
    async def raised() -> Response:
        raise exc
    return raised


def _handler(request: Request, exc: Exception) -> Any:
    """The app's exception handler for ``exc`` (by class, nearest first), as Starlette picks."""
    handlers = request.app.exception_handlers
    for cls in type(exc).__mro__:
        if cls in handlers:
            return handlers[cls]
    return None
