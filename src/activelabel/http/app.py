"""The FastAPI application: routes under ``/api/v1``, OpenAPI at ``/docs``, one error shape.

The web app's pages (``http/web``) are served from the same app, at ``/``.

``create_app(location)`` opens (and migrates) the storage and closes it at shutdown;
``create_app(storage=...)`` serves an already opened storage, which the caller keeps owning
(tests, and processes that share one storage between the API and other work).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from .. import __version__
from ..store import DataLocation, Storage
from .config import ServerSettings
from .errors import error_body, install_error_handlers
from .hot import HotCalls
from .metrics import router as metrics_router
from .middleware import BodyLimit, ServerTiming
from .routes import API_PREFIX, api_router
from .web import install_web

__all__ = ["create_app"]

DESCRIPTION = """\
Active-learning labeling service. Authenticate with `Authorization: Bearer <token>` (an API
token from `activelabel tokens create NAME`, or `POST /api/v1/auth/login`).

Every error is JSON of one shape: `{"error": {"code", "message", "details"?}}`.
"""

_ERRORS = {status: {"description": description, "content": {"application/json": {
    "example": error_body(code, message)}}}
    for status, code, message, description in (
        (401, "unauthorized", "missing credentials: send 'Authorization: Bearer <token>'",
         "No or invalid credentials."),
        (403, "forbidden", "this needs the owner role in project 1", "Wrong role."),
        (404, "not_found", "project 1 does not exist", "Unknown, or not visible to the caller."),
        (400, "invalid_input", "a classification project takes exactly one label, got 0",
         "Well-formed, but refused by a rule the schema cannot express (the message says "
         "which and how to fix it)."),
        (409, "conflict", "revision 7 was superseded meanwhile: reload the item's history",
         "Clashes with the current state (a concurrent change, a duplicate)."),
        (413, "too_large", "the request is larger than the 16,777,216 bytes this server takes",
         "The body is larger than the server's limit."),
        (503, "unavailable", "the database is busy or unreachable: retry in a moment",
         "The database does not answer; retry."),
        (507, "insufficient_storage", "the server's disk is full: nothing was stored",
         "The server's disk is full; nothing was stored."),
    )}


def create_app(location: DataLocation | None = None, *, storage: Storage | None = None,
               settings: ServerSettings | None = None) -> FastAPI:
    """The API over ``storage``, or over a storage opened at ``location`` (closed with the
    app), with the server's ``settings`` (default: every default)."""
    if (location is None) == (storage is None):
        raise TypeError("create_app takes a location or an opened storage, not both or none")
    owned = storage is None
    opened = storage if storage is not None else Storage(location)  # type: ignore[arg-type]

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        try:
            yield
        finally:
            if owned:
                opened.close()

    app = FastAPI(title="activelabel", version=__version__, description=DESCRIPTION,
                  docs_url="/docs", redoc_url=None, openapi_url="/openapi.json",
                  lifespan=lifespan)
    app.state.storage = opened
    app.state.settings = settings or ServerSettings()
    app.add_middleware(HotCalls)  # the innermost: inside the catch-all, body limit and timing
    install_error_handlers(app)
    app.include_router(api_router, prefix=API_PREFIX, responses=_ERRORS)  # type: ignore[arg-type]
    app.include_router(metrics_router, responses=_ERRORS)  # type: ignore[arg-type]
    install_web(app)
    app.add_middleware(BodyLimit)
    app.add_middleware(ServerTiming)
    return app
