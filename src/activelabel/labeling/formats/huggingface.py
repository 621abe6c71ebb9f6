"""A Hugging Face dataset folder: what ``datasets.load_dataset("parquet", data_dir=...)``
reads, with a dataset card.

Layout: ``data/<split>-00000-of-00001.parquet`` per split and ``README.md``, a dataset card
whose YAML header declares the features (the labels as a ``ClassLabel``), the splits and
their sizes, the licence, and whose text gives the counts per label, the agreement between
annotators and the guidelines version. Our splits map to Hugging Face's: pool -> ``train``,
holdout -> ``test``, gold -> ``validation`` (and back on import).

Columns: ``id`` (the external id), the item's data fields (a field holding a list or an
object is written as JSON text; a field named like one of ours gets a ``data_`` prefix), the
consensus as ``label`` (the class index, -1 without consensus), ``labels`` (multi-label:
class indices) or ``spans`` (``[{start, end, label}]``), and ``annotations``: every current
label as JSON text ``[{annotator, labels, created_at}]``. The feature declaration is also
stored in each Parquet file's metadata (key ``huggingface``), where ``datasets`` looks first.

Reading takes such a folder, a zip of it, or one Parquet file: label names come from the
file's metadata, else from the card. Each row's ``annotations`` become its annotations; a
dataset without that column gives the row's label as one annotation (annotator unknown);
a ``validation`` row's label is also its gold answer.
"""

from __future__ import annotations

import contextlib
import json
import re
import shutil
import tempfile
import zipfile
from collections import Counter
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from ._common import ExportContext, ExportRow, Parsed, span_of

__all__ = ["HF_SPLITS", "dataset_card", "read_huggingface", "write_huggingface",
           "write_huggingface_folder"]

#: Our split -> the Hugging Face split it is written to.
HF_SPLITS = {"pool": "train", "holdout": "test", "gold": "validation"}
_OUR_SPLITS = {v: k for k, v in HF_SPLITS.items()}
_OWN_COLUMNS = frozenset({"id", "label", "labels", "spans", "annotations"})
_STREAM_CHUNK = 1 << 20
_BATCH = 5000


# ---- writing ---------------------------------------------------------------------------------


def _answer_column(ctx: ExportContext) -> str:
    return "spans" if ctx.spans else "labels" if ctx.multilabel else "label"


def _answer(labels: Any, ctx: ExportContext, index: Mapping[Any, int]) -> Any:
    if ctx.spans:
        return [{"start": s["start"], "end": s["end"], "label": s["label"]}
                for s in labels or []]
    if ctx.multilabel:
        return None if labels is None else [index[x] for x in labels if x in index]
    return -1 if labels is None or labels not in index else index[labels]


def _record(row: ExportRow, ctx: ExportContext, index: Mapping[Any, int]) -> dict[str, Any]:
    out: dict[str, Any] = {"id": row["external_id"]}
    for key, value in row["data"].items():
        out[f"data_{key}" if key in _OWN_COLUMNS else str(key)] = value
    out[_answer_column(ctx)] = _answer(row["labels"], ctx, index)
    out["annotations"] = json.dumps(
        [{"annotator": a["annotator"], "labels": a["labels"], "created_at": a["created_at"]}
         for a in row["annotations"]], ensure_ascii=False, default=str)
    return out


def _column(values: list[Any]) -> Any:
    """An Arrow array of a data field: scalars as they are, anything else as JSON text."""
    import pyarrow as pa

    if all(v is None or isinstance(v, (str, int, float, bool)) for v in values):
        try:
            return pa.array(values)
        except (pa.ArrowInvalid, pa.ArrowTypeError):
            pass  # mixed scalar types: text below
    return pa.array([None if v is None else v if isinstance(v, str)
                     else json.dumps(v, ensure_ascii=False, default=str) for v in values],
                    type=pa.string())


def _answer_type(ctx: ExportContext) -> Any:
    import pyarrow as pa

    if ctx.spans:
        return pa.list_(pa.struct([("start", pa.int64()), ("end", pa.int64()),
                                   ("label", pa.string())]))
    return pa.list_(pa.int64()) if ctx.multilabel else pa.int64()


def _table(records: list[dict[str, Any]], ctx: ExportContext) -> Any:
    import pyarrow as pa

    answer = _answer_column(ctx)
    names = list(dict.fromkeys(k for r in records for k in r if k not in (answer, "annotations")))
    arrays = {name: (pa.array([r.get(name) for r in records], type=pa.string())
                     if name == "id" else _column([r.get(name) for r in records]))
              for name in names}
    arrays[answer] = pa.array([r[answer] for r in records], type=_answer_type(ctx))
    arrays["annotations"] = pa.array([r["annotations"] for r in records], type=pa.string())
    table = pa.table(arrays)
    meta = {b"huggingface": json.dumps({"info": {"features": _features(table, ctx)}}).encode()}
    return table.replace_schema_metadata(meta)


def _value_type(arrow_type: Any) -> str:
    import pyarrow as pa

    if pa.types.is_string(arrow_type) or pa.types.is_large_string(arrow_type):
        return "string"
    if pa.types.is_boolean(arrow_type):
        return "bool"
    if pa.types.is_floating(arrow_type):
        return "float64"
    if pa.types.is_null(arrow_type):
        return "null"
    return "int64"


def _features(table: Any, ctx: ExportContext) -> dict[str, Any]:
    """The ``datasets`` feature declaration of the table (as ``Features.to_dict`` writes)."""
    names = [str(x) for x in ctx.labels]
    features: dict[str, Any] = {}
    for f in table.schema:
        if f.name == "label":
            features[f.name] = {"names": names, "_type": "ClassLabel"}
        elif f.name == "labels" and ctx.multilabel:
            features[f.name] = {"feature": {"names": names, "_type": "ClassLabel"},
                                "_type": "Sequence"}
        elif f.name == "spans" and ctx.spans:
            features[f.name] = [{"start": {"dtype": "int64", "_type": "Value"},
                                 "end": {"dtype": "int64", "_type": "Value"},
                                 "label": {"dtype": "string", "_type": "Value"}}]
        else:
            features[f.name] = {"dtype": _value_type(f.type), "_type": "Value"}
    return features


def _yaml_str(value: Any) -> str:
    return json.dumps(str(value), ensure_ascii=False)  # a JSON string is a YAML string


def dataset_card(ctx: ExportContext, split_sizes: Mapping[str, int],
                 counts: Mapping[str, int], features: Mapping[str, Any]) -> str:
    """README.md: YAML header (licence, features with the label names, splits, the data
    files) and a short text with the counts per label, the agreement and the guidelines."""
    lines = ["---", f"license: {_yaml_str(ctx.license)}", f"pretty_name: {_yaml_str(ctx.name)}",
             "task_categories:",
             f"- {'token-classification' if ctx.spans else 'text-classification'}",
             "dataset_info:", "  features:"]
    for name, feature in features.items():
        lines.append(f"  - name: {_yaml_str(name)}")
        if isinstance(feature, dict) and feature.get("_type") == "ClassLabel":
            lines += ["    dtype:", "      class_label:", "        names:"]
            lines += [f"          '{i}': {_yaml_str(n)}" for i, n in enumerate(feature["names"])]
        elif isinstance(feature, dict) and feature.get("_type") == "Sequence":
            lines += ["    sequence:", "      class_label:", "        names:"]
            lines += [f"          '{i}': {_yaml_str(n)}"
                      for i, n in enumerate(feature["feature"]["names"])]
        elif isinstance(feature, list):
            lines += ["    list:", "    - name: start", "      dtype: int64",
                      "    - name: end", "      dtype: int64", "    - name: label",
                      "      dtype: string"]
        else:
            lines.append(f"    dtype: {feature['dtype']}")
    lines.append("  splits:")
    for split, size in split_sizes.items():
        lines += [f"  - name: {split}", f"    num_examples: {size}"]
    lines += ["configs:", "- config_name: default", "  data_files:"]
    for split in split_sizes:
        lines += [f"  - split: {split}", f"    path: data/{split}-*"]
    lines += ["---", "", f"# {ctx.name}", "",
              f"Labeled with activelabel (task: {ctx.task}; guidelines version "
              f"{ctx.guidelines_version}; licence: {ctx.license}).", "",
              "Splits: " + ", ".join(f"{s} ({n} items)" for s, n in split_sizes.items())
              + ". `train` holds the pool's labeled items, `test` the holdout (evaluation), "
              "`validation` the gold items.", "", "## Labels (consensus)", "",
              "| label | items |", "|---|---|"]
    lines += [f"| {name} | {n} |" for name, n in counts.items()]
    lines += ["", "## Agreement between annotators", ""]
    if ctx.agreement:
        lines += [f"- {k}: {v}" for k, v in ctx.agreement.items()]
    else:
        lines.append("- not measured (fewer than two labels per item)")
    lines += ["", "`annotations` holds every annotator's current label (JSON text).", ""]
    return "\n".join(lines)


def _label_counts(rows: list[ExportRow], ctx: ExportContext) -> dict[str, int]:
    counts: Counter[str] = Counter({str(n): 0 for n in ctx.labels})
    for row in rows:
        labels = row["labels"]
        if ctx.spans:
            counts.update(str(s["label"]) for s in labels or [])
        elif isinstance(labels, list):
            counts.update(str(x) for x in labels)
        elif labels is not None:
            counts[str(labels)] += 1
    return dict(counts)


def write_huggingface_folder(rows: Iterator[ExportRow], ctx: ExportContext,
                             folder: Path) -> dict[str, int]:
    """Write the dataset folder (``data/*.parquet`` and ``README.md``) under ``folder``;
    returns the number of rows per Hugging Face split."""
    import pyarrow.parquet as pq

    index = {label: i for i, label in enumerate(ctx.labels)}
    by_split: dict[str, list[ExportRow]] = {}
    for row in rows:
        by_split.setdefault(HF_SPLITS.get(str(row["split"]), "train"), []).append(row)
    (folder / "data").mkdir(parents=True, exist_ok=True)
    features: dict[str, Any] = {}
    sizes: dict[str, int] = {}
    for split in ("train", "validation", "test"):
        if split not in by_split:
            continue
        table = _table([_record(r, ctx, index) for r in by_split[split]], ctx)
        features.update(_features(table, ctx))
        pq.write_table(table, folder / "data" / f"{split}-00000-of-00001.parquet")
        sizes[split] = table.num_rows
    if not sizes:
        features = {"id": {"dtype": "string", "_type": "Value"}}
    every = [r for split_rows in by_split.values() for r in split_rows]
    (folder / "README.md").write_text(
        dataset_card(ctx, sizes, _label_counts(every, ctx), features), encoding="utf-8")
    return sizes


def write_huggingface(rows: Iterator[ExportRow], ctx: ExportContext) -> Iterator[bytes]:
    """The dataset folder as a zip (``data/...``, ``README.md``), built in a temporary
    folder, streamed, then deleted."""
    workdir = Path(tempfile.mkdtemp(prefix="activelabel-hf-"))
    try:
        folder = workdir / "dataset"
        write_huggingface_folder(rows, ctx, folder)
        archive = workdir / "dataset.zip"
        with zipfile.ZipFile(archive, "w", compression=zipfile.ZIP_DEFLATED) as bundle:
            for path in sorted(folder.rglob("*")):
                if path.is_file():
                    bundle.write(path, path.relative_to(folder).as_posix())
        with archive.open("rb") as handle:
            while chunk := handle.read(_STREAM_CHUNK):
                yield chunk
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


# ---- reading ---------------------------------------------------------------------------------


def _card_names(card: Path) -> list[str] | None:
    """Label names of the first ``class_label`` of a dataset card's YAML header."""
    if not card.is_file():
        return None
    names: dict[int, str] = {}
    inside = False
    for line in card.read_text(encoding="utf-8", errors="replace").splitlines():
        if line.strip() == "names:":
            if names:
                break
            inside = True
            continue
        match = re.match(r"^\s+'?(\d+)'?\s*:\s*(.+?)\s*$", line) if inside else None
        if match is None:
            if inside and names:
                break
            continue
        value = match.group(2)
        with contextlib.suppress(ValueError):
            value = json.loads(value) if value.startswith('"') else value.strip("'")
        names[int(match.group(1))] = str(value)
    return [names[i] for i in sorted(names)] or None


def _names_of(schema: Any, card_names: list[str] | None) -> dict[str, list[str]]:
    """Column -> ClassLabel names, from the file's ``huggingface`` metadata, else the card."""
    out: dict[str, list[str]] = {}
    raw = (schema.metadata or {}).get(b"huggingface")
    if raw:
        try:
            features = json.loads(raw).get("info", {}).get("features", {})
        except (ValueError, AttributeError):
            features = {}
        for name, feature in features.items() if isinstance(features, dict) else ():
            inner = feature.get("feature") if isinstance(feature, dict) else None
            for candidate in (feature, inner):
                if isinstance(candidate, dict) and candidate.get("_type") == "ClassLabel":
                    out[name] = [str(n) for n in candidate.get("names", [])]
    if card_names:
        for column in ("label", "labels"):
            out.setdefault(column, card_names)
    return out


def _named(value: Any, names: list[str] | None, column: str) -> Any:
    if isinstance(value, bool):
        raise ValueError(f"{column} {value!r} is not a label")
    if isinstance(value, int):
        if names is None:
            raise ValueError(f"{column} {value} is a class index but the dataset names no "
                             "classes: add the ClassLabel names to the card (README.md)")
        if not 0 <= value < len(names):
            raise ValueError(f"{column} {value} is outside the {len(names)} class names")
        return names[value]
    return value


def _answer_of(record: Mapping[str, Any], names: Mapping[str, list[str]]) -> list[Any] | None:
    if record.get("spans") is not None:
        return [span_of(s, f"span {n}") for n, s in enumerate(record["spans"], start=1)]
    if record.get("labels") is not None:
        return [_named(v, names.get("labels"), "labels") for v in record["labels"]]
    label = record.get("label")
    if label is None or label == -1:
        return None
    return [_named(label, names.get("label"), "label")]


def _record_to_row(record: dict[str, Any], names: Mapping[str, list[str]],
                   split: str | None) -> dict[str, Any]:
    answer = _answer_of(record, names)
    raw = record.get("annotations")
    if raw is not None:
        try:
            given = json.loads(raw) if isinstance(raw, str) else raw
        except ValueError as exc:
            raise ValueError(f"annotations is not JSON ({exc})") from None
        if not isinstance(given, list) or not all(isinstance(a, dict) for a in given):
            raise ValueError("annotations must be a list of {annotator, labels, created_at}")
        annotations = [{"labels": a.get("labels"), "annotator": a.get("annotator"),
                        "created_at": a.get("created_at")} for a in given]
    else:
        annotations = [] if answer is None else [{"labels": answer, "annotator": None,
                                                   "created_at": None}]
    data = {k[5:] if k.startswith("data_") and k[5:] in _OWN_COLUMNS else k: v
            for k, v in record.items() if k not in _OWN_COLUMNS}
    if not data:
        raise ValueError("row has no content besides id and labels")
    ext = record.get("id")
    row: dict[str, Any] = {"external_id": None if ext in (None, "") else str(ext), "data": data,
                           "split": split, "annotations": annotations, "predictions": []}
    if split == "gold":
        if answer is None:
            row["split"] = None
        else:
            row["gold_labels"] = answer
    return row


def _split_of(path: Path) -> str | None:
    stem = path.name.split("-", 1)[0].split(".", 1)[0].lower()
    return _OUR_SPLITS.get({"valid": "validation", "dev": "validation"}.get(stem, stem))


def _read_files(files: list[Path], card: Path) -> Iterator[Parsed]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    card_names = _card_names(card)
    line = 0
    for path in files:
        try:
            opened = pq.ParquetFile(path)
        except (pa.ArrowException, OSError) as exc:
            yield line + 1, None, f"{path.name} is not a Parquet file that can be read ({exc})"
            continue
        with opened as reader:
            names = _names_of(reader.schema_arrow, card_names)
            split = _split_of(path)
            for batch in reader.iter_batches(batch_size=_BATCH):
                for record in batch.to_pylist():
                    line += 1
                    try:
                        yield line, _record_to_row(record, names, split), None
                    except ValueError as exc:
                        yield line, None, f"{path.name}: {exc}"


def _unzip(archive: Path, target: Path) -> Path:
    """Extract the Parquet files and the card of a zip into ``target`` (member names are
    flattened per folder level, never written outside it); returns the dataset's root."""
    with zipfile.ZipFile(archive) as bundle:
        for member in bundle.infolist():
            name = member.filename
            if member.is_dir() or not name.endswith((".parquet", "README.md")):
                continue
            parts = [p for p in Path(name).parts if p not in ("", ".", "..", "/")]
            if not parts:
                continue
            dest = target.joinpath(*(re.sub(r"[^A-Za-z0-9_.-]", "_", p) for p in parts))
            dest.parent.mkdir(parents=True, exist_ok=True)
            with bundle.open(member) as src, dest.open("wb") as out:
                shutil.copyfileobj(src, out, _STREAM_CHUNK)
    cards = sorted(target.rglob("README.md"), key=lambda p: len(p.parts))
    return cards[0].parent if cards else target


def read_huggingface(path: Path) -> Iterator[Parsed]:
    """``(position, canonical row, error)`` of a dataset folder, a zip of one, or one
    Parquet file (its card, if any, beside it as README.md)."""
    path = Path(path)
    if path.is_file() and zipfile.is_zipfile(path):
        workdir = tempfile.mkdtemp(prefix="activelabel-hf-import-")
        try:
            yield from read_huggingface(_unzip(path, Path(workdir)))
        finally:
            shutil.rmtree(workdir, ignore_errors=True)
        return
    if path.is_dir():
        files = sorted(path.rglob("*.parquet"))
        card = path / "README.md"
        if not files:
            yield 1, None, (f"{path.name} holds no .parquet file: a dataset folder has "
                            "data/train-00000-of-00001.parquet (and README.md)")
            return
    else:
        files, card = [path], path.parent / "README.md"
    yield from _read_files(files, card)


