"""Rounds, model versions (activation = rollback + re-rank), export, stats and audit."""

from __future__ import annotations

import csv
import io
import json

import pyarrow.parquet as pq

from activelabel.store import (
    activate_model_version,
    create_model_version,
    finish_round,
    record_selection,
    start_round,
)
from tests.support.api import Api, Person, assert_error


def _label_all(api: Api, pid: int, who: Person, label: str) -> list[int]:
    tasks = api.get(f"/projects/{pid}/tasks/next", who, params={"n": 100}).json()
    for task in tasks:
        answer = api.post(f"/projects/{pid}/annotations", who, json={
            "item_id": task["item"]["id"], "labels": [label], "duration_ms": 1200})
        assert answer.status_code == 201, answer.text
    return [t["item"]["id"] for t in tasks]


def test_request_round_and_read_it_back(api: Api) -> None:
    owner = api.person("owner")
    pid = api.project(owner, n_items=4, settings={"batch_size": 2, "strategy": "margin"})
    rev, ann = api.member(pid, "reviewer"), api.member(pid, "annotator")
    for who in (rev, ann):
        assert_error(api.post(f"/projects/{pid}/rounds", who), 403, "forbidden")
    assert_error(api.post(f"/projects/{pid}/rounds", api.person("out")), 404, "not_found")
    answer = api.post(f"/projects/{pid}/rounds", owner)
    assert answer.status_code == 202, answer.text
    accepted = answer.json()
    assert accepted["created"] is True
    assert accepted["status"] == "queued"
    again = api.post(f"/projects/{pid}/rounds", owner).json()
    assert again["round_id"] == accepted["round_id"]
    assert again["created"] is False
    job = api.get(f"/projects/{pid}/jobs/{accepted['job_id']}", ann).json()
    assert job["kind"] == "round"
    assert job["payload"]["round_id"] == accepted["round_id"]
    # Finish it the way the worker does, then read it through the API.
    items = [i["id"] for i in api.get(f"/projects/{pid}/items", owner).json()["items"]]
    round_id = accepted["round_id"]
    with api.storage.sessions() as session, session.begin():
        start_round(session, pid, round_id)
        model = create_model_version(session, pid, round_id=round_id, n_train=3,
                                     metrics={"accuracy": 0.8})
        activate_model_version(session, pid, model.version)
        record_selection(session, pid, round_id, [items[2], items[0]], [0.9, 0.7],
                         model_version_id=model.id)
        finish_round(session, pid, round_id, model_version_id=model.id, n_labels_used=3,
                     metrics={"accuracy": 0.8, "macro_f1": 0.7, "ece": 0.1},
                     gain={"accuracy": 0.05},
                     timings={"train_s": 0.1, "score_s": 0.2, "select_s": 0.01})
    listed = api.get(f"/projects/{pid}/rounds", rev).json()
    assert [(r["number"], r["status"], r["model_version"]) for r in listed] == [
        (accepted["number"], "done", model.version)]
    detail = api.get(f"/projects/{pid}/rounds/{round_id}", rev).json()
    assert detail["n_labels_used"] == 3
    assert detail["metrics"]["macro_f1"] == 0.7
    # recorded before gains named their measure: a classifier's is its accuracy
    assert detail["gain"] == {"accuracy": 0.05, "measure": "accuracy", "score": 0.05}
    assert listed[0]["gain"] == detail["gain"]
    assert set(detail["timings"]) == {"train_s", "score_s", "select_s"}
    assert [(s["external_id"], s["rank"], s["score"], s["model_version"])
            for s in detail["selected"]] == [("x2", 0, 0.9, 1), ("x0", 1, 0.7, 1)]
    first = api.get(f"/projects/{pid}/rounds/{round_id}", rev, params={"limit": 1}).json()
    assert [s["external_id"] for s in first["selected"]] == ["x2"]
    assert first["model_version"] == detail["model_version"] == model.version
    none = api.get(f"/projects/{pid}/rounds/{round_id}", rev, params={"limit": 0}).json()
    assert none["selected"] == []
    assert none["n_labels_used"] == 3
    assert_error(api.get(f"/projects/{pid}/rounds/{round_id}", rev, params={"limit": -1}),
                 422, "invalid_input")
    assert_error(api.get(f"/projects/{pid}/rounds", ann), 403, "forbidden")
    assert_error(api.get(f"/projects/{pid}/rounds/{round_id}", ann), 403, "forbidden")
    assert_error(api.get(f"/projects/{pid}/rounds/999999", rev), 404, "not_found")


def test_activating_a_model_version_rolls_back_and_queues_a_rerank(api: Api) -> None:
    owner = api.person("owner")
    pid = api.project(owner, n_items=2)
    rev = api.member(pid, "reviewer")
    with api.storage.sessions() as session, session.begin():
        for _ in range(2):
            made = create_model_version(session, pid, n_train=5)
            activate_model_version(session, pid, made.version)
    models = api.get(f"/projects/{pid}/models", rev).json()
    assert [(m["version"], m["is_active"]) for m in models] == [(1, False), (2, True)]
    assert_error(api.post(f"/projects/{pid}/models/1/activate", rev), 403, "forbidden")
    assert_error(api.post(f"/projects/{pid}/models/7/activate", owner), 404, "not_found")
    answer = api.post(f"/projects/{pid}/models/1/activate", owner)
    assert answer.status_code == 202, answer.text
    body = answer.json()
    assert body["model"]["version"] == 1
    assert body["model"]["is_active"] is True
    assert body["created"] is True
    assert [m["is_active"] for m in api.get(f"/projects/{pid}/models", owner).json()] == [
        True, False]
    job = api.get(f"/projects/{pid}/jobs/{body['job_id']}", owner).json()
    assert job["payload"]["reason"] == "rollback"
    assert job["payload"]["model_version"] == 1
    event = next(e for e in api.get(f"/projects/{pid}/audit", owner).json()
                 if e["action"] == "activate")
    assert event["before"] == {"active_version": 2}
    assert event["after"] == {"active_version": 1}
    assert event["actor_id"] == owner.id
    assert_error(api.get(f"/projects/{pid}/models", api.member(pid, "annotator")),
                 403, "forbidden")


def test_export_streams_labels_with_provenance_in_every_format(api: Api) -> None:
    owner = api.person("owner")
    pid = api.project(owner, n_items=3, private_fields=["secret"])
    ann, rev = api.member(pid, "annotator"), api.member(pid, "reviewer")
    labeled = _label_all(api, pid, ann, "pos")
    assert len(labeled) == 3
    answer = api.get(f"/projects/{pid}/export", rev, params={"format": "jsonl"})
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"].startswith("application/x-ndjson")
    assert "attachment" in answer.headers["content-disposition"]
    rows = [json.loads(line) for line in answer.text.splitlines()]
    assert [r["external_id"] for r in rows] == ["x0", "x1", "x2"]
    assert rows[0]["labels"] == "pos"
    assert rows[0]["annotations"][0]["annotator"] == ann.username
    assert rows[0]["annotations"][0]["duration_ms"] == 1200
    assert "secret" not in rows[0]["data"]
    private = api.get(f"/projects/{pid}/export", owner,
                      params={"format": "jsonl", "include_private": "true"}).text
    assert json.loads(private.splitlines()[0])["data"]["secret"] == "s0"
    assert_error(api.get(f"/projects/{pid}/export", rev, params={"include_private": "true"}),
                 403, "forbidden")
    table = list(csv.DictReader(io.StringIO(
        api.get(f"/projects/{pid}/export", owner, params={"format": "csv"}).text)))
    assert [r["external_id"] for r in table] == ["x0", "x1", "x2"]
    parquet = api.get(f"/projects/{pid}/export", owner, params={"format": "parquet"})
    assert parquet.status_code == 200
    assert pq.read_table(io.BytesIO(parquet.content)).num_rows == 3
    error = assert_error(api.get(f"/projects/{pid}/export", owner, params={"format": "xml"}),
                         422, "invalid_input")
    assert "jsonl" in error["message"]
    assert_error(api.get(f"/projects/{pid}/export", ann), 403, "forbidden")
    assert_error(api.get(f"/projects/{pid}/export", api.person("out")), 404, "not_found")


def test_stats_count_items_labels_leases_and_rounds(api: Api) -> None:
    owner = api.person("owner")
    pid = api.project(owner, n_items=4)
    api.post(f"/projects/{pid}/items", owner, json=[
        {"external_id": "h", "data": {"text": "h"}, "split": "holdout"}])
    ann, other = api.member(pid, "annotator"), api.member(pid, "annotator")
    tasks = api.get(f"/projects/{pid}/tasks/next", ann, params={"n": 2}).json()
    api.post(f"/projects/{pid}/annotations", ann, json={"item_id": tasks[0]["item"]["id"],
                                                        "labels": ["neg"]})
    api.get(f"/projects/{pid}/tasks/next", other, params={"n": 1})
    api.post(f"/projects/{pid}/flags", other, json={"item_id": tasks[0]["item"]["id"],
                                                    "reason": "unclear"})
    api.post(f"/projects/{pid}/rounds", owner)
    stats = api.get(f"/projects/{pid}/stats", owner).json()
    assert stats["items"] == {"pool": 4, "holdout": 1, "gold": 0, "total": 5}
    assert stats["labeled"] == 1
    assert stats["leased"] == 2
    assert stats["open_flags"] == 1
    assert stats["jobs_waiting"] == 1
    assert stats["labels_per_annotator"] == [{"user_id": ann.id, "username": ann.username,
                                              "labels": 1}]
    assert [r["status"] for r in stats["last_rounds"]] == ["queued"]
    assert stats["active_model_version"] is None
    assert stats["features"]["featurizer"] == "text"
    assert stats["features"]["built_for"] is None  # no round has built them yet
    assert_error(api.get(f"/projects/{pid}/stats", ann), 403, "forbidden")
