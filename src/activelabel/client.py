"""A Python client for the activelabel REST API (``/api/v1``), over httpx.

It imports nothing else of activelabel, so a script that only talks to a server needs httpx and
nothing more. Every method returns the decoded JSON of the response. Any error answer of the
server becomes :class:`ApiError`, parsed from the API's one error shape
``{"error": {"code", "message", "details"}}``.

Annotations are safe to retry: :meth:`Client.annotate` sends a ``client_key`` (a fresh uuid4
unless given) and the server stores one annotation per key, so a request repeated after a lost
connection never labels twice.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import IO, Any

import httpx

__all__ = ["API_PREFIX", "ApiError", "Client", "JobFailed"]

API_PREFIX = "/api/v1"
#: Statuses after which a job or a round does not change any more.
FINAL_STATUSES = frozenset({"done", "failed"})


class ApiError(Exception):
    """An error answer of the server: HTTP ``status``, snake_case ``code``, ``message``,
    optional ``details`` (e.g. the invalid fields)."""

    def __init__(self, status: int, code: str, message: str, details: Any = None) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.details = details

    @classmethod
    def from_response(cls, response: httpx.Response) -> ApiError:
        """Parse the one error shape; a body of another shape keeps its text as the message."""
        try:
            body = response.json()
        except ValueError:
            body = None
        error = body.get("error") if isinstance(body, dict) else None
        if isinstance(error, dict) and isinstance(error.get("code"), str):
            return cls(response.status_code, error["code"], str(error.get("message", "")),
                       error.get("details"))
        text = response.text.strip()[:500] or response.reason_phrase
        return cls(response.status_code, f"http_{response.status_code}", text)


class JobFailed(Exception):
    """A background job or round ended with status ``failed``; ``record`` is its JSON."""

    def __init__(self, what: str, record: Mapping[str, Any]) -> None:
        super().__init__(f"{what} failed: {record.get('error') or 'no error message'}")
        self.record = dict(record)


def _id_of(record: Mapping[str, Any], *keys: str) -> int:
    """The first of ``keys`` present in an API answer (e.g. ``round_id`` or ``id``)."""
    for key in keys:
        if record.get(key) is not None:
            return int(record[key])
    raise KeyError(f"none of {', '.join(keys)} in the server's answer: {dict(record)!r:.200}")


class Client:
    """The REST API as methods. ``token`` is an API token (``activelabel tokens create``) or
    comes from :meth:`login`. Connection errors are retried ``retries`` times for reads and
    annotations (with a client key); other writes are retried only when the connection was
    never made."""

    def __init__(self, base_url: str, token: str | None = None, *, timeout: float = 30,
                 retries: int = 3, transport: httpx.BaseTransport | None = None) -> None:
        self.base_url = base_url.rstrip("/")
        self.token = token
        self.retries = retries
        self._http = httpx.Client(base_url=self.base_url, timeout=timeout, transport=transport)

    # ---- plumbing ----------------------------------------------------------------------------

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _headers(self) -> dict[str, str]:
        return {} if self.token is None else {"Authorization": f"Bearer {self.token}"}

    def _send(self, method: str, path: str, *, idempotent: bool, **kwargs: Any) -> httpx.Response:
        """One request with retries on connection errors; raises ApiError on an error status."""
        attempt = 0
        while True:
            try:
                response = self._http.request(method, API_PREFIX + path,
                                              headers=self._headers(), **kwargs)
                break
            except httpx.TransportError as exc:
                retryable = idempotent or isinstance(exc, httpx.ConnectError)
                if not retryable or attempt >= self.retries:
                    raise
                time.sleep(min(2.0, 0.1 * 2**attempt))
                attempt += 1
        if response.status_code >= 400:
            raise ApiError.from_response(response)
        return response

    def _json(self, method: str, path: str, *, idempotent: bool = False, **kwargs: Any) -> Any:
        response = self._send(method, path, idempotent=idempotent, **kwargs)
        if response.status_code == 204 or not response.content:
            return None
        return response.json()

    def _get(self, path: str, **params: Any) -> Any:
        query = {k: v for k, v in params.items() if v is not None}
        return self._json("GET", path, idempotent=True, params=query)

    # ---- service and users -------------------------------------------------------------------

    def health(self) -> Any:
        """``GET /health``: the server is up and its database answers."""
        return self._get("/health")

    def login(self, username: str, password: str) -> str:
        """Trade a username and password for a token, which this client then uses."""
        answer = self._json("POST", "/auth/login",
                            json={"username": username, "password": password})
        self.token = str(answer["token"])
        return self.token

    # ---- projects ----------------------------------------------------------------------------

    def create_project(self, name: str, labels: Sequence[Any], *,
                       task: str = "classification", guidelines: str = "",
                       settings: Mapping[str, Any] | None = None,
                       private_fields: Sequence[str] | None = None) -> Any:
        """``POST /projects``: the caller becomes the owner."""
        body: dict[str, Any] = {"name": name, "task": task, "labels": list(labels),
                                "guidelines": guidelines, "settings": dict(settings or {})}
        if private_fields is not None:
            body["private_fields"] = list(private_fields)
        return self._json("POST", "/projects", json=body)

    def projects(self) -> Any:
        return self._get("/projects")

    def project(self, project_id: int) -> Any:
        return self._get(f"/projects/{project_id}")

    def add_member(self, project_id: int, username: str, role: str) -> Any:
        return self._json("POST", f"/projects/{project_id}/members",
                          json={"username": username, "role": role})

    def stats(self, project_id: int) -> Any:
        """``GET /projects/{id}/stats``: progress, backlog, agreement (where the server has it)."""
        return self._get(f"/projects/{project_id}/stats")

    # ---- items and imports -------------------------------------------------------------------

    def add_items(self, project_id: int, items: Iterable[Mapping[str, Any]]) -> Any:
        """``POST /projects/{id}/items``: counts, duplicates and rejected rows with reasons."""
        return self._json("POST", f"/projects/{project_id}/items",
                          json=[dict(item) for item in items])

    def item(self, project_id: int, item_id: int) -> Any:
        """One item with its revision history."""
        return self._get(f"/projects/{project_id}/items/{item_id}")

    def upload(self, project_id: int, path: str | Path, *, split: str | None = None) -> Any:
        """``POST /projects/{id}/imports``: upload a JSONL, CSV or Parquet file; returns the
        import job (poll it with :meth:`job` or :meth:`wait_for_job`)."""
        path = Path(path)
        with path.open("rb") as stream:
            return self.upload_stream(project_id, path.name, stream, split=split)

    def upload_stream(self, project_id: int, filename: str, stream: IO[bytes], *,
                      split: str | None = None) -> Any:
        data = {} if split is None else {"split": split}
        return self._json("POST", f"/projects/{project_id}/imports", data=data,
                          files={"file": (filename, stream, "application/octet-stream")})

    import_file = upload

    def job(self, project_id: int, job_id: int) -> Any:
        """``GET /projects/{id}/jobs/{job_id}``: status, progress and result of a job."""
        return self._get(f"/projects/{project_id}/jobs/{job_id}")

    def wait_for_job(self, project_id: int, job: int | Mapping[str, Any], *,
                     timeout: float = 300, poll: float = 0.2) -> Any:
        """Poll the job until it is done (returns it) or failed (raises JobFailed)."""
        job_id = job if isinstance(job, int) else _id_of(job, "job_id", "id")
        record = self._wait(lambda: self.job(project_id, job_id), timeout, poll,
                            f"job {job_id}")
        return record

    # ---- tasks and annotations ---------------------------------------------------------------

    def next_tasks(self, project_id: int, n: int = 10) -> Any:
        """``GET /projects/{id}/tasks/next?n=``: leased items with suggestion and reason."""
        return self._get(f"/projects/{project_id}/tasks/next", n=n)

    def release(self, project_id: int, item_id: int) -> Any:
        """Give a leased task back to the queue."""
        return self._json("POST", f"/projects/{project_id}/tasks/{item_id}/release",
                          idempotent=True)

    def annotate(self, project_id: int, item_id: int, labels: Sequence[Any] | str | int, *,
                 duration_ms: int | None = None, client_key: str | None = None) -> Any:
        """``POST /projects/{id}/annotations``; retried on connection errors, never doubled:
        every attempt carries the same ``client_key`` (a new uuid4 when not given)."""
        if isinstance(labels, (str, int)):
            labels = [labels]
        body: dict[str, Any] = {"item_id": item_id, "labels": list(labels),
                                "client_key": client_key or str(uuid.uuid4())}
        if duration_ms is not None:
            body["duration_ms"] = duration_ms
        return self._json("POST", f"/projects/{project_id}/annotations", json=body,
                          idempotent=True)

    def review_queue(self, project_id: int, *, reason: str | None = None,
                     annotator: str | None = None, label: Any = None,
                     round: int | None = None, limit: int = 100) -> Any:
        """``GET /projects/{id}/review``: the ranked review queue (reviewers and owners)."""
        params = {k: v for k, v in {"reason": reason, "annotator": annotator, "label": label,
                                    "round": round, "limit": limit}.items() if v is not None}
        return self._get(f"/projects/{project_id}/review", **params)

    def review(self, project_id: int, annotation_id: int, *, accept: bool,
               labels: Sequence[Any] | None = None, reason: str | None = None) -> Any:
        """A reviewer's decision on a current revision, with its reason."""
        body: dict[str, Any] = {"accept": accept, "labels": None if labels is None
                                else list(labels), "reason": reason}
        return self._json("POST", f"/projects/{project_id}/annotations/{annotation_id}/review",
                          json=body)

    def agreement(self, project_id: int) -> Any:
        """``GET /projects/{id}/agreement``: alpha, Fleiss, Cohen per pair, per label."""
        return self._get(f"/projects/{project_id}/agreement")

    def annotators(self, project_id: int) -> Any:
        """``GET /projects/{id}/annotators``: gold accuracy, consensus agreement, Dawid-Skene."""
        return self._get(f"/projects/{project_id}/annotators")

    # ---- rounds and models -------------------------------------------------------------------

    def start_round(self, project_id: int) -> Any:
        """``POST /projects/{id}/rounds`` (202): a queued round (or the one already queued)."""
        return self._json("POST", f"/projects/{project_id}/rounds")

    def rounds(self, project_id: int) -> Any:
        return self._get(f"/projects/{project_id}/rounds")

    def round(self, project_id: int, round_id: int) -> Any:
        """Status, timings, holdout metrics, labels used, gain, selected items with scores."""
        return self._get(f"/projects/{project_id}/rounds/{round_id}")

    def wait_for_round(self, project_id: int, round_: int | Mapping[str, Any], *,
                       timeout: float = 300, poll: float = 0.2) -> Any:
        """Poll the round until it is done (returns it) or failed (raises JobFailed)."""
        round_id = round_ if isinstance(round_, int) else _id_of(round_, "round_id", "id")
        return self._wait(lambda: self.round(project_id, round_id), timeout, poll,
                          f"round {round_id}")

    def models(self, project_id: int) -> Any:
        return self._get(f"/projects/{project_id}/models")

    def activate_model(self, project_id: int, version: int) -> Any:
        """Roll back (or forward) to a model version; the server re-ranks the queue with it."""
        return self._json("POST", f"/projects/{project_id}/models/{version}/activate")

    # ---- export ------------------------------------------------------------------------------

    def export(self, project_id: int, path: str | Path, *, format: str = "jsonl") -> Path:
        """Stream the labels with provenance into ``path`` (written whole or not at all)."""
        path = Path(path)
        partial = path.with_name(path.name + ".part")
        request = self._http.build_request(
            "GET", f"{API_PREFIX}/projects/{project_id}/export", params={"format": format},
            headers=self._headers())
        response = self._http.send(request, stream=True)
        try:
            if response.status_code >= 400:
                response.read()
                raise ApiError.from_response(response)
            with partial.open("wb") as out:
                for chunk in response.iter_bytes():
                    out.write(chunk)
        finally:
            response.close()
        partial.replace(path)
        return path

    # ---- helpers -----------------------------------------------------------------------------

    @staticmethod
    def _wait(fetch: Callable[[], Any], timeout: float, poll: float, what: str) -> Any:
        deadline = time.monotonic() + timeout
        while True:
            record = fetch()
            status = record.get("status") if isinstance(record, dict) else None
            if status == "failed":
                raise JobFailed(what, record)
            if status in FINAL_STATUSES:
                return record
            if time.monotonic() >= deadline:
                raise TimeoutError(f"{what} still {status} after {timeout:.0f} s")
            time.sleep(poll)
