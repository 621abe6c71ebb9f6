"""``GET /health``: the server is up and its database answers (no authentication)."""

from __future__ import annotations

import logging

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from sqlalchemy.exc import SQLAlchemyError

from ... import __version__
from ..auth import storage_of
from ..schemas import Health

router = APIRouter(tags=["health"])
logger = logging.getLogger("activelabel.http")


@router.get("/health", response_model=Health,
            responses={503: {"model": Health, "description": "The database does not answer."}})
def health(request: Request) -> JSONResponse:
    """Liveness and database check, for load balancers and ``activelabel serve``."""
    storage = storage_of(request)
    try:
        storage.ping()
    except SQLAlchemyError as exc:
        logger.error("health check: database unavailable: %s", exc)
        body = Health(status="error", database="unavailable", version=__version__)
        return JSONResponse(body.model_dump(), status_code=503)
    return JSONResponse(Health(status="ok", database="ok", version=__version__).model_dump())
