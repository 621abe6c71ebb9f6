"""Span formats: CoNLL / IOB files and JSONL with character offsets, read as canonical import
rows and written from a span project's export rows.

CoNLL / IOB: one token a line, its tag in the last column (``B-type``, ``I-type``, ``O``; IOB1
and BIOES read too), other columns ignored, a blank line between sentences, ``-DOCSTART-``
lines skipped, ``# id = x`` before a sentence names its item (other ``#`` comments are
skipped). A sentence becomes an item ``{"text": tokens joined by single spaces,
"tokens": [...]}`` and its tags become one annotation of spans (a file's labels are one
annotator's answer). Offsets JSONL: ``{"text", "tokens"?, "spans": [{start, end, label}],
"id"?, "split"?}`` per line (wnut17's form); the spans become an annotation the same way.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from ...spans import SpanError, align_tokens, item_tokens, spans_to_tags, tags_to_spans

__all__ = ["read_conll", "read_span_jsonl", "write_conll", "write_span_jsonl"]

#: ``(line, row, error)`` as every reader of :mod:`activelabel.labeling.imports` yields.
Parsed = tuple[int, Any, str | None]


def _sentence_row(tokens: list[str], tags: list[str], index: int) -> dict[str, Any]:
    text = " ".join(tokens)
    offsets = align_tokens(text, tokens)
    spans = tags_to_spans(offsets, tags)
    return {"external_id": None, "data": {"text": text, "tokens": tokens},
            "annotations": [{"labels": spans, "annotator": None, "created_at": None}],
            "_sentence": index}


def read_conll(path: Path) -> Iterator[Parsed]:
    """One canonical row per sentence, numbered by the line the sentence starts on."""
    tokens: list[str] = []
    tags: list[str] = []
    first = 0
    bad: str | None = None
    ident: str | None = None
    count = 0

    def flush() -> Parsed:
        nonlocal count
        count += 1
        if bad is not None:
            return first, None, bad
        try:
            row = _sentence_row(tokens, tags, count)
        except SpanError as exc:
            return first, None, str(exc)
        row.pop("_sentence")
        row["external_id"] = ident
        return first, row, None

    with path.open(encoding="utf-8", errors="surrogateescape") as handle:
        for line_no, line in enumerate(handle, start=1):
            parts = line.split()
            if parts[:1] == ["#"] and len(parts) > 2:  # a comment; "# id = x" names the item
                if parts[1] == "id" and len(parts) == 4 and not tokens:
                    ident = parts[3]
                continue
            if not parts or parts[0] == "-DOCSTART-":
                if tokens or bad:
                    yield flush()
                tokens, tags, bad, ident = [], [], None, None
                continue
            if not tokens and bad is None:
                first = line_no
            if len(parts) < 2:
                bad = bad or (f"line {line_no} has one column {parts[0]!r}: give the token and "
                              "its tag (B-type, I-type or O) separated by whitespace")
                continue
            tag = parts[-1]
            if tag != "O" and (len(tag) < 3 or tag[0] not in "BIES" or tag[1] not in "-_"):
                bad = bad or (f"line {line_no}: tag {tag!r} is not O, B-type, I-type, E-type or "
                              "S-type")
                continue
            tokens.append(parts[0])
            tags.append(tag)
    if tokens or bad:
        yield flush()


def read_span_jsonl(path: Path) -> Iterator[Parsed]:
    """One canonical row per line of ``{"text", "tokens"?, "spans", "id"?, "split"?}``."""
    with path.open("rb") as handle:
        for line_no, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except ValueError as exc:
                yield line_no, None, f"invalid JSON ({exc}); each line must be one JSON object"
                continue
            try:
                yield line_no, _offsets_row(record), None
            except (SpanError, ValueError) as exc:
                yield line_no, None, str(exc)


def _offsets_row(record: Any) -> dict[str, Any]:
    if not isinstance(record, Mapping):
        raise ValueError(f"each line must be a JSON object, got {type(record).__name__}")
    text, _ = item_tokens(record)
    data: dict[str, Any] = {"text": text}
    if record.get("tokens") is not None:
        data["tokens"] = list(record["tokens"])
    spans = record.get("spans", record.get("labels"))
    if spans is not None and not isinstance(spans, list):
        raise ValueError("spans must be a list of {start, end, label} objects")
    ident = record.get("external_id", record.get("id"))
    row: dict[str, Any] = {"external_id": None if ident is None else str(ident), "data": data,
                           "split": record.get("split") if record.get("split") in (
                               "pool", "holdout", "gold") else None}
    if spans is not None:
        row["annotations"] = [{"labels": list(spans), "annotator": None, "created_at": None}]
    return row


# ---- writing -----------------------------------------------------------------------------------


def write_span_jsonl(rows: Iterator[Mapping[str, Any]]) -> Iterator[bytes]:
    """``{"id", "text", "tokens"?, "spans", "split"}`` per labeled item (the consensus spans)."""
    for row in rows:
        data = row.get("data") or {}
        out: dict[str, Any] = {"id": row["external_id"], "text": data.get("text"),
                               "spans": list(row.get("labels") or []), "split": row.get("split")}
        if data.get("tokens") is not None:
            out["tokens"] = data["tokens"]
        yield (json.dumps(out, ensure_ascii=False) + "\n").encode()


def write_conll(rows: Iterator[Mapping[str, Any]]) -> Iterator[bytes]:
    """Token and BIO tag per line, a blank line after each sentence; a ``# id = ...``
    comment names each item (spans off token boundaries cannot occur: they are checked)."""
    for row in rows:
        try:
            text, offsets = item_tokens(row.get("data") or {})
        except SpanError:
            continue  # a purged item: nothing to write
        tags = spans_to_tags(offsets, row.get("labels") or [])
        lines = [f"# id = {row['external_id']}"]
        lines += [f"{text[s:e]}\t{tag}" for (s, e), tag in zip(offsets, tags, strict=True)]
        yield ("\n".join(lines) + "\n\n").encode()
