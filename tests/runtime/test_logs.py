"""Log lines: plain text or JSON, each line of a request with the request's id, which the
answer carries too (``X-Request-Id``: the caller's when it sends a sane one)."""

from __future__ import annotations

import io
import json
import logging
import logging.config
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from activelabel.http.app import create_app
from activelabel.runtime.logs import logging_config
from activelabel.store import Storage
from tests.support.processes import ServerProcess, wait_until


def test_each_log_line_of_a_request_carries_its_id(fresh_storage: Storage) -> None:
    app = create_app(storage=fresh_storage)
    logger = logging.getLogger("activelabel.test.requests")

    @app.get("/api/v1/shout")
    def shout() -> dict[str, str]:
        logger.warning("shouting")
        return {"ok": "yes"}

    config = logging_config("json")
    logging.config.dictConfig(config)
    stream = io.StringIO()
    handler = logging.getLogger().handlers[0]
    handler.setStream(stream)  # type: ignore[attr-defined]
    try:
        with TestClient(app) as client:
            given = client.get("/api/v1/shout", headers={"X-Request-Id": "abc-123"})
            made = client.get("/api/v1/shout", headers={"X-Request-Id": "bad id with spaces"})
    finally:
        logging.getLogger().removeHandler(handler)
    assert given.headers["x-request-id"] == "abc-123"
    assert made.headers["x-request-id"] != "bad id with spaces"
    lines = [json.loads(line) for line in stream.getvalue().splitlines() if line.strip()]
    shouts = [line for line in lines if line["message"] == "shouting"]
    assert [s["request_id"] for s in shouts] == ["abc-123", made.headers["x-request-id"]]
    assert shouts[0]["level"] == "warning"
    assert shouts[0]["logger"] == "activelabel.test.requests"


@pytest.mark.slow
def test_the_server_and_its_worker_log_json_when_told(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'activelabel.db'}"
    server = ServerProcess(tmp_path, db, env={"ACTIVELABEL_LOG_FORMAT": "json"}).start()
    try:
        def worker_said() -> list[dict[str, object]] | None:
            lines = [json.loads(line) for line in server.log.read_text().splitlines()
                     if line.startswith("{")]
            return lines if any(str(line["message"]).startswith("worker ")
                                for line in lines) else None

        lines = wait_until(worker_said, 30, what="the worker's first JSON log line")
        assert all({"time", "level", "logger", "message", "request_id"} <= set(line)
                   for line in lines)
    finally:
        server.stop()
