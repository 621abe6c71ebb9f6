"""Imports: uploads, JSONL / CSV / Parquet streamed with per-row errors, duplicates, progress."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from sqlalchemy import select

import activelabel.labeling.imports as imports_module
from activelabel.labeling.imports import enqueue_import, normalize_row, save_upload
from activelabel.runtime.settings import Storage
from activelabel.store import Conflict, InvalidInput, count_items, list_rounds
from activelabel.store.models import Item, Job
from tests.support.projects import label_rows, new_project, run_job


def _import(storage: Storage, project_id: int, path: Path, split: str | None = None
            ) -> dict[str, Any]:
    with storage.sessions() as session, session.begin():
        job_id = enqueue_import(session, project_id, path, requested_by=None, split=split).id
    return run_job(storage, job_id)


def _upload(storage: Storage, project_id: int, name: str, content: bytes) -> Path:
    return save_upload(storage, project_id, name, io.BytesIO(content))


JSONL_LINES = [
    json.dumps({"external_id": "a", "data": {"text": "first"}}),
    "{not json",
    json.dumps({"external_id": "b", "text": "flat fields become the data", "split": "holdout"}),
    json.dumps([1, 2, 3]),
    "",
    json.dumps({"external_id": "c", "data": "not an object"}),
    json.dumps({"external_id": "d", "data": {"text": "bad split"}, "split": "train"}),
    json.dumps({"external_id": "a", "data": {"text": "duplicate id"}}),
    json.dumps({"data": {"text": "no id: content hash"}}),
    json.dumps({"external_id": "e"}),
]


def test_jsonl_import_reports_bad_rows_by_line_and_duplicates(engine_storage: Storage) -> None:
    seeded = new_project(engine_storage, labels=["x", "y"])
    path = _upload(engine_storage, seeded.project_id, "items.jsonl",
                   "\n".join(JSONL_LINES).encode())
    assert path.parent == engine_storage.location.uploads_dir / f"project_{seeded.project_id}"
    result = _import(engine_storage, seeded.project_id, path)
    assert result["inserted"] == 3
    assert result["duplicates"] == 1
    assert result["duplicate_examples"] == [{"line": 8, "external_id": "a"}]
    lines = {r["line"]: r["reason"] for r in result["rejected"]}
    assert sorted(lines) == [2, 4, 6, 7, 10]
    assert result["rejected_count"] == 5
    assert "invalid JSON" in lines[2]
    assert "JSON object" in lines[4]
    assert "data must be an object" in lines[6]
    assert "'train'" in lines[7]
    assert "no payload" in lines[10]
    with engine_storage.read_sessions() as session:
        items = {i.external_id: i for i in session.execute(
            select(Item).where(Item.project_id == seeded.project_id)).scalars()}
    assert items["b"].split == "holdout"
    assert items["b"].data == {
        "text": "flat fields become the data"}
    hashed = [k for k in items if k.startswith("sha256:")]
    assert len(hashed) == 1
    again = _import(engine_storage, seeded.project_id, path)  # same file twice: not doubled
    assert again["inserted"] == 0
    assert again["duplicates"] == 4
    with engine_storage.read_sessions() as session:
        assert count_items(session, seeded.project_id) == 3


def test_csv_and_parquet_imports(engine_storage: Storage, tmp_path: Path) -> None:
    seeded = new_project(engine_storage, labels=["x", "y"])
    csv_text = ('external_id,text,split\n"c1","hello, world",pool\nc2,second,gold\n'
                "c3,too,many,fields\nc4,bad split,nowhere\nc1,dup,pool\n")
    path = _upload(engine_storage, seeded.project_id, "items.CSV", csv_text.encode())
    result = _import(engine_storage, seeded.project_id, path)
    assert result["inserted"] == 2
    assert result["duplicates"] == 1
    assert [r["line"] for r in result["rejected"]] == [4, 5]
    table = pa.Table.from_pylist([
        {"id": "p1", "data": json.dumps({"text": "json data column"}), "split": None},
        {"id": "p2", "data": json.dumps({"text": "second"}), "split": "holdout"},
        {"id": "p3", "data": "[1, 2]", "split": None},
    ])
    pq.write_table(table, tmp_path / "items.parquet", row_group_size=2)
    with (tmp_path / "items.parquet").open("rb") as stream:
        ppath = save_upload(engine_storage, seeded.project_id, "items.parquet", stream)
    presult = _import(engine_storage, seeded.project_id, ppath, split="gold")
    assert presult["inserted"] == 2
    assert [r["line"] for r in presult["rejected"]] == [3]
    with engine_storage.read_sessions() as session:
        splits = dict(session.execute(select(Item.external_id, Item.split).where(
            Item.project_id == seeded.project_id)).all())
    assert splits == {"c1": "pool", "c2": "gold", "p1": "gold", "p2": "holdout"}


def test_progress_is_reported_and_a_cold_start_round_requested(
        engine_storage: Storage, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(imports_module, "BATCH_ROWS", 7)
    monkeypatch.setattr(imports_module, "PROGRESS_SECONDS", 0.0)
    seeded = new_project(engine_storage, labels=["x", "y"])
    rows = "\n".join(json.dumps({"external_id": f"r{i}", "data": {"text": f"t {i}"}})
                     for i in range(30))
    path = _upload(engine_storage, seeded.project_id, "rows.ndjson", rows.encode())
    result = _import(engine_storage, seeded.project_id, path)
    seen = result["_progress"]
    assert len(seen) >= 4
    assert seen[-1] == {"rows_seen": 30, "inserted": 30, "duplicates": 0,
                        "rejected": 0, "labels": 0, "predictions": 0, "vectors": 0}
    assert [p["inserted"] for p in seen] == sorted(p["inserted"] for p in seen)
    with engine_storage.read_sessions() as session:
        rounds = list_rounds(session, seeded.project_id)
        assert [r.status for r in rounds] == ["queued"]
        assert result["cold_start_round_id"] == rounds[0].id
        job = session.get(Job, rounds[0].job_id)
        assert job is not None
        assert job.payload["reason"] == "cold_start"
    # a project that has labels gets no cold-start round from a later import
    labeled = new_project(engine_storage, labels=["x", "y"], rows=[
        {"external_id": "l0", "data": {"text": "z"}}])
    label_rows(engine_storage, labeled, [0], ["x"])
    path2 = _upload(engine_storage, labeled.project_id, "more.jsonl", rows.encode())
    assert _import(engine_storage, labeled.project_id, path2)["cold_start_round_id"] is None


def test_uploads_and_jobs_validate_their_input(engine_storage: Storage, tmp_path: Path) -> None:
    seeded = new_project(engine_storage, labels=["x", "y"])
    with pytest.raises(InvalidInput, match="extension"):
        _upload(engine_storage, seeded.project_id, "items.xlsx", b"x")
    good = _upload(engine_storage, seeded.project_id, "../../etc/items.jsonl", b"{}")
    assert good.parent.name == f"project_{seeded.project_id}"
    assert ".." not in good.name
    with engine_storage.sessions() as session, session.begin():
        with pytest.raises(InvalidInput, match="split"):
            enqueue_import(session, seeded.project_id, good, requested_by=None, split="train")
        with pytest.raises(InvalidInput, match="not a file"):
            enqueue_import(session, seeded.project_id, tmp_path / "missing.jsonl",
                           requested_by=None)


def test_normalize_row_shapes() -> None:
    assert normalize_row({"id": 5, "data": {"a": 1}}, None) == {
        "external_id": 5, "data": {"a": 1}, "split": "pool"}
    assert normalize_row({"text": "t"}, "gold")["split"] == "gold"
    with pytest.raises(ValueError, match="outside data"):
        normalize_row({"external_id": "x", "data": {"a": 1}, "extra": 2}, None)


def test_one_unreadable_row_never_fails_the_import(engine_storage: Storage) -> None:
    """A lone surrogate in JSONL, a byte that is no UTF-8 in a CSV, a NUL in an id: each a
    rejected row with its line; every other row is stored."""
    seeded = new_project(engine_storage, labels=["x", "y"])
    jsonl = b"\n".join([b'{"external_id": "j1", "data": {"text": "fine"}}',
                        b'{"external_id": "j2", "data": {"text": "bad \\ud800 text"}}',
                        b'{"external_id": "j3\\u0000", "data": {"text": "nul"}}',
                        b'{"external_id": "j4", "data": {"text": "fine too"}}'])
    result = _import(engine_storage, seeded.project_id,
                     _upload(engine_storage, seeded.project_id, "rows.jsonl", jsonl))
    assert (result["inserted"], result["rejected_count"]) == (2, 2)
    assert sorted(r["line"] for r in result["rejected"]) == [2, 3]
    csv_bytes = b"external_id,text\nc1,fine\nc2,caf\xff\nc3,also fine\n"
    result = _import(engine_storage, seeded.project_id,
                     _upload(engine_storage, seeded.project_id, "rows.csv", csv_bytes))
    assert (result["inserted"], result["rejected_count"]) == (2, 1)
    assert result["rejected"] == [{"line": 3, "reason": "column 'text' holds byte 0xff, "
                                   "which is not UTF-8: save the file as UTF-8"}]
    no_ids = b'{"text": "fine, hashed"}\n{"text": "bad \\ud800, hashed"}\n'
    result = _import(engine_storage, seeded.project_id,
                     _upload(engine_storage, seeded.project_id, "hashed.jsonl", no_ids))
    assert (result["inserted"], result["rejected_count"]) == (1, 1)
    assert "lone surrogate" in result["rejected"][0]["reason"]
    bad_header = b"external_id,t\x93xt\nh1,one\n"
    result = _import(engine_storage, seeded.project_id,
                     _upload(engine_storage, seeded.project_id, "header.csv", bad_header))
    assert result["rejected"][0]["reason"].startswith("the header of column 2 holds byte 0x93")
    with engine_storage.read_sessions() as session:
        assert count_items(session, seeded.project_id) == 5


def test_a_file_that_is_not_parquet_fails_its_job_with_a_sentence(
        engine_storage: Storage) -> None:
    seeded = new_project(engine_storage, labels=["x", "y"])
    path = _upload(engine_storage, seeded.project_id, "rows.parquet", b"not parquet at all")
    with pytest.raises(InvalidInput, match="is not a Parquet file that can be read"):
        _import(engine_storage, seeded.project_id, path)


class _Killed(BaseException):
    """Stands for kill -9 between two batches: nothing after it runs."""


def test_an_import_resumed_after_a_kill_counts_every_row_exactly_once(
        engine_storage: Storage, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(imports_module, "BATCH_ROWS", 5)
    monkeypatch.setattr(imports_module, "PROGRESS_SECONDS", 0.0)
    seeded = new_project(engine_storage, labels=["x", "y"],
                         rows=[{"external_id": "r3", "data": {"text": "already here"}}])
    lines = [json.dumps({"external_id": f"r{i}", "data": {"text": f"t {i}"}}) for i in range(23)]
    lines[8] = "{bad json"
    lines[17] = json.dumps({"external_id": "r17", "data": "not an object"})
    path = _upload(engine_storage, seeded.project_id, "rows.jsonl", "\n".join(lines).encode())
    with engine_storage.sessions() as session, session.begin():
        job_id = enqueue_import(session, seeded.project_id, path, requested_by=None).id

    reports: list[dict[str, Any]] = []

    def killed_after_two_batches(values: dict[str, Any]) -> None:
        reports.append(values)
        if len(reports) == 2:  # the second batch is committed; the third is read, then the kill
            raise _Killed

    with engine_storage.sessions() as session:
        job = session.get(Job, job_id)
    with pytest.raises(_Killed):
        imports_module.run_import(engine_storage, job, progress=killed_after_two_batches)
    with engine_storage.read_sessions() as session:
        assert count_items(session, seeded.project_id) == 1 + 10 - 1  # r3 was there already
    result = run_job(engine_storage, job_id)  # the restarted worker resumes the job
    assert (result["inserted"], result["duplicates"], result["rejected_count"],
            result["rows_seen"]) == (23 - 1 - 2, 1, 2, 23)
    assert [r["line"] for r in result["rejected"]] == [9, 18]
    assert result["duplicate_examples"] == [{"line": 4, "external_id": "r3"}]
    with engine_storage.read_sessions() as session:
        assert count_items(session, seeded.project_id) == 1 + 20


def test_an_import_taken_over_by_another_worker_stores_nothing_more(
        engine_storage: Storage, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(imports_module, "BATCH_ROWS", 5)
    seeded = new_project(engine_storage, labels=["x", "y"])
    rows = "\n".join(json.dumps({"external_id": f"r{i}", "data": {"t": i}}) for i in range(12))
    path = _upload(engine_storage, seeded.project_id, "rows.jsonl", rows.encode())
    with engine_storage.sessions() as session, session.begin():
        job = enqueue_import(session, seeded.project_id, path, requested_by=None)
        job.status, job.worker_id = "running", "worker-b"  # requeued, then claimed by b
        session.flush()
        session.expunge(job)
    job.worker_id = "worker-a"  # what the stalled worker a still holds
    with pytest.raises(Conflict, match="held by 'worker-b'"):
        imports_module.run_import(engine_storage, job, progress=lambda _: None)
    with engine_storage.read_sessions() as session:
        assert count_items(session, seeded.project_id) == 0


def test_gold_labels_on_import_make_gold_items_and_bad_answers_are_row_errors(
        engine_storage: Storage) -> None:
    seeded = new_project(engine_storage, labels=["spam", "ham"])
    lines = [
        json.dumps({"external_id": "g1", "text": "win money", "gold_labels": ["spam"]}),
        json.dumps({"external_id": "g2", "data": {"text": "see you"}, "gold_label": "ham"}),
        json.dumps({"external_id": "g3", "text": "hello", "gold_label": "eggs"}),
        json.dumps({"external_id": "g4", "text": "both", "gold_label": "ham",
                    "gold_labels": ["ham"]}),
        json.dumps({"external_id": "g5", "text": "two", "gold_labels": ["ham", "spam"]}),
        json.dumps({"external_id": "p1", "text": "plain"}),
    ]
    path = _upload(engine_storage, seeded.project_id, "gold.jsonl", "\n".join(lines).encode())
    result = _import(engine_storage, seeded.project_id, path)
    assert result["inserted"] == 3
    reasons = {r["line"]: r["reason"] for r in result["rejected"]}
    assert set(reasons) == {3, 4, 5}
    assert "drawn from ['spam', 'ham']" in reasons[3]
    assert "not both" in reasons[4]
    assert "one label" in reasons[5]
    with engine_storage.read_sessions() as session:
        items = {i.external_id: i for i in session.execute(
            select(Item).where(Item.project_id == seeded.project_id)).scalars()}
    assert (items["g1"].split, items["g1"].gold_labels, items["g1"].data) == (
        "gold", ["spam"], {"text": "win money"})
    assert (items["g2"].split, items["g2"].gold_labels) == ("gold", ["ham"])
    assert (items["p1"].split, items["p1"].gold_labels) == ("pool", None)
