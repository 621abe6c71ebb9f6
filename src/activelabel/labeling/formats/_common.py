"""What the format modules share: the reader's triple, the project a writer describes, the
checks of a span and a JSON array read element by element."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["ExportContext", "ExportRow", "Parsed", "iter_json_array", "span_of"]

#: ``(line, row, None)`` for a row read, ``(line, None, reason)`` for one that could not be.
Parsed = tuple[int, Any, str | None]

#: One row of :func:`activelabel.labeling.export.export_rows`: external_id, split, data,
#: labels (the consensus), annotations [{annotator, labels, created_at, duration_ms}], ...
ExportRow = dict[str, Any]

_READ_CHUNK = 1 << 20


@dataclass
class ExportContext:
    """The project an export describes: its name, task (``classification``, ``multilabel``
    or ``spans``), label names, guidelines version and the numbers a dataset card shows.

    ``suggestions(external_ids)`` gives the active model's answer for items of the export
    (external id -> ``(labels, confidence, model_version)``), used by formats that carry
    predictions."""

    project_id: int
    name: str
    task: str
    labels: list[Any]
    guidelines_version: int = 1
    license: str = "unknown"
    text_field: str = "text"
    agreement: dict[str, Any] = field(default_factory=dict)
    suggestions: Callable[[list[str]], dict[str, tuple[list[Any], float, int]]] = (
        lambda ids: {})

    @property
    def spans(self) -> bool:
        return self.task == "spans"

    @property
    def multilabel(self) -> bool:
        return self.task == "multilabel"


def span_of(value: Any, where: str) -> dict[str, Any]:
    """``{"start", "end", "label"}`` checked (ints, 0 <= start < end, a label string), or
    ValueError naming ``where``."""
    if not isinstance(value, Mapping):
        raise ValueError(f"{where}: a span must be an object {{start, end, label}}, got "
                         f"{type(value).__name__}")
    start, end, label = value.get("start"), value.get("end"), value.get("label")
    if not all(isinstance(x, int) and not isinstance(x, bool) for x in (start, end)):
        raise ValueError(f"{where}: span start and end must be integers, got {start!r}, {end!r}")
    assert isinstance(start, int)
    assert isinstance(end, int)
    if not 0 <= start < end:
        raise ValueError(f"{where}: span must have 0 <= start < end, got {start}..{end}")
    if not isinstance(label, str) or not label:
        raise ValueError(f"{where}: span label must be a non-empty string, got {label!r}")
    return {"start": start, "end": end, "label": label}


def iter_json_array(path: Path) -> Iterator[Parsed]:
    """The elements of a file holding one JSON array (or one object), read in chunks so that
    only one element at a time is held; ``line`` is the element's position (1-based).

    A file that is not a JSON array raises ValueError at once; an element that cannot be
    parsed ends the reading with a last ``(position, None, reason)`` (what follows a broken
    element cannot be told apart)."""
    decoder = json.JSONDecoder()
    with path.open("r", encoding="utf-8-sig", errors="surrogateescape") as handle:
        buffer = handle.read(_READ_CHUNK)
        eof = len(buffer) < _READ_CHUNK
        pos = _skip_space(buffer, 0)
        if pos < len(buffer) and buffer[pos] == "{":  # one task
            try:
                yield 1, json.loads(buffer + handle.read()), None
            except ValueError as exc:
                yield 1, None, f"invalid JSON ({exc})"
            return
        if pos >= len(buffer) or buffer[pos] != "[":
            raise ValueError(f"{path.name} does not hold a JSON array: a Label Studio export "
                             "is a list of tasks [{\"data\": ...}, ...]")
        pos += 1
        index = 0
        while True:
            pos = _skip_space(buffer, pos)
            while pos >= len(buffer) and not eof:
                buffer, pos, eof = _more(handle, buffer, pos)
                pos = _skip_space(buffer, pos)
            if pos >= len(buffer):
                yield index + 1, None, "the JSON array is not closed (the file is cut short)"
                return
            if buffer[pos] == "]":
                return
            if index and buffer[pos] == ",":
                pos = _skip_space(buffer, pos + 1)
            elif index:
                yield index + 1, None, f"expected ',' or ']' after element {index}"
                return
            while True:
                try:
                    value, end = decoder.raw_decode(buffer, pos)
                    break
                except ValueError as exc:
                    if eof:
                        yield index + 1, None, f"invalid JSON in element {index + 1} ({exc})"
                        return
                    buffer, pos, eof = _more(handle, buffer, pos)
                    pos = _skip_space(buffer, pos)
            index += 1
            yield index, value, None
            pos = end
            if pos > _READ_CHUNK:
                buffer, pos = buffer[pos:], 0


def _skip_space(text: str, pos: int) -> int:
    while pos < len(text) and text[pos] in " \t\r\n":
        pos += 1
    return pos


def _more(handle: Any, buffer: str, pos: int) -> tuple[str, int, bool]:
    chunk = handle.read(_READ_CHUNK)
    return buffer[pos:] + chunk, 0, len(chunk) < _READ_CHUNK
