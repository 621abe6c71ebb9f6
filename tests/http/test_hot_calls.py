"""The two hot calls answered outside the router (``http.hot``): the ordinary case there,
the rest by the FastAPI routes, with the same answers either way."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import event

from activelabel.http import hot
from tests.support.api import Api, assert_error


@pytest.fixture
def hot_calls(monkeypatch: pytest.MonkeyPatch) -> dict[str, int]:
    """How many calls the middleware answered itself, by kind."""
    counts = {"next": 0, "annotate": 0}

    def counted(kind: str, answer: Callable[..., Any]) -> Callable[..., Any]:
        async def wrapper(*args: Any) -> Any:
            counts[kind] += 1
            return await answer(*args)
        return wrapper

    monkeypatch.setattr(hot, "answer_next", counted("next", hot.answer_next))
    monkeypatch.setattr(hot, "answer_annotation", counted("annotate", hot.answer_annotation))
    return counts


def _without_expiry(tasks: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{k: v for k, v in t.items() if k != "lease_expires_at"} for t in tasks]


def test_next_ordinary_calls_are_hot_and_answer_as_the_route(api: Api,
                                                             hot_calls: dict[str, int]) -> None:
    owner = api.person("owner")
    pid = api.project(owner, n_items=5)
    ann = api.member(pid, "annotator")
    fast = api.get(f"/projects/{pid}/tasks/next", ann, params={"n": 2})
    assert fast.status_code == 200, fast.text
    assert hot_calls["next"] == 1
    assert fast.headers["content-type"] == "application/json"
    assert fast.headers["server-timing"].startswith("app;dur=")
    # Another parameter beside n: the route answers, and renews the same two leases.
    routed = api.get(f"/projects/{pid}/tasks/next", ann, params={"n": 2, "other": "x"})
    assert routed.status_code == 200, routed.text
    assert hot_calls["next"] == 1
    assert _without_expiry(routed.json()) == _without_expiry(fast.json())
    # Without n: ten at most, as the route's default.
    assert len(api.get(f"/projects/{pid}/tasks/next", ann).json()) == 5
    assert hot_calls["next"] == 2
    # What the route validates stays the route's: 422 with the field, 401 without a token.
    for bad in ("0", "101", "many", "-1", "1.5", "0010x"):
        error = assert_error(api.get(f"/projects/{pid}/tasks/next", ann, params={"n": bad}),
                             422, "invalid_input")
        assert error["details"][0]["field"] == "query.n"
    assert_error(api.get(f"/projects/{pid}/tasks/next"), 401, "unauthorized")
    assert_error(api.get(f"/projects/{pid}/tasks/next",
                         headers={"Authorization": f"Basic {ann.token}"}), 401, "unauthorized")
    assert_error(api.get("/projects/abc/tasks/next", ann), 422, "invalid_input")
    assert hot_calls["next"] == 2
    # Errors of the work itself, in the hot path: the app's handlers answer them.
    refused = api.get(f"/projects/{pid}/tasks/next",
                      headers={"Authorization": "Bearer not-a-token"})
    assert_error(refused, 401, "unauthorized")
    assert refused.headers["www-authenticate"] == "Bearer"
    assert_error(api.get(f"/projects/{pid}/tasks/next", api.person("out")), 404, "not_found")
    assert_error(api.get("/projects/999999999/tasks/next", ann), 404, "not_found")
    assert hot_calls["next"] == 5


def test_annotation_ordinary_calls_are_hot_and_the_rest_routed(api: Api,
                                                               hot_calls: dict[str, int]) -> None:
    owner = api.person("owner")
    pid = api.project(owner, n_items=4, settings={"free_labeling": False})
    ann = api.member(pid, "annotator")
    item = api.get(f"/projects/{pid}/tasks/next", ann, params={"n": 1}).json()[0]["item"]["id"]
    body = {"item_id": item, "labels": ["pos"], "client_key": "k1", "duration_ms": 1200}
    first = api.post(f"/projects/{pid}/annotations", ann, json=body)
    assert first.status_code == 201, first.text
    assert hot_calls["annotate"] == 1
    # The retry with the same key gets the same revision (through the hot path too).
    again = api.post(f"/projects/{pid}/annotations", ann, json=body)
    assert again.status_code == 201
    assert again.json() == first.json()
    assert hot_calls["annotate"] == 2
    # Refused input: the route answers, field by field.
    for bad, field in (({**body, "extra": 1}, "body.extra"), ({**body, "item_id": 0}, "body.item_id"),
                       ({"labels": ["pos"]}, "body.item_id")):
        error = assert_error(api.post(f"/projects/{pid}/annotations", ann, json=bad),
                             422, "invalid_input")
        assert error["details"][0]["field"] == field
    error = assert_error(api.post(f"/projects/{pid}/annotations", ann, content=b"{not json",
                                  headers={"Content-Type": "application/json"}),
                         422, "invalid_input")
    # A bad token gets 401 before anything is said about the input, in either path.
    for who in ({"Authorization": "Bearer not-a-token"}, {}):
        assert_error(api.post(f"/projects/{pid}/annotations", json={"item_id": "x"},
                              headers=who), 401, "unauthorized")
    assert hot_calls["annotate"] == 2
    # Refusals of the work in the hot path: an item not handed out (403), an unknown one
    # (404), a bad token (401), an outsider (404).
    other = api.member(pid, "annotator")
    assert_error(api.post(f"/projects/{pid}/annotations", other, json={**body, "client_key": "k2"}),
                 403, "forbidden")
    assert_error(api.post(f"/projects/{pid}/annotations", ann,
                          json={"item_id": 999_999_999, "labels": ["pos"]}), 404, "not_found")
    assert_error(api.post(f"/projects/{pid}/annotations", json=body,
                          headers={"Authorization": "Bearer not-a-token"}), 401, "unauthorized")
    assert_error(api.post(f"/projects/{pid}/annotations", api.person("out"), json=body),
                 404, "not_found")
    assert hot_calls["annotate"] == 6
    # A label the schema cannot express (unknown class): 400 from the work, as before.
    assert_error(api.post(f"/projects/{pid}/annotations", ann,
                          json={**body, "labels": ["nope"], "client_key": "k3"}),
                 400, "invalid_input")
    # Another content type goes to the route, which answers as it always did.
    routed = api.post(f"/projects/{pid}/annotations", ann, content=b'{"item_id": 1}',
                      headers={"Content-Type": "text/plain"})
    assert routed.status_code == 422
    assert hot_calls["annotate"] == 7


def test_a_lease_commits_without_waiting_for_the_disk_and_a_label_waits(api: Api) -> None:
    """``tasks/next`` (hot or routed) commits its lease with ``synchronous_commit = off`` on
    PostgreSQL: a lease lost in a database crash is harmless. A label's commit waits for the
    disk as ever. SQLite: neither statement exists there."""
    owner = api.person("owner")
    pid = api.project(owner, n_items=4, settings={"free_labeling": False})
    ann = api.member(pid, "annotator")
    seen: list[str] = []

    def spy(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        seen.append(statement)

    engine = api.storage.engine
    event.listen(engine, "before_cursor_execute", spy)
    try:
        fast = api.get(f"/projects/{pid}/tasks/next", ann, params={"n": 1})
        leases = [s for s in seen if "synchronous_commit" in s]
        seen.clear()
        routed = api.get(f"/projects/{pid}/tasks/next", ann, params={"n": 1, "x": "1"})
        routed_leases = [s for s in seen if "synchronous_commit" in s]
        seen.clear()
        item = fast.json()[0]["item"]["id"]
        label = api.post(f"/projects/{pid}/annotations", ann,
                         json={"item_id": item, "labels": ["pos"]})
    finally:
        event.remove(engine, "before_cursor_execute", spy)
    assert fast.status_code == routed.status_code == 200
    assert label.status_code == 201, label.text
    postgres = engine.dialect.name == "postgresql"
    assert leases == routed_leases == (["SET LOCAL synchronous_commit = off"] if postgres else [])
    assert not [s for s in seen if "synchronous_commit" in s]
    assert any("INSERT INTO annotations" in s for s in seen), seen
