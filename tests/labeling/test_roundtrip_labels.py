"""Round trips of labels through the tool formats: a project exported as a Label Studio
export, a Hugging Face folder or spaCy JSONL, imported into a new project and exported again
holds the same items and the same labels (equal on the fields both sides have).

The import stores a canonical row's annotations once the column mapping's import is in
(``activelabel.labeling.mapping``); until then these tests are skipped."""

from __future__ import annotations

import io
import json
import zipfile
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from activelabel.labeling.export import export_stream
from activelabel.labeling.imports import enqueue_import, save_upload
from activelabel.runtime.settings import Storage
from activelabel.store import create_user
from tests.support.projects import Seeded, label_rows, new_project, run_job

pytest.importorskip("activelabel.labeling.mapping",
                    reason="run_import stores canonical rows' labels with the column mapping")

DATA = Path(__file__).resolve().parents[1] / "data" / "formats"
SUFFIX = {"labelstudio": "export.json", "huggingface": "dataset.zip", "spacy": "x.spacy.jsonl"}


def _labeled(storage: Storage) -> Seeded:
    rows = [{"external_id": f"t{i}", "data": {"text": f"text number {i}"}} for i in range(8)]
    seeded = new_project(storage, labels=["pos", "neg"], rows=rows)
    label_rows(storage, seeded, [0, 1, 2, 3, 4], ["pos", "neg", "pos", "neg", "pos"])
    with storage.sessions() as session, session.begin():
        other = create_user(session, f"second_{seeded.project_id}").id
    label_rows(storage, seeded, [0, 1], ["pos", "pos"], user_id=other)
    return seeded


def _export(storage: Storage, project_id: int, fmt: str) -> bytes:
    chunks, _, _ = export_stream(storage, project_id, fmt)
    return b"".join(chunks)


def _import(storage: Storage, body: bytes, fmt: str,
            labels: tuple[str, ...] = ("pos", "neg")) -> int:
    target = new_project(storage, labels=list(labels))
    path = save_upload(storage, target.project_id, SUFFIX[fmt], io.BytesIO(body))
    with storage.sessions() as session, session.begin():
        job_id = enqueue_import(session, target.project_id, path, requested_by=None).id
    result = run_job(storage, job_id)
    assert result["rejected"] == [], result["rejected"]
    return target.project_id


def _labels_by_item(storage: Storage, project_id: int) -> dict[str, tuple[Any, Counter[str]]]:
    rows = [json.loads(x) for x in _export(storage, project_id, "jsonl").splitlines()]
    return {r["external_id"]: (r["data"], Counter(json.dumps(a["labels"])
                                                  for a in r["annotations"])) for r in rows}


@pytest.mark.parametrize("fmt", ["labelstudio", "huggingface", "spacy"])
def test_export_import_export_keeps_items_and_labels(engine_storage: Storage, fmt: str) -> None:
    source = _labeled(engine_storage)
    copy = _import(engine_storage, _export(engine_storage, source.project_id, fmt), fmt)
    before = _labels_by_item(engine_storage, source.project_id)
    after = _labels_by_item(engine_storage, copy)
    if fmt == "spacy":  # one line per item, its consensus as the one answer (none on a tie)
        rows = [json.loads(x) for x in _export(engine_storage, source.project_id,
                                               "jsonl").splitlines()]
        agreed = {r["external_id"]: (r["data"], Counter([json.dumps([r["labels"]])]))
                  for r in rows if r["labels"] is not None}
        assert after == agreed
        return
    assert after == before


def test_label_studio_export_round_trip(engine_storage: Storage) -> None:
    """A Label Studio export (made by Label Studio) imported, then exported again: the same
    tasks' data and annotations' choices."""
    original = json.loads((DATA / "labelstudio_export.json").read_text())
    keep = [t for t in original if t["id"] in (101, 102, 105)]
    body = json.dumps(keep).encode()
    copy = _import(engine_storage, body, "labelstudio", ("Positive", "Negative"))
    tasks = {t["meta"]["external_id"]: t
             for t in json.loads(_export(engine_storage, copy, "labelstudio"))}
    for task in keep:
        given = [a for a in task["annotations"] if not a["was_cancelled"]]
        if not given:
            assert str(task["id"]) not in tasks  # nothing labeled: not in the export
            continue
        back = tasks[str(task["id"])]
        assert back["data"] == task["data"]
        choices = sorted(r["value"]["choices"][0] for a in given for r in a["result"]
                         if r["type"] == "choices")
        assert sorted(r["value"]["choices"][0] for a in back["annotations"]
                      for r in a["result"]) == choices
    with zipfile.ZipFile(io.BytesIO(_export(engine_storage, copy, "huggingface"))) as bundle:
        assert "README.md" in bundle.namelist()
