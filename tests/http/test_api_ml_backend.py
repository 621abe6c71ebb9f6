"""Label Studio's ML backend protocol per project: health, setup, predict and webhook with the
request shapes of ``label-studio-ml`` and Label Studio, authenticated by an API token (Basic
or Bearer), on SQLite and PostgreSQL."""

from __future__ import annotations

import base64
from typing import Any

import pytest

from activelabel import features
from activelabel.store import current_labels, get_user_by_name, list_rounds, role_of
from tests.support.api import Api, Person, assert_error
from tests.support.projects import run_job

POSITIVE = ["good great fine", "great lovely good", "fine good nice", "lovely nice great"]
NEGATIVE = ["bad awful poor", "awful terrible bad", "poor bad dire", "terrible dire awful"]
CONFIG = """
<View>
  <Text name="review" value="$text"/>
  <Choices name="sentiment" toName="review" choice="single">
    <Choice value="pos"/>
    <Choice value="neg"/>
  </Choices>
</View>"""


def _basic(who: Person, user: str = "label-studio") -> dict[str, str]:
    raw = base64.b64encode(f"{user}:{who.token}".encode()).decode()
    return {"Authorization": f"Basic {raw}"}


def _ls(api: Api, method: str, pid: int, path: str, who: Person | None = None,
        **kw: Any) -> Any:
    headers = {} if who is None else _basic(who)
    return api.request(method, f"/projects/{pid}/ls-ml{path}", headers=headers, **kw)


def _trained_project(api: Api, owner: Person) -> tuple[int, list[dict[str, Any]]]:
    """A project with 16 reviews, 8 labeled and a model trained by a real round."""
    pid = api.project(owner, settings={"batch_size": 2,
                                       "featurizer_params": {"n_components": 4}})
    rows = [{"external_id": f"r{i}", "data": {"text": f"{text} {i}"}}
            for i, text in enumerate((POSITIVE + NEGATIVE) * 2)]
    assert api.post(f"/projects/{pid}/items", owner, json=rows).json()["inserted"] == 16
    items = api.get(f"/projects/{pid}/items", owner, params={"limit": 100}).json()["items"]
    for item in items[:8]:
        label = "pos" if int(item["external_id"][1:]) % 8 < 4 else "neg"
        answer = api.post(f"/projects/{pid}/annotations", owner,
                          json={"item_id": item["id"], "labels": [label]})
        assert answer.status_code == 201, answer.text
    queued = api.post(f"/projects/{pid}/rounds", owner).json()
    result = run_job(api.storage, queued["job_id"])
    assert result["model_version"] is not None, result
    return pid, items


def test_health_and_setup_check_the_token_and_the_config(api: Api) -> None:
    owner = api.person("owner")
    pid = api.project(owner)
    assert_error(_ls(api, "GET", pid, "/health"), 401, "unauthorized")
    bad = {"Authorization": "Basic " + base64.b64encode(b"user:nottoken").decode()}
    assert_error(api.get(f"/projects/{pid}/ls-ml/health", headers=bad), 401, "unauthorized")
    assert_error(api.get(f"/projects/{pid}/ls-ml/health", headers={"Authorization": "Basic @@"}),
                 401, "unauthorized")
    annotator = api.member(pid, "annotator")
    assert_error(_ls(api, "GET", pid, "/health", annotator), 403, "forbidden")
    assert_error(_ls(api, "GET", pid, "/health", api.person("out")), 404, "not_found")
    health = _ls(api, "GET", pid, "/health", owner)
    assert health.status_code == 200, health.text
    assert health.json() == {"status": "UP", "model_class": "activelabel",
                             "model_version": "activelabel-untrained"}
    assert api.get(f"/projects/{pid}/ls-ml/health", owner).json()["status"] == "UP"  # Bearer
    # label_studio_ml's own test request (tests/test_api.py::test_setup), then a real config.
    setup = _ls(api, "POST", pid, "/setup", owner,
                json={"project": "1.1000000000", "schema": "<View></View>", "extra_params": {}})
    assert_error(setup, 400, "invalid_input")
    assert "no Choices or Labels" in setup.json()["error"]["message"]
    ok = _ls(api, "POST", pid, "/setup", owner,
             json={"project": f"{pid}.1700000000", "schema": CONFIG,
                   "hostname": "http://localhost:8080", "access_token": "ls-token"})
    assert ok.status_code == 200, ok.text
    assert ok.json() == {"model_version": "activelabel-untrained"}
    other = CONFIG.replace('"neg"', '"negative"')
    differs = _ls(api, "POST", pid, "/setup", owner, json={"schema": other})
    assert_error(differs, 400, "invalid_input")
    assert "['negative']" in differs.json()["error"]["message"]
    assert_error(_ls(api, "POST", pid, "/setup", owner, json={"schema": "<View"}),
                 400, "invalid_input")


def test_predict_before_a_model_is_empty(api: Api) -> None:
    owner = api.person("owner")
    pid = api.project(owner, n_items=2)
    answer = _ls(api, "POST", pid, "/predict", owner, json={
        "tasks": [{"id": 1, "data": {"text": "item 0"}}], "label_config": CONFIG,
        "project": f"{pid}.1700000000", "params": {"login": None, "password": None,
                                                   "context": None}})
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"results": []}
    assert_error(_ls(api, "POST", pid, "/predict", owner, json={"label_config": CONFIG}),
                 422, "invalid_input")
    assert_error(_ls(api, "POST", pid, "/predict", owner, json={"tasks": [{"id": 1}]}),
                 400, "invalid_input")


def test_predict_gives_the_model_answer_with_its_confidence(api: Api) -> None:
    owner = api.person("owner")
    pid, items = _trained_project(api, owner)
    version = api.get(f"/projects/{pid}/models", owner).json()[0]["version"]
    known = items[10]  # r10: "fine good nice 10", unlabeled
    tasks = [
        {"id": 501, "data": {"text": known["data"]["text"]}, "meta": {},
         "annotations": [], "predictions": []},
        {"id": 502, "data": {"text": "great good lovely new text"}},
        {"id": 503, "data": {"text": "awful bad terrible new text"}},
        {"id": 504, "data": {"other": 1}, "meta": {"external_id": known["external_id"]}},
    ]
    answer = _ls(api, "POST", pid, "/predict", api.member(pid, "reviewer"), json={
        "tasks": tasks, "label_config": CONFIG, "project": f"{pid}.1700000000",
        "model_version": "whatever", "params": {"context": {}}})
    assert answer.status_code == 200, answer.text
    results = answer.json()["results"]
    assert len(results) == 4
    for result in results:
        assert result["model_version"] == f"activelabel-v{version}"
        assert 0.5 <= result["score"] <= 1.0
        region = result["result"][0]
        assert (region["from_name"], region["to_name"], region["type"]) == (
            "sentiment", "review", "choices")
        assert region["score"] == result["score"]
    assert results[1]["result"][0]["value"] == {"choices": ["pos"]}
    assert results[2]["result"][0]["value"] == {"choices": ["neg"]}
    # A known item reads the stored probabilities: the task found by meta.external_id
    # gets the same answer as the task found by the content of its data (run through the
    # model: its LSA coordinates, projected alone, differ in the last float32 digits).
    assert results[3]["result"][0]["value"] == results[0]["result"][0]["value"]
    assert results[3]["score"] == pytest.approx(results[0]["score"], abs=1e-6)
    # An item imported after the round (no stored probabilities yet) runs through the model.
    added = api.post(f"/projects/{pid}/items", owner, json=[
        {"external_id": "late", "data": {"text": "awful terrible dire late"}}])
    assert added.json()["inserted"] == 1
    late = _ls(api, "POST", pid, "/predict", owner, json={
        "tasks": [{"id": 9, "data": {"text": "x"}, "meta": {"external_id": "late"}}]})
    assert late.json()["results"][0]["result"][0]["value"] == {"choices": ["neg"]}
    # The answer annotators are shown for that item.
    lease = api.get(f"/projects/{pid}/tasks/next", owner, params={"n": 16}).json()
    shown = next(t["suggestion"] for t in lease if t["item"]["id"] == known["id"])
    assert results[0]["result"][0]["value"] == {"choices": [shown["label"]]}
    assert abs(results[0]["score"] - shown["confidence"]) < 1e-6  # float32 LSA, as above


def test_predict_without_the_sentence_model_here_answers_what_it_can(
        api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip(features.SENTENCE_MODEL_PACKAGE)
    owner = api.person("owner")
    pid, items = _trained_project(api, owner)  # its features read the sentence vectors

    def missing(texts: list[str]) -> Any:
        raise ImportError("sentence embeddings need the optional extra")

    monkeypatch.setattr(features, "sentence_vectors", missing)  # as in a process without it
    answer = _ls(api, "POST", pid, "/predict", owner, json={"tasks": [
        {"id": 1, "data": {"text": "great good lovely new text"}},
        {"id": 2, "data": {"other": 1}, "meta": {"external_id": items[10]["external_id"]}}]})
    assert answer.status_code == 200, answer.text
    new_text, known = answer.json()["results"]
    assert new_text["result"] == []  # no model to read it here: no prediction, no error
    assert known["result"][0]["value"] == {"choices": ["pos"]}  # the stored probabilities


def _webhook(task: dict[str, Any], annotation: dict[str, Any],
             action: str = "ANNOTATION_CREATED") -> dict[str, Any]:
    return {"action": action, "annotation": annotation, "task": task,
            "project": {"id": 7, "title": "reviews", "label_config": CONFIG}}


def test_webhook_records_labels_per_label_studio_annotator(api: Api) -> None:
    owner = api.person("owner")
    pid = api.project(owner, n_items=3, settings={"retrain_every_labels": 1})
    member = api.member(pid, "annotator")
    task = {"id": 9001, "data": {"text": "item 1", "secret": "s1"}, "meta": {}}
    first = {"id": 31, "completed_by": {"id": 5, "email": "ana@example.org"},
             "result": [{"from_name": "sentiment", "to_name": "review", "type": "choices",
                         "value": {"choices": ["pos"]}}],
             "created_at": "2026-01-02T03:04:05.000000Z",
             "updated_at": "2026-01-02T03:04:05.000000Z", "lead_time": 2.5,
             "was_cancelled": False, "task": 9001, "project": 7}
    annotator = api.member(pid, "reviewer")
    assert_error(_ls(api, "POST", pid, "/webhook", annotator, json=_webhook(task, first)),
                 403, "forbidden")
    answer = _ls(api, "POST", pid, "/webhook", owner, json=_webhook(task, first))
    assert answer.status_code == 201, answer.text
    body = answer.json()
    assert body["status"] == "ok"
    again = _ls(api, "POST", pid, "/webhook", owner, json=_webhook(task, first))
    assert again.json()["result"]["revision_id"] == body["result"]["revision_id"]  # retried
    second = {**first, "id": 32, "completed_by": 6, "created_username": f"{member.username}, 6",
              "result": [{"type": "choices", "value": {"choices": ["neg"]}}]}
    assert _ls(api, "POST", pid, "/webhook", owner,
               json=_webhook(task, second)).status_code == 201
    with api.storage.read_sessions() as session:
        labels = current_labels(session, pid)
        ana = get_user_by_name(session, "ls.ana@example.org")
        assert ana is not None
        assert role_of(session, pid, ana.id) == "annotator"
        assert sorted((c.annotator_id, tuple(c.labels)) for c in labels) == sorted(
            [(ana.id, ("pos",)), (member.id, ("neg",))])
        assert [c.created_at.year for c in labels if c.annotator_id == ana.id] == [2026]
        rounds = list_rounds(session, pid)
    assert len(rounds) == 1  # retrain_every_labels 1: a round is queued, none is run here
    updated = {**first, "updated_at": "2026-01-03T00:00:00Z",
               "result": [{"type": "choices", "value": {"choices": ["neg"]}}]}
    assert _ls(api, "POST", pid, "/webhook", owner,
               json=_webhook(task, updated, "ANNOTATION_UPDATED")).status_code == 201
    detail = api.get(f"/projects/{pid}/items/{body['result']['item_id']}", owner).json()
    ana_revisions = [r for r in detail["history"] if r["annotator_id"] == ana.id]
    assert [(r["kind"], r["labels"]) for r in ana_revisions] == [
        ("label", ["pos"]), ("correction", ["neg"])]
    assert ana_revisions[0]["duration_ms"] == 2500
    deleted = _ls(api, "POST", pid, "/webhook", owner,
                  json=_webhook(task, updated, "ANNOTATION_DELETED"))
    assert deleted.json()["result"]["withdrawn"] is True
    with api.storage.read_sessions() as session:
        assert [c.annotator_id for c in current_labels(session, pid)] == [member.id]
    # Label Studio's delete webhook names the annotations by id only.
    bulk = _ls(api, "POST", pid, "/webhook", owner, json={
        "action": "ANNOTATIONS_DELETED", "project": {"id": 7},
        "annotations": [{"id": 32}, {"id": 31}, {"id": 999}]})
    assert bulk.status_code == 201, bulk.text
    assert bulk.json()["result"]["withdrawn"] == 1  # 31 was withdrawn already, 999 unknown
    with api.storage.read_sessions() as session:
        assert current_labels(session, pid) == []
    assert_error(_ls(api, "POST", pid, "/webhook", owner, json={
        "action": "ANNOTATIONS_DELETED", "annotations": [{"id": "x"}]}), 400, "invalid_input")


def test_webhook_events_and_bad_bodies(api: Api) -> None:
    owner = api.person("owner")
    pid = api.project(owner, n_items=1)
    ignored = _ls(api, "POST", pid, "/webhook", owner,
                  json={"action": "PROJECT_UPDATED", "project": {"id": 1}})
    assert ignored.status_code == 200
    assert ignored.json() == {"status": "Unknown event"}
    # label_studio_ml's own test request (tests/test_api.py::test_webhook): no annotation.
    bare = _ls(api, "POST", pid, "/webhook", owner, json={
        "action": "ANNOTATION_CREATED", "project": {"id": 1, "label_config": "<View></View>"}})
    assert_error(bare, 400, "invalid_input")
    training = _ls(api, "POST", pid, "/webhook", owner,
                   json={"action": "START_TRAINING", "project": {"id": 1}})
    assert training.status_code == 201
    assert training.json()["result"]["queued"] is True
    unknown_label = _webhook({"id": 1, "data": {"text": "item 0", "secret": "s0"}},
                             {"id": 1, "completed_by": 1,
                              "result": [{"type": "choices", "value": {"choices": ["meh"]}}]})
    assert_error(_ls(api, "POST", pid, "/webhook", owner, json=unknown_label),
                 400, "invalid_input")
    new_task = _webhook({"id": 77, "data": {"text": "a task only Label Studio had"}},
                        {"id": 2, "completed_by": 1,
                         "result": [{"type": "choices", "value": {"choices": ["pos"]}}]})
    added = _ls(api, "POST", pid, "/webhook", owner, json=new_task)
    assert added.status_code == 201, added.text
    items = api.get(f"/projects/{pid}/items", owner).json()["items"]
    assert len(items) == 2
    assert {i["external_id"][:7] for i in items} >= {"sha256:"}
    assert_error(_ls(api, "POST", pid, "/webhook", owner, json={"no": "action"}),
                 400, "invalid_input")
