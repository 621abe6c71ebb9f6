"""A model served elsewhere over HTTP (``model: http``) driving real rounds through the worker's
job runner, on SQLite and PostgreSQL; and the rounds it fails, with the URL and the reason,
when its server is down, slow or breaks the protocol, while annotators keep getting tasks."""

from __future__ import annotations

import pickle
import socket
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient

from activelabel.http.app import create_app
from activelabel.labeling import remote_model
from activelabel.labeling.rounds import request_rerank
from activelabel.labeling.tasks import lease_tasks
from activelabel.runtime.server import run_job_inline
from activelabel.store import Storage, create_token, get_project
from activelabel.store.models import Job, ModelVersion
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
