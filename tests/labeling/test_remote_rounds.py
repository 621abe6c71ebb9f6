"""A model served elsewhere over HTTP (``model: http``) driving real rounds through the worker's
job runner, on SQLite and PostgreSQL; and the rounds it fails, with the URL and the reason,
when its server is down, slow or breaks the protocol, while annotators keep getting tasks, or
is on a host the server's ``model_hosts`` does not allow (redirects are not followed)."""

from __future__ import annotations

import pickle
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient

from activelabel.http.app import create_app
from activelabel.http.config import ServerSettings
from activelabel.labeling import remote_model
from activelabel.labeling.payoff import payoff
from activelabel.labeling.remote_model import ModelHosts, RemoteModel, RemoteModelError
from activelabel.labeling.rounds import request_rerank, request_round
from activelabel.labeling.tasks import lease_tasks
from activelabel.runtime.server import run_job_inline
from activelabel.runtime.worker import Worker
from activelabel.store import Storage, create_token, get_job, get_project, get_round
from activelabel.store.models import Job, ModelVersion
from tests.labeling.test_payoff import done_rounds, label_audit_draws
from tests.labeling.test_plugin_rounds import _selected_rows, run_round
from tests.support.model_server import FAULTS, ModelServer
from tests.support.projects import Seeded, digit_rows, label_rows, new_project

Arrays = tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]]
N, HOLDOUT, BATCH = 300, 60, 20
TOKEN = "Bearer model-secret-0123456789"


@pytest.fixture
def server() -> Iterator[ModelServer]:
    served = ModelServer(token=TOKEN, embeddings=True)
    served.start()
    yield served
    served.stop()


def _served_project(storage: Storage, digits: Arrays, url: str, n: int = N,
                    holdout: int = HOLDOUT, **settings: Any) -> Seeded:
    images, _ = digits
    return new_project(storage, rows=digit_rows(images, n, holdout), settings={
        "featurizer": "image", "featurizer_params": {"field": "image"}, "batch_size": BATCH,
        "model": "http", "model_url": url, "model_auth_header": TOKEN, "audit_share": 0.0,
        **settings})


def _label_seed(storage: Storage, seeded: Seeded, digits: Arrays, n: int = N,
                holdout: int = HOLDOUT) -> list[int]:
    """Run the cold start and label its batch and the holdout; the seed's rows."""
    _, target = digits
    seed = run_round(storage, seeded.project_id)
    assert seed.status == "done", seed.error
    rows = _selected_rows(storage, seed.id) + list(range(n - holdout, n))
    label_rows(storage, seeded, rows, [str(int(target[r])) for r in rows])
    return rows[:BATCH]


def test_a_served_model_drives_rounds(engine_storage: Storage, digits: Arrays,
                                      server: ModelServer) -> None:
    _, target = digits
    seeded = _served_project(engine_storage, digits, server.url, strategy="cluster_margin")
    seed_rows = _label_seed(engine_storage, seeded, digits)

    trained = run_round(engine_storage, seeded.project_id)

    assert trained.status == "done", trained.error
    paths = [path for path, _, _ in server.calls]
    assert paths == ["/model/train", "/model/predict"]  # 300 items: one page
    assert {auth for _, _, auth in server.calls} == {TOKEN}
    train = server.calls[0][1]
    assert train["protocol"] == 1
    assert train["project"]["labels"] == [str(d) for d in range(10)]
    got = {(it["data"]["secret"], it["label"]) for it in train["items"]}
    assert got == {(f"s{r}", str(int(target[r]))) for r in seed_rows}  # pool labels only
    predict = server.calls[1][1]
    assert len(predict["items"]) == N
    assert predict["model_id"] in server.models
    probs = engine_storage.arrays.load(seeded.project_id, "probs")
    assert probs is not None
    assert probs.shape == (N, 10)
    expected = server.predictions(predict["model_id"], predict["items"])
    for row in (0, 17, N - 1):
        for label, p in expected[row]["probabilities"].items():
            assert abs(float(probs[row, int(label)]) - p) < 1e-6
    metrics = trained.metrics or {}
    assert metrics["n_train"] == BATCH
    assert metrics["n_holdout"] == HOLDOUT
    truth = target[N - HOLDOUT:N]
    assert metrics["accuracy"] == pytest.approx(
        float((probs[N - HOLDOUT:N].argmax(axis=1) == truth).mean()))
    assert metrics["accuracy"] > 0.6
    picked = _selected_rows(engine_storage, trained.id)
    assert len(picked) == BATCH
    assert not set(picked) & set(seed_rows)
    with engine_storage.read_sessions() as session:
        version = session.get(ModelVersion, trained.model_version_id)
        assert version is not None
        raw = Path(str(version.artifact_path)).read_bytes()
    assert TOKEN.encode() not in raw  # the secret stays in the settings
    assert pickle.loads(raw)["remote"] == {"url": server.url, "model_id": predict["model_id"]}
    with engine_storage.sessions() as session, session.begin():
        project = get_project(session, seeded.project_id)
        tasks = lease_tasks(session, engine_storage.arrays, project, "owner",
                            seeded.owner_id, 1)
    assert tasks[0].suggestion is not None
    assert tasks[0].suggestion.label == str(int(np.argmax(probs[picked[0]])))

    # a rollback to this version has the server score the pool again, with no training
    with engine_storage.sessions() as session, session.begin():
        rerank, _ = request_rerank(session, seeded.project_id, 1, requested_by=None)
        job_id = rerank.job_id
    assert job_id is not None
    assert run_job_inline(engine_storage, job_id, timeout=60).status == "done"
    assert [path for path, _, _ in server.calls[2:]] == ["/model/predict"]
    assert server.calls[2][1]["model_id"] == predict["model_id"]


def test_the_payoff_of_a_served_model_traces_no_curve(engine_storage: Storage, digits: Arrays,
                                                     server: ModelServer) -> None:
    """A model served over HTTP trains where it runs, never on the audit labels alone: the
    payoff says no curve will come (null), not that one comes at 20 audit labels."""
    seeded = _served_project(engine_storage, digits, server.url, audit_share=0.1)
    label_audit_draws(engine_storage, seeded, digits[1])  # enough for a curve to be read
    # a curve a round traced before the project moved to the served model
    done_rounds(engine_storage, seeded.project_id, [{"random_curve": [[10, 0.5], [20, 0.7]]}])
    with engine_storage.read_sessions() as session:
        found = payoff(session, engine_storage.arrays, get_project(session, seeded.project_id))
    assert found["curve_min_labels"] is None
    assert found["random_curve"] == []  # not this model's curve


def test_a_server_failing_its_first_calls_is_retried(engine_storage: Storage, digits: Arrays
                                                     ) -> None:
    served = ModelServer(fail_first=2)
    served.start()
    try:
        seeded = _served_project(engine_storage, digits, served.url, n=120, holdout=20)
        _label_seed(engine_storage, seeded, digits, n=120, holdout=20)
        done = run_round(engine_storage, seeded.project_id)
    finally:
        served.stop()
    assert done.status == "done", done.error
    assert [p for p, _, _ in served.calls] == ["/model/train"] * 3 + ["/model/predict"]


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_a_server_that_is_down_fails_the_round_naming_the_url(engine_storage: Storage,
                                                              digits: Arrays) -> None:
    url = f"http://127.0.0.1:{_closed_port()}/model"
    seeded = _served_project(engine_storage, digits, url, n=120, holdout=20)
    _label_seed(engine_storage, seeded, digits, n=120, holdout=20)
    failed = run_round(engine_storage, seeded.project_id)
    assert failed.status == "failed"
    assert f"model server {url}/train: cannot be reached" in str(failed.error)
    assert "tried 3 times" in str(failed.error)
    with engine_storage.read_sessions() as session:
        job = session.get(Job, failed.job_id)
        assert job is not None
        assert job.status == "failed"
        assert url in str(job.error)


def test_a_slow_server_fails_the_round_while_annotators_get_tasks(
        engine_storage: Storage, digits: Arrays) -> None:
    served = ModelServer(delay_seconds=1.5)
    served.start()
    seeded = _served_project(engine_storage, digits, served.url, n=120, holdout=20,
                             model_timeout_seconds=0.5)
    _label_seed(engine_storage, seeded, digits, n=120, holdout=20)
    with engine_storage.sessions() as session, session.begin():
        _, token = create_token(session, seeded.owner_id, "annotating")
    outcome: list[Any] = []
    worker = threading.Thread(target=lambda: outcome.append(
        run_round(engine_storage, seeded.project_id)))
    try:
        with TestClient(create_app(storage=engine_storage)) as client:
            worker.start()
            assert served.called.wait(30)  # the round is waiting on the model server
            answer = client.get(f"/api/v1/projects/{seeded.project_id}/tasks/next?n=3",
                                headers={"Authorization": f"Bearer {token}"})
            still_running = worker.is_alive()
            worker.join(60)
    finally:
        served.stop()
    assert answer.status_code == 200, answer.text
    assert len(answer.json()) == 3
    assert still_running  # answered while the round was still waiting
    failed = outcome[0]
    assert failed.status == "failed"
    assert f"model server {served.url}/train: no answer within 0.5 s (timed out)" \
        in str(failed.error)
    assert len(served.calls) == 3  # tried three times


@pytest.mark.parametrize(("fault", "message"), [
    ("not_json", "/predict: the answer is not JSON"),
    ("missing_item", "asked for 120 items, got 119 predictions"),
    ("bad_probability", "is 1.5, not a number from 0 to 1"),
    ("unknown_label", "labels ['eleven'] are not the project's"),
    ("huge", "the answer is 2"),
    ("bad_request", "/predict: answered HTTP 400"),
    ("ragged_embeddings", "embeddings must be"),
])
def test_a_server_breaking_the_protocol_fails_the_round_with_what_is_wrong(
        engine_storage: Storage, digits: Arrays, fault: str, message: str,
        monkeypatch: pytest.MonkeyPatch) -> None:
    assert fault in FAULTS
    monkeypatch.setattr(remote_model, "MAX_RESPONSE_BYTES", 100_000)
    served = ModelServer(fault=fault)
    served.start()
    try:
        seeded = _served_project(engine_storage, digits, served.url, n=120, holdout=20)
        _label_seed(engine_storage, seeded, digits, n=120, holdout=20)
        failed = run_round(engine_storage, seeded.project_id)
    finally:
        served.stop()
    assert failed.status == "failed"
    assert f"model server {served.url}/predict" in str(failed.error)
    assert message in str(failed.error)
    assert len(served.calls) == 2  # a broken answer is not retried
    assert engine_storage.arrays.load(seeded.project_id, "probs") is None  # nothing recorded


def test_model_hosts_match_names_ports_and_wildcards() -> None:
    hosts = ModelHosts.parse("models.internal, 10.0.0.5:9000, *.ml.example.com:8443, [fd00::1]")
    allowed = ["http://models.internal/x", "https://MODELS.Internal.:9000/x",
               "http://10.0.0.5:9000/", "https://a.ml.example.com:8443/",
               "https://a.b.ml.example.com:8443/m", "http://[fd00:0::1]:7000/"]
    refused = ["http://169.254.169.254/latest", "http://models.internal.evil.com/",
               "http://evilmodels.internal/", "http://10.0.0.5/", "http://10.0.0.5:9001/",
               "https://ml.example.com:8443/", "https://a.ml.example.com/",
               "http://a.ml.example.com:8080/",
               "http://[fd00::2]/", "http://models.internal\\@evil.com/", "not a url"]
    assert [u for u in allowed if not hosts.permits(u)] == []
    assert [u for u in refused if hosts.permits(u)] == []
    assert all(ModelHosts().permits(u) for u in allowed + refused[:-1])  # empty: any host
    with pytest.raises(RemoteModelError, match=r"the host 169\.254\.169\.254 is not in "
                       r"ACTIVELABEL_MODEL_HOSTS \(models\.internal, 10\.0\.0\.5:9000"):
        RemoteModel("http://169.254.169.254/latest", hosts=hosts)


def _queue_round(storage: Storage, project_id: int) -> int:
    with storage.sessions() as session, session.begin():
        rnd, _ = request_round(session, project_id, requested_by=None, reason="manual")
        return int(rnd.id)


def _finished(storage: Storage, project_id: int, round_id: int) -> tuple[str, str]:
    """(status, error) of the round, which must be the same as its job's."""
    with storage.read_sessions() as session:
        rnd = get_round(session, project_id, round_id)
        assert rnd.job_id is not None
        job = get_job(session, rnd.job_id)
        assert (job.status, job.error) == (rnd.status, rnd.error)
        return str(rnd.status), str(rnd.error)


def test_a_stored_model_url_the_server_does_not_allow_fails_the_round_before_any_call(
        fresh_storage: Storage, digits: Arrays, server: ModelServer,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A project's model_url stored before the operator set ACTIVELABEL_MODEL_HOSTS: the
    worker refuses to call it, the round fails saying how to fix it, nothing stored is lost."""
    storage = fresh_storage
    seeded = _served_project(storage, digits, server.url, n=120, holdout=20)
    _label_seed(storage, seeded, digits, n=120, holdout=20)
    port = server.url.split(":")[2].split("/")[0]
    expected = (f"RemoteModelError: model server {server.url}: the host 127.0.0.1:{port} is "
                "not in ACTIVELABEL_MODEL_HOSTS (models.internal, *.example.com), the hosts "
                "this server's operator allows models to be served at, so the worker does not "
                "call it: set the project's model_url to a model server on one of those hosts")
    restricted = ServerSettings(model_hosts="models.internal, *.example.com")

    # the worker process, with the server's settings
    round_id = _queue_round(storage, seeded.project_id)
    assert Worker(storage, worker_id="w-hosts", settings=restricted).run_once()
    status, error = _finished(storage, seeded.project_id, round_id)
    assert status == "failed"
    assert error.startswith(expected), error
    assert "adds the host to ACTIVELABEL_MODEL_HOSTS" in error

    # a round run in this process (activelabel round --wait) reads the environment
    monkeypatch.setenv("ACTIVELABEL_MODEL_HOSTS", "models.internal, *.example.com")
    failed = run_round(storage, seeded.project_id)
    assert failed.status == "failed"
    assert str(failed.error).startswith(expected), failed.error
    assert server.calls == []  # not one call reached the model server
    assert storage.arrays.load(seeded.project_id, "probs") is None
    with storage.read_sessions() as session:
        assert get_project(session, seeded.project_id).settings["model_url"] == server.url

    # the operator allows the host: the same stored settings train again
    monkeypatch.setenv("ACTIVELABEL_MODEL_HOSTS", "models.internal, 127.0.0.1")
    trained = run_round(storage, seeded.project_id)
    assert trained.status == "done", trained.error
    assert [p for p, _, _ in server.calls] == ["/model/train", "/model/predict"]

    # and a rollback to that served version is refused once the host is no longer allowed
    with storage.sessions() as session, session.begin():
        version = session.get(ModelVersion, trained.model_version_id)
        assert version is not None
        rerank, _ = request_rerank(session, seeded.project_id, version.version,
                                   requested_by=None)
        job_id, rerank_id = rerank.job_id, rerank.id
    assert job_id is not None
    run_job_inline(storage, job_id, timeout=60, settings=restricted)
    status, error = _finished(storage, seeded.project_id, rerank_id)
    assert status == "failed"
    assert error.startswith(expected), error
    assert len(server.calls) == 2


class _Redirector:
    """Answers every POST with 307 to the same path at ``target`` (another host:port)."""

    def __init__(self, target: str) -> None:
        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                self.send_response(307)
                self.send_header("Location", target + self.path.removeprefix("/model"))
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = int(self.server.server_address[1])
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def test_a_redirect_from_an_allowed_host_is_not_followed(
        engine_storage: Storage, digits: Arrays, server: ModelServer,
        monkeypatch: pytest.MonkeyPatch) -> None:
    redirector = _Redirector(server.url)
    url = f"http://127.0.0.1:{redirector.port}/model"
    try:
        seeded = _served_project(engine_storage, digits, url, n=120, holdout=20)
        _label_seed(engine_storage, seeded, digits, n=120, holdout=20)
        monkeypatch.setenv("ACTIVELABEL_MODEL_HOSTS", f"127.0.0.1:{redirector.port}")
        failed = run_round(engine_storage, seeded.project_id)
    finally:
        redirector.stop()
    assert failed.status == "failed"
    assert f"model server {url}/train: answered HTTP 307, a redirect to " \
        f"'{server.url}/train', which is not followed" in str(failed.error), failed.error
    assert server.calls == []  # the server behind the redirect was never called
