"""A model served elsewhere over HTTP (project setting ``model: http``): the worker's client.

The protocol (docs/models.md) is two JSON calls on the project's ``model_url``:

- ``POST <url>/train`` ``{"protocol": 1, "project": {...}, "items": [{"id", "external_id",
  "data", "label" | "labels"}]}`` answers ``{"model_id": "..."}`` (optional: a name for the
  trained model that ``/predict`` is then given);
- ``POST <url>/predict`` ``{"protocol": 1, "project": {...}, "model_id", "items": [{"id",
  "external_id", "data"}]}`` answers ``{"predictions": [{"id", "probabilities": {label: p},
  "embedding"?: [float, ...]}]}``, one per item.

Every call has a timeout, is retried with back-off on connection errors, timeouts, 429 and 5xx
answers, and reads at most :data:`MAX_RESPONSE_BYTES`; a call that still fails, or an answer
that breaks the protocol, raises :class:`RemoteModelError` naming the URL and what went wrong.
The calls run in the worker's round, never in a request, so a slow or dead model server fails
the round and never blocks annotators.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx
import numpy as np
from numpy.typing import NDArray
from sqlalchemy import select

from ..store import ActivelabelError, Storage, iter_items
from ..store.models import Item

__all__ = [
    "ATTEMPTS",
    "MAX_RESPONSE_BYTES",
    "PREDICT_BATCH",
    "PROTOCOL_VERSION",
    "RemoteModel",
    "RemoteModelError",
    "item_pages",
    "training_items",
]

#: Version of the JSON protocol, sent with every call.
PROTOCOL_VERSION = 1
#: Tries of each call (the first and its retries).
ATTEMPTS = 3
#: Wait before the first retry; doubled before each further one.
BACKOFF_SECONDS = 0.5
#: The largest answer read from the model server; a larger one fails the round.
MAX_RESPONSE_BYTES = 64 << 20
#: Items sent per ``/predict`` call.
PREDICT_BATCH = 1000
#: Tolerance of a single-label answer's probabilities summing to 1 (they are then rescaled).
SUM_TOLERANCE = 0.01
#: HTTP statuses worth a retry: the server is busy or briefly broken.
_RETRY_STATUSES = {408, 425, 429, 500, 502, 503, 504}


class RemoteModelError(ActivelabelError):
    """The model server could not be reached, or its answer breaks the protocol."""

    code = "remote_model"


class _Retry(Exception):
    """A failed try worth another one."""


@dataclass(frozen=True)
class RemoteModel:
    """The client of one model server. ``auth_header`` is the Authorization header's value (a
    secret: left out of ``repr``)."""

    url: str
    timeout_seconds: float = 30.0
    auth_header: str | None = field(default=None, repr=False)
    attempts: int = ATTEMPTS
    backoff_seconds: float = BACKOFF_SECONDS
    max_response_bytes: int = MAX_RESPONSE_BYTES

    @classmethod
    def from_settings(cls, settings: Mapping[str, Any]) -> RemoteModel:
        """The client a project's settings describe (``model_url``, ``model_timeout_seconds``,
        ``model_auth_header``; every setting, as ``settings_of(...).model_dump()`` gives them)."""
        url = settings.get("model_url")
        if not url:
            raise RemoteModelError("the project's model is http but model_url is empty: set "
                                   "model_url to the model server's base URL")
        return cls(url=str(url), timeout_seconds=float(settings["model_timeout_seconds"]),
                   auth_header=settings.get("model_auth_header"),
                   max_response_bytes=MAX_RESPONSE_BYTES)

    # ---- the two calls ---------------------------------------------------------------

    def train(self, project: Mapping[str, Any], items: Sequence[Mapping[str, Any]]) -> str | None:
        """Send the labeled items to ``/train``; the model id the server answers, if any."""
        answer = self._post("train", {"protocol": PROTOCOL_VERSION, "project": dict(project),
                                      "items": list(items)})
        model_id = answer.get("model_id") if isinstance(answer, dict) else None
        if not isinstance(answer, dict) or not isinstance(model_id, str | int | type(None)):
            raise self._error("train", "the answer must be a JSON object, with model_id a "
                              "string when given")
        return None if model_id is None else str(model_id)

    def predict(self, project: Mapping[str, Any], model_id: str | None,
                items: Sequence[Mapping[str, Any]], classes: Sequence[Any], *,
                multilabel: bool = False) -> tuple[NDArray[np.float32], NDArray[np.float32] | None]:
        """(probabilities (n, n_classes) in ``classes`` order, embeddings (n, d) or None) of
        ``items`` from ``/predict``."""
        answer = self._post("predict", {"protocol": PROTOCOL_VERSION, "project": dict(project),
                                        "model_id": model_id, "items": list(items)})
        return self._read_predictions(answer, [it["id"] for it in items], classes, multilabel)

    # ---- reading answers -------------------------------------------------------------

    def _read_predictions(self, answer: Any, ids: list[Any], classes: Sequence[Any],
                          multilabel: bool
                          ) -> tuple[NDArray[np.float32], NDArray[np.float32] | None]:
        preds = answer.get("predictions") if isinstance(answer, dict) else None
        if not isinstance(preds, list):
            raise self._error("predict", 'the answer must be {"predictions": [...]}')
        by_id: dict[Any, Mapping[str, Any]] = {}
        for i, pred in enumerate(preds):
            if not isinstance(pred, dict) or "id" not in pred:
                raise self._error("predict", f"prediction {i} is not an object with an id")
            by_id[pred["id"]] = pred
        missing = [x for x in ids if x not in by_id]
        if missing or len(preds) != len(ids):
            raise self._error("predict", f"asked for {len(ids)} items, got {len(preds)} "
                              f"predictions; missing ids: {missing[:5]}")
        index = {str(c): j for j, c in enumerate(classes)}
        probs = np.zeros((len(ids), len(classes)), dtype=np.float64)
        vectors: list[Any] = []
        for row, item_id in enumerate(ids):
            pred = by_id[item_id]
            probs[row] = self._probabilities(pred.get("probabilities"), item_id, index)
            vectors.append(pred.get("embedding"))
        if not multilabel:
            probs = self._normalised(probs, ids)
        return probs.astype(np.float32), self._embeddings(vectors, ids)

    def _probabilities(self, given: Any, item_id: Any, index: Mapping[str, int]
                       ) -> NDArray[np.float64]:
        if not isinstance(given, dict):
            raise self._error("predict", f"item {item_id}: probabilities must be an object "
                              "{label: probability}")
        unknown = sorted(str(k) for k in given if str(k) not in index)
        if unknown:
            raise self._error("predict", f"item {item_id}: labels {unknown[:5]} are not the "
                              f"project's ({', '.join(index)})")
        out = np.zeros(len(index), dtype=np.float64)
        for label, p in given.items():
            if isinstance(p, bool) or not isinstance(p, int | float) or not math.isfinite(p) \
                    or not 0.0 <= p <= 1.0:
                raise self._error("predict", f"item {item_id}: the probability of {label!r} "
                                  f"is {p!r}, not a number from 0 to 1")
            out[index[str(label)]] = float(p)
        return out

    def _normalised(self, probs: NDArray[np.float64], ids: list[Any]) -> NDArray[np.float64]:
        sums = probs.sum(axis=1)
        bad = np.flatnonzero(np.abs(sums - 1.0) > SUM_TOLERANCE)
        if bad.size:
            raise self._error("predict", f"item {ids[int(bad[0])]}: probabilities sum to "
                              f"{sums[bad[0]]:.4f}, not 1 (a single-label project)")
        return probs / sums[:, None]

    def _embeddings(self, vectors: list[Any], ids: list[Any]) -> NDArray[np.float32] | None:
        given = [v is not None for v in vectors]
        if not any(given):
            return None
        if not all(given):
            raise self._error("predict", "an embedding must be given for every item or none")
        try:
            out = np.asarray(vectors, dtype=np.float64)
        except (TypeError, ValueError):
            raise self._error("predict", "embeddings must be lists of numbers of one "
                              "length") from None
        if out.ndim != 2 or out.shape[1] == 0 or not np.isfinite(out).all():
            raise self._error("predict", "embeddings must be non-empty lists of finite "
                              "numbers, all of one length")
        return out.astype(np.float32)

    # ---- the wire --------------------------------------------------------------------

    def _endpoint(self, path: str) -> str:
        return f"{self.url.rstrip('/')}/{path}"

    def _error(self, path: str, what: str) -> RemoteModelError:
        return RemoteModelError(f"model server {self._endpoint(path)}: {what}")

    def _post(self, path: str, body: Mapping[str, Any]) -> Any:
        """POST ``body`` as JSON and read the JSON answer, retrying what is worth it."""
        headers = {"content-type": "application/json", "accept": "application/json"}
        if self.auth_header:
            headers["authorization"] = self.auth_header
        content = json.dumps(body, default=str, allow_nan=False).encode()
        last = ""
        with httpx.Client(timeout=self.timeout_seconds, follow_redirects=False) as client:
            for attempt in range(max(1, self.attempts)):
                if attempt:
                    time.sleep(self.backoff_seconds * 2 ** (attempt - 1))
                try:
                    return self._try(client, path, content, headers)
                except _Retry as exc:
                    last = str(exc)
        raise self._error(path, f"{last} (tried {max(1, self.attempts)} times); start or fix "
                          "the model server, or set the project's model to a built-in one")

    def _try(self, client: httpx.Client, path: str, content: bytes,
             headers: Mapping[str, str]) -> Any:
        try:
            with client.stream("POST", self._endpoint(path), content=content,
                               headers=headers) as response:
                if response.status_code in _RETRY_STATUSES:
                    raise _Retry(f"answered HTTP {response.status_code}")
                if response.status_code != 200:
                    raise self._error(path, f"answered HTTP {response.status_code}; the "
                                      "protocol expects 200 with a JSON body")
                raw = self._read(response, path)
        except httpx.TimeoutException:
            raise _Retry(f"no answer within {self.timeout_seconds:g} s (timed out)") from None
        except httpx.TransportError as exc:
            raise _Retry(f"cannot be reached ({type(exc).__name__}: {exc})") from None
        try:
            return json.loads(raw)
        except ValueError:
            raise self._error(path, "the answer is not JSON") from None

    def _read(self, response: httpx.Response, path: str) -> bytes:
        declared = response.headers.get("content-length")
        if declared is not None and declared.isdigit() and \
                int(declared) > self.max_response_bytes:
            raise self._error(path, f"the answer is {int(declared)} bytes, over the limit of "
                              f"{self.max_response_bytes}")
        parts: list[bytes] = []
        size = 0
        for chunk in response.iter_bytes():
            size += len(chunk)
            if size > self.max_response_bytes:
                raise self._error(path, f"the answer is over the limit of "
                                  f"{self.max_response_bytes} bytes")
            parts.append(chunk)
        return b"".join(parts)


# ---- items as the protocol sends them ----------------------------------------------------------


def item_pages(storage: Storage, project_id: int, n_items: int,
               size: int = PREDICT_BATCH) -> Iterator[list[dict[str, Any]]]:
    """The first ``n_items`` items in row order, ``size`` at a time, as ``{"id", "external_id",
    "data"}``; each page read in its own short read session (no transaction stays open while
    the model server works)."""
    start = 0
    while start < n_items:
        with storage.read_sessions() as session:
            batch = next(iter_items(session, project_id, batch_size=size, from_row=start), [])
        page = [r for r in batch if r.row < n_items]
        if not page:
            return
        yield [{"id": int(r.id), "external_id": r.external_id, "data": dict(r.data or {})}
               for r in page]
        start = int(page[-1].row) + 1


def training_items(storage: Storage, project_id: int, rows: Sequence[int],
                   labels: Sequence[Any], *, multilabel: bool) -> list[dict[str, Any]]:
    """The labeled items at ``rows`` with their training ``labels``, as ``/train`` takes them."""
    found: dict[int, Any] = {}
    wanted = [int(r) for r in rows]
    with storage.read_sessions() as session:
        for start in range(0, len(wanted), 5000):
            chunk = wanted[start:start + 5000]
            stmt = select(Item.row, Item.id, Item.external_id, Item.data).where(
                Item.project_id == project_id, Item.row.in_(chunk))
            found.update({int(r.row): r for r in session.execute(stmt)})
    out = []
    for row, label in zip(wanted, labels, strict=True):
        r = found[row]
        item = {"id": int(r.id), "external_id": r.external_id, "data": dict(r.data or {})}
        item["labels" if multilabel else "label"] = list(label) if multilabel else label
        out.append(item)
    return out
