"""Databases for tests: a SQLite file, or a new schema on the PostgreSQL server.

Every helper here makes a new, empty database and removes it at teardown (they are
generators, for ``yield from`` in a fixture). PostgreSQL is reached through the
``pg_admin`` fixture (``tests/conftest.py``), which skips or fails when the server is down.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.exc import OperationalError

from activelabel.store import DataLocation, Storage, create_engine_for, migrate
from activelabel.store.db import default_url

__all__ = [
    "BACKENDS",
    "PG_URL",
    "drop_schema",
    "new_database_url",
    "new_engine",
    "new_schema",
    "new_storage",
    "pg_error",
]

PG_URL = os.environ.get("ACTIVELABEL_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
BACKENDS = ["sqlite", "postgresql"]


def pg_error() -> str | None:
    """Why the PostgreSQL server at PG_URL cannot be used, or None when it answers."""
    engine = create_engine_for(PG_URL)
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
    except OperationalError as exc:
        return str(exc).splitlines()[0]
    finally:
        engine.dispose()
    return None


def new_schema(admin: Engine) -> tuple[Engine, str]:
    """A new, empty schema and an engine whose search path is that schema."""
    schema = f"al_test_{uuid.uuid4().hex[:12]}"
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    sep = "&" if "?" in PG_URL else "?"
    return create_engine_for(f"{PG_URL}{sep}options=-csearch_path%3D{schema}"), schema


def drop_schema(admin: Engine, schema: str) -> None:
    with admin.begin() as conn:
        conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))


def new_engine(backend: str, request: pytest.FixtureRequest, folder: Path) -> Iterator[Engine]:
    """A migrated, empty database of ``backend``; removed at teardown."""
    if backend == "sqlite":
        engine = create_engine_for(f"sqlite:///{folder / f'{uuid.uuid4().hex}.db'}")
        migrate(engine)
        yield engine
        engine.dispose()
        return
    admin: Engine = request.getfixturevalue("pg_admin")
    engine, schema = new_schema(admin)
    try:
        migrate(engine)
        yield engine
    finally:
        engine.dispose()
        drop_schema(admin, schema)


def new_database_url(backend: str, request: pytest.FixtureRequest, folder: Path) -> Iterator[str]:
    """URL of a new, migrated database of ``backend`` (for a process); removed at teardown."""
    for engine in new_engine(backend, request, folder):
        yield engine.url.render_as_string(hide_password=False)


def new_storage(backend: str, request: pytest.FixtureRequest, folder: Path) -> Iterator[Storage]:
    """An opened (migrated) Storage with its data in ``folder``: on SQLite the database file
    inside the folder, on PostgreSQL a new schema; closed and removed at teardown."""
    if backend == "sqlite":
        storage = Storage(DataLocation(data_dir=folder.resolve(), db_url=default_url(folder)))
        yield storage
        storage.close()
        return
    admin: Engine = request.getfixturevalue("pg_admin")
    engine, schema = new_schema(admin)
    url = engine.url.render_as_string(hide_password=False)
    engine.dispose()
    try:
        storage = Storage(DataLocation(data_dir=folder.resolve(), db_url=url))
        try:
            yield storage
        finally:
            storage.close()
    finally:
        drop_schema(admin, schema)
