"""Imports: uploads saved to disk by chunks, then streamed into the items table as a job.

Rows of flat files (JSONL, CSV, Parquet) go through the project's column mapping
(:mod:`labeling.mapping`), which makes each one a *canonical row*: ``external_id``, ``data``
(shown to annotators), ``private``, ``split``, ``gold_labels``, ``annotations`` (existing
labels, with their annotator and time), ``predictions`` (labels, score, model) and
``vector``. Formats in ``CANONICAL_FORMATS`` yield canonical rows themselves. Every value of
a row is checked before anything is stored, and a row's item, labels, predictions and
vector go in together, in the transaction of its batch, or not at all.

JSONL is read line by line, CSV with the csv module, Parquet by record batches, so memory
stays at one batch whatever the file size. Bad rows (bad JSON, no payload, a payload that is
not an object, an unknown split) are reported with their line number and never stop the
import; rows whose external id is already in the project are reported as duplicates.
"""

from __future__ import annotations

import contextlib
import csv
import json
import logging
import os
import re
import shutil
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, BinaryIO

from sqlalchemy import select
from sqlalchemy.orm import Session

from ..store import (
    InvalidInput,
    NotFound,
    Storage,
    add_items,
    content_hash,
    count_labeled_items,
    enqueue_job,
    get_project,
    record_audit,
    save_checkpoint,
    settings_of,
)
from ..store.db import refresh_statistics
from ..store.imported import (
    ImportedLabel,
    ImportedPrediction,
    add_imported_labels,
    add_labels_to_known_items,
    add_predictions,
)
from ..store.items import ANALYZE_AFTER_ROWS, item_ids_by_external_id, next_free_row
from ..store.models import SPLITS, Item, Job, JobStatus, Project, Round, RoundStatus
from .drift import import_drift
from .formats.conll import read_conll, read_span_jsonl
from .formats.huggingface import read_huggingface
from .formats.labelstudio import read_labelstudio
from .formats.spacy import read_spacy
from .images import IMAGE_IMPORTS, image_rows
from .mapping import (
    ROLES,
    apply_mapping,
    check_mapping,
    check_vector,
    parse_time,
    propose_mapping,
    samples_of,
)
from .ranking import place_new_items
from .rounds import request_round
from .vectors import vector_dim, write_vectors

__all__ = [
    "BATCH_ROWS",
    "CANONICAL_FORMATS",
    "FORMATS",
    "MAX_REPORTED_REJECTS",
    "PREVIEW_ROWS",
    "discard_upload",
    "enqueue_import",
    "normalize_row",
    "preview_import",
    "read_rows",
    "run_import",
    "save_mapping",
    "save_upload",
    "sweep_uploads",
    "upload_path",
]

log = logging.getLogger("activelabel.imports")

#: File extension -> format name (a double extension such as ``.spacy.jsonl`` wins over
#: its last part).
FORMATS = {".jsonl": "jsonl", ".ndjson": "jsonl", ".csv": "csv", ".parquet": "parquet",
           ".json": "labelstudio", ".spacy.jsonl": "spacy", ".zip": "huggingface",
           # span projects (formats.conll): CoNLL / IOB, and JSONL with character offsets
           ".conll": "conll", ".iob": "conll", ".bio": "conll", ".spans": "spans_jsonl"}
#: Formats whose readers yield canonical rows (``external_id``, ``data``, ``split``,
#: ``gold_labels``, ``annotations``, ``predictions``): they skip the column mapping.
CANONICAL_FORMATS = {"labelstudio", "spacy", "huggingface", "conll", "spans_jsonl"}
#: Rows a preview reads.
PREVIEW_ROWS = 20
#: Rows handed to ``add_items`` (and committed) at once.
BATCH_ROWS = 5000
#: Rejected rows listed in a job's result (all are counted).
MAX_REPORTED_REJECTS = 1000
#: Least time between two progress reports.
PROGRESS_SECONDS = 0.5
_COPY_CHUNK = 1 << 20
_ID_KEYS = ("external_id", "id")
_META_KEYS = frozenset({"external_id", "id", "split", "gold_labels", "gold_label"})
_GOLD_KEYS = ("gold_labels", "gold_label")
_SAFE_NAME = re.compile(r"[^A-Za-z0-9_.-]+")

#: ``(line, row)`` for a parsed row, ``(line, error message)`` for one that could not be read.
Parsed = tuple[int, Any, str | None]


def _format_of(name: str) -> str:
    suffix = Path(name).suffix.lower()
    fmt = next((f for s, f in FORMATS.items() if s.count(".") > 1 and name.lower().endswith(s)),
               None) or FORMATS.get(suffix)
    if fmt is None:
        raise InvalidInput(f"file {name!r} has extension {suffix or '(none)'!r}: upload a "
                           f"{', '.join(sorted(FORMATS))} file")
    return fmt


def save_upload(storage: Storage, project_id: int, filename: str, stream: BinaryIO) -> Path:
    """Copy ``stream`` by chunks to ``uploads_dir/project_<id>/<unique>-<filename>``."""
    _format_of(filename)
    folder = storage.location.uploads_dir / f"project_{int(project_id)}"
    folder.mkdir(parents=True, exist_ok=True)
    safe = _SAFE_NAME.sub("_", Path(filename).name)[-100:] or "upload"
    target = folder / f"{uuid.uuid4().hex[:12]}-{safe}"
    partial = target.with_name(target.name + ".part")
    try:
        with partial.open("wb") as out:
            shutil.copyfileobj(stream, out, _COPY_CHUNK)
        partial.replace(target)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    return target


def discard_upload(storage: Storage, job: Job, result: Mapping[str, Any]) -> bool:
    """After an import job is done: remove its file when it is an upload this server saved
    (under the uploads folder; a file or folder named some other way is the user's and
    stays), every row of it went in, and no other import queued or running reads it. Its rows
    are in the database now, where a purge reaches them; the copy would keep every payload a
    purge removes, and the disk it takes. An import with rejected rows keeps its upload, to
    be imported again with another mapping. ``result``: the job's. True when a file was
    removed."""
    raw = (job.payload or {}).get("path")
    if job.kind != "import" or not raw or result.get("rejected_count"):
        return False
    path = Path(str(raw))
    if _resolved(path) in _read_by_imports(storage, but=job.id):
        return False
    try:
        inside = path.resolve().is_relative_to(storage.location.uploads_dir.resolve())
    except OSError:
        return False
    if not inside or not path.is_file():
        return False
    path.unlink(missing_ok=True)
    return True


def sweep_uploads(storage: Storage, keep_seconds: float, *,
                  now: float | None = None) -> list[Path]:
    """Remove the files of the uploads folder last used more than ``keep_seconds`` ago (saved,
    previewed or named by an import: :func:`upload_path` marks each use) that no queued or
    running import reads: previews never imported, imports with rejected rows nobody took up
    again, and what a cut-short upload left (``.part``). Run by the worker; returns the files
    removed."""
    root = storage.location.uploads_dir
    if not root.is_dir():
        return []
    cutoff = (time.time() if now is None else now) - keep_seconds
    old = []
    for path in root.glob("project_*/*"):
        with contextlib.suppress(OSError):  # gone meanwhile
            if path.is_file() and path.stat().st_mtime < cutoff:
                old.append(path)
    if not old:
        return []
    in_use = _read_by_imports(storage)
    removed = []
    for path in old:
        if _resolved(path) in in_use:
            continue
        try:  # used again since the scan (an import of it queued meanwhile touched it): kept
            if path.stat().st_mtime >= cutoff:
                continue
            path.unlink()
        except OSError as exc:  # gone meanwhile, or not ours to remove: the others go on
            if not isinstance(exc, FileNotFoundError):
                log.warning("upload %s could not be removed: %s", path, exc)
            continue
        removed.append(path)
    return removed


def _resolved(path: Path) -> str:
    try:
        return str(path.resolve())
    except OSError:
        return str(path)


def _read_by_imports(storage: Storage, *, but: int | None = None) -> set[str]:
    """The files the queued and running imports read (resolved), job ``but`` left out."""
    with storage.read_sessions() as session:
        payloads = session.execute(select(Job.payload).where(
            Job.kind == "import", Job.id != (but if but is not None else -1),
            Job.status.in_((JobStatus.QUEUED, JobStatus.RUNNING)))).scalars()
        return {_resolved(Path(str(p["path"]))) for p in payloads if p and p.get("path")}


_UPLOAD_NAME = re.compile(r"^[0-9a-f]{12}-[A-Za-z0-9_.-]{1,100}$")


def upload_path(storage: Storage, project_id: int, upload: str) -> Path:
    """The saved upload named ``upload`` (what :func:`save_upload` returned, its name) of the
    project; NotFound when there is none."""
    folder = storage.location.uploads_dir / f"project_{int(project_id)}"
    path = folder / upload
    if not _UPLOAD_NAME.match(upload) or not path.is_file():
        raise NotFound(f"no upload {upload!r} in project {project_id} (an upload is removed "
                       "once its import is done, or once unused for the server's "
                       "upload_keep_hours): upload the file (POST /projects/{id}/uploads) "
                       "and use the name it returns")
    with contextlib.suppress(OSError):
        os.utime(path)  # used now: the sweep of unused uploads counts from here
    return path


def enqueue_import(session: Session, project_id: int, path: Path, *, requested_by: int | None,
                   split: str | None = None, mapping: Mapping[str, Any] | None = None) -> Job:
    """Queue an import job of the saved file ``path``; ``split`` applies to rows naming none.

    A flat file's rows go through ``mapping`` (checked, then kept as the project's mapping
    for the next upload); without one, through the project's saved mapping, else through
    the proposal for the file's first rows limited to what needs no decision: answer-like
    columns private, the rest content (existing labels, predictions and vectors are imported
    only under a mapping that names them).
    """
    project = get_project(session, project_id)
    fmt = _format_of(str(path))
    if split is not None and split not in SPLITS:
        raise InvalidInput(f"split {split!r} is not one of {', '.join(SPLITS)}")
    if not Path(path).is_file():
        raise InvalidInput(f"{path} is not a file: save the upload first (save_upload)")
    payload: dict[str, Any] = {"path": str(path), "format": fmt, "split": split,
                               "requested_by": requested_by}
    if fmt not in CANONICAL_FORMATS:
        payload["mapping"], held = _mapping_for(project, Path(path), fmt, mapping)
        if held:  # said in the job's result: a file's answers left out without a word
            payload["held_private"] = held
    job = enqueue_job(session, "import", payload, project_id=project_id)
    record_audit(session, "request", "import", job.id, project_id=project_id,
                 actor_id=requested_by, after=payload)
    return job


def save_mapping(session: Session, project_id: int, mapping: Mapping[str, Any], *,
                 actor_id: int | None) -> dict[str, Any]:
    """Check ``mapping`` and keep it as the project's (what the next upload starts from)."""
    project = get_project(session, project_id)
    try:
        checked = check_mapping(mapping)
    except ValueError as exc:
        raise InvalidInput(str(exc)) from None
    before = project.import_mapping
    project.import_mapping = checked
    record_audit(session, "change", "import_mapping", project_id, project_id=project_id,
                 actor_id=actor_id, before=before, after=checked)
    return checked


def _mapping_for(project: Project, path: Path, fmt: str, mapping: Mapping[str, Any] | None
                 ) -> tuple[dict[str, Any], dict[str, str]]:
    """The mapping a flat import runs with (see :func:`enqueue_import`), and the columns it
    keeps private where the proposal gave them a role that needs a decision (column -> the
    role proposed: existing labels, predictions, vectors)."""
    if mapping is not None:
        try:
            checked = check_mapping(mapping)
        except ValueError as exc:
            raise InvalidInput(str(exc)) from None
        if checked != project.import_mapping:
            project.import_mapping = checked
        return _completed(checked, project, path, fmt), {}
    if project.import_mapping:
        return _completed(check_mapping(project.import_mapping), project, path, fmt), {}
    columns, samples = _preview_rows(path, fmt)
    proposal = propose_mapping(columns, samples, list(project.labels))
    held = {p.column: p.role for p in proposal if p.role not in _IMPLICIT_ROLES}
    return {"columns": {p.column: (p.role if p.role in _IMPLICIT_ROLES else "private")
                        for p in proposal}}, held


def _completed(mapping: dict[str, Any], project: Project, path: Path, fmt: str
               ) -> dict[str, Any]:
    """``mapping`` with a role for each column of the file it does not name, decided once
    for the column from the file's first rows as an import with no mapping would (answers
    private, the rest content). Left to each row, a text column read as private on the rows
    whose text is a label's name: clinc150 with ``--map label=label`` lost 5 of 23,700 rows
    ("maybe", "yes"...) as rows with no payload."""
    columns, samples = _preview_rows(path, fmt)
    named = dict(mapping["columns"])
    taken = set(named.values())
    for p in propose_mapping(columns, samples, list(project.labels)):
        role = p.role if p.role in _IMPLICIT_ROLES else "private"
        if p.column not in named and not (role in ("external_id", "split") and role in taken):
            named[p.column] = role
            taken.add(role)
    return {"columns": named}


#: Roles an import given no mapping assigns on its own.
_IMPLICIT_ROLES = frozenset({"content", "private", "external_id", "split", "gold"})


def _preview_rows(path: Path, fmt: str, n: int = PREVIEW_ROWS
                  ) -> tuple[list[str], dict[str, list[Any]]]:
    rows: list[Mapping[str, Any]] = []
    for _line, row, error in read_rows(path, fmt):
        if error is None and isinstance(row, Mapping):
            rows.append(row)
        if len(rows) >= n:
            break
    return samples_of(rows)


def preview_import(session: Session, project_id: int, path: Path,
                   n: int = PREVIEW_ROWS) -> dict[str, Any]:
    """The first ``n`` rows of a saved upload, its columns with sampled values, and the
    proposed role of each column with the reason (the project's saved mapping first): what
    the owner confirms or changes before the import."""
    project = get_project(session, project_id)
    fmt = _format_of(str(path))
    if not Path(path).is_file():
        raise InvalidInput(f"{Path(path).name} is not an upload of this project: upload it again")
    rows: list[dict[str, Any]] = []
    errors: list[dict[str, Any]] = []
    for line, row, error in read_rows(Path(path), fmt):
        if error is not None or not isinstance(row, Mapping):
            errors.append({"line": line, "reason": error or "row is not an object"})
        else:
            rows.append({"line": line, "row": dict(row)})
        if len(rows) + len(errors) >= n:
            break
    canonical = fmt in CANONICAL_FORMATS
    columns, samples = samples_of([r["row"] for r in rows])
    proposal = [] if canonical else [p.as_dict() for p in propose_mapping(
        columns, samples, list(project.labels), project.import_mapping)]
    return {"upload": Path(path).name, "format": fmt, "canonical": canonical,
            "columns": columns, "rows": rows, "rejected": errors, "proposal": proposal,
            "mapping": {"columns": {p["column"]: p["role"] for p in proposal}},
            "saved_mapping": project.import_mapping, "labels": list(project.labels),
            "roles": list(ROLES)}


# ---- reading ---------------------------------------------------------------------------------


def _jsonl(path: Path) -> Iterator[Parsed]:
    with path.open("rb") as handle:
        for line_no, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                yield line_no, json.loads(line), None
            except ValueError as exc:
                yield line_no, None, f"invalid JSON ({exc}); each line must be one JSON object"


def _csv(path: Path) -> Iterator[Parsed]:
    # Undecodable bytes become lone surrogates: the row holding them is rejected (with its
    # line), the rest of the file goes in.
    with path.open(newline="", encoding="utf-8-sig", errors="surrogateescape") as handle:
        reader = csv.DictReader(handle)
        if not reader.fieldnames:
            return
        while True:
            try:
                record = next(reader)
            except StopIteration:
                return
            except (csv.Error, UnicodeDecodeError) as exc:
                yield reader.line_num, None, f"unreadable CSV row ({exc})"
                continue
            if None in record:
                yield reader.line_num, None, (f"row has {len(record) - 1 + len(record[None])} "
                                              f"fields, the header has {len(record) - 1}")
                continue
            bad = _undecodable(record)
            if bad is not None:
                yield reader.line_num, None, bad
                continue
            yield reader.line_num, _csv_row(record), None


def _undecodable(record: Mapping[str | None, Any]) -> str | None:
    """Why a CSV record read with ``surrogateescape`` holds bytes that are not UTF-8, or None."""
    for position, (key, value) in enumerate(record.items(), start=1):
        for where, text in (("the header of column", key), ("column", value)):
            bad = _escaped_byte(text)
            if bad is None:
                continue
            name = f"{position}" if _escaped_byte(key) is not None else repr(key)
            return f"{where} {name} holds byte 0x{bad:02x}, which is not UTF-8: save the file as UTF-8"
    return None


def _escaped_byte(text: Any) -> int | None:
    """The first undecodable byte ``surrogateescape`` kept in ``text``, or None."""
    if isinstance(text, str):
        for char in text:
            if "\udc80" <= char <= "\udcff":
                return ord(char) - 0xDC00
    return None


def _csv_row(record: dict[str, Any]) -> dict[str, Any]:
    """A CSV record as a row; a ``data`` column holding a JSON object becomes the payload."""
    row = {k: v for k, v in record.items() if v is not None}
    if "data" in row and isinstance(row["data"], str):
        # Not JSON: left as a string, rejected below as a payload that is not an object.
        with contextlib.suppress(ValueError):
            row["data"] = json.loads(row["data"])
    return row


def _parquet(path: Path) -> Iterator[Parsed]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    line = 0
    try:
        # Without pre-buffering: pyarrow keeps the pre-buffered column chunks of every row
        # group read, so memory grew with the file (77 MB a row group of 384-float vectors).
        opened = pq.ParquetFile(path, pre_buffer=False)
    except (pa.ArrowException, OSError) as exc:
        raise InvalidInput(f"{path.name} is not a Parquet file that can be read ({exc}): "
                           "write it again with pyarrow or pandas, or upload JSONL or CSV"
                           ) from None
    with opened as reader:
        batches = reader.iter_batches(batch_size=BATCH_ROWS)
        while True:
            try:
                batch = next(batches)
            except StopIteration:
                return
            except (pa.ArrowException, OSError) as exc:
                raise InvalidInput(f"{path.name} cannot be read after row {line} ({exc}): rows "
                                   "already stored stay; write the file again and import it "
                                   "(they are then reported as duplicates)") from None
            for record in batch.to_pylist():
                line += 1
                if isinstance(record.get("data"), str):
                    with contextlib.suppress(ValueError):
                        record["data"] = json.loads(record["data"])
                yield line, record, None


_READERS: dict[str, Callable[[Path], Iterator[Parsed]]] = {
    "jsonl": _jsonl, "csv": _csv, "parquet": _parquet, "labelstudio": read_labelstudio,
    "spacy": read_spacy, "huggingface": read_huggingface, "conll": read_conll,
    "spans_jsonl": read_span_jsonl}


def read_rows(path: Path, fmt: str) -> Iterator[Parsed]:
    """``(line, row, error)`` of every row of the file: line numbers are 1-based (CSV: the
    physical line, header = 1; Parquet: the row's position)."""
    reader = _READERS.get(fmt)
    if reader is None:
        raise InvalidInput(f"unknown import format {fmt!r}: use one of {', '.join(_READERS)}")
    return reader(path)


def normalize_row(row: Any, default_split: str | None) -> dict[str, Any]:
    """``{external_id, data, split}`` from an input row; raises ValueError with the reason.

    Without a ``data`` key the other fields (minus external_id/id/split and the gold answer)
    are the payload. ``gold_labels`` (or ``gold_label``) makes the row a gold item with that
    known answer.
    Without an external id, one is derived from the payload's content hash, so importing
    the same file again reports duplicates instead of doubling the items.
    """
    if not isinstance(row, Mapping):
        raise ValueError(f"row must be a JSON object, got {type(row).__name__}")
    if "data" in row:
        data = row["data"]
        extra = sorted(str(k) for k in row if k not in _META_KEYS and k != "data")
        if extra:
            raise ValueError(f"fields {', '.join(extra)} are outside data: move them into "
                             "data, or drop the data key so the fields become the payload")
    else:
        data = {k: v for k, v in row.items() if k not in _META_KEYS}
    if not isinstance(data, Mapping):
        raise ValueError(f"data must be an object, got {type(data).__name__}")
    if not data:
        raise ValueError("row has no payload: give data {...} or fields besides the id")
    ext = next((row[k] for k in _ID_KEYS if row.get(k) not in (None, "")), None)
    if ext is None:
        try:
            ext = "sha256:" + content_hash(data)
        except UnicodeEncodeError as exc:
            raise ValueError(f"data holds text that is not valid Unicode ({exc.reason}): a "
                             "lone surrogate such as \\ud800; fix the file's encoding") from None
    given = [k for k in _GOLD_KEYS if row.get(k) is not None]
    if len(given) > 1:
        raise ValueError("give the gold answer once: gold_labels or gold_label, not both")
    split = row.get("split") or (None if given else default_split) or (
        "gold" if given else "pool")
    if split not in SPLITS:
        raise ValueError(f"split {split!r} is not one of {', '.join(SPLITS)}")
    out = {"external_id": ext, "data": data, "split": split}
    if given:  # checked against the project's labels by add_items (a per-row error)
        out["gold_labels"] = row[given[0]]
    return out


# ---- canonical rows --------------------------------------------------------------------------


@dataclass(frozen=True)
class _Rules:
    """What a row's values are checked against: the project's labels and task."""

    labels: tuple[Any, ...]
    single: bool


@dataclass
class _Extras:
    """What comes with a row's item: its existing labels, predictions and vector."""

    labels: list[tuple[list[Any], str | None, datetime | None]]
    predictions: list[tuple[list[Any], float | None, str | None]]
    vector: Any  # a float32 vector (labeling.mapping.check_vector) or None


def _check_labels(value: Any, rules: _Rules, what: str) -> list[Any]:
    """The labels of a cell as the project's own values (a CSV's text "3" is the label 3)."""
    labels = value if isinstance(value, list) else [value]
    by_text = {str(label): label for label in rules.labels}
    labels = [x if isinstance(x, (bool, dict, list)) or x in rules.labels
              else by_text.get(str(x), x) for x in labels]
    unknown = [x for x in labels if isinstance(x, (bool, dict, list)) or x not in rules.labels]
    if unknown:
        raise ValueError(f"{what}: unknown labels {unknown[:5]!r}; the project's labels are "
                         f"{list(rules.labels)}")
    if len(set(map(str, labels))) != len(labels):
        raise ValueError(f"{what}: labels repeat a value: {labels!r}")
    if rules.single and len(labels) != 1:
        raise ValueError(f"{what}: a classification project takes exactly one label, got "
                         f"{len(labels)}")
    return list(labels)


def _check_annotations(entries: Any, rules: _Rules
                       ) -> list[tuple[list[Any], str | None, datetime | None]]:
    if not isinstance(entries, list):
        raise ValueError("annotations must be a list of {labels, annotator, created_at}")
    out: list[tuple[list[Any], str | None, datetime | None]] = []
    seen: set[str | None] = set()
    for entry in entries:
        if not isinstance(entry, Mapping) or "labels" not in entry:
            raise ValueError("each annotation is an object with labels")
        labels = _check_labels(entry["labels"], rules, "existing label")
        who = entry.get("annotator")
        if who is not None and (not isinstance(who, str) or not who.strip() or len(who) > 200):
            raise ValueError(f"annotator {who!r} must be a name of 1-200 characters")
        if who in seen:
            raise ValueError(f"annotator {who or '(none given)'!r} labels the item twice: keep "
                             "one label per annotator and item")
        seen.add(who)
        when = entry.get("created_at")
        moment = None if when in (None, "") else datetime.fromisoformat(parse_time(when))
        out.append((labels, who, moment))
    return out


def _check_predictions(entries: Any, rules: _Rules
                       ) -> list[tuple[list[Any], float | None, str | None]]:
    if not isinstance(entries, list):
        raise ValueError("predictions must be a list of {labels, score, model}")
    out: list[tuple[list[Any], float | None, str | None]] = []
    for entry in entries:
        if not isinstance(entry, Mapping) or "labels" not in entry:
            raise ValueError("each prediction is an object with labels")
        labels = _check_labels(entry["labels"], rules, "prediction")
        score = entry.get("score")
        if score is not None:
            try:
                score = float(score)
            except (TypeError, ValueError):
                raise ValueError(f"prediction score {score!r} is not a number") from None
            if isinstance(entry.get("score"), bool) or not 0.0 <= score <= 1.0:
                raise ValueError(f"prediction score {entry.get('score')!r} is outside [0, 1]")
        model = entry.get("model")
        out.append((labels, score, None if model is None else str(model)[:200]))
    return out


def prepare_row(row: Any, default_split: str | None, rules: _Rules, dim: int | None
                ) -> tuple[dict[str, Any], _Extras]:
    """The item row for ``add_items`` and what comes with it, from a canonical row; every
    value is checked (raises ValueError with the reason)."""
    if not isinstance(row, Mapping):
        raise ValueError(f"row must be a JSON object, got {type(row).__name__}")
    item = normalize_row({k: row[k] for k in ("external_id", "data", "split", "gold_labels")
                          if row.get(k) is not None}, default_split)
    private = row.get("private")
    if private:
        if not isinstance(private, Mapping):
            raise ValueError("private must be an object")
        item["private"] = dict(private)
    vector = row.get("vector")
    extras = _Extras(_check_annotations(row.get("annotations") or [], rules),
                     _check_predictions(row.get("predictions") or [], rules),
                     None if vector is None else check_vector(vector, dim))
    return item, extras


# ---- running ---------------------------------------------------------------------------------


@dataclass
class _Tally:
    """What an import has done so far; kept in the job's checkpoint with every batch."""

    inserted: int = 0
    duplicates: int = 0
    rejected_count: int = 0
    rows_seen: int = 0
    last_line: int = 0
    first_row: int | None = None  # the project's next free row when the import began
    labels: int = 0
    labels_skipped: int = 0  # of rows whose item is already in, left out
    labels_skipped_why: dict[str, int] = field(default_factory=dict)
    predictions: int = 0
    vectors: int = 0
    vector_dim: int | None = None
    rejected: list[dict[str, Any]] = field(default_factory=list)
    duplicate_examples: list[dict[str, Any]] = field(default_factory=list)

    def skip_labels(self, why: str, n: int) -> None:
        if n:
            self.labels_skipped += n
            self.labels_skipped_why[why] = self.labels_skipped_why.get(why, 0) + n

    def reject(self, line: int, reason: str) -> None:
        self.rejected_count += 1
        if len(self.rejected) < MAX_REPORTED_REJECTS:
            self.rejected.append({"line": line, "reason": reason})

    def counts(self) -> dict[str, Any]:
        return {"rows_seen": self.rows_seen, "inserted": self.inserted,
                "duplicates": self.duplicates, "rejected": self.rejected_count,
                "labels": self.labels, "predictions": self.predictions,
                "vectors": self.vectors}

    def checkpoint(self) -> dict[str, Any]:
        return {**self.counts(), "labels_skipped": self.labels_skipped,
                "labels_skipped_why": self.labels_skipped_why,
                "last_line": self.last_line, "first_row": self.first_row,
                "vector_dim": self.vector_dim, "rejected_rows": self.rejected,
                "duplicate_examples": self.duplicate_examples}

    @classmethod
    def resumed(cls, checkpoint: Mapping[str, Any] | None) -> _Tally:
        """The tally a killed run committed last (a fresh one when it committed nothing)."""
        if not checkpoint:
            return cls()
        return cls(inserted=int(checkpoint["inserted"]), duplicates=int(checkpoint["duplicates"]),
                   rejected_count=int(checkpoint["rejected"]),
                   rows_seen=int(checkpoint["rows_seen"]),
                   last_line=int(checkpoint["last_line"]),
                   first_row=checkpoint.get("first_row"),
                   labels=int(checkpoint.get("labels", 0)),
                   labels_skipped=int(checkpoint.get("labels_skipped", 0)),
                   labels_skipped_why=dict(checkpoint.get("labels_skipped_why", {})),
                   predictions=int(checkpoint.get("predictions", 0)),
                   vectors=int(checkpoint.get("vectors", 0)),
                   vector_dim=checkpoint.get("vector_dim"),
                   rejected=list(checkpoint.get("rejected_rows", [])),
                   duplicate_examples=list(checkpoint.get("duplicate_examples", [])))


@dataclass
class _Batch:
    """Rows read since the last flush: the item rows, their lines and what comes with them."""

    rows: list[dict[str, Any]] = field(default_factory=list)
    lines: list[int] = field(default_factory=list)
    extras: list[_Extras | None] = field(default_factory=list)
    raws: list[Any] = field(default_factory=list)  # as read, before the mapping


def _store_extras(storage: Storage, session: Session, job: Job, batch: _Batch,
                  stored: list[tuple[int, str, int]], done: _Tally) -> None:
    """The labels, predictions and vectors of the rows just inserted (same transaction)."""
    project_id = int(job.project_id or 0)
    kept = [(batch.extras[index], ext, row) for index, ext, row in stored]
    if not any(e is not None for e, _, _ in kept):
        return
    ids = item_ids_by_external_id(session, project_id, [ext for _, ext, _ in kept])
    labels = [ImportedLabel(ids[ext], list(lab), who, when)
              for e, ext, _ in kept if e is not None for lab, who, when in e.labels]
    predictions = [ImportedPrediction(ids[ext], list(lab), score, model)
                   for e, ext, _ in kept if e is not None for lab, score, model in e.predictions]
    done.labels += add_imported_labels(session, project_id, job.id, labels)
    done.predictions += add_predictions(session, project_id, job.id, predictions)
    with_vector = [e is not None and e.vector is not None for e, _, _ in kept]
    if any(with_vector) or vector_dim(storage, project_id) is not None:
        import numpy as np

        dim = done.vector_dim or vector_dim(storage, project_id)
        matrix = None if not any(with_vector) else np.zeros((len(kept), int(dim or 0)),
                                                             dtype=np.float32)
        for i, (e, _, _) in enumerate(kept):
            if matrix is not None and e is not None and e.vector is not None:
                matrix[i] = e.vector
        write_vectors(storage, project_id, [row for _, _, row in kept], matrix, with_vector)
        done.vectors += sum(with_vector)


#: Why a label of a row whose item is already in was left out: the keys of
#: ``labels_skipped_why`` and what each means (``activelabel import`` and the import page
#: say it in these words).
SKIP_OTHER_CONTENT, SKIP_PURGED, SKIP_GOLD, SKIP_AUDIT, SKIP_LABELED = (
    "other_content", "purged", "gold", "audit", "labeled")
SKIP_REASONS = {
    SKIP_OTHER_CONTENT: "the row holds other content than the item of its external id",
    SKIP_PURGED: "the item was purged",
    SKIP_GOLD: "a gold item (its checks count answers given in the app)",
    SKIP_AUDIT: "an audit draw (a file's labels of some draws would bias the payoff)",
    SKIP_LABELED: "its annotator had labeled the item already (kept as it was)",
}


def _store_known_labels(session: Session, job: Job, batch: _Batch,
                        duplicates: Sequence[Any], done: _Tally) -> None:
    """The labels of rows whose item is already in (same transaction): an earlier import of
    the file, or an earlier row of it (one row per item and annotator). An item takes them
    when the row holds its content (an external id of another file's item, ``1`` of two
    CSV files, is not that item) and it is neither purged, gold nor an audit draw, each
    where its annotator has not labeled it; the rest counted by reason in
    ``labels_skipped_why``. Predictions and vectors go in with new items only."""
    wanted = [(batch.extras[d.index], d.external_id, batch.rows[d.index].get("data"),
               batch.raws[d.index]) for d in duplicates
              if batch.extras[d.index] is not None and batch.extras[d.index].labels]
    if not wanted:
        return
    project_id = int(job.project_id or 0)
    known: dict[str, Any] = {}
    exts = sorted({str(ext) for _, ext, _, _ in wanted})
    for start in range(0, len(exts), 1000):
        known.update({str(r.external_id): r for r in session.execute(
            select(Item.external_id, Item.id, Item.content_hash, Item.split, Item.purged_at,
                   Item.audit_drawn_at).where(Item.project_id == project_id,
                                              Item.external_id.in_(exts[start:start + 1000])))})
    # rows whose content differs from their item's under this mapping: the item's content
    # may still be the row's (a column shown then, an annotator's name now)
    differ = sorted({int(known[str(ext)].id) for _, ext, data, _ in wanted
                     if str(ext) in known and not _same_hash(data, known[str(ext)])})
    stored: dict[int, Any] = {}
    for start in range(0, len(differ), 1000):
        stored.update({int(i): d for i, d in session.execute(select(Item.id, Item.data).where(
            Item.id.in_(differ[start:start + 1000])))})
    labels: list[ImportedLabel] = []
    for extras, ext, _, raw in wanted:
        assert extras is not None
        item = known.get(str(ext))
        if item is None:
            done.skip_labels(SKIP_OTHER_CONTENT, len(extras.labels))
            continue
        why = (SKIP_PURGED if item.purged_at is not None  # (its content blanked)
               else SKIP_OTHER_CONTENT if int(item.id) in stored
               and not _holds(raw, stored[int(item.id)])
               else SKIP_GOLD if item.split == "gold"
               else SKIP_AUDIT if item.audit_drawn_at is not None else None)
        if why is not None:
            done.skip_labels(why, len(extras.labels))
            continue
        labels += [ImportedLabel(int(item.id), list(lab), who, when)
                   for lab, who, when in extras.labels]
    added = add_labels_to_known_items(session, project_id, job.id, labels)
    done.labels += added
    done.skip_labels(SKIP_LABELED, len(labels) - added)


def _same_hash(data: Any, item: Any) -> bool:
    return isinstance(data, Mapping) and content_hash(data) == item.content_hash


def _holds(raw: Any, content: Any) -> bool:
    """Whether the file's row (as read, before its mapping) holds every field of an item's
    stored content, at the top or in its ``data`` object: the same item imported before
    under another mapping. An id another file's row shares (``1`` of two CSV files) holds
    other values."""
    if not isinstance(raw, Mapping) or not isinstance(content, Mapping) or not content:
        return False
    sources = [raw, *([raw["data"]] if isinstance(raw.get("data"), Mapping) else [])]
    return any(all(k in src and src[k] == v for k, v in content.items()) for src in sources)


def _flush(storage: Storage, job: Job, batch: _Batch, tally: _Tally) -> None:
    """Insert one batch (items with their labels, predictions and vectors) and the job's
    checkpoint in one transaction: a crash keeps both or neither, so a resumed import neither
    re-reads stored rows as duplicates nor loses a count."""
    done = _Tally.resumed(tally.checkpoint())  # applied to ``tally`` only once committed
    rows, lines = batch.rows, batch.lines
    with storage.sessions() as session, session.begin():
        if rows:
            result = add_items(session, int(job.project_id or 0), rows, batch_size=len(rows),
                               refresh_stats=False)
            done.inserted += result.inserted
            done.duplicates += len(result.duplicates)
            for dup in result.duplicates:
                if len(done.duplicate_examples) < MAX_REPORTED_REJECTS:
                    done.duplicate_examples.append({"line": lines[dup.index],
                                                    "external_id": dup.external_id})
            for bad in result.rejected:
                done.reject(lines[bad.index], bad.reason)
            _store_extras(storage, session, job, batch, result.stored, done)
            _store_known_labels(session, job, batch, result.duplicates, done)
        save_checkpoint(session, job.id, job.worker_id, done.checkpoint())
    tally.__dict__.update(done.__dict__)


def _after_import(storage: Storage, project_id: int, requested_by: int | None,
                  labels: int = 0) -> int | None:
    """Queue the cold-start round of a project with no labels and no finished round, or a
    round that trains on the labels the import brought."""
    with storage.sessions() as session, session.begin():
        if labels:
            rnd, _ = request_round(session, project_id, requested_by=requested_by,
                                   reason="imported_labels")
            return rnd.id
        if count_labeled_items(session, project_id) > 0:
            return None
        done = session.execute(select(Round.id).where(
            Round.project_id == project_id, Round.status == RoundStatus.DONE).limit(1)).first()
        if done is not None:
            return None
        rnd, _ = request_round(session, project_id, requested_by=requested_by,
                               reason="cold_start")
        return rnd.id


def run_import(storage: Storage, job: Job, *,
               progress: Callable[[dict[str, Any]], None]) -> dict[str, Any]:
    """The worker's handler for an ``import`` job: stream the file into the project.

    Progress ``{rows_seen, inserted, duplicates, rejected}`` is reported at most every
    ``PROGRESS_SECONDS``; the result adds the first ``MAX_REPORTED_REJECTS`` rejected rows
    ``{line, reason}``, ``rejected_count`` and ``seconds``.
    """
    payload = job.payload or {}
    if job.project_id is None or not payload.get("path"):
        raise InvalidInput(f"import job {job.id} has no project or path in its payload")
    path = Path(str(payload["path"]))
    fmt = str(payload.get("format") or _format_of(path.name))
    images = fmt in IMAGE_IMPORTS
    if not (path.is_dir() if fmt == "image_folder" else path.is_file()):
        raise InvalidInput(f"import file {path} is gone: upload the file again")
    split = payload.get("split")
    start = last_report = time.perf_counter()
    tally = _Tally.resumed(payload.get("checkpoint"))
    if tally.first_row is None:
        with storage.read_sessions() as session:
            tally.first_row = next_free_row(session, int(job.project_id))
    skip_through = tally.last_line  # a resumed job: these rows were counted when committed
    mapping = payload.get("mapping")
    with storage.read_sessions() as session:
        project = get_project(session, int(job.project_id))
        rules = _Rules(tuple(project.labels), project.task == "classification")
    if tally.vector_dim is None:
        tally.vector_dim = vector_dim(storage, int(job.project_id))
    batch = _Batch()
    rows = (image_rows(storage, int(job.project_id), payload, rules.labels, skip_through)
            if images else read_rows(path, fmt))
    for line, raw, error in rows:
        if line <= skip_through:
            continue
        tally.rows_seen += 1
        tally.last_line = line
        if error is not None:
            tally.reject(line, error)
            continue
        try:
            _read_row(raw, split, mapping, images or fmt in CANONICAL_FORMATS, rules, tally,
                      batch, line)
        except ValueError as exc:
            tally.reject(line, str(exc))
        if len(batch.rows) >= BATCH_ROWS:
            _flush(storage, job, batch, tally)
            batch = _Batch()
            now = time.perf_counter()
            if now - last_report >= PROGRESS_SECONDS:
                progress(tally.counts())
                last_report = now
    _flush(storage, job, batch, tally)
    progress(tally.counts())
    if tally.inserted >= ANALYZE_AFTER_ROWS:
        with storage.sessions() as session, session.begin():
            refresh_statistics(session, "items")
    round_id = drift = drift_round_id = None
    placed = 0
    if tally.inserted:
        first_row = int(tally.first_row or 0)
        placed = place_new_items(storage, int(job.project_id), first_row)
        round_id = _after_import(storage, int(job.project_id), payload.get("requested_by"),
                                 tally.labels)
        if round_id is None:
            drift, drift_round_id = _check_drift(storage, int(job.project_id), first_row)
    elif tally.labels:  # labels for items already in: a round trains on them
        round_id = _after_import(storage, int(job.project_id), payload.get("requested_by"),
                                 tally.labels)
    return {"inserted": tally.inserted, "duplicates": tally.duplicates,
            "labels": tally.labels, "labels_skipped": tally.labels_skipped,
            "labels_skipped_why": tally.labels_skipped_why,
            "labels_skipped_reasons": {k: SKIP_REASONS[k] for k in tally.labels_skipped_why},
            "predictions": tally.predictions, "vectors": tally.vectors,
            "duplicate_examples": tally.duplicate_examples, "rejected": tally.rejected,
            "rejected_count": tally.rejected_count, "rows_seen": tally.rows_seen,
            "seconds": round(time.perf_counter() - start, 3), "cold_start_round_id": round_id,
            "ranked_by_model": placed, "drift": drift, "drift_round_id": drift_round_id,
            "held_private": dict(payload.get("held_private") or {})}


def _read_row(raw: Any, split: str | None, mapping: Mapping[str, Any] | None, canonical: bool,
              rules: _Rules, tally: _Tally, batch: _Batch, line: int) -> None:
    """Add one read row to ``batch``: a legacy job (no mapping) normalizes it as before; a
    mapped or canonical one goes through :func:`prepare_row`."""
    if mapping is None and not canonical:
        batch.rows.append(normalize_row(raw, split))
        batch.extras.append(None)
    else:
        row = raw if canonical else apply_mapping(raw, mapping or {}, rules.labels)
        item, extras = prepare_row(row, split, rules, tally.vector_dim)
        if extras.vector is not None and tally.vector_dim is None:
            tally.vector_dim = len(extras.vector)
        batch.rows.append(item)
        batch.extras.append(extras)
    batch.lines.append(line)
    batch.raws.append(raw)


def _check_drift(storage: Storage, project_id: int, first_row: int
                 ) -> tuple[dict[str, Any] | None, int | None]:
    """The new items' drift (:func:`labeling.drift.import_drift`) and the round it queued
    (``retrain_on_drift``); a failing check is logged, never fails the import."""
    try:
        drift = import_drift(storage, project_id, first_row)
    except Exception:
        log.warning("drift check of project %s failed", project_id, exc_info=True)
        return None, None
    if drift is None or not drift["shifted"]:
        return drift, None
    with storage.sessions() as session, session.begin():
        if not settings_of(get_project(session, project_id).settings).retrain_on_drift:
            return drift, None
        rnd, _ = request_round(session, project_id, requested_by=None, reason="drift")
        return drift, rnd.id
