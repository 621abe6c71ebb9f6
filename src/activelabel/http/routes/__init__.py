"""The REST API's routers, one module per resource, combined under one router.

``activelabel.http.app.create_app`` mounts :data:`api_router` at ``/api/v1``.
"""

from __future__ import annotations

from fastapi import APIRouter

from . import (
    export,
    flags,
    governance,
    health,
    images,
    imports,
    insights,
    items,
    labeling,
    ml_backend,
    model_versions,
    projects,
    quality,
    rounds,
    stats,
    tasks,
    users,
)

__all__ = ["API_PREFIX", "api_router"]

API_PREFIX = "/api/v1"

api_router = APIRouter()
# Routers are matched in order: the annotators' calls, most of the traffic, come first.
for _module in (tasks, labeling, health, users, projects, items, imports, flags, rounds,
                model_versions, export, stats, quality, governance, insights, ml_backend, images):
    api_router.include_router(_module.router)
