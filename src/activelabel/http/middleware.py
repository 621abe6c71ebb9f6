"""``Server-Timing`` on every answer: how long the application took to start answering.

A pure ASGI middleware (no per-request objects beyond a closure): the time from the request
reaching the application to the start of its response, as ``Server-Timing: app;dur=<ms>``.
Browsers show it beside the request in their developer tools; the load benchmark reads it to
tell the server's own time from the time a request spent queued or in the client.
"""

from __future__ import annotations

import time

from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["ServerTiming"]


class ServerTiming:
    """Adds ``server-timing: app;dur=<milliseconds>`` to every HTTP response."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        began = time.perf_counter()

        async def timed_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                dur = (time.perf_counter() - began) * 1000
                message["headers"] = [*message.get("headers", ()),
                                      (b"server-timing", f"app;dur={dur:.1f}".encode())]
            await send(message)

        await self.app(scope, receive, timed_send)
