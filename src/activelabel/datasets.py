"""Labeled datasets for simulations: scikit-learn's bundled sets and JSONL / CSV / Parquet files.

A :class:`Dataset` holds the raw items (texts, numeric rows or small images), the label of each
row as an index into ``classes``, and turns itself into model features with the featurizers of
:mod:`activelabel.features`. Files are read row by row (JSONL line by line) and every problem is
reported once, with the line or row where it was found.
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from activelabel.features import FEATURIZER_KINDS, FeatureSet, make_featurizer

__all__ = [
    "BUILTIN_DATASETS",
    "FILE_EXTENSIONS",
    "Dataset",
    "DatasetError",
    "load_builtin",
    "load_file",
]

#: Names accepted by :func:`load_builtin`.
BUILTIN_DATASETS = ("digits", "wine", "breast_cancer")
#: File extensions accepted by :func:`load_file`.
FILE_EXTENSIONS = (".jsonl", ".csv", ".parquet")

Record = dict[str, Any]


class DatasetError(ValueError):
    """A dataset could not be loaded; the message says where and how to fix it."""


@dataclass(frozen=True, eq=False)
class Dataset:
    """A fully labeled dataset, one row per item.

    ``kind`` is ``"text"`` (``records`` hold the payloads, ``text_field`` names the text),
    ``"numeric"`` (``X`` is (n, n_features) float64 with ``feature_names``) or ``"image"``
    (``images`` is (n, height, width) and ``X`` its pixels flattened to (n, height * width)).
    ``y`` is (n,) with the index of each row's label in ``classes``.
    """

    name: str
    kind: str
    y: NDArray[np.intp]
    classes: tuple[str, ...]
    records: list[Record] | None = None
    X: NDArray[np.float64] | None = None
    images: NDArray[np.float64] | None = None
    feature_names: tuple[str, ...] = ()
    text_field: str = "text"
    ids: list[str] | None = field(default=None, repr=False)

    def __len__(self) -> int:
        return int(self.y.shape[0])

    @property
    def n_classes(self) -> int:
        return len(self.classes)

    @property
    def labels(self) -> list[str]:
        """The class name of every row, (n,)."""
        return [self.classes[i] for i in self.y]

    def class_counts(self) -> dict[str, int]:
        """Rows per class, in ``classes`` order."""
        counts = np.bincount(self.y, minlength=self.n_classes)
        return {c: int(n) for c, n in zip(self.classes, counts, strict=True)}

    def features(self, featurizer: str = "auto", **params: Any) -> FeatureSet:
        """Fit a featurizer on all rows: ``X`` for the model, dense embeddings.

        ``featurizer``: ``"auto"`` (the kind's default: TF-IDF and its SVD for text, pixels
        scaled to [0, 1] for images, standardized columns for numeric data), or a kind of
        :func:`~activelabel.features.make_featurizer`: ``"text"`` or ``"sentence"`` (text
        data), ``"image"`` (images), ``"numeric"`` (numeric data, or an image's pixels).
        ``params`` go to the featurizer. ValueError when the kind does not fit the data.
        """
        kind = {"text": "text", "image": "image"}.get(self.kind, "numeric") \
            if featurizer == "auto" else featurizer
        if kind not in FEATURIZER_KINDS:
            raise ValueError(f"unknown featurizer {featurizer!r}; choose auto or one of "
                             f"{', '.join(FEATURIZER_KINDS)}")
        fits = {"text": ("text",), "sentence": ("text",), "image": ("image",),
                "numeric": ("numeric", "image")}[kind]
        if self.kind not in fits:
            raise ValueError(f"the {kind} featurizer does not fit {self.kind} data "
                             f"({self.name}); use auto or one for {self.kind} data")
        try:
            made = make_featurizer(kind, **params)
        except TypeError as exc:
            raise ValueError(f"bad featurizer parameters for {kind}: {exc}") from None
        if kind in ("text", "sentence"):
            assert self.records is not None
            if "field" not in params:
                made = make_featurizer(kind, **{"field": self.text_field, **params})
            return made.fit_transform(self.records)
        if kind == "image":
            assert self.images is not None
            return made.fit_transform(self.images)
        assert self.X is not None
        return made.fit_transform(self.X)


# ---- scikit-learn's bundled datasets -------------------------------------------------------------


def load_builtin(name: str) -> Dataset:
    """Load ``"digits"`` (8x8 images), ``"wine"`` or ``"breast_cancer"`` (numeric) from scikit-learn."""
    from sklearn import datasets as skd

    loaders = {
        "digits": skd.load_digits,
        "wine": skd.load_wine,
        "breast_cancer": skd.load_breast_cancer,
    }
    if name not in loaders:
        raise DatasetError(
            f"unknown built-in dataset {name!r}; choose one of {', '.join(BUILTIN_DATASETS)}"
        )
    bunch = loaders[name]()
    classes = tuple(str(c) for c in bunch.target_names)
    y = np.asarray(bunch.target, dtype=np.intp)
    X = np.asarray(bunch.data, dtype=np.float64)
    names = tuple(str(f) for f in getattr(bunch, "feature_names", [])) or tuple(
        f"pixel_{i}" for i in range(X.shape[1])
    )
    if name == "digits":
        images = np.asarray(bunch.images, dtype=np.float64)
        return Dataset(name, "image", y, classes, X=X, images=images, feature_names=names)
    return Dataset(name, "numeric", y, classes, X=X, feature_names=names)


# ---- files -----------------------------------------------------------------------------------


def load_file(
    path: str | Path,
    text_field: str = "text",
    label_field: str = "label",
    *,
    kind: str = "auto",
) -> Dataset:
    """Load a labeled ``.jsonl``, ``.csv`` or ``.parquet`` file.

    With ``kind="auto"`` the data is text when the first row has ``text_field`` and numeric
    otherwise (every other field holding numbers becomes a feature column); ``kind="text"``
    requires ``text_field``. Raises :class:`DatasetError` with one clear line on bad input.
    """
    path = Path(path)
    if kind not in ("auto", "text", "numeric"):
        raise DatasetError(f"kind must be 'auto', 'text' or 'numeric', got {kind!r}")
    if not path.is_file():
        raise DatasetError(f"file not found: {path}")
    readers = {".jsonl": _jsonl_rows, ".csv": _csv_rows, ".parquet": _parquet_rows}
    reader = readers.get(path.suffix.lower())
    if reader is None:
        raise DatasetError(
            f"unsupported file type {path.suffix or '(none)'!r} for {path.name}; "
            f"use one of {', '.join(FILE_EXTENSIONS)}"
        )
    builder = _Builder(path, text_field, label_field, kind)
    for where, row in reader(path):
        builder.add(where, row)
    return builder.finish()


def _jsonl_rows(path: Path) -> Iterator[tuple[str, Record]]:
    """Yield ``("line N", object)`` for each non-blank line, streaming."""
    with path.open("r", encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as exc:
                raise DatasetError(
                    f"{path.name} line {lineno}: malformed JSON ({exc.msg} at column {exc.colno})"
                ) from None
            if not isinstance(obj, dict):
                raise DatasetError(
                    f"{path.name} line {lineno}: expected a JSON object, got {type(obj).__name__}"
                )
            yield f"line {lineno}", obj


def _csv_rows(path: Path) -> Iterator[tuple[str, Record]]:
    """Yield ``("line N", row)`` per CSV record; empty cells become ``None``."""
    with path.open("r", encoding="utf-8", newline="") as fh:
        reader = csv.DictReader(fh)
        for row in reader:
            clean = {k: (v if v != "" else None) for k, v in row.items() if k is not None}
            yield f"line {reader.line_num}", clean


def _parquet_rows(path: Path) -> Iterator[tuple[str, Record]]:
    """Yield ``("row N", row)`` per Parquet row (1-based), one record batch at a time."""
    import pyarrow.parquet as pq

    try:
        pfile = pq.ParquetFile(path)
    except Exception as exc:  # pyarrow raises several types for a corrupt file
        raise DatasetError(f"{path.name}: not a readable Parquet file ({exc})") from None
    n = 0
    for batch in pfile.iter_batches(batch_size=65_536):
        for row in batch.to_pylist():
            n += 1
            yield f"row {n}", row


class _Builder:
    """Collects rows into a :class:`Dataset`, deciding text or numeric from the first row."""

    def __init__(self, path: Path, text_field: str, label_field: str, kind: str) -> None:
        self.path = path
        self.text_field = text_field
        self.label_field = label_field
        self.kind = kind
        self.labels: list[str] = []
        self.records: list[Record] = []
        self.values: list[list[float]] = []
        self.ids: list[str] = []
        self.numeric_fields: list[str] = []

    def add(self, where: str, row: Record) -> None:
        if not self.labels:
            self._first_row(row)
        label = row.get(self.label_field)
        if label is None or (isinstance(label, str) and not label.strip()):
            raise DatasetError(f"{self.path.name} {where}: no {self.label_field!r} label")
        if not isinstance(label, str | int | float) or (
            isinstance(label, float) and math.isnan(label)
        ):
            raise DatasetError(
                f"{self.path.name} {where}: label must be a string or a number, got {label!r}"
            )
        self.labels.append(str(label).strip())
        if "id" in row and row["id"] is not None:
            self.ids.append(str(row["id"]))
        if self.kind == "text":
            self._add_text(where, row)
        else:
            self.values.append([self._number(where, row, f) for f in self.numeric_fields])

    def _first_row(self, row: Record) -> None:
        fields = ", ".join(row) or "(none)"
        if self.label_field not in row:
            raise DatasetError(
                f"label field {self.label_field!r} not found in {self.path.name}; fields "
                f"present: {fields} (pass --label-field NAME)"
            )
        has_text = self.text_field in row
        if self.kind == "text" and not has_text:
            raise DatasetError(
                f"text field {self.text_field!r} not found in {self.path.name}; fields "
                f"present: {fields} (pass --text-field NAME)"
            )
        if self.kind == "auto":
            self.kind = "text" if has_text else "numeric"
        if self.kind == "numeric":
            self.numeric_fields = [
                k for k, v in row.items() if k != self.label_field and _is_number(v)
            ]
            if not self.numeric_fields:
                raise DatasetError(
                    f"{self.path.name} has no {self.text_field!r} text field and no numeric "
                    f"fields besides the label; fields present: {fields} (pass --text-field NAME)"
                )

    def _add_text(self, where: str, row: Record) -> None:
        text = row.get(self.text_field)
        if not isinstance(text, str):
            raise DatasetError(
                f"{self.path.name} {where}: {self.text_field!r} must be a string, got {text!r}"
            )
        payload = {k: v for k, v in row.items() if k != self.label_field}
        self.records.append(payload)

    def _number(self, where: str, row: Record, name: str) -> float:
        value = row.get(name)
        if value is None:
            return math.nan
        if not _is_number(value):
            raise DatasetError(
                f"{self.path.name} {where}: field {name!r} must be a number, got {value!r}"
            )
        return float(value)

    def finish(self) -> Dataset:
        name = self.path.stem
        if not self.labels:
            raise DatasetError(f"{self.path.name} is empty: no rows to load")
        classes = tuple(sorted(set(self.labels), key=_label_sort_key))
        if len(classes) < 2:
            raise DatasetError(
                f"{self.path.name} has a single class ({classes[0]!r} in all "
                f"{len(self.labels)} rows); a classifier needs at least 2 classes"
            )
        index = {c: i for i, c in enumerate(classes)}
        y = np.fromiter((index[c] for c in self.labels), dtype=np.intp, count=len(self.labels))
        ids = self.ids if len(self.ids) == len(self.labels) else None
        if self.kind == "text":
            return Dataset(
                name, "text", y, classes, records=self.records, text_field=self.text_field, ids=ids
            )
        X = np.asarray(self.values, dtype=np.float64).reshape(len(self.labels), -1)
        return Dataset(
            name, "numeric", y, classes, X=X, feature_names=tuple(self.numeric_fields), ids=ids
        )


def _is_number(value: Any) -> bool:
    """True for ints and floats (not bools) and strings that parse as a float."""
    if isinstance(value, bool):
        return False
    if isinstance(value, int | float):
        return True
    if isinstance(value, str):
        try:
            float(value)
        except ValueError:
            return False
        return True
    return False


def _label_sort_key(label: str) -> tuple[int, float, str]:
    """Numeric labels in numeric order ("2" before "10"), then the rest alphabetically."""
    try:
        return (0, float(label), label)
    except ValueError:
        return (1, 0.0, label)
