"""Imports: uploads saved to disk by chunks, then streamed into the items table as a job.

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
import re
import shutil
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

from sqlalchemy import select
from sqlalchemy.orm import Session

from ..store import (
    InvalidInput,
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
from ..store.items import ANALYZE_AFTER_ROWS, next_free_row
from ..store.models import SPLITS, Job, Round, RoundStatus
from .drift import import_drift
from .formats.conll import read_conll, read_span_jsonl
from .ranking import place_new_items
from .rounds import request_round

__all__ = [
    "BATCH_ROWS",
    "FORMATS",
    "MAX_REPORTED_REJECTS",
    "enqueue_import",
    "normalize_row",
    "read_rows",
    "run_import",
    "save_upload",
]

log = logging.getLogger("activelabel.imports")

#: File extension -> format name.
FORMATS = {".jsonl": "jsonl", ".ndjson": "jsonl", ".csv": "csv", ".parquet": "parquet",
           # span projects (formats.conll): CoNLL / IOB, and JSONL with character offsets
           ".conll": "conll", ".iob": "conll", ".bio": "conll", ".spans": "spans_jsonl"}
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
    fmt = FORMATS.get(suffix)
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


def enqueue_import(session: Session, project_id: int, path: Path, *, requested_by: int | None,
                   split: str | None = None) -> Job:
    """Queue an import job of the saved file ``path``; ``split`` applies to rows naming none."""
    get_project(session, project_id)
    fmt = _format_of(str(path))
    if split is not None and split not in SPLITS:
        raise InvalidInput(f"split {split!r} is not one of {', '.join(SPLITS)}")
    if not Path(path).is_file():
        raise InvalidInput(f"{path} is not a file: save the upload first (save_upload)")
    payload = {"path": str(path), "format": fmt, "split": split, "requested_by": requested_by}
    job = enqueue_job(session, "import", payload, project_id=project_id)
    record_audit(session, "request", "import", job.id, project_id=project_id,
                 actor_id=requested_by, after=payload)
    return job


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
        opened = pq.ParquetFile(path)
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
    "jsonl": _jsonl, "csv": _csv, "parquet": _parquet, "conll": read_conll,
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
    rejected: list[dict[str, Any]] = field(default_factory=list)
    duplicate_examples: list[dict[str, Any]] = field(default_factory=list)

    def reject(self, line: int, reason: str) -> None:
        self.rejected_count += 1
        if len(self.rejected) < MAX_REPORTED_REJECTS:
            self.rejected.append({"line": line, "reason": reason})

    def counts(self) -> dict[str, Any]:
        return {"rows_seen": self.rows_seen, "inserted": self.inserted,
                "duplicates": self.duplicates, "rejected": self.rejected_count}

    def checkpoint(self) -> dict[str, Any]:
        return {**self.counts(), "last_line": self.last_line, "first_row": self.first_row,
                "rejected_rows": self.rejected,
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
                   rejected=list(checkpoint.get("rejected_rows", [])),
                   duplicate_examples=list(checkpoint.get("duplicate_examples", [])))


def _flush(storage: Storage, job: Job, rows: list[dict[str, Any]], lines: list[int],
           tally: _Tally) -> None:
    """Insert one batch and the job's checkpoint in one transaction: a crash keeps both or
    neither, so a resumed import neither re-reads stored rows as duplicates nor loses a count."""
    done = _Tally.resumed(tally.checkpoint())  # applied to ``tally`` only once committed
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
        save_checkpoint(session, job.id, job.worker_id, done.checkpoint())
    tally.__dict__.update(done.__dict__)


def _after_import(storage: Storage, project_id: int, requested_by: int | None) -> int | None:
    """Queue the cold-start round of a project with no labels and no finished round."""
    with storage.sessions() as session, session.begin():
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
    if not path.is_file():
        raise InvalidInput(f"import file {path} is gone: upload the file again")
    fmt = str(payload.get("format") or _format_of(path.name))
    split = payload.get("split")
    start = last_report = time.perf_counter()
    tally = _Tally.resumed(payload.get("checkpoint"))
    if tally.first_row is None:
        with storage.read_sessions() as session:
            tally.first_row = next_free_row(session, int(job.project_id))
    skip_through = tally.last_line  # a resumed job: these rows were counted when committed
    rows: list[dict[str, Any]] = []
    lines: list[int] = []
    for line, raw, error in read_rows(path, fmt):
        if line <= skip_through:
            continue
        tally.rows_seen += 1
        tally.last_line = line
        if error is not None:
            tally.reject(line, error)
            continue
        try:
            rows.append(normalize_row(raw, split))
            lines.append(line)
        except ValueError as exc:
            tally.reject(line, str(exc))
        if len(rows) >= BATCH_ROWS:
            _flush(storage, job, rows, lines, tally)
            rows, lines = [], []
            now = time.perf_counter()
            if now - last_report >= PROGRESS_SECONDS:
                progress(tally.counts())
                last_report = now
    _flush(storage, job, rows, lines, tally)
    progress(tally.counts())
    if tally.inserted >= ANALYZE_AFTER_ROWS:
        with storage.sessions() as session, session.begin():
            refresh_statistics(session, "items")
    round_id = drift = drift_round_id = None
    placed = 0
    if tally.inserted:
        first_row = int(tally.first_row or 0)
        placed = place_new_items(storage, int(job.project_id), first_row)
        round_id = _after_import(storage, int(job.project_id), payload.get("requested_by"))
        if round_id is None:
            drift, drift_round_id = _check_drift(storage, int(job.project_id), first_row)
    return {"inserted": tally.inserted, "duplicates": tally.duplicates,
            "duplicate_examples": tally.duplicate_examples, "rejected": tally.rejected,
            "rejected_count": tally.rejected_count, "rows_seen": tally.rows_seen,
            "seconds": round(time.perf_counter() - start, 3), "cold_start_round_id": round_id,
            "ranked_by_model": placed, "drift": drift, "drift_round_id": drift_round_id}


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
