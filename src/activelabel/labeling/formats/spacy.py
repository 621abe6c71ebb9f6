"""spaCy-style JSONL: ``{"text", "label"}``, ``{"text", "cats": {label: score}}`` or, for
spans, ``{"text", "spans": [{"start", "end", "label"}]}``, one object per line.

Reading: ``label``, ``cats`` (the categories scored 0.5 or more) or ``spans`` become one
annotation (its annotator Prodigy's ``_annotator_id`` when given); Prodigy's ``answer``
``reject`` or ``ignore`` keeps the item without that label. ``id`` / ``external_id`` is the
external id, ``split`` the split (``train`` reads as pool; ``test``, ``validation`` and
``dev`` as holdout); every other field is the item's data. Writing: one line per labeled item with
its data fields, ``id`` and the consensus as ``label`` and ``cats`` (single label), ``cats``
(multi-label) or ``spans``; an item without consensus (a tie) is written with no answer.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from ._common import ExportContext, ExportRow, Parsed, span_of

__all__ = ["line_to_row", "read_spacy", "write_spacy"]

_ANSWER_KEYS = ("label", "cats", "spans")
_META_KEYS = frozenset({"id", "external_id", "answer", "_annotator_id", "_session_id",
                        "_timestamp", "split", *_ANSWER_KEYS})
_PAGE = 1000
#: Split names of other tools -> ours (a dev or validation set is for evaluation here).
_SPLIT_NAMES = {"train": "pool", "test": "holdout", "validation": "holdout", "dev": "holdout"}


def read_spacy(path: Path) -> Iterator[Parsed]:
    """``(line, canonical row, error)`` of every line of a spaCy-style JSONL file."""
    with path.open("rb") as handle:
        for line_no, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                yield line_no, line_to_row(json.loads(line)), None
            except ValueError as exc:
                yield line_no, None, str(exc)


def _labels(record: Mapping[str, Any]) -> list[Any] | None:
    """The answer of a line (None when it holds none); ValueError when it holds two kinds."""
    given = [k for k in _ANSWER_KEYS if record.get(k) is not None]
    if len(given) > 1 and given != ["label", "cats"]:
        raise ValueError(f"line gives {' and '.join(given)}: give one answer (label, cats "
                         "or spans)")
    if "label" in given:
        return [record["label"]]
    if "cats" in given:
        cats = record["cats"]
        if not isinstance(cats, Mapping) or any(
                isinstance(v, bool) or not isinstance(v, (int, float)) for v in cats.values()):
            raise ValueError("cats must be an object {label: score} with numbers as scores")
        return [k for k, v in cats.items() if v >= 0.5]
    if "spans" in given:
        spans = record["spans"]
        if not isinstance(spans, list):
            raise ValueError(f"spans must be a list, got {type(spans).__name__}")
        return [span_of(s, f"span {n}") for n, s in enumerate(spans, start=1)]
    return None


def line_to_row(record: Any) -> dict[str, Any]:
    """The canonical row of one spaCy-style line; ValueError says what is wrong."""
    if not isinstance(record, Mapping):
        raise ValueError(f"each line must be a JSON object, got {type(record).__name__}")
    data = {k: v for k, v in record.items() if k not in _META_KEYS}
    if not data:
        raise ValueError("line has no content: give \"text\" (and label, cats or spans)")
    labels = _labels(record)
    ext = record.get("external_id", record.get("id"))
    annotations = []
    if labels is not None and record.get("answer", "accept") == "accept":
        who = record.get("_annotator_id")
        annotations.append({"labels": labels, "annotator": None if who in (None, "") else str(who),
                            "created_at": None})
    return {"external_id": None if ext in (None, "") else str(ext), "data": data,
            "split": _SPLIT_NAMES.get(str(record.get("split")), record.get("split")),
            "annotations": annotations, "predictions": []}


def _answer(labels: Any, ctx: ExportContext) -> dict[str, Any]:
    if ctx.spans:
        return {"spans": list(labels or [])}
    if labels is None:
        return {}
    chosen = labels if isinstance(labels, list) else [labels]
    cats = {str(name): 1.0 if name in chosen else 0.0 for name in ctx.labels}
    return {"cats": cats} if ctx.multilabel else {"label": labels, "cats": cats}


def write_spacy(rows: Iterator[ExportRow], ctx: ExportContext) -> Iterator[bytes]:
    """spaCy-style JSONL of the export's rows (one line per labeled item)."""
    buffer: list[str] = []
    for row in rows:
        line = {**row["data"], "id": row["external_id"], **_answer(row["labels"], ctx)}
        buffer.append(json.dumps(line, ensure_ascii=False, default=str))
        if len(buffer) >= _PAGE:
            yield ("\n".join(buffer) + "\n").encode()
            buffer = []
    if buffer:
        yield ("\n".join(buffer) + "\n").encode()
