"""Store fixtures: every test runs on SQLite (a real file) and on the PostgreSQL server.

Migrations run once per test session and backend (``backend`` is session-scoped here); each
test's session joins an outer transaction that is rolled back afterwards. Tests that need real
commits (concurrency) take ``fresh_engine``: a new SQLite file or a new PostgreSQL schema,
dropped afterwards. Helpers: :mod:`tests.support.databases`, :mod:`tests.support.projects`.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from activelabel.store.models import Project, User
from activelabel.store.projects import create_project
from activelabel.store.users import create_user
from tests.support.databases import BACKENDS, new_engine


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
