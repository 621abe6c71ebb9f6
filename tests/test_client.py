"""The Python client against a fake server (httpx.MockTransport): errors, retries, streaming."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from activelabel.client import ApiError, Client, JobFailed

BASE = "http://labels.test"


def error(status: int, code: str, message: str, details: Any = None) -> httpx.Response:
    return httpx.Response(status, json={"error": {"code": code, "message": message,
                                                  "details": details}})


class FakeServer:
    """Stores one annotation per (token, client_key), like the real API; can drop replies."""

    def __init__(self) -> None:
        self.annotations: dict[str, dict[str, Any]] = {}
        self.requests: list[httpx.Request] = []
        self.lose_replies = 0  # the next N annotation requests are stored, then the reply is lost
        self.refuse = 0  # the next N requests of any kind fail before reaching the server

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if self.refuse:
            self.refuse -= 1
            raise httpx.ConnectError("connection refused", request=request)
        if request.headers.get("authorization") != "Bearer tok":
            return error(401, "unauthorized", "missing or invalid token: pass a Bearer token")
        if request.url.path.endswith("/annotations"):
            body = json.loads(request.content)
            stored = self.annotations.setdefault(body["client_key"],
                                                 {"id": len(self.annotations) + 1, **body})
            if self.lose_replies:
                self.lose_replies -= 1
                raise httpx.ReadError("connection reset", request=request)
            return httpx.Response(201, json=stored)
        if request.url.path.endswith("/projects") and request.method == "POST":
            raise httpx.ReadTimeout("timed out", request=request)
        return httpx.Response(200, json={"path": request.url.path})


@pytest.fixture
def server() -> FakeServer:
    return FakeServer()


@pytest.fixture
def client(server: FakeServer) -> Client:
    return Client(BASE, "tok", transport=httpx.MockTransport(server), retries=3)


def test_error_shape_becomes_api_error() -> None:
    details = [{"field": "labels", "problem": "empty"}]
    handler = httpx.MockTransport(lambda r: error(422, "invalid_input", "labels is empty",
                                                  details))
    with pytest.raises(ApiError) as caught:
        Client(BASE, "tok", transport=handler).create_project("p", [])
    assert (caught.value.status, caught.value.code) == (422, "invalid_input")
    assert caught.value.message == "labels is empty"
    assert caught.value.details == details
    assert "422 invalid_input: labels is empty" in str(caught.value)


def test_error_without_the_shape_keeps_status_and_text() -> None:
    handler = httpx.MockTransport(lambda r: httpx.Response(502, text="Bad Gateway from proxy"))
    with pytest.raises(ApiError) as caught:
        Client(BASE, transport=handler).health()
    assert (caught.value.status, caught.value.code) == (502, "http_502")
    assert caught.value.message == "Bad Gateway from proxy"


def test_token_is_sent_and_missing_token_is_401(server: FakeServer) -> None:
    anonymous = Client(BASE, transport=httpx.MockTransport(server))
    with pytest.raises(ApiError) as caught:
        anonymous.rounds(1)
    assert caught.value.code == "unauthorized"
    assert "authorization" not in server.requests[-1].headers


def test_login_keeps_the_token() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/api/v1/auth/login":
            assert json.loads(request.content) == {"username": "ann", "password": "pw123456"}
            return httpx.Response(200, json={"token": "al_new"})
        return httpx.Response(200, json={"auth": request.headers.get("authorization")})

    c = Client(BASE, transport=httpx.MockTransport(handler))
    assert c.login("ann", "pw123456") == "al_new"
    assert c.projects() == {"auth": "Bearer al_new"}


def test_paths_follow_the_api(client: Client) -> None:
    assert client.next_tasks(3, n=5) == {"path": "/api/v1/projects/3/tasks/next"}
    assert client.round(3, 7)["path"] == "/api/v1/projects/3/rounds/7"
    assert client.item(3, 9)["path"] == "/api/v1/projects/3/items/9"
    assert client.models(3)["path"] == "/api/v1/projects/3/models"
    assert client.activate_model(3, 2)["path"] == "/api/v1/projects/3/models/2/activate"
    assert client.release(3, 9)["path"] == "/api/v1/projects/3/tasks/9/release"
    assert client.health()["path"] == "/api/v1/health"


def test_annotate_retry_after_lost_reply_stores_one_annotation(
        client: Client, server: FakeServer) -> None:
    server.lose_replies = 2  # stored twice over, but the reply never arrives
    answer = client.annotate(1, 42, "spam", duration_ms=900)
    sent = [json.loads(r.content) for r in server.requests]
    assert len(sent) == 3
    assert len({body["client_key"] for body in sent}) == 1
    assert len(server.annotations) == 1
    assert answer["labels"] == ["spam"]
    assert answer["duration_ms"] == 900


def test_annotate_keeps_a_given_client_key_and_new_keys_differ(
        client: Client, server: FakeServer) -> None:
    client.annotate(1, 1, ["ham"], client_key="k-1")
    client.annotate(1, 1, ["ham"], client_key="k-1")
    client.annotate(1, 2, ["ham"])
    client.annotate(1, 3, ["ham"])
    assert len(server.annotations) == 3
    assert "k-1" in server.annotations


def test_annotate_gives_up_after_the_retries(client: Client, server: FakeServer) -> None:
    server.lose_replies = 10
    with pytest.raises(httpx.ReadError):
        client.annotate(1, 1, ["ham"])
    assert len(server.requests) == 4  # the first try and three retries
    assert len(server.annotations) == 1


def test_other_writes_retry_only_when_never_sent(client: Client, server: FakeServer) -> None:
    with pytest.raises(httpx.ReadTimeout):
        client.create_project("p", ["a", "b"])  # may have been applied: not repeated
    assert len(server.requests) == 1
    server.refuse = 2  # refused connections never reached the server: safe to repeat
    assert client.start_round(5) == {"path": "/api/v1/projects/5/rounds"}
    assert len(server.requests) == 4


def test_wait_for_round_polls_until_done_and_raises_on_failure() -> None:
    states = iter(["queued", "running", "done"])

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"id": 4, "status": next(states)})

    c = Client(BASE, "tok", transport=httpx.MockTransport(handler))
    assert c.wait_for_round(1, {"round_id": 4}, poll=0)["status"] == "done"
    failing = Client(BASE, "tok", transport=httpx.MockTransport(
        lambda r: httpx.Response(200, json={"id": 4, "status": "failed", "error": "boom"})))
    with pytest.raises(JobFailed, match="round 4 failed: boom"):
        failing.wait_for_round(1, 4, poll=0)
    stuck = Client(BASE, "tok", transport=httpx.MockTransport(
        lambda r: httpx.Response(200, json={"id": 9, "status": "running"})))
    with pytest.raises(TimeoutError, match="job 9 still running"):
        stuck.wait_for_job(1, {"job_id": 9}, timeout=0, poll=0)


def test_export_streams_to_the_file_or_writes_nothing(tmp_path: Path) -> None:
    pattern = ("String should match pattern "
               "'^(jsonl|csv|parquet|labelstudio|huggingface|spacy|conll|spans_jsonl)$'")
    rows = b"".join(json.dumps({"external_id": f"x{i}"}).encode() + b"\n" for i in range(1000))

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.params["format"] == "xml":  # the API's answer: the query's pattern
            return error(422, "invalid_input", f"invalid request: query.format: {pattern}. Fix "
                         "the listed fields; the schema of every endpoint is at /docs",
                         [{"field": "query.format", "loc": ["query", "format"],
                           "message": pattern, "type": "string_pattern_mismatch"}])
        return httpx.Response(200, content=iter([rows[:5000], rows[5000:]]))

    c = Client(BASE, "tok", transport=httpx.MockTransport(handler))
    out = c.export(1, tmp_path / "labels.jsonl")
    assert out.read_bytes() == rows
    with pytest.raises(ApiError, match=r"query\.format") as refused:
        c.export(1, tmp_path / "labels.xml", format="xml")
    assert (refused.value.status, refused.value.code) == (422, "invalid_input")
    assert refused.value.details[0]["field"] == "query.format"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["labels.jsonl"]


def test_upload_sends_a_multipart_file(tmp_path: Path) -> None:
    seen: dict[str, Any] = {}

    def handler(request: httpx.Request) -> httpx.Response:
        seen["type"] = request.headers["content-type"]
        seen["body"] = request.read()
        return httpx.Response(202, json={"job_id": 11, "status": "queued"})

    path = tmp_path / "rows.jsonl"
    path.write_text('{"external_id": "a", "data": {"text": "hi"}}\n')
    c = Client(BASE, "tok", transport=httpx.MockTransport(handler))
    assert c.upload(2, path, split="holdout") == {"job_id": 11, "status": "queued"}
    assert seen["type"].startswith("multipart/form-data")
    assert b'filename="rows.jsonl"' in seen["body"]
    assert b"holdout" in seen["body"]
