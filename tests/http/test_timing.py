"""``Server-Timing``: every answer says how long the application took to start it."""

from __future__ import annotations

import asyncio
import re
import time
from typing import Any

import httpx
from fastapi.testclient import TestClient
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from activelabel.http.middleware import ServerTiming
from tests.support.api import Api

TIMING = re.compile(r"^app;dur=(\d+\.\d)$")


def app_ms(response: httpx.Response) -> float:
    match = TIMING.match(response.headers.get("server-timing", ""))
    assert match, f"no app;dur in {dict(response.headers)}"
    return float(match.group(1))


def test_every_api_answer_carries_the_apps_time(api: Api) -> None:
    owner = api.person("owner")
    answers = [api.get("/health"), api.get("/projects", owner), api.get("/projects"),
               api.get("/projects/999999", owner), api.client.get("/")]
    assert [a.status_code for a in answers][:4] == [200, 200, 401, 404]
    assert all(app_ms(a) >= 0 for a in answers)


def test_the_duration_covers_the_work_before_the_response_starts() -> None:
    def slow(request: Any) -> PlainTextResponse:
        time.sleep(0.05)
        return PlainTextResponse("done", headers={"x-kept": "yes"})

    app = ServerTiming(Starlette(routes=[Route("/slow", slow)]))
    with TestClient(app) as client:  # type: ignore[arg-type]
        answer = client.get("/slow")
    assert answer.text == "done"
    assert answer.headers["x-kept"] == "yes"  # the app's own headers are kept
    assert 50 <= app_ms(answer) < 5000


def test_other_scopes_pass_through_untouched() -> None:
    """Lifespan (and websocket) messages reach the app and the server as they were."""
    received: list[dict[str, Any]] = []
    sent: list[dict[str, Any]] = []
    startup = {"type": "lifespan.startup"}
    complete = {"type": "lifespan.startup.complete"}

    async def inner(scope: dict[str, Any], receive: Any, send: Any) -> None:
        received.append(await receive())
        await send(complete)

    async def receive() -> dict[str, Any]:
        return startup

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    for kind in ("lifespan", "websocket"):
        asyncio.run(ServerTiming(inner)({"type": kind}, receive, send))
    assert received == [startup, startup]
    assert sent == [complete, complete]
    assert all(m is complete for m in sent)  # the very message, no header added
