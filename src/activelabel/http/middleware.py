"""``Server-Timing`` on every answer: how long the application took to start answering.

A pure ASGI middleware (no per-request objects beyond a closure): the time from the request
reaching the application to the start of its response, as ``Server-Timing: app;dur=<ms>``.
Browsers show it beside the request in their developer tools; the load benchmark reads it to
tell the server's own time from the time a request spent queued or in the client.
"""

from __future__ import annotations

import re
import time
import uuid
from contextvars import ContextVar

from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .errors import error_response
from .metrics import observe_request
from .routes import API_PREFIX

__all__ = ["BodyLimit", "ServerTiming", "current_request_id"]


_REQUEST_ID: ContextVar[str | None] = ContextVar("activelabel_request_id", default=None)
#: An incoming X-Request-Id is kept when it looks like one (a proxy's); else a new one.
_GOOD_ID = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")


def current_request_id() -> str | None:
    """The id of the request being answered (for log lines), None outside requests."""
    return _REQUEST_ID.get()


class ServerTiming:
    """Adds ``server-timing: app;dur=<milliseconds>`` and ``x-request-id`` to every HTTP
    response, counts the time in the request histogram of ``/metrics`` by route template
    (never the ids), and makes the request's id what its log lines carry."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        began = time.perf_counter()
        given = dict(scope.get("headers") or []).get(b"x-request-id", b"").decode("latin-1")
        request_id = given if _GOOD_ID.match(given) else uuid.uuid4().hex[:16]
        token = _REQUEST_ID.set(request_id)

        async def timed_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                seconds = time.perf_counter() - began
                message["headers"] = [*message.get("headers", ()),
                                      (b"server-timing", f"app;dur={seconds * 1000:.1f}".encode()),
                                      (b"x-request-id", request_id.encode())]
                route = _template(scope)
                observe_request(scope.get("method", ""), route, int(message["status"]), seconds)
            await send(message)

        try:
            await self.app(scope, receive, timed_send)
        finally:
            _REQUEST_ID.reset(token)


class _TooLarge(StarletteHTTPException):
    """Raised from ``receive`` when the body passes the limit: an HTTP error, so that a
    route reading the body (FastAPI turns other errors there into 400s) answers 413."""

    def __init__(self, limit: int, upload: bool) -> None:
        super().__init__(413, _message(limit, upload))
        self.limit, self.upload = limit, upload


class BodyLimit:
    """Requests larger than the server's ``max_body_bytes`` (file uploads: ``max_upload_bytes``)
    get a 413 before their body is parsed: by their Content-Length when they state one, else
    as soon as the bytes received pass the limit."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("method") in ("GET", "HEAD", "OPTIONS"):
            await self.app(scope, receive, send)
            return
        settings = scope["app"].state.settings
        upload = bool(_UPLOAD.match(scope.get("path", "")))
        limit = int(settings.max_upload_bytes if upload else settings.max_body_bytes)
        stated = dict(scope.get("headers") or []).get(b"content-length")
        if stated is not None and stated.isdigit() and int(stated) > limit:
            await _too_large(limit, upload)(scope, receive, send)
            return
        seen = 0
        started = False

        async def counting_receive() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    raise _TooLarge(limit, upload)
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counting_receive, tracking_send)
        except _TooLarge:
            if started:
                raise
            await _too_large(limit, upload)(scope, receive, send)


#: File uploads, whose limit is ``max_upload_bytes``.
_UPLOAD = re.compile(r"^/api/v1/projects/[^/]+/imports$")


def _message(limit: int, upload: bool) -> str:
    what = "file uploads" if upload else "request bodies"
    setting = "MAX_UPLOAD_BYTES" if upload else "MAX_BODY_BYTES"
    hint = ("split the file, or raise the limit" if upload else
            "send fewer items per request (a file import takes any number), or raise the limit")
    return (f"the request is larger than the {limit:,} bytes this server takes for {what}: "
            f"{hint} (ACTIVELABEL_{setting})")


def _too_large(limit: int, upload: bool) -> JSONResponse:
    return error_response(413, "too_large", _message(limit, upload))


def _template(scope: Scope) -> str:
    """The matched route's path template (``/api/v1/projects/{project_id}/...``)."""
    template = getattr(scope.get("route"), "path", None)
    if template is None:
        return "unmatched"
    path = str(scope.get("path", ""))
    if path.startswith(API_PREFIX) and not template.startswith(API_PREFIX):
        return API_PREFIX + template  # a router's routes keep their own part of the path
    return str(template)
