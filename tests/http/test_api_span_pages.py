"""Every page-facing GET of a span project answers (no 500) after labels and a trained
round: the dashboards, stats, review and exports read spans as they read labels."""

from __future__ import annotations

from typing import Any

from sqlalchemy import update

from activelabel.store.models import Round
from tests.labeling.test_span_rounds import sentence
from tests.support.api import Api

PATHS = ["", "/agreement", "/annotators", "/audit", "/confidence", "/dashboard", "/decisions",
         "/export?format=jsonl", "/export?format=csv", "/export?format=conll",
         "/export?format=spans_jsonl", "/export/bundle", "/flags", "/items", "/jobs",
         "/members", "/models", "/outlook", "/progress", "/relabel", "/review", "/rounds",
         "/stats", "/versions", "/tasks/next", "/calibrations", "/snapshots"]


def test_span_project_pages_answer(api: Api) -> None:
    owner = api.person("owner")
    # three types, two columns of a span model's probabilities
    pid = api.project(owner, labels=["person", "location", "organization"], task="spans",
                      settings={"batch_size": 10, "retrain_every_labels": 10_000})
    rows: list[dict[str, Any]] = []
    truth = {}
    for i in range(40):
        text, spans = sentence(i)
        rows.append({"external_id": f"s{i}", "data": {"text": text},
                     "split": "holdout" if i >= 32 else "pool"})
        truth[f"s{i}"] = spans
    assert api.post(f"/projects/{pid}/items", owner, json=rows).json()["inserted"] == 40
    second = api.member(pid, "annotator")
    items = api.get(f"/projects/{pid}/items", owner, params={"limit": 100}).json()["items"]
    for item in items[:20] + items[32:]:
        for who in (owner, second):
            answer = api.post(f"/projects/{pid}/annotations", who, json={
                "item_id": item["id"], "labels": truth[item["external_id"]]})
            assert answer.status_code == 201, answer.text
    _round(api, pid, owner)
    for path in PATHS:
        answer = api.get(f"/projects/{pid}{path}", owner)
        assert answer.status_code < 500, (path, answer.text[:500])
        assert answer.status_code == 200, (path, answer.text[:300])
    # what the dashboard draws: labeled sentences holding each entity type (every other
    # sentence names a person and a place), and the model's confidence over the 12
    # unlabeled pool sentences (a span model's probability of its tagging)
    labeled = [truth[i["external_id"]] for i in items[:20] + items[32:]]
    with_entities = sum(1 for spans in labeled if spans)
    assert 0 < with_entities < len(labeled)
    counts = api.get(f"/projects/{pid}/dashboard", owner).json()["label_counts"]
    assert counts == {"person": with_entities, "location": with_entities, "organization": 0}
    confidence = api.get(f"/projects/{pid}/confidence", owner, params={"bins": 5}).json()
    assert confidence["current"] is not None, confidence
    assert confidence["current"]["n"] == 12
    # the span strategy picks, not the classifier's strategy setting ("auto")
    span_strategy = api.get(f"/projects/{pid}", owner).json()["settings"]["span_strategy"]
    assert api.get(f"/projects/{pid}/outlook", owner).json()["strategy"] == span_strategy
    with api.storage.sessions() as session, session.begin():  # as rounds recorded it before
        session.execute(update(Round).where(Round.project_id == pid).values(strategy="auto"))
    assert api.get(f"/projects/{pid}/outlook", owner).json()["strategy"] == span_strategy
    probs = api.storage.arrays.load(pid, "probs")
    pool = [i["row"] for i in items[20:32]]
    assert abs(confidence["current"]["mean"] - float(probs[pool, 0].mean())) < 1e-6


def _round(api: Api, pid: int, owner: Any) -> None:
    from activelabel.labeling.rounds import request_round
    from tests.support.projects import run_job

    with api.storage.sessions() as session, session.begin():
        rnd, _ = request_round(session, pid, requested_by=None, reason="test")
        job_id = rnd.job_id
    assert job_id is not None
    result = run_job(api.storage, job_id)
    assert result["model_version"] is not None
