"""Hugging Face dataset folders: written with a card, read back with pyarrow (and `datasets`
when it is installed), read as canonical rows from a folder, a zip or one Parquet file."""

from __future__ import annotations

import io
import json
import shutil
import zipfile
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from activelabel.labeling.export import export_stream
from activelabel.labeling.formats import ExportContext
from activelabel.labeling.formats.huggingface import read_huggingface, write_huggingface_folder
from activelabel.labeling.imports import enqueue_import, save_upload
from activelabel.runtime.settings import Storage
from activelabel.store import count_items
from tests.support.projects import label_rows, new_project, run_job


def _rows() -> list[dict[str, Any]]:
    splits = ["pool", "pool", "holdout", "gold", "pool"]
    labels = ["pos", "neg", "pos", "neg", None]
    return [{"external_id": f"e{i}", "split": splits[i],
             "data": {"text": f"text {i}", "n": i, "extra": {"k": i}, "label": "shadowed"},
             "labels": labels[i],
             "annotations": [{"annotator": "ann", "labels": [labels[i] or "pos"],
                              "created_at": "2026-01-01T00:00:00+00:00", "duration_ms": 10}]}
            for i in range(5)]


def _ctx(task: str = "classification", labels: list[Any] | None = None) -> ExportContext:
    return ExportContext(project_id=1, name="reviews", task=task,
                         labels=labels or ["pos", "neg"], guidelines_version=3,
                         license="cc-by-4.0", agreement={"Krippendorff's alpha": 0.71})


def test_folder_layout_card_and_columns(tmp_path: Path) -> None:
    sizes = write_huggingface_folder(iter(_rows()), _ctx(), tmp_path)
    assert sizes == {"train": 3, "validation": 1, "test": 1}
    files = sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*.parquet"))
    assert files == ["data/test-00000-of-00001.parquet", "data/train-00000-of-00001.parquet",
                     "data/validation-00000-of-00001.parquet"]
    train = pq.read_table(tmp_path / "data" / "train-00000-of-00001.parquet")
    assert train.column("id").to_pylist() == ["e0", "e1", "e4"]
    assert train.column("label").to_pylist() == [0, 1, -1]  # -1: no consensus
    assert train.column("text").to_pylist() == ["text 0", "text 1", "text 4"]
    assert train.column("data_label").to_pylist() == ["shadowed"] * 3
    assert json.loads(train.column("extra").to_pylist()[0]) == {"k": 0}
    features = json.loads(train.schema.metadata[b"huggingface"])["info"]["features"]
    assert features["label"] == {"names": ["pos", "neg"], "_type": "ClassLabel"}
    card = (tmp_path / "README.md").read_text()
    assert card.startswith("---\nlicense: \"cc-by-4.0\"")
    assert "'0': \"pos\"" in card
    assert "num_examples: 3" in card
    assert "path: data/train-*" in card
    assert "guidelines version 3" in card
    assert "| pos | 2 |" in card
    assert "Krippendorff's alpha: 0.71" in card


def test_folder_reads_back_as_canonical_rows(tmp_path: Path) -> None:
    write_huggingface_folder(iter(_rows()), _ctx(), tmp_path)
    parsed = list(read_huggingface(tmp_path))
    assert all(error is None for _, _, error in parsed), parsed
    by_id = {row["external_id"]: row for _, row, _ in parsed}
    assert set(by_id) == {f"e{i}" for i in range(5)}
    assert by_id["e0"]["data"] == {"text": "text 0", "n": 0, "extra": '{"k": 0}',
                                   "label": "shadowed"}
    assert by_id["e0"]["split"] == "pool"
    assert by_id["e2"]["split"] == "holdout"
    assert by_id["e3"]["split"] == "gold"
    assert by_id["e3"]["gold_labels"] == ["neg"]
    assert by_id["e1"]["annotations"] == [{"labels": ["neg"], "annotator": "ann",
                                           "created_at": "2026-01-01T00:00:00+00:00"}]


def test_label_names_from_the_card_when_the_file_has_none(tmp_path: Path) -> None:
    write_huggingface_folder(iter(_rows()), _ctx(), tmp_path)
    table = pq.read_table(tmp_path / "data" / "train-00000-of-00001.parquet")
    plain = table.drop_columns(["annotations"]).replace_schema_metadata(None)
    single = tmp_path / "single"
    single.mkdir()
    pq.write_table(plain, single / "train.parquet")
    (single / "README.md").write_text((tmp_path / "README.md").read_text())
    rows = [r for _, r, _ in read_huggingface(single / "train.parquet")]
    assert [r["annotations"] for r in rows][:2] == [
        [{"labels": ["pos"], "annotator": None, "created_at": None}],
        [{"labels": ["neg"], "annotator": None, "created_at": None}]]
    (single / "README.md").unlink()
    errors = [e for _, _, e in read_huggingface(single / "train.parquet")]
    assert "names no classes" in str(errors[0])


def test_multilabel_and_spans_columns(tmp_path: Path) -> None:
    rows = [{"external_id": "m", "split": "pool", "data": {"text": "x"},
             "labels": ["a", "c"], "annotations": []}]
    write_huggingface_folder(iter(rows), _ctx("multilabel", ["a", "b", "c"]), tmp_path / "m")
    table = pq.read_table(tmp_path / "m" / "data" / "train-00000-of-00001.parquet")
    assert table.column("labels").to_pylist() == [[0, 2]]
    back = next(read_huggingface(tmp_path / "m"))[1]
    assert back["annotations"] == []  # the annotations column is authoritative
    span_rows = [{"external_id": "s", "split": "pool", "data": {"text": "New York"},
                  "labels": [{"start": 0, "end": 8, "label": "LOC"}],
                  "annotations": [{"annotator": "a", "labels": [{"start": 0, "end": 8,
                                                                 "label": "LOC"}],
                                   "created_at": None}]}]
    write_huggingface_folder(iter(span_rows), _ctx("spans", ["LOC"]), tmp_path / "s")
    table = pq.read_table(tmp_path / "s" / "data" / "train-00000-of-00001.parquet")
    assert table.column("spans").to_pylist() == [[{"start": 0, "end": 8, "label": "LOC"}]]
    back = next(read_huggingface(tmp_path / "s"))[1]
    assert back["annotations"][0]["labels"] == [{"start": 0, "end": 8, "label": "LOC"}]


def test_datasets_loads_the_folder(tmp_path: Path) -> None:
    datasets = pytest.importorskip("datasets")
    write_huggingface_folder(iter(_rows()), _ctx(), tmp_path / "ds")
    loaded = datasets.load_dataset("parquet", data_dir=str(tmp_path / "ds" / "data"),
                                   cache_dir=str(tmp_path / "cache"))
    assert sorted(loaded) == ["test", "train", "validation"]
    assert loaded["train"].features["label"].names == ["pos", "neg"]
    assert loaded["train"]["id"] == ["e0", "e1", "e4"]
    assert loaded["train"].features["label"].int2str(loaded["train"]["label"][1]) == "neg"


def test_zip_upload_imports_items_and_export_is_a_zip(engine_storage: Storage,
                                                      tmp_path: Path) -> None:
    rows = [{"external_id": f"t{i}", "data": {"text": f"item {i}"}} for i in range(4)]
    source = new_project(engine_storage, labels=["pos", "neg"], rows=rows,
                         settings={"dataset_license": "mit"})
    label_rows(engine_storage, source, [0, 1, 3], ["pos", "neg", "pos"])
    chunks, media, name = export_stream(engine_storage, source.project_id, "huggingface")
    body = b"".join(chunks)
    assert media == "application/zip"
    assert name.endswith(".hf.zip")
    with zipfile.ZipFile(io.BytesIO(body)) as bundle:
        assert sorted(bundle.namelist()) == ["README.md", "data/train-00000-of-00001.parquet"]
        assert "license: \"mit\"" in bundle.read("README.md").decode()
        table = pq.read_table(pa.BufferReader(bundle.read("data/train-00000-of-00001.parquet")))
    assert table.column("id").to_pylist() == ["t0", "t1", "t3"]
    target = new_project(engine_storage, labels=["pos", "neg"])
    path = save_upload(engine_storage, target.project_id, "dataset.zip", io.BytesIO(body))
    with engine_storage.sessions() as session, session.begin():
        job_id = enqueue_import(session, target.project_id, path, requested_by=None).id
    result = run_job(engine_storage, job_id)
    assert result["inserted"] == 3
    assert result["rejected"] == []
    with engine_storage.read_sessions() as session:
        assert count_items(session, target.project_id) == 3


def test_zip_members_stay_inside(tmp_path: Path) -> None:
    write_huggingface_folder(iter(_rows()), _ctx(), tmp_path / "ds")
    archive = tmp_path / "evil.zip"
    with zipfile.ZipFile(archive, "w") as bundle:
        bundle.write(tmp_path / "ds" / "data" / "train-00000-of-00001.parquet",
                     "../../outside/train-00000-of-00001.parquet")
        bundle.writestr("../README.md", "x")
    parsed = list(read_huggingface(archive))
    assert len(parsed) == 3
    assert not (tmp_path.parent / "outside").exists()
    shutil.rmtree(tmp_path / "ds")
