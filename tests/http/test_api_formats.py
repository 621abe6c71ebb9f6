"""Exports in other tools' formats through the API (Label Studio JSON, a Hugging Face folder
as a zip, spaCy JSONL) and a Label Studio export uploaded as an import, on SQLite and
PostgreSQL."""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from tests.support.api import Api, assert_error

DATA = Path(__file__).resolve().parents[1] / "data" / "formats"


def _labeled(api: Api) -> tuple[int, object]:
    owner = api.person("owner")
    pid = api.project(owner, n_items=4, private_fields=["secret"],
                      settings={"dataset_license": "cc-by-4.0"})
    items = api.get(f"/projects/{pid}/items", owner).json()["items"]
    for item, label in zip(items[:3], ["pos", "neg", "pos"], strict=True):
        assert api.post(f"/projects/{pid}/annotations", owner,
                        json={"item_id": item["id"], "labels": [label]}).status_code == 201
    return pid, owner


def test_exports_in_tool_formats(api: Api) -> None:
    pid, owner = _labeled(api)
    answer = api.get(f"/projects/{pid}/export", owner, params={"format": "labelstudio"})
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"].startswith("application/json")
    assert 'filename="project_' in answer.headers["content-disposition"]
    tasks = answer.json()
    assert [t["meta"]["external_id"] for t in tasks] == ["x0", "x1", "x2"]
    assert "secret" not in tasks[0]["data"]  # private fields stay out
    assert tasks[1]["annotations"][0]["result"][0]["value"] == {"choices": ["neg"]}

    spacy = api.get(f"/projects/{pid}/export", owner, params={"format": "spacy"})
    lines = [json.loads(x) for x in spacy.text.splitlines()]
    assert [(x["id"], x["label"]) for x in lines] == [("x0", "pos"), ("x1", "neg"),
                                                      ("x2", "pos")]

    hf = api.get(f"/projects/{pid}/export", owner, params={"format": "huggingface"})
    assert hf.headers["content-type"] == "application/zip"
    with zipfile.ZipFile(io.BytesIO(hf.content)) as bundle:
        card = bundle.read("README.md").decode()
        table = pq.read_table(pa.BufferReader(bundle.read("data/train-00000-of-00001.parquet")))
    assert 'license: "cc-by-4.0"' in card
    assert table.column("label").to_pylist() == [0, 1, 0]
    assert "secret" not in table.column_names

    reviewer = api.member(pid, "reviewer")
    assert api.get(f"/projects/{pid}/export", reviewer,
                   params={"format": "spacy"}).status_code == 200
    annotator = api.member(pid, "annotator")
    assert_error(api.get(f"/projects/{pid}/export", annotator, params={"format": "spacy"}),
                 403, "forbidden")
    unknown = assert_error(api.get(f"/projects/{pid}/export", owner,
                                   params={"format": "yaml"}), 422, "invalid_input")
    assert "format" in unknown["message"]
    assert "spacy" in unknown["message"]


def test_licence_setting_is_checked(api: Api) -> None:
    owner = api.person("owner")
    pid = api.project(owner)
    bad = api.patch(f"/projects/{pid}", owner,
                    json={"settings": {"dataset_license": "not a licence!"}})
    assert_error(bad, 422, "invalid_input")


def test_label_studio_export_uploads_as_an_import(api: Api) -> None:
    owner = api.person("owner")
    pid = api.project(owner, labels=["Positive", "Negative"])
    body = (DATA / "labelstudio_export.json").read_bytes()
    answer = api.post(f"/projects/{pid}/imports", owner,
                      files={"file": ("project-3-at-2024.json", body, "application/json")})
    assert answer.status_code == 202, answer.text
