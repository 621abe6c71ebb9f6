"""Requests to the REST API in process (a TestClient), as users made for a test."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

import httpx
from fastapi.testclient import TestClient

from activelabel.store import Storage, add_member, create_token, create_user

__all__ = ["PREFIX", "Api", "Person", "assert_error", "unique"]

PREFIX = "/api/v1"


def unique(prefix: str) -> str:
    """A name no other test uses: ``prefix`` and 8 random hex digits."""
    return f"{prefix}_{uuid.uuid4().hex[:8]}"


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
        """A project of ``owner`` (POST /projects) with ``n_items`` pool items x0..x{n-1}.

        Its annotators may label any item (``free_labeling``), as most tests label chosen
        items directly; pass ``settings={"free_labeling": False, ...}`` to test the queue's
        hold on what annotators label. Audit draws are off (``audit_share`` 0) so that the
        queue's order is the ranking's; pass ``audit_share`` to test them."""
        settings = {"free_labeling": True, "audit_share": 0.0, **body.pop("settings", {})}
        answer = self.post("/projects", owner, json={
            "name": unique("p"), "labels": labels or ["pos", "neg"], "settings": settings,
            **body})
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
