"""Items (JSON list, paging, one item with history and provenance), file imports and jobs."""

from __future__ import annotations

from sqlalchemy import select

from activelabel.labeling.imports import run_import
from activelabel.store import create_round, finish_round, record_selection
from activelabel.store.models import Job
from tests.support.api import Api, assert_error


def test_post_items_reports_rejected_rows_and_duplicates(api: Api) -> None:
    owner = api.person("owner")
    pid = api.project(owner)
    rows = [{"external_id": "a", "data": {"text": "one"}},
            {"external_id": "b", "data": {"text": "two"}, "split": "holdout"},
            {"external_id": "a", "data": {"text": "again"}},
            {"data": {"text": "no id"}},
            {"external_id": "c", "data": {"text": "bad split"}, "split": "train"},
            "not an object",
            {"external_id": "d", "data": {"text": "three"}, "split": "gold"}]
    answer = api.post(f"/projects/{pid}/items", owner, json=rows)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["inserted"] == 3
    assert body["duplicates"] == 1
    assert body["rejected_count"] == 3
    assert [r["line"] for r in body["rejected"]] == [4, 5, 6]
    assert "external_id" in body["rejected"][0]["reason"]
    assert "train" in body["rejected"][1]["reason"]
    assert body["duplicate_rows"] == [{"line": 3, "index": 2, "external_id": "a",
                                       "reason": "external_id already in the project"}]
    again = api.post(f"/projects/{pid}/items", owner, json=rows[:2]).json()
    assert again["inserted"] == 0
    assert again["duplicates"] == 2
    error = assert_error(api.post(f"/projects/{pid}/items", owner, json={"external_id": "x"}),
                         422, "invalid_input")
    assert error["details"][0]["field"] == "body"
    reviewer = api.member(pid, "reviewer")
    assert_error(api.post(f"/projects/{pid}/items", reviewer, json=rows), 403, "forbidden")
    assert_error(api.post(f"/projects/{pid}/items", api.person("out"), json=rows),
                 404, "not_found")


def test_list_items_pages_by_id_and_filters_by_split(api: Api) -> None:
    owner = api.person("owner")
    pid = api.project(owner, n_items=5)
    api.post(f"/projects/{pid}/items", owner, json=[
        {"external_id": f"h{i}", "data": {"text": "h"}, "split": "holdout"} for i in range(2)])
    first = api.get(f"/projects/{pid}/items", owner, params={"limit": 3}).json()
    assert [i["external_id"] for i in first["items"]] == ["x0", "x1", "x2"]
    assert first["items"][0]["data"] == {"text": "item 0", "secret": "s0"}
    rest = api.get(f"/projects/{pid}/items", owner,
                   params={"limit": 3, "after": first["next_after"]}).json()
    assert [i["external_id"] for i in rest["items"]] == ["x3", "x4", "h0"]
    last = api.get(f"/projects/{pid}/items", owner,
                   params={"limit": 3, "after": rest["next_after"]}).json()
    assert [i["external_id"] for i in last["items"]] == ["h1"]
    assert last["next_after"] is None
    holdout = api.get(f"/projects/{pid}/items", owner, params={"split": "holdout"}).json()
    assert [i["external_id"] for i in holdout["items"]] == ["h0", "h1"]
    assert_error(api.get(f"/projects/{pid}/items", owner, params={"split": "train"}),
                 422, "invalid_input")
    assert_error(api.get(f"/projects/{pid}/items", owner, params={"limit": 0}),
                 422, "invalid_input")
    assert_error(api.get(f"/projects/{pid}/items", api.member(pid, "annotator")),
                 403, "forbidden")


def test_item_shows_revision_history_and_provenance(api: Api) -> None:
    owner = api.person("owner")
    pid = api.project(owner, n_items=3)
    ann = api.member(pid, "annotator")
    items = api.get(f"/projects/{pid}/items", owner).json()["items"]
    item_id = items[1]["id"]
    with api.storage.sessions() as session, session.begin():
        rnd = create_round(session, pid, strategy="margin", batch_size=2)
        record_selection(session, pid, rnd.id, [item_id, items[2]["id"]], [0.9, 0.4])
        finish_round(session, pid, rnd.id, n_labels_used=0)
        round_id, number = rnd.id, rnd.number
    first = api.post(f"/projects/{pid}/annotations", ann,
                     json={"item_id": item_id, "labels": ["pos"], "duration_ms": 800})
    second = api.post(f"/projects/{pid}/annotations", ann,
                      json={"item_id": item_id, "labels": ["neg"], "duration_ms": 500})
    assert first.status_code == second.status_code == 201
    detail = api.get(f"/projects/{pid}/items/{item_id}", owner).json()
    assert detail["external_id"] == "x1"
    assert detail["data"]["secret"] == "s1"
    history = detail["history"]
    assert [(r["kind"], r["labels"], r["is_current"]) for r in history] == [
        ("label", ["pos"], False), ("correction", ["neg"], True)]
    assert history[1]["supersedes_id"] == history[0]["id"]
    assert history[0]["username"] == ann.username
    assert history[0]["duration_ms"] == 800
    assert history[0]["round_id"] == round_id
    assert [r["labels"] for r in detail["current"]] == [["neg"]]
    assert detail["provenance"] == [{"round_id": round_id, "round": number, "rank": 0,
                                     "score": 0.9, "strategy": "margin", "model_version": None}]
    other = api.project(owner, n_items=1)
    assert_error(api.get(f"/projects/{other}/items/{item_id}", owner), 404, "not_found")
    assert_error(api.get(f"/projects/{pid}/items/{item_id}", ann), 403, "forbidden")


def test_import_upload_runs_as_a_job(api: Api) -> None:
    owner = api.person("owner")
    pid = api.project(owner)
    annotator, outsider = api.member(pid, "annotator"), api.person("out")
    content = (b'{"external_id": "a", "data": {"text": "one"}}\n'
               b'{"external_id": "b", "text": "flat row"}\n'
               b'not json\n'
               b'{"external_id": "a", "data": {"text": "dup"}}\n')
    answer = api.post(f"/projects/{pid}/imports", owner,
                      files={"file": ("rows.jsonl", content, "application/octet-stream")},
                      data={"split": "holdout"})
    assert answer.status_code == 202, answer.text
    job_id = answer.json()["job_id"]
    job = api.get(f"/projects/{pid}/jobs/{job_id}", annotator).json()
    assert job["kind"] == "import"
    assert job["status"] == "queued"
    assert job["payload"]["split"] == "holdout"
    assert "path" not in job["payload"]
    assert api.get(f"/jobs/{job_id}", owner).json()["id"] == job_id
    assert [j["id"] for j in api.get(f"/projects/{pid}/jobs", annotator).json()] == [job_id]
    assert_error(api.get(f"/jobs/{job_id}", outsider), 404, "not_found")
    assert_error(api.get(f"/projects/{pid}/jobs", outsider), 404, "not_found")
    with api.storage.sessions() as session:
        stored = session.execute(select(Job).where(Job.id == job_id)).scalar_one()
    result = run_import(api.storage, stored, progress=lambda _: None)
    assert result["inserted"] == 2
    assert result["duplicates"] == 1
    assert [r["line"] for r in result["rejected"]] == [3]
    items = api.get(f"/projects/{pid}/items", owner).json()["items"]
    assert {(i["external_id"], i["split"]) for i in items} == {("a", "holdout"),
                                                              ("b", "holdout")}


def test_import_validation_and_roles(api: Api) -> None:
    owner = api.person("owner")
    pid = api.project(owner)
    file = {"file": ("rows.jsonl", b'{"external_id": "a", "data": {}}\n', "text/plain")}
    error = assert_error(api.post(f"/projects/{pid}/imports", owner,
                                  files={"file": ("rows.xlsx", b"xx", "text/plain")}),
                         400, "invalid_input")
    assert ".jsonl" in error["message"]
    assert_error(api.post(f"/projects/{pid}/imports", owner, json={"file": "x"}),
                 400, "invalid_input")
    assert_error(api.post(f"/projects/{pid}/imports", owner, files={"other": file["file"]}),
                 400, "invalid_input")
    assert_error(api.post(f"/projects/{pid}/imports", owner, files=file,
                          data={"split": "train"}), 400, "invalid_input")
    # A refused mapping is refused before the file is kept: no upload left behind.
    assert_error(api.post(f"/projects/{pid}/imports", owner, files=file,
                          data={"mapping": '{"columns": {"data": "nonsense"}}'}),
                 400, "invalid_input")
    assert_error(api.post(f"/projects/{pid}/imports", api.member(pid, "reviewer"), files=file),
                 403, "forbidden")
    assert_error(api.post(f"/projects/{pid}/imports", api.person("out"), files=file),
                 404, "not_found")
    assert_error(api.post(f"/projects/{pid}/imports", files=file), 401, "unauthorized")
    assert api.get(f"/projects/{pid}/jobs", owner).json() == []
    assert list((api.storage.location.uploads_dir / f"project_{pid}").glob("*")) == []
