"""Loading datasets: the bundled scikit-learn sets, JSONL / CSV / Parquet files, bad input."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from activelabel.datasets import BUILTIN_DATASETS, Dataset, DatasetError, load_builtin, load_file


def write_jsonl(path: Path, rows: list[Any]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


TEXT_ROWS = [
    {"id": "a", "text": "free prize call now", "label": "spam"},
    {"id": "b", "text": "see you at lunch", "label": "ham"},
    {"id": "c", "text": "win cash now", "label": "spam"},
    {"id": "d", "text": "running late, sorry", "label": "ham"},
]
NUMERIC_ROWS = [
    {"id": "r1", "height": 1.0, "weight": 10, "label": 0},
    {"id": "r2", "height": 2.5, "weight": 12, "label": 1},
    {"id": "r3", "height": 0.5, "weight": 9, "label": 0},
]


# ---- built-in --------------------------------------------------------------------------------


def test_digits_keeps_8x8_images_and_pixels() -> None:
    ds = load_builtin("digits")
    assert ds.kind == "image"
    assert ds.images is not None
    assert ds.X is not None
    assert ds.images.shape == (1797, 8, 8)
    assert ds.X.shape == (1797, 64)
    np.testing.assert_array_equal(ds.images.reshape(1797, 64), ds.X)
    assert ds.classes == tuple(str(d) for d in range(10))
    assert ds.y.dtype == np.intp


@pytest.mark.parametrize(
    ("name", "n", "d", "n_classes"), [("wine", 178, 13, 3), ("breast_cancer", 569, 30, 2)]
)
def test_numeric_builtins(name: str, n: int, d: int, n_classes: int) -> None:
    ds = load_builtin(name)
    assert ds.kind == "numeric"
    assert ds.X is not None
    assert ds.X.shape == (n, d)
    assert len(ds.feature_names) == d
    assert ds.n_classes == n_classes
    assert sum(ds.class_counts().values()) == n


def test_builtin_features_have_one_row_per_item() -> None:
    ds = load_builtin("wine")
    feats = ds.features()
    assert feats.X.shape[0] == len(ds)
    assert np.asarray(feats.embeddings).shape[0] == len(ds)


def test_unknown_builtin_lists_the_choices() -> None:
    with pytest.raises(DatasetError, match="digits, wine, breast_cancer"):
        load_builtin("mnist")
    assert BUILTIN_DATASETS == ("digits", "wine", "breast_cancer")


# ---- files: the three formats ----------------------------------------------------------------


def _check_text(ds: Dataset) -> None:
    assert ds.kind == "text"
    assert ds.classes == ("ham", "spam")
    assert ds.labels == ["spam", "ham", "spam", "ham"]
    assert ds.records is not None
    assert ds.records[0]["text"] == "free prize call now"
    assert "label" not in ds.records[0]
    assert ds.features().X.shape[0] == 4


def test_jsonl_text(tmp_path: Path) -> None:
    ds = load_file(write_jsonl(tmp_path / "sms.jsonl", TEXT_ROWS))
    _check_text(ds)
    assert ds.name == "sms"
    assert ds.ids == ["a", "b", "c", "d"]


def test_csv_text(tmp_path: Path) -> None:
    path = tmp_path / "sms.csv"
    lines = ["id,text,label"] + [f'{r["id"]},"{r["text"]}",{r["label"]}' for r in TEXT_ROWS]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    _check_text(load_file(path))


def test_parquet_text(tmp_path: Path) -> None:
    path = tmp_path / "sms.parquet"
    pq.write_table(pa.Table.from_pylist(TEXT_ROWS), path)
    _check_text(load_file(path))


def test_custom_text_and_label_fields(tmp_path: Path) -> None:
    rows = [{"body": r["text"], "y": r["label"]} for r in TEXT_ROWS]
    ds = load_file(write_jsonl(tmp_path / "d.jsonl", rows), text_field="body", label_field="y")
    assert ds.kind == "text"
    assert ds.text_field == "body"
    assert ds.features().X.shape[0] == 4


def test_jsonl_numeric_uses_every_numeric_field(tmp_path: Path) -> None:
    ds = load_file(write_jsonl(tmp_path / "num.jsonl", NUMERIC_ROWS))
    assert ds.kind == "numeric"
    assert ds.feature_names == ("height", "weight")  # "id" is not numeric, "label" is the target
    assert ds.X is not None
    np.testing.assert_array_equal(ds.X, [[1.0, 10], [2.5, 12], [0.5, 9]])
    assert ds.classes == ("0", "1")
    np.testing.assert_array_equal(ds.y, [0, 1, 0])


def test_csv_numeric_and_numeric_label_order(tmp_path: Path) -> None:
    path = tmp_path / "num.csv"
    path.write_text("a,b,label\n1,2,10\n3,4,2\n5,6,10\n", encoding="utf-8")
    ds = load_file(path)
    assert ds.kind == "numeric"
    assert ds.classes == ("2", "10")  # numeric labels sort as numbers
    np.testing.assert_array_equal(ds.y, [1, 0, 1])


def test_parquet_numeric(tmp_path: Path) -> None:
    path = tmp_path / "num.parquet"
    pq.write_table(pa.Table.from_pylist(NUMERIC_ROWS), path)
    ds = load_file(path)
    assert ds.kind == "numeric"
    assert ds.X is not None
    assert ds.X.shape == (3, 2)


def test_blank_jsonl_lines_are_skipped(tmp_path: Path) -> None:
    path = tmp_path / "d.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in TEXT_ROWS[:2]) + "\n\n   \n", encoding="utf-8")
    assert len(load_file(path)) == 2


# ---- files: bad input, one clear message each ------------------------------------------------


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match=r"file not found: .*nope\.jsonl"):
        load_file(tmp_path / "nope.jsonl")


def test_unsupported_extension(tmp_path: Path) -> None:
    path = tmp_path / "data.xlsx"
    path.write_text("x", encoding="utf-8")
    with pytest.raises(
        DatasetError, match=r"unsupported file type '\.xlsx'.*\.jsonl, \.csv, \.parquet"
    ):
        load_file(path)


def test_malformed_json_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "d.jsonl"
    path.write_text(
        json.dumps(TEXT_ROWS[0]) + "\n" + json.dumps(TEXT_ROWS[1]) + '\n{"text": "x",\n'
    )
    with pytest.raises(DatasetError, match=r"d\.jsonl line 3: malformed JSON"):
        load_file(path)


def test_non_object_json_line(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="line 2: expected a JSON object, got list"):
        load_file(write_jsonl(tmp_path / "d.jsonl", [TEXT_ROWS[0], [1, 2]]))


def test_unknown_label_field_lists_fields(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "d.jsonl", TEXT_ROWS)
    with pytest.raises(
        DatasetError, match=r"label field 'category' not found.*fields present: id, text, label"
    ):
        load_file(path, label_field="category")


def test_unknown_text_field_when_text_is_required(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "d.jsonl", TEXT_ROWS)
    with pytest.raises(
        DatasetError, match=r"text field 'body' not found.*fields present: id, text, label"
    ):
        load_file(path, text_field="body", kind="text")


def test_no_text_and_no_numeric_fields(tmp_path: Path) -> None:
    path = write_jsonl(
        tmp_path / "d.jsonl", [{"name": "x", "label": "a"}, {"name": "y", "label": "b"}]
    )
    with pytest.raises(
        DatasetError, match=r"no 'text' text field and no numeric fields.*name, label"
    ):
        load_file(path)


def test_row_missing_label_names_the_line(tmp_path: Path) -> None:
    rows = [TEXT_ROWS[0], TEXT_ROWS[1], {"id": "x", "text": "no label here"}]
    with pytest.raises(DatasetError, match=r"line 3: no 'label' label"):
        load_file(write_jsonl(tmp_path / "d.jsonl", rows))


def test_csv_empty_label_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "d.csv"
    path.write_text("text,label\nhello,a\nworld,\nagain,b\n", encoding="utf-8")
    with pytest.raises(DatasetError, match=r"d\.csv line 3: no 'label' label"):
        load_file(path)


def test_parquet_null_label_names_the_row(tmp_path: Path) -> None:
    path = tmp_path / "d.parquet"
    rows = [{"text": "a", "label": "x"}, {"text": "b", "label": None}]
    pq.write_table(pa.Table.from_pylist(rows), path)
    with pytest.raises(DatasetError, match=r"d\.parquet row 2: no 'label' label"):
        load_file(path)


def test_non_numeric_value_in_numeric_column(tmp_path: Path) -> None:
    rows = [*NUMERIC_ROWS, {"id": "r4", "height": "tall", "weight": 3, "label": 1}]
    with pytest.raises(DatasetError, match=r"line 4: field 'height' must be a number, got 'tall'"):
        load_file(write_jsonl(tmp_path / "d.jsonl", rows))


def test_single_class(tmp_path: Path) -> None:
    rows = [{"text": f"t{i}", "label": "ham"} for i in range(5)]
    with pytest.raises(DatasetError, match=r"single class \('ham' in all 5 rows\)"):
        load_file(write_jsonl(tmp_path / "d.jsonl", rows))


@pytest.mark.parametrize("suffix", [".jsonl", ".csv"])
def test_empty_file(tmp_path: Path, suffix: str) -> None:
    path = tmp_path / f"empty{suffix}"
    path.write_text("", encoding="utf-8")
    with pytest.raises(DatasetError, match=rf"empty{suffix} is empty: no rows to load"):
        load_file(path)


def test_messages_are_one_line(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "d.jsonl", TEXT_ROWS)
    with pytest.raises(DatasetError) as info:
        load_file(path, label_field="nope")
    assert "\n" not in str(info.value)
