"""Span formats: CoNLL / IOB and offsets JSONL read as canonical rows (bad sentences are
errors with their line), written from a span project's export, and read back the same."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from activelabel.labeling.export import export_rows, export_stream
from activelabel.labeling.formats.conll import (
    read_conll,
    read_span_jsonl,
    write_conll,
    write_span_jsonl,
)
from activelabel.runtime.settings import Storage
from activelabel.store import InvalidInput, annotate, item_ids_for_rows
from tests.support.projects import new_project

CONLL = """-DOCSTART- -X- O O

Empire\tB-location
State\tI-location
Building\tI-location
=\tO
ESB\tB-location
.\tO

@paulwalk\tB-person
hi\tO

onecolumn
ok\tO
"""


def test_conll_sentences_become_rows_with_spans(tmp_path: Path) -> None:
    path = tmp_path / "a.conll"
    path.write_text(CONLL)
    parsed = list(read_conll(path))
    assert [line for line, _, _ in parsed] == [3, 10, 13]
    (_, first, err1), (_, second, _), (_, _, err3) = parsed
    assert err1 is None
    assert first["data"] == {"text": "Empire State Building = ESB .",
                             "tokens": ["Empire", "State", "Building", "=", "ESB", "."]}
    assert first["annotations"][0]["labels"] == [
        {"start": 0, "end": 21, "label": "location"}, {"start": 24, "end": 27,
                                                       "label": "location"}]
    assert second["annotations"][0]["labels"] == [{"start": 0, "end": 9, "label": "person"}]
    assert err3 is not None
    assert "line 13 has one column 'onecolumn'" in err3


def test_a_bad_tag_is_an_error_of_its_sentence(tmp_path: Path) -> None:
    path = tmp_path / "b.iob"
    path.write_text("a\tX-thing\nb\tO\n\nc\tO\n")
    parsed = list(read_conll(path))
    assert parsed[0][2] is not None
    assert "tag 'X-thing'" in parsed[0][2]
    assert parsed[1][1]["data"]["text"] == "c"


def test_offsets_jsonl_rows(tmp_path: Path) -> None:
    path = tmp_path / "c.spans"
    rows = [{"id": "w1", "text": "Rome is big", "spans": [{"start": 0, "end": 4,
                                                          "label": "location"}]},
            {"text": "no spans here"},
            {"text": "a b", "tokens": ["a", "x"], "spans": []},
            "not an object"]
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n{broken\n")
    parsed = list(read_span_jsonl(path))
    assert parsed[0][1]["external_id"] == "w1"
    assert parsed[0][1]["annotations"][0]["labels"][0]["label"] == "location"
    assert "annotations" not in parsed[1][1]
    assert parsed[2][2] is not None
    assert "token 1 'x'" in parsed[2][2]
    assert parsed[3][2] is not None
    assert parsed[4][2] is not None
    assert "invalid JSON" in parsed[4][2]


def test_span_export_round_trips_through_both_formats(engine_storage: Storage,
                                                      tmp_path: Path) -> None:
    texts = ["Anna went to New York City .", "nothing here", "@bob likes Rome"]
    spans = [[{"start": 0, "end": 4, "label": "person"},
              {"start": 13, "end": 26, "label": "location"}], [],
             [{"start": 0, "end": 4, "label": "person"},
              {"start": 11, "end": 15, "label": "location"}]]
    seeded = new_project(engine_storage, labels=["person", "location"], task="spans",
                         rows=[{"external_id": f"e{i}", "data": {"text": t}}
                               for i, t in enumerate(texts)])
    with engine_storage.sessions() as session, session.begin():
        ids = item_ids_for_rows(session, seeded.project_id, [0, 1, 2])
        for item_id, answer in zip(ids, spans, strict=True):
            annotate(session, seeded.project_id, seeded.owner_id, item_id, answer)
    exported = list(export_rows(engine_storage, seeded.project_id))
    assert [r["labels"] for r in exported] == spans
    conll = tmp_path / "out.conll"
    conll.write_bytes(b"".join(write_conll(iter(exported))))
    assert "New\tB-location\nYork\tI-location" in conll.read_text()
    back = [row for _, row, _ in read_conll(conll)]
    assert [r["external_id"] for r in back] == ["e0", "e1", "e2"]
    assert [r["annotations"][0]["labels"] for r in back] == spans
    offsets = tmp_path / "out.spans"
    offsets.write_bytes(b"".join(write_span_jsonl(iter(exported))))
    again = [row for _, row, _ in read_span_jsonl(offsets)]
    assert [r["annotations"][0]["labels"] for r in again] == spans
    assert [r["external_id"] for r in again] == ["e0", "e1", "e2"]
    chunks, _, name = export_stream(engine_storage, seeded.project_id, "conll")
    assert name.endswith(".conll")
    assert b"B-person" in b"".join(chunks)
    with pytest.raises(InvalidInput, match="span project"):
        export_stream(engine_storage, seeded.project_id, "parquet")
