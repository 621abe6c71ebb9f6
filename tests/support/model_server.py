"""A model server speaking activelabel's HTTP model protocol (docs/models.md), for the tests.

It serves a real scikit-learn logistic regression over the items' ``image`` field (the digits
of :func:`tests.support.projects.digit_rows`), in a thread of this process (stdlib
``http.server``), and can misbehave on request: answer slowly, fail its first calls, or break
the protocol in one of the ways :data:`FAULTS` names.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import numpy as np
from sklearn.linear_model import LogisticRegression

__all__ = ["FAULTS", "ModelServer"]

#: Ways the server can break the protocol on /predict.
FAULTS = ("not_json", "missing_item", "bad_probability", "unknown_label", "huge",
          "bad_request", "ragged_embeddings")


def _features(items: list[dict[str, Any]]) -> np.ndarray[Any, Any]:
    return np.asarray([np.ravel(it["data"]["image"]) for it in items], dtype=np.float64) / 16.0


class ModelServer:
    """Start with :meth:`start` (returns the base URL), stop with :meth:`stop`.

    ``delay_seconds``: every answer waits this long; ``fail_first``: the first calls get 503;
    ``token``: the Authorization header required (401 otherwise); ``fault``: one of
    :data:`FAULTS`; ``embeddings``: /predict also gives each item's pixels as its embedding.
    ``calls`` records (path, body, authorization header) of every request."""

    def __init__(self, *, delay_seconds: float = 0.0, fail_first: int = 0,
                 token: str | None = None, fault: str | None = None,
                 embeddings: bool = False) -> None:
        self.delay_seconds = delay_seconds
        self.fail_first = fail_first
        self.token = token
        self.fault = fault
        self.embeddings = embeddings
        self.calls: list[tuple[str, dict[str, Any], str | None]] = []
        self.models: dict[str, LogisticRegression] = {}
        self.called = threading.Event()
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.server_address[1]}/model"

    def start(self) -> str:
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                owner._handle(self)

            def log_message(self, format: str, *args: Any) -> None:
                return

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self.url

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    # ---- answering -----------------------------------------------------------------------

    def _handle(self, request: BaseHTTPRequestHandler) -> None:
        size = int(request.headers.get("content-length") or 0)
        body = json.loads(request.rfile.read(size) or b"{}")
        with self._lock:
            self.calls.append((request.path, body, request.headers.get("authorization")))
            failing = len(self.calls) <= self.fail_first
        self.called.set()
        time.sleep(self.delay_seconds)
        if failing:
            return self._send(request, 503, {"error": "warming up"})
        if self.token is not None and request.headers.get("authorization") != self.token:
            return self._send(request, 401, {"error": "who are you?"})
        if request.path == "/model/train":
            return self._send(request, 200, self._train(body))
        if request.path == "/model/predict":
            return self._predict(request, body)
        return self._send(request, 404, {"error": "no such path"})

    def _train(self, body: dict[str, Any]) -> dict[str, Any]:
        items = body["items"]
        model = LogisticRegression(max_iter=2000, C=1.0)
        model.fit(_features(items), [it["label"] for it in items])
        model_id = uuid.uuid4().hex[:8]
        self.models[model_id] = model
        return {"model_id": model_id}

    def predictions(self, model_id: str, items: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """What /predict answers for ``items`` with the model ``model_id`` (no faults)."""
        model = self.models[model_id]
        X = _features(items)
        probs = model.predict_proba(X)
        out = []
        for i, item in enumerate(items):
            pred: dict[str, Any] = {"id": item["id"], "probabilities": {
                str(c): float(p) for c, p in zip(model.classes_, probs[i], strict=True)}}
            if self.embeddings:
                pred["embedding"] = X[i].tolist()
            out.append(pred)
        return out

    def _predict(self, request: BaseHTTPRequestHandler, body: dict[str, Any]) -> None:
        preds = self.predictions(body["model_id"], body["items"])
        fault = self.fault
        if fault == "not_json":
            return self._send_raw(request, 200, b"<html>model is napping</html>")
        if fault == "bad_request":
            return self._send(request, 400, {"error": "cannot read the items"})
        if fault == "missing_item":
            preds = preds[1:]
        elif fault == "bad_probability":
            first = next(iter(preds[0]["probabilities"]))
            preds[0]["probabilities"][first] = 1.5
        elif fault == "unknown_label":
            preds[0]["probabilities"]["eleven"] = 0.0
        elif fault == "huge":
            preds[0]["padding"] = "x" * 200_000
        elif fault == "ragged_embeddings":
            for i, pred in enumerate(preds):
                pred["embedding"] = [0.5] * (2 + i % 2)
        return self._send(request, 200, {"predictions": preds})

    def _send(self, request: BaseHTTPRequestHandler, status: int, body: Any) -> None:
        self._send_raw(request, status, json.dumps(body).encode())

    def _send_raw(self, request: BaseHTTPRequestHandler, status: int, raw: bytes) -> None:
        request.send_response(status)
        request.send_header("content-type", "application/json")
        request.send_header("content-length", str(len(raw)))
        request.end_headers()
        request.wfile.write(raw)
