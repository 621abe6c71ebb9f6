"""Export: labeled items with consensus, annotations and provenance, in three formats."""

from __future__ import annotations

import csv
import io
import json
from typing import Any

import pyarrow.parquet as pq
import pytest

from activelabel.labeling.export import export_stream
from activelabel.labeling.rounds import request_round
from activelabel.runtime.settings import Storage
from activelabel.store import InvalidInput, NotFound, create_user
from tests.support.projects import label_rows, new_project, run_job, text_rows


def _labeled_project(storage: Storage) -> tuple[Any, list[int]]:
    rows = [{**r, "data": {**r["data"], "ssn": f"secret-{i}"}} for i, r in enumerate(text_rows(30))]
    seeded = new_project(storage, labels=["pos", "neg"], rows=rows, private_fields=("ssn",),
                         settings={"batch_size": 4, "featurizer_params": {"n_components": 4}})
    with storage.sessions() as session, session.begin():
        rnd, _ = request_round(session, seeded.project_id, requested_by=None, reason="cold_start")
        job_id = rnd.job_id
        other = create_user(session, "second_" + str(seeded.project_id)).id
    assert job_id is not None
    run_job(storage, job_id)
    from activelabel.store import next_tasks

    with storage.sessions() as session, session.begin():
        seed_rows = [t.item.row for t in next_tasks(session, seeded.project_id,
                                                    seeded.owner_id, 4)]
    label_rows(storage, seeded, seed_rows, ["pos", "neg", "pos", "neg"])
    label_rows(storage, seeded, seed_rows[:2], ["pos", "pos"], user_id=other)
    return seeded, seed_rows


def _collect(storage: Storage, project_id: int, fmt: str, **kw: Any) -> tuple[bytes, str, str]:
    chunks, media, name = export_stream(storage, project_id, fmt, **kw)
    return b"".join(chunks), media, name


def test_jsonl_export_has_consensus_annotations_and_provenance(engine_storage: Storage) -> None:
    seeded, seed_rows = _labeled_project(engine_storage)
    body, media, name = _collect(engine_storage, seeded.project_id, "jsonl")
    assert media == "application/x-ndjson"
    assert name.endswith(".jsonl")
    rows = [json.loads(line) for line in body.decode().splitlines()]
    assert [r["external_id"] for r in rows] == [f"t{r}" for r in sorted(seed_rows)]
    by_id = {r["external_id"]: r for r in rows}
    first = by_id[f"t{seed_rows[0]}"]  # pos + pos
    second = by_id[f"t{seed_rows[1]}"]  # neg + pos: a tie, no consensus
    assert first["labels"] == "pos"
    assert second["labels"] is None
    assert len(first["annotations"]) == 2
    assert {a["annotator"] for a in first["annotations"]} >= {"second_" + str(seeded.project_id)}
    assert all(a["created_at"] and "labels" in a for a in first["annotations"])
    assert first["round"] == 1
    assert first["strategy"] == "cold_start"
    assert first["score"] is not None
    assert first["model_version"] is None
    assert "ssn" not in first["data"]
    assert "text" in first["data"]
    body_private, _, _ = _collect(engine_storage, seeded.project_id, "jsonl",
                                  include_private=True)
    assert json.loads(body_private.decode().splitlines()[0])["data"]["ssn"].startswith("secret")


def test_csv_and_parquet_exports(engine_storage: Storage) -> None:
    seeded, _seed_rows = _labeled_project(engine_storage)
    body, media, name = _collect(engine_storage, seeded.project_id, "csv")
    assert media.startswith("text/csv")
    assert name.endswith(".csv")
    rows = list(csv.DictReader(io.StringIO(body.decode())))
    assert len(rows) == 4
    assert rows[0]["strategy"] == "cold_start"
    assert rows[0]["round"] == "1"
    assert "ssn" not in json.loads(rows[0]["data"])
    assert len(json.loads(rows[0]["annotations"])) >= 1
    body, media, name = _collect(engine_storage, seeded.project_id, "parquet")
    assert name.endswith(".parquet")
    table = pq.read_table(io.BytesIO(body))
    assert table.num_rows == 4
    assert table.column("round").to_pylist() == [1, 1, 1, 1]
    assert all("ssn" not in json.loads(d) for d in table.column("data").to_pylist())


def test_export_checks_format_and_project(engine_storage: Storage) -> None:
    seeded = new_project(engine_storage, labels=["a", "b"])
    with pytest.raises(InvalidInput, match="jsonl, csv, parquet"):
        export_stream(engine_storage, seeded.project_id, "xml")
    with pytest.raises(NotFound):
        export_stream(engine_storage, 987_654, "jsonl")
    body, _, _ = _collect(engine_storage, seeded.project_id, "parquet")  # nothing labeled yet
    assert pq.read_table(io.BytesIO(body)).num_rows == 0
    assert _collect(engine_storage, seeded.project_id, "jsonl")[0] == b""
