"""spaCy-style JSONL: label, cats and spans lines as canonical rows, written and read back."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from activelabel.labeling.export import export_stream
from activelabel.labeling.formats import ExportContext
from activelabel.labeling.formats.spacy import line_to_row, read_spacy, write_spacy
from activelabel.labeling.imports import _format_of
from activelabel.runtime.settings import Storage
from tests.support.projects import label_rows, new_project


def test_label_cats_and_spans_lines() -> None:
    assert line_to_row({"text": "hi", "label": "greet"})["annotations"] == [
        {"labels": ["greet"], "annotator": None, "created_at": None}]
    cats = line_to_row({"id": 7, "text": "x", "cats": {"a": 1.0, "b": 0.0, "c": 0.6}})
    assert cats["external_id"] == "7"
    assert cats["annotations"][0]["labels"] == ["a", "c"]
    spans = line_to_row({"text": "Paris is big", "spans": [{"start": 0, "end": 5,
                                                            "label": "LOC"}],
                         "meta": {"source": "x"}, "_annotator_id": "ann-1"})
    assert spans["annotations"] == [{"labels": [{"start": 0, "end": 5, "label": "LOC"}],
                                     "annotator": "ann-1", "created_at": None}]
    assert spans["data"] == {"text": "Paris is big", "meta": {"source": "x"}}
    rejected = line_to_row({"text": "no", "label": "x", "answer": "reject"})
    assert rejected["annotations"] == []
    assert line_to_row({"text": "no answer"})["annotations"] == []
    assert line_to_row({"text": "t", "split": "train"})["split"] == "pool"


@pytest.mark.parametrize(("line", "reason"), [
    ({"text": "x", "label": "a", "spans": []}, "give one answer"),
    ({"text": "x", "cats": {"a": "yes"}}, "numbers as scores"),
    ({"text": "x", "spans": [{"start": 3, "end": 1, "label": "A"}]}, "start < end"),
    ({"label": "a"}, "no content"),
    ([1, 2], "JSON object"),
])
def test_bad_lines_are_refused_with_the_reason(line: Any, reason: str) -> None:
    with pytest.raises(ValueError, match=reason):
        line_to_row(line)


def test_reader_gives_line_numbers(tmp_path: Path) -> None:
    path = tmp_path / "cats.spacy.jsonl"
    path.write_text('{"text": "a", "label": "x"}\n\n{broken\n{"text": "b", "label": "y"}\n')
    parsed = list(read_spacy(path))
    assert [(line, error is None) for line, _, error in parsed] == [
        (1, True), (3, False), (4, True)]
    assert _format_of("cats.spacy.jsonl") == "spacy"
    assert _format_of("plain.jsonl") == "jsonl"


def test_wnut17_spans_read(shared_data: Path) -> None:
    parsed = []
    for line, row, error in read_spacy(shared_data / "wnut17.jsonl"):
        assert error is None, (line, error)
        parsed.append(row)
        if len(parsed) == 200:
            break
    first = parsed[0]
    assert first["external_id"] == "wnut17-train-00000"
    assert first["annotations"][0]["labels"][0] == {"start": 64, "end": 85, "label": "location"}
    text = first["data"]["text"]
    assert text[64:85] == "Empire State Building"


def _ctx(task: str) -> ExportContext:
    return ExportContext(project_id=1, name="p", task=task, labels=["a", "b", "c"])


@pytest.mark.parametrize(("task", "labels"), [
    ("classification", "b"), ("multilabel", ["a", "c"]),
    ("spans", [{"start": 0, "end": 4, "label": "a"}])])
def test_written_lines_read_back(tmp_path: Path, task: str, labels: Any) -> None:
    rows = [{"external_id": "e1", "split": "pool", "data": {"text": "text one"},
             "labels": labels, "annotations": []}]
    path = tmp_path / "out.spacy.jsonl"
    path.write_bytes(b"".join(write_spacy(iter(rows), _ctx(task))))
    line = json.loads(path.read_text())
    assert line["text"] == "text one"
    assert line["id"] == "e1"
    if task == "classification":
        assert line["label"] == "b"
        assert line["cats"] == {"a": 0.0, "b": 1.0, "c": 0.0}
    back = next(read_spacy(path))[1]
    assert back["external_id"] == "e1"
    assert back["data"] == {"text": "text one"}
    expected = labels if isinstance(labels, list) else [labels]
    assert back["annotations"][0]["labels"] == expected


def test_project_export_in_spacy_format(engine_storage: Storage) -> None:
    rows = [{"external_id": f"t{i}", "data": {"text": f"item {i}"}} for i in range(3)]
    seeded = new_project(engine_storage, labels=["pos", "neg"], rows=rows)
    label_rows(engine_storage, seeded, [0, 2], ["pos", "neg"])
    chunks, media, name = export_stream(engine_storage, seeded.project_id, "spacy")
    lines = [json.loads(x) for x in b"".join(chunks).decode().splitlines()]
    assert name.endswith(".spacy.jsonl")
    assert media == "application/x-ndjson"
    assert [(x["id"], x["label"]) for x in lines] == [("t0", "pos"), ("t2", "neg")]
