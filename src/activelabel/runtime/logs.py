"""The server's logs: plain text by default, or one JSON object a line
(``ACTIVELABEL_LOG_FORMAT=json``) for log collectors; every line a request wrote carries its
request id (the ``X-Request-Id`` it came with, or a new one, sent back in the answer)."""

from __future__ import annotations

import json
import logging
from datetime import datetime, timezone
from typing import Any

from ..http.middleware import current_request_id

__all__ = ["JsonFormatter", "RequestIdFilter", "logging_config"]


class RequestIdFilter(logging.Filter):
    """Puts the current request's id on every record (``-`` outside requests)."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = current_request_id() or "-"
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object a line: time (UTC, ISO), level, logger, message, request id, and the
    exception when there is one."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, timezone.utc).isoformat(),
            "level": record.levelname.lower(), "logger": record.name,
            "message": record.getMessage(),
            "request_id": getattr(record, "request_id", "-")}
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)


def logging_config(log_format: str, level: str = "info") -> dict[str, Any]:
    """A ``logging.config.dictConfig`` for the API processes (uvicorn applies it in each)."""
    text = {"()": "logging.Formatter",
            "fmt": "%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s"}
    formatter = {"()": "activelabel.runtime.logs.JsonFormatter"} if log_format == "json" else text
    handler = {"class": "logging.StreamHandler", "stream": "ext://sys.stderr",
               "formatter": "main", "filters": ["request_id"]}
    return {
        "version": 1, "disable_existing_loggers": False,
        "filters": {"request_id": {"()": "activelabel.runtime.logs.RequestIdFilter"}},
        "formatters": {"main": formatter},
        "handlers": {"main": handler},
        "root": {"handlers": ["main"], "level": level.upper()},
        "loggers": {name: {"handlers": ["main"], "level": level.upper(), "propagate": False}
                    for name in ("uvicorn", "uvicorn.error", "uvicorn.access")},
    }
