"""``GET /health``: the server is up and its database answers (no authentication)."""

from __future__ import annotations

import logging

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from ... import __version__
from ...labeling.health import server_health
from ..auth import settings_of_app, storage_of
from ..schemas import Health

router = APIRouter(tags=["health"])
logger = logging.getLogger("activelabel.http")


@router.get("/health", response_model=Health, responses={
    503: {"model": Health, "description": "The database does not answer, or the disk is full."}})
def health(request: Request) -> JSONResponse:
    """Liveness for load balancers and ``activelabel serve``: the database, the data folder's
    free disk space, whether a worker takes jobs, when the last round finished."""
    settings = settings_of_app(request)
    found = server_health(storage_of(request), min_free_bytes=settings.min_free_disk_bytes)
    if found.database != "ok":
        logger.error("health check: database unavailable")
    body = Health(status="ok" if found.ok else "error", database=found.database,
                  version=__version__, disk=found.disk, disk_free_bytes=found.disk_free_bytes,
                  worker=found.worker, oldest_queued_job_at=found.oldest_queued_job_at,
                  last_round_at=found.last_round_at)
    return JSONResponse(body.model_dump(mode="json"), status_code=200 if found.ok else 503)
