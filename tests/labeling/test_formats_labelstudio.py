"""Label Studio JSON: the reader's canonical rows, the array read in chunks, the import of its
items, and the writer's tasks read back by the reader."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest

import activelabel.labeling.formats._common as common
from activelabel.labeling.export import export_stream
from activelabel.labeling.formats import ExportContext
from activelabel.labeling.formats.labelstudio import (
    label_config,
    labels_of_result,
    read_labelstudio,
    write_labelstudio,
)
from activelabel.labeling.imports import CANONICAL_FORMATS, FORMATS, enqueue_import, save_upload
from activelabel.runtime.settings import Storage
from activelabel.store import count_items, get_item, item_ids_by_external_id
from tests.support.projects import label_rows, new_project, run_job

DATA = Path(__file__).resolve().parents[1] / "data" / "formats"


def _read(path: Path) -> list[tuple[int, Any, str | None]]:
    return list(read_labelstudio(path))


def test_export_of_label_studio_reads_as_canonical_rows() -> None:
    parsed = _read(DATA / "labelstudio_export.json")
    assert [line for line, _, _ in parsed] == [1, 2, 3, 4, 5]
    first = parsed[0][1]
    assert first["external_id"] == "101"
    assert first["data"] == {"text": "Great phone, the battery lasts two days."}
    assert first["annotations"] == [
        {"labels": ["Positive"], "annotator": "label-studio-user-1",
         "created_at": "2024-03-01T10:00:00.000000Z"},
        {"labels": ["Negative"], "annotator": "ana@example.org",
         "created_at": "2024-03-02T09:30:00.000000Z"}]
    assert first["predictions"] == [{"labels": ["Positive"], "score": 0.82,
                                     "model": "sentiment-v2"}]
    skipped = parsed[1][1]
    assert skipped["annotations"] == []  # was_cancelled: a skip, no label
    _line, row, error = parsed[2]
    assert row is None
    assert error is not None
    assert "no choices or labels region" in error
    assert "rating" in error
    assert parsed[3][1] is None
    assert "no data object" in str(parsed[3][2])
    mixed = parsed[4][1]  # choices beside a rating: the choices are kept
    assert mixed["annotations"][0]["labels"] == ["Negative"]
    assert mixed["annotations"][0]["annotator"] == "ana@example.org"


def test_span_regions_become_spans() -> None:
    parsed = _read(DATA / "labelstudio_spans.json")
    first = parsed[0][1]
    assert first["annotations"][0]["labels"] == [
        {"start": 0, "end": 21, "label": "location"},
        {"start": 28, "end": 36, "label": "location"}]
    assert first["predictions"][0]["labels"] == [{"start": 28, "end": 36, "label": "location"}]
    assert parsed[1][1]["annotations"][0]["labels"] == []  # no entity
    assert parsed[2][1] is None
    assert "start < end" in str(parsed[2][2])


def test_results_mixing_kinds_or_not_lists_are_refused() -> None:
    with pytest.raises(ValueError, match="mixes choices and span labels"):
        labels_of_result([{"type": "choices", "value": {"choices": ["a"]}},
                          {"type": "labels", "value": {"start": 0, "end": 1,
                                                       "labels": ["x"]}}], "annotation 1")
    with pytest.raises(ValueError, match="must be a list"):
        labels_of_result({"choices": ["a"]}, "annotation 1")


@pytest.mark.parametrize("chunk", [7, 64, 1 << 20])
def test_array_is_read_element_by_element_across_chunks(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, chunk: int) -> None:
    monkeypatch.setattr(common, "_READ_CHUNK", chunk)
    tasks = [{"data": {"text": f"t{i} " + "x" * (i * 13 % 50)}, "id": i} for i in range(40)]
    path = tmp_path / "tasks.json"
    path.write_text(json.dumps(tasks, indent=1))
    parsed = _read(path)
    assert [r["external_id"] for _, r, _ in parsed] == [str(i) for i in range(40)]
    assert all(e is None for _, _, e in parsed)


def test_broken_files_say_where(tmp_path: Path) -> None:
    cut = tmp_path / "cut.json"
    cut.write_text('[{"data": {"text": "a"}}, {"data": {"text": "b"')
    parsed = _read(cut)
    assert parsed[0][1]["data"] == {"text": "a"}
    assert parsed[1][0] == 2
    assert "invalid JSON in element 2" in str(parsed[1][2])
    other = tmp_path / "other.json"
    other.write_text('"just a string"')
    assert "does not hold a JSON array" in str(_read(other)[0][2])
    single = tmp_path / "single.json"
    single.write_text('{"data": {"text": "one task"}}')
    assert _read(single)[0][1]["data"] == {"text": "one task"}


def test_json_upload_is_a_label_studio_import(engine_storage: Storage) -> None:
    assert FORMATS[".json"] == "labelstudio"
    assert "labelstudio" in CANONICAL_FORMATS
    seeded = new_project(engine_storage, labels=["Positive", "Negative"])
    path = save_upload(engine_storage, seeded.project_id, "export.json",
                       io.BytesIO((DATA / "labelstudio_export.json").read_bytes()))
    with engine_storage.sessions() as session, session.begin():
        job_id = enqueue_import(session, seeded.project_id, path, requested_by=None).id
    result = run_job(engine_storage, job_id)
    assert result["inserted"] == 3
    assert [r["line"] for r in result["rejected"]] == [3, 4]
    with engine_storage.read_sessions() as session:
        assert count_items(session, seeded.project_id) == 3
        ids = item_ids_by_external_id(session, seeded.project_id, ["101", "102", "105"])
        assert get_item(session, seeded.project_id, ids["101"]).data == {
            "text": "Great phone, the battery lasts two days."}


def _ctx(task: str = "classification", labels: list[Any] | None = None,
         hints: dict[str, tuple[list[Any], float, int]] | None = None) -> ExportContext:
    return ExportContext(project_id=1, name="p", task=task, labels=labels or ["pos", "neg"],
                         suggestions=lambda ids: {i: h for i, h in (hints or {}).items()
                                                  if i in ids})


def test_writer_tasks_read_back_equal(tmp_path: Path) -> None:
    rows = [{"external_id": f"e{i}", "split": "pool", "data": {"text": f"text {i}"},
             "labels": "pos" if i % 2 else "neg",
             "annotations": [{"annotator": "ann", "labels": ["pos" if i % 2 else "neg"],
                              "created_at": "2026-01-01T00:00:00+00:00", "duration_ms": 1500}]}
            for i in range(2500)]
    hints = {"e1": (["pos"], 0.75, 3)}
    body = b"".join(write_labelstudio(iter(rows), _ctx(hints=hints)))
    tasks = json.loads(body)
    assert len(tasks) == 2500
    assert tasks[1]["predictions"] == [{"model_version": "activelabel-v3", "score": 0.75,
                                        "result": [{"from_name": "label", "to_name": "text",
                                                    "type": "choices", "score": 0.75,
                                                    "value": {"choices": ["pos"]}}]}]
    assert tasks[1]["annotations"][0]["lead_time"] == 1.5
    path = tmp_path / "back.json"
    path.write_bytes(body)
    back = [r for _, r, _ in _read(path)]
    assert [r["external_id"] for r in back] == [r["external_id"] for r in rows]
    assert [r["annotations"][0]["labels"] for r in back] == [
        r["annotations"][0]["labels"] for r in rows]
    assert back[1]["split"] == "pool"
    assert back[1]["predictions"] == [{"labels": ["pos"], "score": 0.75,
                                       "model": "activelabel-v3"}]


def test_label_config_names_the_labels() -> None:
    single = label_config(_ctx(labels=["a", "b & c"]))
    assert 'choice="single"' in single
    assert 'value="b &amp; c"' in single
    assert 'choice="multiple"' in label_config(_ctx(task="multilabel"))
    assert "<Labels" in label_config(_ctx(task="spans", labels=["PER"]))


def test_project_export_in_label_studio_format(engine_storage: Storage) -> None:
    rows = [{"external_id": f"t{i}", "data": {"text": f"item {i}"}} for i in range(4)]
    seeded = new_project(engine_storage, labels=["pos", "neg"], rows=rows)
    label_rows(engine_storage, seeded, [0, 1], ["pos", "neg"])
    chunks, media, name = export_stream(engine_storage, seeded.project_id, "labelstudio")
    tasks = json.loads(b"".join(chunks))
    assert media == "application/json"
    assert name.endswith(".json")
    assert [t["meta"]["external_id"] for t in tasks] == ["t0", "t1"]
    assert tasks[0]["annotations"][0]["result"][0]["value"] == {"choices": ["pos"]}
    assert tasks[0]["predictions"] == []  # no model yet
