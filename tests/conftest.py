"""Fixtures that more than one test folder uses; each folder's conftest.py adds its own.

Databases: ``backend`` runs a test on SQLite (a real file) and on the PostgreSQL server, one
database per test module; the store tests keep one per session and the end-to-end and CLI
tests a new one per test (their conftest or module overrides ``backend`` with that scope).
PostgreSQL unreachable: skipped with the reason, or failed when CI=true. Plain helpers are
in :mod:`tests.support`. Every test of tests/e2e and tests/web is marked ``slow``.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sqlalchemy import Engine

from activelabel.store import Storage, create_engine_for
from tests.support.databases import BACKENDS, PG_URL, new_database_url, new_storage, pg_error

REPO = Path(__file__).resolve().parents[1]
#: Folders whose every test runs real server processes or Chromium: all marked slow.
SLOW_FOLDERS = {"e2e", "web"}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    tests = Path(__file__).parent
    for item in items:
        folder = item.path.relative_to(tests).parts[0] if item.path.is_relative_to(tests) else ""
        if folder in SLOW_FOLDERS:
            item.add_marker(pytest.mark.slow)


def _shared_data_dir() -> Path | None:
    """The real text datasets: ACTIVELABEL_SHARED_DATA, else ``shared/data`` beside the repository."""
    candidates = [os.environ.get("ACTIVELABEL_SHARED_DATA"), REPO.parent / "shared" / "data",
                  Path("/work/shared/data")]  # fmt: skip
    for candidate in candidates:
        if candidate and (Path(candidate) / "sms_spam.jsonl").exists():
            return Path(candidate)
    return None


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """Folder holding sms_spam.jsonl and ag_news_test.jsonl; missing data fails in CI."""
    found = _shared_data_dir()
    if found is None:
        message = "shared datasets not found: set ACTIVELABEL_SHARED_DATA to the folder with sms_spam.jsonl"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return found


@pytest.fixture(scope="session")
def pg_admin() -> Iterator[Engine]:
    """An engine on the PostgreSQL server's test database, to make and drop schemas."""
    error = pg_error()
    if error is not None:
        message = f"PostgreSQL at {PG_URL} is unreachable ({error}); set ACTIVELABEL_TEST_PG"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    engine = create_engine_for(PG_URL)
    yield engine
    engine.dispose()


@pytest.fixture(scope="module", params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(scope="module")
def engine_storage(backend: str, request: pytest.FixtureRequest,
                   tmp_path_factory: pytest.TempPathFactory) -> Iterator[Storage]:
    """A migrated Storage on ``backend`` shared by a test module: tests make their own projects."""
    yield from new_storage(backend, request, tmp_path_factory.mktemp("engine"))


@pytest.fixture
def fresh_storage(backend: str, request: pytest.FixtureRequest,
                  tmp_path: Path) -> Iterator[Storage]:
    """A new Storage for one test, for tests that look at every job of the database."""
    yield from new_storage(backend, request, tmp_path)


@pytest.fixture
def db_url(backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """URL of a new, migrated database of ``backend`` for a process (server, command line)."""
    yield from new_database_url(backend, request, tmp_path)


@pytest.fixture(scope="session", autouse=True)
def sentence_vectors_once() -> Iterator[None]:
    """Each text's sentence vector is computed once per test process: the bundled model
    (numpy) runs on the texts it has not seen, and a text seen before gets the vector it
    gave then (many tests featurize the same shared texts; the model reads 20-40 a second).
    The encoder's batching is tested in test_minilm.py on its own instances; its packaged
    model's vectors there are the model's still (computed once)."""
    from activelabel import features

    seen: dict[str, Any] = {}
    real = features._NumpyMiniLM.encode

    def encode(self: Any, texts: list[str], batch_size: int = 32, **kw: Any) -> Any:
        new = [t for t in dict.fromkeys(texts) if t not in seen]
        if new:
            seen.update(zip(new, real(self, new, batch_size=batch_size, **kw), strict=True))
        return np.stack([seen[t] for t in texts]) if texts else real(self, texts, **kw)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(features._NumpyMiniLM, "encode", encode)
        yield


@pytest.fixture
def sentence_calls(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """How many texts each call of the sentence model is given (the model still runs)."""
    from activelabel import features

    calls: list[int] = []
    real = features.sentence_vectors

    def counted(texts: list[str]) -> Any:
        calls.append(len(texts))
        return real(texts)

    monkeypatch.setattr(features, "sentence_vectors", counted)
    return calls
