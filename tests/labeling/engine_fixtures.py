"""Fixtures of the engine tests (rounds, imports, export, worker) on SQLite and PostgreSQL.

``engine_storage`` is a :class:`Storage` over a migrated database of the ``backend`` (a SQLite
file, or a fresh PostgreSQL schema) shared by a test module: tests make their own projects.
``fresh_storage`` is a new one per test, for tests that look at every job of the database.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sklearn.datasets import load_digits
from sqlalchemy import Engine

from activelabel.runtime.settings import resolve_location
from activelabel.store import (
    Storage,
    add_items,
    annotate,
    create_project,
    create_user,
    item_ids_for_rows,
)
from activelabel.store.models import Job, Project, User
from tests.store.conftest import BACKENDS, _drop_schema, _pg_schema_engine, pg_admin

__all__ = [
    "DIGIT_CLASSES",
    "Seeded",
    "backend",
    "digit_rows",
    "digits",
    "engine_storage",
    "fresh_storage",
    "label_rows",
    "make_storage",
    "new_project",
    "pg_admin",
    "run_job",
    "text_rows",
]

DIGIT_CLASSES = [str(d) for d in range(10)]


@pytest.fixture(scope="module", params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def make_storage(backend: str, request: pytest.FixtureRequest, folder: Path) -> Iterator[Storage]:
    """A migrated Storage in ``folder`` on ``backend``; its schema is dropped afterwards."""
    if backend == "sqlite":
        storage = Storage(resolve_location(folder))
        yield storage
        storage.close()
        return
    admin: Engine = request.getfixturevalue("pg_admin")
    engine, schema = _pg_schema_engine(admin)
    url = engine.url.render_as_string(hide_password=False)
    engine.dispose()
    storage = Storage(resolve_location(folder, url))
    try:
        yield storage
    finally:
        storage.close()
        _drop_schema(admin, schema)


@pytest.fixture(scope="module")
def engine_storage(backend: str, request: pytest.FixtureRequest,
                   tmp_path_factory: pytest.TempPathFactory) -> Iterator[Storage]:
    yield from make_storage(backend, request, tmp_path_factory.mktemp("engine"))


@pytest.fixture
def fresh_storage(backend: str, request: pytest.FixtureRequest,
                  tmp_path: Path) -> Iterator[Storage]:
    yield from make_storage(backend, request, tmp_path)


@pytest.fixture(scope="session")
def digits() -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]]:
    bunch = load_digits()
    return np.asarray(bunch.images, dtype=np.int64), np.asarray(bunch.target)


class Seeded:
    """A project made by :func:`new_project`: ids of its owner and project."""

    def __init__(self, project_id: int, owner_id: int) -> None:
        self.project_id = project_id
        self.owner_id = owner_id


def new_project(storage: Storage, *, labels: list[Any] | None = None,
                task: str = "classification", settings: dict[str, Any] | None = None,
                rows: list[dict[str, Any]] | None = None,
                private_fields: tuple[str, ...] = ()) -> Seeded:
    """A project (owner included) with ``rows`` imported, committed."""
    with storage.sessions() as session, session.begin():
        owner: User = create_user(session, f"owner_{uuid.uuid4().hex[:8]}")
        project: Project = create_project(session, f"p_{uuid.uuid4().hex[:8]}", task,
                                          labels or DIGIT_CLASSES, settings=settings,
                                          private_fields=private_fields, created_by=owner.id)
        if rows:
            result = add_items(session, project.id, rows)
            assert result.inserted == len(rows), result.rejected[:3]
        return Seeded(project.id, owner.id)


def digit_rows(images: np.ndarray[Any, Any], n: int, holdout: int = 0) -> list[dict[str, Any]]:
    """``n`` digit items; the last ``holdout`` of them in the holdout split."""
    return [{"external_id": f"d{i}", "data": {"image": images[i].tolist(), "secret": f"s{i}"},
             "split": "holdout" if i >= n - holdout else "pool"} for i in range(n)]


def text_rows(n: int, start: int = 0) -> list[dict[str, Any]]:
    words = ["alpha", "beta", "gamma", "delta", "omega", "sigma"]
    return [{"external_id": f"t{i}", "data": {"text": f"{words[i % 6]} {words[(i * 7) % 6]} {i}"}}
            for i in range(start, start + n)]


def label_rows(storage: Storage, seeded: Seeded, rows: list[int], labels: list[Any],
               user_id: int | None = None) -> None:
    """Label the items at ``rows`` (one label each) as ``user_id`` (default the owner)."""
    with storage.sessions() as session, session.begin():
        ids = item_ids_for_rows(session, seeded.project_id, rows)
        for item_id, label in zip(ids, labels, strict=True):
            annotate(session, seeded.project_id, user_id or seeded.owner_id, item_id,
                     label if isinstance(label, list) else [label])


def run_job(storage: Storage, job_id: int) -> dict[str, Any]:
    """Run a queued job's handler here (no claim): what a worker does, minus the bookkeeping."""
    from activelabel.labeling.imports import run_import
    from activelabel.labeling.rounds import run_round

    with storage.sessions() as session:
        job = session.get(Job, job_id)
        assert job is not None
    handler = run_round if job.kind == "round" else run_import
    seen: list[dict[str, Any]] = []
    result = handler(storage, job, progress=seen.append)
    result["_progress"] = seen
    return result
