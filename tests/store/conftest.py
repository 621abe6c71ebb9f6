"""Store fixtures: every test runs on SQLite (a real file) and on the PostgreSQL server.

Migrations run once per test session and backend; each test's session joins an outer
transaction that is rolled back afterwards. Tests that need real commits (concurrency) take
``fresh_engine``: a new SQLite file or a new PostgreSQL schema, dropped afterwards.
PostgreSQL unreachable: skipped with the reason, or failed when CI=true.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from activelabel.store import create_engine_for, migrate
from activelabel.store.models import Project, User
from activelabel.store.projects import create_project
from activelabel.store.users import create_user

PG_URL = os.environ.get("ACTIVELABEL_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
BACKENDS = ["sqlite", "postgresql"]


def _pg_error() -> str | None:
    engine = create_engine_for(PG_URL)
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
    except OperationalError as exc:
        return str(exc).splitlines()[0]
    finally:
        engine.dispose()
    return None


@pytest.fixture(scope="session")
def pg_admin() -> Iterator[Engine]:
    error = _pg_error()
    if error is not None:
        message = f"PostgreSQL at {PG_URL} is unreachable ({error}); set ACTIVELABEL_TEST_PG"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    engine = create_engine_for(PG_URL)
    yield engine
    engine.dispose()


def _pg_schema_engine(admin: Engine) -> tuple[Engine, str]:
    schema = f"al_test_{uuid.uuid4().hex[:12]}"
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    sep = "&" if "?" in PG_URL else "?"
    return create_engine_for(f"{PG_URL}{sep}options=-csearch_path%3D{schema}"), schema


def _drop_schema(admin: Engine, schema: str) -> None:
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
    engine, schema = _pg_schema_engine(admin)
    try:
        migrate(engine)
        yield engine
    finally:
        engine.dispose()
        _drop_schema(admin, schema)


@pytest.fixture(scope="session", params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(scope="session")
def engine(backend: str, request: pytest.FixtureRequest,
           tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engine]:
    yield from new_engine(backend, request, tmp_path_factory.mktemp("store"))


@pytest.fixture
def fresh_engine(backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    yield from new_engine(backend, request, tmp_path)


@pytest.fixture
def session(engine: Engine) -> Iterator[Session]:
    """A session whose commits become savepoints of an outer transaction rolled back after."""
    with engine.connect() as conn:
        outer = conn.begin()
        sess = Session(bind=conn, join_transaction_mode="create_savepoint",
                       expire_on_commit=False)
        try:
            yield sess
        finally:
            sess.close()
            outer.rollback()


@pytest.fixture
def owner(session: Session) -> User:
    return create_user(session, f"owner_{uuid.uuid4().hex[:8]}")


@pytest.fixture
def project(session: Session, owner: User) -> Project:
    return create_project(session, f"p_{uuid.uuid4().hex[:8]}", "classification",
                          ["pos", "neg", "neutral"], created_by=owner.id)


def make_users(session: Session, n: int, prefix: str = "u") -> list[User]:
    return [create_user(session, f"{prefix}{i}_{uuid.uuid4().hex[:6]}") for i in range(n)]


def make_items(session: Session, project_id: int, n: int, start: int = 0,
               split: str = "pool") -> list[int]:
    from activelabel.store.items import add_items, item_ids_for_rows

    result = add_items(session, project_id, [
        {"external_id": f"x{start + i}", "data": {"text": f"item {start + i}"}, "split": split}
        for i in range(n)])
    assert result.inserted == n
    from activelabel.store.items import count_items

    total = count_items(session, project_id)
    return item_ids_for_rows(session, project_id, range(total - n, total))
