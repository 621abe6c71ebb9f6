"""Fixtures of the REST API tests: a TestClient over a fresh app on SQLite and on PostgreSQL.

``api`` is an :class:`Api` over an app whose storage (a SQLite file, or a new PostgreSQL
schema dropped afterwards) is shared by one test module on one backend: tests make their own
users and projects (unique names), so they do not see each other. Users are made directly in
the store without a password (argon2 is slow on purpose) and get an API token.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from activelabel.http.app import create_app
from activelabel.store import DataLocation, Storage, add_member, create_token, create_user
from activelabel.store.db import default_url
from tests.store.conftest import BACKENDS, _drop_schema, _pg_schema_engine, pg_admin

__all__ = ["Api", "Person", "api", "api_backend", "api_storage", "pg_admin", "unique"]

PREFIX = "/api/v1"


def unique(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:8]}"


@pytest.fixture(scope="module", params=BACKENDS)
def api_backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def _open(folder: Path, url: str) -> Storage:
    return Storage(DataLocation(data_dir=folder, db_url=url))


@pytest.fixture(scope="module")
def api_storage(api_backend: str, request: pytest.FixtureRequest,
                tmp_path_factory: pytest.TempPathFactory) -> Iterator[Storage]:
    """A migrated storage on the backend, in its own data folder."""
    folder = tmp_path_factory.mktemp("api")
    if api_backend == "sqlite":
        storage = _open(folder, default_url(folder))
        yield storage
        storage.close()
        return
    admin: Engine = request.getfixturevalue("pg_admin")
    engine, schema = _pg_schema_engine(admin)
    url = engine.url.render_as_string(hide_password=False)
    engine.dispose()
    try:
        storage = _open(folder, url)
        yield storage
        storage.close()
    finally:
        _drop_schema(admin, schema)


@dataclass
class Person:
    """A user made for a test, with an API token."""

    id: int
    username: str
    token: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


class Api:
    """Requests as a given person, plus shortcuts to make users and projects."""

    def __init__(self, client: TestClient, storage: Storage) -> None:
        self.client = client
        self.storage = storage

    def person(self, prefix: str = "u", *, admin: bool = False) -> Person:
        with self.storage.sessions() as session, session.begin():
            user = create_user(session, unique(prefix), is_admin=admin)
            _, token = create_token(session, user.id, "test")
            return Person(user.id, user.username, token)

    def request(self, method: str, path: str, who: Person | None = None,
                **kwargs: Any) -> httpx.Response:
        headers = dict(kwargs.pop("headers", {}))
        if who is not None:
            headers.update(who.headers)
        return self.client.request(method, PREFIX + path, headers=headers, **kwargs)

    def get(self, path: str, who: Person | None = None, **kw: Any) -> httpx.Response:
        return self.request("GET", path, who, **kw)

    def post(self, path: str, who: Person | None = None, **kw: Any) -> httpx.Response:
        return self.request("POST", path, who, **kw)

    def patch(self, path: str, who: Person | None = None, **kw: Any) -> httpx.Response:
        return self.request("PATCH", path, who, **kw)

    def delete(self, path: str, who: Person | None = None, **kw: Any) -> httpx.Response:
        return self.request("DELETE", path, who, **kw)

    def project(self, owner: Person, *, labels: list[Any] | None = None,
                n_items: int = 0, **body: Any) -> int:
        """A project of ``owner`` (POST /projects) with ``n_items`` pool items x0..x{n-1}."""
        answer = self.post("/projects", owner, json={
            "name": unique("p"), "labels": labels or ["pos", "neg"], **body})
        assert answer.status_code == 201, answer.text
        pid = int(answer.json()["id"])
        if n_items:
            rows = [{"external_id": f"x{i}", "data": {"text": f"item {i}", "secret": f"s{i}"}}
                    for i in range(n_items)]
            added = self.post(f"/projects/{pid}/items", owner, json=rows)
            assert added.json()["inserted"] == n_items, added.text
        return pid

    def member(self, project_id: int, role: str, prefix: str | None = None) -> Person:
        """A new user with ``role`` in the project (added directly in the store)."""
        person = self.person(prefix or role)
        with self.storage.sessions() as session, session.begin():
            add_member(session, project_id, person.id, role)
        return person


@pytest.fixture(scope="module")
def api(api_storage: Storage) -> Iterator[Api]:
    app = create_app(storage=api_storage)
    with TestClient(app, raise_server_exceptions=False) as client:
        yield Api(client, api_storage)


def assert_error(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    """The response is the one error shape with this status and code; returns the error."""
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"}, body
    error = body["error"]
    assert error["code"] == code, body
    assert isinstance(error["message"], str), body
    assert len(error["message"]) > 10, body
    assert set(error) <= {"code", "message", "details"}, body
    return dict(error)
