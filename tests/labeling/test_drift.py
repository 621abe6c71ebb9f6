"""Drift and staleness on a project: a planted shift (an import with another class mix) is
found at import and by the next round, queues a round; an import like the training data is
not; a stale model is flagged and queues a round."""

from __future__ import annotations

import io
import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import select

from activelabel.http.metrics import _registry
from activelabel.labeling.drift import latest_drift, request_stale_rounds, staleness
from activelabel.labeling.imports import enqueue_import, save_upload
from activelabel.labeling.operations import project_gauges
from activelabel.labeling.rounds import request_round
from activelabel.runtime.server import run_job_inline
from activelabel.runtime.settings import Storage
from activelabel.store import list_rounds
from activelabel.store.models import ModelVersion, Round
from tests.support.projects import Seeded, label_rows, new_project, run_job

#: Every test trains on the news dataset and runs rounds: 8-22 s each on a busy two-core machine.
pytestmark = pytest.mark.slow

CLASSES = ["Business", "Sci/Tech", "Sports", "World"]


def _news(shared_data: Path) -> dict[str, list[dict[str, Any]]]:
    by_class: dict[str, list[dict[str, Any]]] = {c: [] for c in CLASSES}
    with (shared_data / "ag_news_test.jsonl").open() as handle:
        for line in handle:
            row = json.loads(line)
            by_class[row["label"]].append({"external_id": row["id"],
                                           "data": {"text": row["text"]}, "_y": row["label"]})
    return by_class


def _import(storage: Storage, seeded: Seeded, rows: list[dict[str, Any]]) -> dict[str, Any]:
    body = "\n".join(json.dumps({k: v for k, v in r.items() if k != "_y"}) for r in rows)
    path = save_upload(storage, seeded.project_id, "rows.jsonl", io.BytesIO(body.encode()))
    with storage.sessions() as session, session.begin():
        job_id = enqueue_import(session, seeded.project_id, path, requested_by=None).id
    job = run_job_inline(storage, job_id)  # as the worker does: claimed, run, finished
    assert job.status == "done", job.error
    return dict(job.result or {})


def _round(storage: Storage, seeded: Seeded, reason: str = "test") -> dict[str, Any]:
    with storage.sessions() as session, session.begin():
        rnd, _ = request_round(session, seeded.project_id, requested_by=None, reason=reason)
        job_id = rnd.job_id
    assert job_id is not None
    return run_job(storage, job_id)


@pytest.fixture
def trained(engine_storage: Storage, shared_data: Path
            ) -> tuple[Storage, Seeded, dict[str, list[dict[str, Any]]]]:
    """A project trained on Business and Sci/Tech news only."""
    news = _news(shared_data)
    seeded = new_project(engine_storage, labels=CLASSES, settings={"batch_size": 20})
    first = news["Business"][:200] + news["Sci/Tech"][:200]
    _import(engine_storage, seeded, first)
    labeled = list(range(0, 400, 4))
    label_rows(engine_storage, seeded, labeled, [first[r]["_y"] for r in labeled])
    _round(engine_storage, seeded)
    return engine_storage, seeded, news


def test_an_import_of_other_classes_is_a_shift_and_queues_a_round(trained: Any) -> None:
    storage, seeded, news = trained
    result = _import(storage, seeded, news["Sports"][:100] + news["World"][:100])
    drift = result["drift"]
    assert drift is not None
    assert drift["shifted"], json.dumps(drift)
    assert drift["embedding_psi"] > 0.25
    assert drift["embedding_p"] < 0.01
    assert drift["n_new"] == 200
    assert drift["first_new_row"] == 400
    assert result["drift_round_id"] is not None
    with storage.read_sessions() as session:
        queued = [r for r in list_rounds(session, seeded.project_id) if r.status == "queued"]
        assert [r.id for r in queued] == [result["drift_round_id"]]
    recorded = _round(storage, seeded)  # the queued drift round
    round_drift = recorded["metrics"]["drift"]
    assert recorded["metrics"]["reason"] == "drift"
    assert round_drift["shifted"]
    assert round_drift["n_new"] == 200
    with storage.read_sessions() as session:
        assert latest_drift(session, seeded.project_id)["source"] == "round"
        [gauges] = [g for g in project_gauges(session) if g.project_id == seeded.project_id]
    assert gauges.drift_shifted is True
    assert gauges.drift_psi["embedding"] > 0.25
    assert gauges.model_stale is False
    assert gauges.model_labels_behind == 0
    scraped = {(s.name, s.labels.get("view")): s.value
               for family in text_string_to_metric_families(
                   generate_latest(_registry(storage)).decode())
               for s in family.samples if s.labels.get("project_id") == str(seeded.project_id)}
    assert scraped[("activelabel_drift_shifted", None)] == 1
    assert scraped[("activelabel_drift_psi", "embedding")] > 0.25
    assert scraped[("activelabel_model_stale", None)] == 0


def test_an_import_like_the_training_data_is_no_shift(trained: Any) -> None:
    storage, seeded, news = trained
    result = _import(storage, seeded, news["Business"][200:300] + news["Sci/Tech"][200:300])
    drift = result["drift"]
    assert drift is not None
    assert not drift["shifted"], json.dumps(drift)
    # the worst of the projected directions on 200 new rows: noise reaches "some change"
    # (0.1-0.25; 0.21 with character n-grams in the features), the KS test keeps it unflagged
    assert drift["embedding_psi"] < 0.25
    assert drift["embedding_p"] >= 0.01
    assert result["drift_round_id"] is None
    with storage.read_sessions() as session:
        assert all(r.status == "done" for r in list_rounds(session, seeded.project_id))
        assert latest_drift(session, seeded.project_id)["source"] == "import"


def test_retrain_on_drift_off_reports_the_shift_without_a_round(
        engine_storage: Storage, shared_data: Path) -> None:
    news = _news(shared_data)
    seeded = new_project(engine_storage, labels=CLASSES,
                         settings={"batch_size": 20, "retrain_on_drift": False})
    first = news["Business"][:200] + news["Sci/Tech"][:200]
    _import(engine_storage, seeded, first)
    label_rows(engine_storage, seeded, list(range(0, 400, 4)),
               [first[r]["_y"] for r in range(0, 400, 4)])
    _round(engine_storage, seeded)
    result = _import(engine_storage, seeded, news["Sports"][:200])
    assert result["drift"]["shifted"]
    assert result["drift_round_id"] is None


def test_a_stale_model_is_flagged_and_queues_a_round(trained: Any) -> None:
    storage, seeded, _ = trained
    with storage.read_sessions() as session:
        fresh = staleness(session, seeded.project_id)
    assert fresh is not None
    assert not fresh["stale"]
    with storage.sessions() as session, session.begin():  # the model and its round: 8 days old
        for mv in session.execute(select(ModelVersion).where(
                ModelVersion.project_id == seeded.project_id)).scalars():
            mv.created_at = mv.created_at - timedelta(days=8)
        for rnd in session.execute(select(Round).where(
                Round.project_id == seeded.project_id)).scalars():
            if rnd.finished_at is not None:
                rnd.finished_at = rnd.finished_at - timedelta(days=8)
    with storage.read_sessions() as session:
        old_but_nothing_new = staleness(session, seeded.project_id)
    assert old_but_nothing_new is not None
    assert not old_but_nothing_new["stale"]
    label_rows(storage, seeded, [1, 2], ["Business", "Business"])
    with storage.sessions() as session, session.begin():
        state = staleness(session, seeded.project_id)
        assert state is not None
        assert state["stale"], state
        assert "8.0 days old" in state["reasons"][0]
        queued = request_stale_rounds(session)
        assert len(queued) == 1
        assert request_stale_rounds(session) == []  # one round at a time
        rnd = session.get(Round, queued[0])
        assert rnd is not None
        rnd.status = "failed"  # the stale round failed: no new one every minute
        session.flush()
        assert request_stale_rounds(session) == []
