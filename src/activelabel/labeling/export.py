"""Export: the labeled items of a project with their provenance, streamed as JSONL, CSV or
Parquet, or in another tool's format (:mod:`.formats`): a Label Studio JSON export, a
Hugging Face dataset folder (zipped) or spaCy-style JSONL.

One row per labeled item: external id, payload (private fields left out unless asked for),
split, the consensus label(s), every current annotation (annotator, labels, when, how long)
and why the item was selected (round number, strategy, score, model version). An annotation
whose annotator answered before the suggestion showed (``suggestion_display`` after_answer)
also carries ``blind_answer``: those labels, the suggestion they brought (``suggested``, null
when none showed) and its ``model_version``. Items are read in pages with a read session, so
memory stays at one page.

The ``labels`` column is the consensus by the project's ``consensus`` setting, the same the
rounds train on (:mod:`.consensus`): majority vote (null on a tie), or Dawid-Skene for a
single-label project set to ``dawid_skene``; a multi-label project's per-label majority.
"""

from __future__ import annotations

import csv
import io
import json
import os
import tempfile
from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from ..store import (
    BlindAnswerRow,
    CurrentLabel,
    InvalidInput,
    Storage,
    active_model_version,
    blind_answers,
    current_labels,
    get_project,
    item_provenance,
    settings_of,
    usernames,
)
from ..store.models import Annotation, Item, Project
from .consensus import project_consensus
from .formats import ExportContext
from .formats.conll import write_conll, write_span_jsonl
from .formats.huggingface import write_huggingface
from .formats.labelstudio import write_labelstudio
from .formats.spacy import write_spacy
from .governance import audit_trail

__all__ = ["EXPORT_FORMATS", "PAGE_ITEMS", "export_bundle", "export_context", "export_rows",
           "export_stream"]

#: Format -> (media type, file extension).
EXPORT_FORMATS = {"jsonl": ("application/x-ndjson", "jsonl"),
                  "csv": ("text/csv; charset=utf-8", "csv"),
                  "parquet": ("application/vnd.apache.parquet", "parquet"),
                  "labelstudio": ("application/json", "json"),
                  "huggingface": ("application/zip", "hf.zip"),
                  "spacy": ("application/x-ndjson", "spacy.jsonl"),
                  # span projects only (formats.conll)
                  "conll": ("text/plain; charset=utf-8", "conll"),
                  "spans_jsonl": ("application/x-ndjson", "spans.jsonl")}
#: Formats that write spans: for span projects only.
SPAN_EXPORT_FORMATS = frozenset({"conll", "spans_jsonl"})
#: Other formats that carry a span project's labels.
SPAN_READY_FORMATS = frozenset({"jsonl", "csv", "labelstudio", "spacy"})
#: Items loaded per query.
PAGE_ITEMS = 1000
_CSV_COLUMNS = ("external_id", "split", "data", "labels", "annotations", "round", "strategy",
                "score", "model_version")
_STREAM_CHUNK = 1 << 20


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def _provenance(session: Session, item_ids: list[int]) -> dict[int, dict[str, Any]]:
    """The latest round selection of each item: round number, strategy, score, model version."""
    return {item_id: {"round": p.round, "strategy": p.strategy, "score": p.score,
                      "model_version": p.model_version}
            for item_id, found in item_provenance(session, item_ids).items()
            for p in found[-1:]}


def _annotation_details(session: Session, ids: list[int]) -> dict[int, tuple[int | None, int]]:
    """annotation id -> (duration_ms, user id) of the given revisions."""
    out: dict[int, tuple[int | None, int]] = {}
    for start in range(0, len(ids), PAGE_ITEMS):
        stmt = select(Annotation.id, Annotation.duration_ms, Annotation.user_id).where(
            Annotation.id.in_(ids[start:start + PAGE_ITEMS]))
        out.update({int(a): (d, int(u)) for a, d, u in session.execute(stmt)})
    return out


def _annotation_entry(cur: CurrentLabel, names: dict[int, str],
                      details: dict[int, tuple[int | None, int]],
                      blind: BlindAnswerRow | None) -> dict[str, Any]:
    """One current annotation of an export row (with the annotator's blind answer, if kept)."""
    entry: dict[str, Any] = {
        "annotator": names.get(int(cur.annotator_id)), "labels": list(cur.labels),
        "created_at": _iso(cur.created_at),
        "duration_ms": details.get(int(cur.annotation_id), (None, 0))[0]}
    if blind is not None:
        entry["blind_answer"] = {"labels": blind.labels, "suggested": blind.suggested,
                                 "model_version": blind.model_version}
    return entry


def export_rows(storage: Storage, project_id: int, *,
                include_private: bool = False) -> Iterator[dict[str, Any]]:
    """One dict per labeled item, in row order (what every format writes); ``labels`` is the
    consensus by the project's method (:func:`.consensus.project_consensus`: majority vote,
    or Dawid-Skene when the project's ``consensus`` is ``dawid_skene``)."""
    with storage.read_sessions() as session:
        project = get_project(session, project_id)
        private = set() if include_private else set(project.private_fields or [])
        labels = current_labels(session, project_id)
        agreed = project_consensus(project, labels)
        by_item: dict[int, list[Any]] = {}
        for cur in labels:
            by_item.setdefault(int(cur.item_id), []).append(cur)
        details = _annotation_details(session, [int(c.annotation_id) for c in labels])
        names = usernames(session, {int(c.annotator_id) for c in labels}
                           | {u for _, u in details.values()})
        blind = {(b.item_id, b.user_id): b for b in blind_answers(session, project_id)}
        order = list(by_item)  # current_labels is sorted by row
        for start in range(0, len(order), PAGE_ITEMS):
            page = order[start:start + PAGE_ITEMS]
            items = {int(i.id): i for i in session.execute(
                select(Item).where(Item.id.in_(page))).scalars()}
            why = _provenance(session, page)
            for item_id in page:
                item = items[item_id]
                given = by_item[item_id]
                data = {k: v for k, v in (item.data or {}).items() if k not in private}
                yield {
                    "external_id": item.external_id, "split": item.split, "data": data,
                    "labels": agreed.of(item_id),
                    "annotations": [_annotation_entry(
                        c, names, details, blind.get((item_id, int(c.annotator_id))))
                        for c in given],
                    **why.get(item_id, {"round": None, "strategy": None, "score": None,
                                        "model_version": None})}
            session.expunge_all()


def _jsonl(rows: Iterator[dict[str, Any]]) -> Iterator[bytes]:
    buffer: list[str] = []
    for row in rows:
        buffer.append(json.dumps(row, ensure_ascii=False, default=str))
        if len(buffer) >= PAGE_ITEMS:
            yield ("\n".join(buffer) + "\n").encode()
            buffer = []
    if buffer:
        yield ("\n".join(buffer) + "\n").encode()


def _csv_cell(row: dict[str, Any], column: str) -> Any:
    value = row[column]
    if column in ("data", "annotations") or (column == "labels" and isinstance(value, list)):
        return json.dumps(value, ensure_ascii=False, default=str)
    return "" if value is None else value


def _csv(rows: Iterator[dict[str, Any]]) -> Iterator[bytes]:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(_CSV_COLUMNS)
    for n, row in enumerate(rows, start=1):
        writer.writerow([_csv_cell(row, c) for c in _CSV_COLUMNS])
        if n % PAGE_ITEMS == 0:
            yield out.getvalue().encode()
            out.seek(0)
            out.truncate()
    yield out.getvalue().encode()


def _parquet(rows: Iterator[dict[str, Any]]) -> Iterator[bytes]:
    """Row batches written to a temporary Parquet file, then streamed and deleted."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    schema = pa.schema([("external_id", pa.string()), ("split", pa.string()),
                        ("data", pa.string()), ("labels", pa.string()),
                        ("annotations", pa.string()), ("round", pa.int64()),
                        ("strategy", pa.string()), ("score", pa.float64()),
                        ("model_version", pa.int64())])
    fd, name = tempfile.mkstemp(prefix="activelabel-export-", suffix=".parquet")
    os.close(fd)
    try:
        with pq.ParquetWriter(name, schema) as writer:
            batch: list[dict[str, Any]] = []
            for row in rows:
                batch.append({**row, **{k: json.dumps(row[k], ensure_ascii=False, default=str)
                                        for k in ("data", "labels", "annotations")}})
                if len(batch) >= PAGE_ITEMS:
                    writer.write_table(pa.Table.from_pylist(batch, schema=schema))
                    batch = []
            if batch:
                writer.write_table(pa.Table.from_pylist(batch, schema=schema))
        with open(name, "rb") as handle:
            while chunk := handle.read(_STREAM_CHUNK):
                yield chunk
    finally:
        os.unlink(name)


Writer = Callable[[Iterator[dict[str, Any]], ExportContext], Iterator[bytes]]
_WRITERS: dict[str, Writer] = {
    "jsonl": lambda rows, ctx: _jsonl(rows), "csv": lambda rows, ctx: _csv(rows),
    "parquet": lambda rows, ctx: _parquet(rows), "labelstudio": write_labelstudio,
    "huggingface": write_huggingface, "spacy": write_spacy,
    "conll": lambda rows, ctx: write_conll(rows),
    "spans_jsonl": lambda rows, ctx: write_span_jsonl(rows)}


def _agreement(session: Session, project: Project) -> dict[str, Any]:
    """The agreement figures a dataset card shows (empty below two doubly labeled items)."""
    from .quality import agreement_report, label_table

    if project.task not in ("classification", "multilabel"):
        return {}
    report = agreement_report(label_table(session, project), project)
    if report["krippendorff_alpha"] is None:
        return {}
    return {"items labeled by two or more annotators": report["n_items"],
            "annotators": report["n_annotators"],
            "Krippendorff's alpha (nominal)": round(report["krippendorff_alpha"], 4),
            "Fleiss' kappa": None if report["fleiss_kappa"] is None
            else round(report["fleiss_kappa"], 4)}


def _suggestions(storage: Storage, project_id: int
                 ) -> Callable[[list[str]], dict[str, tuple[list[Any], float, int]]]:
    """external ids -> the active model's (labels, confidence, version) for those items."""
    from .tasks import model_probs, suggestion

    def lookup(external_ids: list[str]) -> dict[str, tuple[list[Any], float, int]]:
        with storage.read_sessions() as session:
            project = get_project(session, project_id)
            model = active_model_version(session, project_id)
            probs = None if model is None else model_probs(storage.arrays, project_id)
            if model is None or probs is None:
                return {}
            rows = session.execute(select(Item.external_id, Item.row).where(
                Item.project_id == project_id, Item.external_id.in_(external_ids)))
            out = {}
            for ext, row in rows:
                hint = suggestion(project, probs, int(row), model.version)
                if hint is not None and hint.confidence is not None:
                    labels = hint.label if isinstance(hint.label, list) else [hint.label]
                    out[str(ext)] = (labels, hint.confidence, hint.model_version)
            return out

    return lookup


def export_context(storage: Storage, project_id: int, *,
                   agreement: bool = False) -> ExportContext:
    """What the tool formats need to know of the project besides its rows (the agreement
    between annotators, which reads every label, only when asked for: a dataset card)."""
    with storage.read_sessions() as session:
        project = get_project(session, project_id)
        return ExportContext(
            project_id=project_id, name=project.name, task=project.task,
            labels=list(project.labels), guidelines_version=project.guidelines_version,
            license=settings_of(project.settings).dataset_license,
            text_field=settings_of(project.settings).text_field, agreement=_agreement(session, project) if agreement else {},
            suggestions=_suggestions(storage, project_id))


def export_stream(storage: Storage, project_id: int, fmt: str, *,
                  include_private: bool = False) -> tuple[Iterator[bytes], str, str]:
    """(chunks of the file, media type, file name) of the project's labels with provenance.

    The format and project are checked at once (InvalidInput / NotFound); the rows are read
    while the chunks are consumed.
    """
    if fmt not in EXPORT_FORMATS:
        raise InvalidInput(f"unknown export format {fmt!r}: use one of "
                           f"{', '.join(EXPORT_FORMATS)}")
    with storage.read_sessions() as session:
        task = get_project(session, project_id).task
    if fmt in SPAN_EXPORT_FORMATS and task != "spans":
        raise InvalidInput(f"format {fmt!r} is for span projects only")
    if task == "spans" and fmt not in SPAN_EXPORT_FORMATS | SPAN_READY_FORMATS:
        raise InvalidInput(f"a span project exports as "
                           f"{', '.join(sorted(SPAN_EXPORT_FORMATS | SPAN_READY_FORMATS))}, "
                           f"not {fmt!r}")
    ctx = export_context(storage, project_id, agreement=fmt == "huggingface")
    media, ext = EXPORT_FORMATS[fmt]
    rows = export_rows(storage, project_id, include_private=include_private)
    return _WRITERS[fmt](rows, ctx), media, f"project_{project_id}_labels.{ext}"


def _audit_rows(storage: Storage, project_id: int) -> Iterator[dict[str, Any]]:
    """Every audit event of the project, oldest first, page by page."""
    for e in audit_trail(storage, project_id):
        yield {"id": e.id, "action": e.action, "entity": e.entity, "entity_id": e.entity_id,
               "actor_id": e.actor_id, "before": e.before, "after": e.after,
               "created_at": _iso(e.created_at)}


def _governance_rows(storage: Storage, project_id: int, what: str) -> list[dict[str, Any]]:
    from ..store.governance import list_decisions, list_project_versions

    with storage.read_sessions() as session:
        if what == "decisions":
            return [{"id": d.id, "topic": d.topic, "text": d.text, "from_round": d.from_round,
                     "author_id": d.author_id, "created_at": _iso(d.created_at)}
                    for d in list_decisions(session, project_id)]
        return [{"version": v.version, "labels": list(v.labels), "guidelines": v.guidelines,
                 "author_id": v.author_id, "created_at": _iso(v.created_at)}
                for v in list_project_versions(session, project_id)]


def export_bundle(storage: Storage, project_id: int, *,
                  include_private: bool = False) -> Iterator[bytes]:
    """A zip of the labels with provenance (``labels.jsonl``, as :func:`export_stream`) and the
    records to trust them by: the whole audit trail (``audit.jsonl``), the decision log
    (``decisions.jsonl``) and the guideline versions (``versions.jsonl``). Written to a
    temporary file, streamed, deleted."""
    import zipfile

    with storage.read_sessions() as session:
        get_project(session, project_id)
    fd, name = tempfile.mkstemp(prefix="activelabel-bundle-", suffix=".zip")
    os.close(fd)
    try:
        with zipfile.ZipFile(name, "w", compression=zipfile.ZIP_DEFLATED) as bundle:
            parts = {"labels.jsonl": export_rows(storage, project_id,
                                                 include_private=include_private),
                     "audit.jsonl": _audit_rows(storage, project_id),
                     "decisions.jsonl": iter(_governance_rows(storage, project_id,
                                                              "decisions")),
                     "versions.jsonl": iter(_governance_rows(storage, project_id,
                                                             "versions"))}
            for member, rows in parts.items():
                with bundle.open(member, "w") as handle:
                    for chunk in _jsonl(rows):
                        handle.write(chunk)
        with open(name, "rb") as handle:
            while chunk := handle.read(_STREAM_CHUNK):
                yield chunk
    finally:
        os.unlink(name)
