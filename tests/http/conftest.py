"""Fixtures of the REST API tests: a TestClient over a fresh app on SQLite and on PostgreSQL.

``api`` is an :class:`~tests.support.api.Api` over an app whose storage (a SQLite file, or a new
PostgreSQL schema dropped afterwards) is shared by one test module on one backend: tests make
their own users and projects (unique names), so they do not see each other. Users are made
directly in the store without a password (argon2 is slow on purpose) and get an API token.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from activelabel.http.app import create_app
from activelabel.http.config import ServerSettings
from activelabel.store import Storage
from tests.support.api import Api
from tests.support.databases import new_storage

EVERYONE_CREATES = ServerSettings(project_creators="everyone")


@pytest.fixture(scope="module")
def api_storage(backend: str, request: pytest.FixtureRequest,
                tmp_path_factory: pytest.TempPathFactory) -> Iterator[Storage]:
    """A migrated storage on the backend, in its own data folder."""
    yield from new_storage(backend, request, tmp_path_factory.mktemp("api"))


@pytest.fixture(scope="module")
def api(api_storage: Storage) -> Iterator[Api]:
    # The owners these tests make are plain users: let them create projects (the default,
    # admins only, is checked on its own in test_api_security.py).
    app = create_app(storage=api_storage, settings=EVERYONE_CREATES)
    with TestClient(app, raise_server_exceptions=False) as client:
        yield Api(client, api_storage)
