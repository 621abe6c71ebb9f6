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
Redirects are not followed, and a client refuses a host the server's operator did not allow
(:class:`ModelHosts`, the server setting ``model_hosts``) before it calls anything.
The calls run in the worker's round, never in a request, so a slow or dead model server fails
the round and never blocks annotators.
"""

from __future__ import annotations

import ipaddress
import json
import math
import re
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
    "MODEL_HOSTS_ENV",
    "PREDICT_BATCH",
    "PROTOCOL_VERSION",
    "ModelHosts",
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


# ---- which hosts a model may be served at ------------------------------------------------------

#: The environment variable of the server setting ``model_hosts`` (named in the messages).
MODEL_HOSTS_ENV = "ACTIVELABEL_MODEL_HOSTS"
_DEFAULT_PORTS = {"http": 80, "https": 443}
_LABEL = r"[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?"
_HOST_NAME = re.compile(rf"{_LABEL}(?:\.{_LABEL})*")
_ALLOWED_FORMS = ("host names (models.internal), host:port (models.internal:9000) or *.suffix "
                  "(*.models.example.com: any name under it), comma-separated")


def _host_name(text: str, entry: str) -> str:
    """``text`` as a URL's host reads (lower case, IDNA-encoded, no final dot); ValueError
    naming ``entry`` when it is no host name or IP address."""
    if text.startswith("[") and text.endswith("]"):
        try:
            return str(ipaddress.IPv6Address(text[1:-1]))
        except ValueError:
            raise ValueError(f"{entry!r}: {text} is not an IPv6 address") from None
    name = text.lower().rstrip(".")
    if not name.isascii() and re.fullmatch(r"[\w.-]+", name):
        try:  # an international name: as the URL's host reads, IDNA-encoded
            name = httpx.URL(f"http://{name}/").raw_host.decode("ascii").rstrip(".")
        except (httpx.InvalidURL, UnicodeError):
            name = ""
    if not _HOST_NAME.fullmatch(name):
        raise ValueError(f"{entry!r} is not a host name; write {_ALLOWED_FORMS}")
    return name


def _url_host(url: str) -> tuple[str, int]:
    """(host, port) a URL connects to, as httpx reads it (the port by default 80 or 443)."""
    parsed = httpx.URL(url)
    host = parsed.raw_host.decode("ascii").lower().rstrip(".")
    if ":" in host:  # an IPv6 address: written in its one canonical form
        host = str(ipaddress.IPv6Address(host.split("%")[0]))
    return host, parsed.port or _DEFAULT_PORTS.get(parsed.scheme, 0)


@dataclass(frozen=True)
class ModelHosts:
    """The hosts a model served elsewhere may be called at: the server's ``model_hosts``.

    Each entry is a host name or IP address (exact, case-insensitive; any port), ``host:port``
    (that port only; the URL's port is 80 or 443 when it names none), or ``*.suffix`` (any name
    ending in ``.suffix``, not ``suffix`` itself; ``*.suffix:port`` too). IPv6 addresses go in
    brackets (``[fd00::1]:9000``). No entries: any host. The check reads the URL's host as
    written, before any DNS lookup: a name allowed here reaches whatever address it resolves
    to."""

    entries: tuple[str, ...] = ()

    @classmethod
    def parse(cls, text: str) -> ModelHosts:
        """The entries of a comma-separated list; ValueError naming a bad entry and what is
        allowed."""
        entries = []
        for raw in text.split(","):
            entry = raw.strip()
            if entry:
                entries.append(cls._entry(entry))
        return cls(tuple(dict.fromkeys(entries)))

    @staticmethod
    def _entry(entry: str) -> str:
        """One entry in its normal form (host names lower case, IDNA-encoded)."""
        if "/" in entry or "@" in entry:
            raise ValueError(f"{entry!r} is not a host name: write the host alone "
                             "(models.internal, not http://models.internal/), as "
                             f"{_ALLOWED_FORMS}")
        if entry == "*":
            raise ValueError("'*' alone is not an entry: leave the list empty to allow any "
                             f"host, or write {_ALLOWED_FORMS}")
        host, port, has_port = entry, "", False
        if entry.startswith("["):
            end = entry.find("]")
            host, rest = entry[:end + 1], entry[end + 1:]
            if end < 0 or (rest and not rest.startswith(":")):
                raise ValueError(f"{entry!r}: write an IPv6 address as [address] or "
                                 "[address]:port")
            port, has_port = rest[1:], bool(rest)
        elif entry.count(":") == 1:
            host, _, port = entry.partition(":")
            has_port = True
        elif ":" in entry:
            raise ValueError(f"{entry!r}: write an IPv6 address in brackets, e.g. "
                             "[fd00::1]:9000")
        if has_port and not (port.isdigit() and 1 <= int(port) <= 65535):
            raise ValueError(f"{entry!r}: the port must be a number from 1 to 65535")
        wildcard = host.startswith("*.")
        name = _host_name(host[2:] if wildcard else host, entry)
        shown = f"[{name}]" if ":" in name else name
        return ("*." if wildcard else "") + shown + (f":{int(port)}" if port else "")

    def __str__(self) -> str:
        return ", ".join(self.entries) if self.entries else "any host"

    def permits(self, url: str) -> bool:
        """Whether ``url``'s host (and port) is one of the entries; any URL when there are
        none. A URL that cannot be read is not permitted by a list."""
        if not self.entries:
            return True
        try:
            host, port = _url_host(url)
        except (httpx.InvalidURL, UnicodeError, ValueError):
            return False
        return any(self._matches(entry, host, port) for entry in self.entries)

    @staticmethod
    def _matches(entry: str, host: str, port: int) -> bool:
        name, colon, given = entry.rpartition(":")
        if colon and given.isdigit() and not entry.endswith("]"):  # host:port
            if int(given) != port:
                return False
        else:
            name = entry
        name = name.removeprefix("[").removesuffix("]")
        if name.startswith("*."):
            return host.endswith(name[1:])
        return host == name

    def host_of(self, url: str) -> str:
        """The host (and port, when the URL names one) of ``url`` as the messages show it."""
        try:
            parsed = httpx.URL(url)
        except httpx.InvalidURL:
            return repr(url)
        host = parsed.host
        host = f"[{host}]" if ":" in host else host
        return f"{host}:{parsed.port}" if parsed.port else host

    def refusal(self, url: str) -> str:
        """Why ``url`` may not be called, naming its host and the allowed list."""
        return (f"the host {self.host_of(url)} is not in {MODEL_HOSTS_ENV} ({self}), the hosts "
                "this server's operator allows models to be served at")


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
    hosts: ModelHosts = field(default_factory=ModelHosts)

    def __post_init__(self) -> None:
        """A host the server does not allow is refused here, before any call (a project's
        model_url stored before the operator set ``model_hosts``)."""
        if not self.hosts.permits(self.url):
            raise RemoteModelError(
                f"model server {self.url}: {self.hosts.refusal(self.url)}, so the worker does "
                "not call it: set the project's model_url to a model server on one of those "
                "hosts (or its model to a built-in one), or the server's operator adds the "
                f"host to {MODEL_HOSTS_ENV} and restarts the server and its workers")

    @classmethod
    def from_settings(cls, settings: Mapping[str, Any],
                      hosts: ModelHosts | None = None) -> RemoteModel:
        """The client a project's settings describe (``model_url``, ``model_timeout_seconds``,
        ``model_auth_header``; every setting, as ``settings_of(...).model_dump()`` gives them);
        RemoteModelError when ``hosts`` (the server's ``model_hosts``) does not allow its
        host."""
        url = settings.get("model_url")
        if not url:
            raise RemoteModelError("the project's model is http but model_url is empty: set "
                                   "model_url to the model server's base URL")
        return cls(url=str(url), timeout_seconds=float(settings["model_timeout_seconds"]),
                   auth_header=settings.get("model_auth_header"),
                   max_response_bytes=MAX_RESPONSE_BYTES,
                   hosts=ModelHosts() if hosts is None else hosts)

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
                if response.is_redirect:  # never followed: the allowed host is the one called
                    raise self._error(path, f"answered HTTP {response.status_code}, a redirect "
                                      f"to {response.headers.get('location')!r}, which is not "
                                      "followed: set model_url to the model server's own "
                                      "address")
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
