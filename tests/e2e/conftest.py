"""Fixtures of the end-to-end tests: a backend, a fresh database, a running server."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e._support import ServerProcess, service_db
from tests.store.conftest import BACKENDS, pg_admin  # noqa: F401  (fixture used by new_engine)


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def db_url(backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    yield from service_db(backend, request, tmp_path)


@pytest.fixture
def server(db_url: str, tmp_path: Path) -> Iterator[ServerProcess]:
    """``activelabel serve`` with one worker on ``db_url``; always killed at teardown."""
    proc = ServerProcess(tmp_path / "data", db_url)
    proc.data_dir.mkdir()
    try:
        yield proc.start()
    finally:
        proc.stop()
