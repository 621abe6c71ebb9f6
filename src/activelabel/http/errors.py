"""One JSON error shape for every failure of the API, and the mapping of errors to HTTP.

Every error answer is ``{"error": {"code", "message", "details"?}}``: a stable snake_case
``code``, a ``message`` that says what is wrong and how to fix it, and optional ``details``
(e.g. the invalid fields of a request). Domain errors of the store map to their status here,
request validation errors to 422, values the database cannot store (a NUL in text on
PostgreSQL) to 400, unknown routes to 404, and anything unexpected to a 500
that is logged with its stack trace while the client only learns that it happened.
"""

from __future__ import annotations

import errno
import logging
import re
from collections.abc import Mapping, Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DataError, IntegrityError, OperationalError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ..store import (
    ActivelabelError,
    Conflict,
    Forbidden,
    InvalidInput,
    InvalidSettings,
    NotFound,
    TooManyAttempts,
)
from ..store.spans import InvalidSpans

__all__ = [
    "ApiError",
    "CatchAllMiddleware",
    "Unauthorized",
    "error_body",
    "error_response",
    "install_error_handlers",
]

logger = logging.getLogger("activelabel.http")

#: Domain error class -> HTTP status (subclasses checked in this order).
STATUS_OF: tuple[tuple[type[ActivelabelError], int], ...] = (
    (NotFound, 404),
    (Conflict, 409),
    (Forbidden, 403),
    (InvalidSettings, 422),
    (InvalidSpans, 422),
    (TooManyAttempts, 429),
    (InvalidInput, 400),
)
_HTTP_CODES = {400: "invalid_input", 401: "unauthorized", 403: "forbidden", 404: "not_found",
               405: "method_not_allowed", 409: "conflict", 413: "too_large",
               415: "unsupported_media_type", 422: "invalid_input", 429: "too_many_requests",
               503: "unavailable", 507: "insufficient_storage"}
BEARER_CHALLENGE = {"WWW-Authenticate": "Bearer"}


class ApiError(ActivelabelError):
    """An error raised by the HTTP layer itself, with its own status and headers."""

    status_code = 400
    code = "invalid_input"
    headers: Mapping[str, str] = {}

    def __init__(self, message: str, *, details: Any = None) -> None:
        super().__init__(message)
        self.details = details


class Unauthorized(ApiError):
    """No credentials, or credentials that do not name an enabled user (401)."""

    status_code = 401
    code = "unauthorized"
    headers = BEARER_CHALLENGE


def error_body(code: str, message: str, details: Any = None) -> dict[str, Any]:
    """The one error shape: ``{"error": {"code", "message", "details"?}}``."""
    error: dict[str, Any] = {"code": code, "message": message}
    if details is not None:
        error["details"] = details
    return {"error": error}


def error_response(status: int, code: str, message: str, details: Any = None,
                   headers: Mapping[str, str] | None = None) -> JSONResponse:
    return JSONResponse(error_body(code, message, details), status_code=status,
                        headers=dict(headers) if headers else None)


def status_of(exc: ActivelabelError) -> int:
    if isinstance(exc, ApiError):
        return exc.status_code
    for cls, status in STATUS_OF:
        if isinstance(exc, cls):
            return status
    return 400


async def _domain_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ActivelabelError)
    details = exc.details if isinstance(exc, ApiError) else None
    if isinstance(exc, InvalidSettings):  # named as in the request, like every other 422
        details = [{**d, "field": f"body.{d['field']}", "loc": ["body", *d["loc"]]}
                   for d in exc.details]
    headers = dict(exc.headers) if isinstance(exc, ApiError) else None
    if isinstance(exc, TooManyAttempts):
        headers = {"Retry-After": str(exc.retry_after)}
    return error_response(status_of(exc), exc.code, exc.message, details, headers)


def _field(loc: Sequence[Any]) -> str:
    return ".".join(str(part) for part in loc) or "request"


def validation_details(errors: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Pydantic errors as ``[{field, loc, message, type}]`` (JSON-safe; no echo of the input)."""
    return [{"field": _field(err.get("loc", ())), "loc": [str(p) if not isinstance(p, int)
                                                          else p for p in err.get("loc", ())],
             "message": str(err.get("msg", "invalid value")).removeprefix("Value error, "),
             "type": str(err.get("type", ""))}
            for err in errors]


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    # A route whose token is checked with its work (``auth.Turn``) has not checked it yet:
    # a bad token gets 401 before anything is said about the input.
    refusal = getattr(request.state, "token_refusal", None)
    if refusal is not None and (refused := await refusal()) is not None:
        return await _domain_error(request, refused)
    details = validation_details(list(exc.errors()))
    shown = "; ".join(f"{d['field']}: {d['message']}" for d in details[:5])
    more = f" (and {len(details) - 5} more)" if len(details) > 5 else ""
    message = (f"invalid request: {shown}{more}. Fix the listed fields; the schema of every "
               "endpoint is at /docs")
    return error_response(422, "invalid_input", message, details)


def _allowed_methods(request: Request) -> list[str]:
    """The methods the OpenAPI schema documents for the request's path (the most literal of
    the templates it matches: ``items/purge`` before ``items/{item_id}``); empty for a path the
    schema does not hold. Starlette's 405 names only the methods of the first route of the path,
    where one path may have a route per method."""
    app = request.app
    templates = getattr(app.state, "allow_templates", None)
    if templates is None:
        templates = []
        for template, operations in app.openapi().get("paths", {}).items():
            pattern = re.sub(r"\\\{[^/]+?\\\}", "[^/]+", re.escape(template))
            literal = sum(1 for part in template.split("/") if part and "{" not in part)
            templates.append((re.compile(pattern), literal,
                              sorted(m.upper() for m in operations)))
        app.state.allow_templates = templates
    found = [(literal, methods) for pattern, literal, methods in templates
             if pattern.fullmatch(request.scope["path"])]
    return max(found)[1] if found else []


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    status = exc.status_code
    code = _HTTP_CODES.get(status, "internal" if status >= 500 else "http_error")
    if status == 404:
        message = (f"no endpoint {request.method} {request.url.path}: the API lives under "
                   "/api/v1, see /docs for every path")
    elif status == 405:
        message = (f"method {request.method} is not allowed on {request.url.path}: see /docs "
                   "for the methods of this path")
    else:
        message = str(exc.detail)
    headers = dict(exc.headers) if exc.headers else None
    if status == 405 and (allowed := _allowed_methods(request)):
        headers = {**(headers or {}), "Allow": ", ".join(allowed)}
    if status == 401:
        headers = {**BEARER_CHALLENGE, **(headers or {})}
    return error_response(status, code, message, headers=headers)


async def _integrity_error(request: Request, exc: Exception) -> JSONResponse:
    logger.warning("integrity error on %s %s: %s", request.method, request.url.path, exc)
    return error_response(409, "conflict", "the change clashes with data written meanwhile "
                          "(a concurrent request): reload and retry")


async def _data_error(request: Request, exc: Exception) -> JSONResponse:
    """A value of the request the database refuses to hold (PostgreSQL: a NUL character in
    text): the caller's input, so a 400 (a rule the schema does not express) that says
    which, never the SQL."""
    logger.warning("data error on %s %s: %s", request.method, request.url.path, exc)
    reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0][:200]
    if "nul" in reason.lower() or "0x00" in reason:
        message = ("text may not hold the NUL character (\\u0000, byte 0x00): the database "
                   "cannot store it; remove it from the request and retry")
    else:
        message = (f"the request holds a value the database cannot store ({reason}): fix that "
                   "value and retry")
    return error_response(400, "invalid_input", message)


#: What a database (or the file system) says when its disk is full.
_DISK_FULL = ("database or disk is full", "no space left on device", "could not extend file",
              "disk full")


def is_disk_full(exc: BaseException) -> bool:
    """Whether ``exc`` (a database error, an OSError) says the disk is full."""
    if isinstance(exc, OSError) and exc.errno == errno.ENOSPC:
        return True
    text = str(getattr(exc, "orig", None) or exc).lower()
    return any(sign in text for sign in _DISK_FULL)


def disk_full_response() -> JSONResponse:
    return error_response(507, "insufficient_storage", "the server's disk is full: nothing "
                          "was stored; free space on the data folder's (or the database's) "
                          "disk, then retry")


async def _operational_error(request: Request, exc: Exception) -> JSONResponse:
    logger.error("database error on %s %s: %s", request.method, request.url.path, exc)
    if is_disk_full(exc):
        return disk_full_response()
    return error_response(503, "unavailable", "the database is busy or unreachable: retry in "
                          "a moment; if it persists, check the server log")


def install_error_handlers(app: FastAPI) -> None:
    """Register the handlers and the catch-all middleware that turns crashes into 500s."""
    app.add_exception_handler(ActivelabelError, _domain_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(IntegrityError, _integrity_error)
    app.add_exception_handler(DataError, _data_error)
    app.add_exception_handler(OperationalError, _operational_error)
    app.add_middleware(CatchAllMiddleware)


class CatchAllMiddleware:
    """Unexpected exceptions become a logged 500 ``internal`` error without a stack trace.

    A plain ASGI middleware (no per-request overhead of ``BaseHTTPMiddleware``). When the
    response had already started (a failing stream), the exception is logged and re-raised so
    the server closes the connection.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, tracking_send)
        except Exception as exc:
            if is_disk_full(exc) and not started:
                logger.error("disk full on %s %s: %s", scope.get("method"), scope.get("path"),
                             exc)
                await disk_full_response()(scope, receive, send)
                return
            logger.exception("unexpected error on %s %s", scope.get("method"), scope.get("path"))
            if started:
                raise
            response = error_response(500, "internal", "the server failed unexpectedly; the "
                                      "error is in its log. Retry, or report it with the time "
                                      "of the request")
            await response(scope, receive, send)
