"""Uploads with a preview and a column mapping, imported labels and predictions through the
API: what annotators see, the suggestions before a model, the comparison, own vectors."""

from __future__ import annotations

import io
import json
from typing import Any

import numpy as np
from sqlalchemy import select

from activelabel.labeling.imports import run_import
from activelabel.store.models import Job
from tests.support.api import Api, assert_error

#: Six items labeled already (the rest have no label yet), all with a model's prediction.
ROWS = [{"id": f"s{i}", "text": f"message {i}",
         "label": None if i >= 6 else "spam" if i % 3 == 0 else "ham",
         "pred": "spam" if i % 2 == 0 else "ham", "score": 0.5 + i / 100}
        for i in range(12)]


def _file(rows: list[dict[str, Any]]) -> dict[str, Any]:
    body = "\n".join(json.dumps(r) for r in rows).encode()
    return {"file": ("sms.jsonl", body, "application/octet-stream")}


def _run(api: Api, job_id: int) -> dict[str, Any]:
    with api.storage.sessions() as session:
        job = session.execute(select(Job).where(Job.id == job_id)).scalar_one()
    return run_import(api.storage, job, progress=lambda _: None)


def test_upload_preview_mapping_and_what_annotators_see(api: Api) -> None:
    owner = api.person("owner")
    pid = api.project(owner, labels=["ham", "spam"], settings={
        "suggestion_min_confidence": 0.575, "suggestion_display": "always"})
    annotator = api.member(pid, "annotator")
    answer = api.post(f"/projects/{pid}/uploads", owner, files=_file(ROWS))
    assert answer.status_code == 201, answer.text
    preview = answer.json()
    assert preview["columns"] == ["id", "text", "label", "pred", "score"]
    roles = {p["column"]: p for p in preview["proposal"]}
    assert roles["label"]["role"] == "label"
    assert roles["label"]["answer_like"] is True
    assert "never shown" in roles["label"]["reason"]
    assert (roles["pred"]["role"], roles["score"]["role"]) == ("prediction", "prediction_score")
    assert len(preview["rows"]) == 12
    upload = preview["upload"]
    # Only the owner previews and imports.
    assert_error(api.get(f"/projects/{pid}/uploads/{upload}", annotator), 403, "forbidden")
    assert_error(api.post(f"/projects/{pid}/uploads", annotator, files=_file(ROWS)),
                 403, "forbidden")
    # A name the project holds no upload under: not found, however it is spelled.
    for unknown in ("..x.jsonl", "0123456789ab-none.jsonl"):
        error = assert_error(api.get(f"/projects/{pid}/uploads/{unknown}", owner),
                             404, "not_found")
        assert f"no upload {unknown!r} in project {pid} (an upload is removed once its " \
            "import is done, or once unused for the server's upload_keep_hours): upload " \
            "the file" in error["message"]
        error = assert_error(api.post(f"/projects/{pid}/uploads/{unknown}/import", owner,
                                      json={}), 404, "not_found")
        assert f"no upload {unknown!r}" in error["message"]
    bad = api.post(f"/projects/{pid}/uploads/{upload}/import", owner,
                   json={"mapping": {"columns": {"label": "shown"}}})
    message = assert_error(bad, 422, "invalid_input")["message"]
    assert "body.mapping.columns.label" in message
    assert "content|private|label" in message  # the roles it may take
    accepted = api.post(f"/projects/{pid}/uploads/{upload}/import", owner,
                        json={"mapping": preview["mapping"]})
    assert accepted.status_code == 202, accepted.text
    result = _run(api, accepted.json()["job_id"])
    assert (result["inserted"], result["labels"], result["predictions"]) == (12, 6, 12)
    assert api.get(f"/projects/{pid}/import-mapping", owner).json() == preview["mapping"]
    # The label page's tasks: no answer in the data; the prediction as the suggestion.
    tasks = api.get(f"/projects/{pid}/tasks/next", annotator, params={"n": 5}).json()
    assert tasks
    score = {r["id"]: r["score"] for r in ROWS}
    for task in tasks:
        assert set(task["item"]["data"]) == {"text"}
        if score[task["item"]["external_id"]] < 0.575:  # less sure than the project's threshold
            assert task["suggestion"] is None
            continue
        assert task["suggestion"]["source"] == "imported"
        assert task["suggestion"]["label"] in ("ham", "spam")
    # after_answer: the imported prediction comes with the answer, not with the task
    later = api.patch(f"/projects/{pid}", owner, json={"settings": {
        "suggestion_display": "after_answer"}})
    assert later.status_code == 200, later.text
    held = api.get(f"/projects/{pid}/tasks/next", annotator, params={"n": 5}).json()
    assert [t["suggestion"] for t in held] == [None] * len(held)
    answered = api.post(f"/projects/{pid}/tasks/suggestions", annotator, json={"answers": [
        {"item_id": t["item"]["id"], "labels": ["ham"]} for t in tasks]}).json()
    assert [a["suggestion"] for a in answered] == [t["suggestion"] for t in tasks]
    # "never" holds for imported predictions as for a model's
    never = api.patch(f"/projects/{pid}", owner, json={"settings": {"suggestion_display": "never"}})
    assert never.status_code == 200, never.text
    again = api.get(f"/projects/{pid}/tasks/next", annotator, params={"n": 5}).json()
    assert again
    assert [t["suggestion"] for t in again] == [None] * len(again)
    comparison = api.get(f"/projects/{pid}/predictions/comparison", owner).json()
    agree = sum(r["label"] == r["pred"] for r in ROWS[:6])
    assert (comparison["compared"], comparison["agree"]) == (6, agree)
    assert comparison["imported_labels"] == 6
    assert_error(api.get(f"/projects/{pid}/predictions/comparison", annotator),
                 403, "forbidden")


def test_the_saved_mapping_is_changeable_and_used_by_plain_imports(api: Api) -> None:
    owner = api.person("owner")
    pid = api.project(owner, labels=["ham", "spam"])
    assert api.get(f"/projects/{pid}/import-mapping", owner).json() is None
    changed = api.request("PUT", f"/projects/{pid}/import-mapping", owner,
                          json={"columns": {"label": "label", "pred": "ignore",
                                            "score": "ignore"}})
    assert changed.status_code == 200, changed.text
    assert_error(api.request("PUT", f"/projects/{pid}/import-mapping", owner,
                             json={"columns": {"a": "annotator"}}), 400, "invalid_input")
    assert_error(api.request("PUT", f"/projects/{pid}/import-mapping", api.member(pid, "reviewer"),
                             json={"columns": {}}), 403, "forbidden")
    job = api.post(f"/projects/{pid}/imports", owner, files=_file(ROWS)).json()["job_id"]
    result = _run(api, job)
    assert (result["labels"], result["predictions"]) == (6, 0)
    # A mapping sent with the form wins and is kept.
    form = api.post(f"/projects/{pid}/imports", owner, files=_file(ROWS[:2]),
                    data={"mapping": json.dumps({"columns": {"label": "private"}})})
    assert form.status_code == 202, form.text
    assert api.get(f"/projects/{pid}/import-mapping", owner).json() == {
        "columns": {"label": "private"}}
    assert_error(api.post(f"/projects/{pid}/imports", owner, files=_file(ROWS[:2]),
                          data={"mapping": "{not json"}), 400, "invalid_input")


def test_own_vectors_by_external_id(api: Api) -> None:
    owner = api.person("owner")
    pid = api.project(owner, labels=["pos", "neg"], n_items=3)
    buffer = io.BytesIO()
    np.save(buffer, np.ones((2, 4), dtype=np.float32))
    answer = api.post(f"/projects/{pid}/vectors", owner, files={
        "file": ("v.npy", buffer.getvalue(), "application/octet-stream"),
        "ids": ("ids.txt", b"x0\nx2\n", "text/plain")})
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"stored": 2, "dim": 4, "items_without_vector": 1}
    wrong = api.post(f"/projects/{pid}/vectors", owner, files={
        "file": ("v.npy", buffer.getvalue(), "application/octet-stream"),
        "ids": ("ids.txt", b"x0\nzz\n", "text/plain")})
    assert "'zz' is no item" in assert_error(wrong, 400, "invalid_input")["message"]
    assert_error(api.post(f"/projects/{pid}/vectors", api.member(pid, "reviewer"), files={
        "file": ("v.npy", buffer.getvalue(), "application/octet-stream")}), 403, "forbidden")
