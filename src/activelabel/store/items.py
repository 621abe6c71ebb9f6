"""Items: bulk import with per-row errors and duplicate reports, dense row numbers, reads."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from itertools import islice
from typing import Any, cast

import numpy as np
from sqlalchemy import Table, func, select
from sqlalchemy.engine import Row
from sqlalchemy.orm import Session

from ._util import item_in_project, lock_project
from .db import bind_value, bulk_insert, dialect_of, in_values, refresh_statistics
from .errors import InvalidInput
from .models import SPLITS, Item, Project, utcnow
from .queue import queue_keys
from .settings import settings_of
from .spans import check_item_spans, check_span_item

__all__ = [
    "DEFAULT_BATCH_SIZE",
    "ImportResult",
    "RowError",
    "add_items",
    "content_hash",
    "count_items",
    "get_item",
    "item_ids_by_external_id",
    "item_ids_for_rows",
    "item_page",
    "iter_items",
    "set_gold",
]

DEFAULT_BATCH_SIZE = 5000
#: Rows inserted at once after which the planner statistics are refreshed (the queue plans by them).
ANALYZE_AFTER_ROWS = 1000
MAX_EXTERNAL_ID = 255
#: The largest payload an item holds (its data as JSON, UTF-8): more is a rejected row.
MAX_ITEM_BYTES = 1 << 20
_FIELDS = frozenset({"external_id", "data", "split", "gold_labels", "private"})
_COLUMNS = ("project_id", "external_id", "data", "split", "content_hash", "row", "created_at",
            "gold_labels", "private", "queue_key", "queue_rank")


@dataclass(frozen=True)
class RowError:
    """A row left out of an import: its 0-based position in the input and why."""

    index: int
    reason: str
    external_id: str | None = None


@dataclass
class ImportResult:
    """Counts of an import; ``rejected`` rows were malformed, ``duplicates`` already present."""

    inserted: int = 0
    rejected: list[RowError] = field(default_factory=list)
    duplicates: list[RowError] = field(default_factory=list)
    #: ``(input index, external id, row)`` of every inserted row.
    stored: list[tuple[int, str, int]] = field(default_factory=list)

    @property
    def seen(self) -> int:
        return self.inserted + len(self.rejected) + len(self.duplicates)


def _canonical(data: Mapping[str, Any]) -> str:
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def content_hash(data: Mapping[str, Any]) -> str:
    """SHA-256 hex of the payload's canonical JSON (sorted keys), to spot identical content."""
    return hashlib.sha256(_canonical(data).encode()).hexdigest()


def _check_gold(row: Mapping[str, Any], labels: Sequence[Any]) -> list[Any] | None:
    gold = row.get("gold_labels")
    if gold is None:
        return None
    if isinstance(gold, (str, int)) and not isinstance(gold, bool):
        gold = [gold]
    if not isinstance(gold, list) or not gold or any(
            isinstance(x, bool) or x not in labels for x in gold):
        raise ValueError(f"gold_labels must be a non-empty list drawn from {list(labels)}")
    return list(gold)


def _span_gold(project: Project, row: Mapping[str, Any], data: Mapping[str, Any]
               ) -> list[Any] | None:
    """A span project's item: its text must tokenize, its gold answer (spans, possibly
    none) must fit the text."""
    check_span_item(data)
    if row.get("gold_labels") is None:
        return None
    try:
        return check_item_spans(project, data, row["gold_labels"])
    except InvalidInput as exc:
        raise ValueError(f"gold_labels: {exc}") from None


def _check_row(row: Any, labels: Sequence[Any] = (), single: bool = False,
               span_project: Project | None = None
               ) -> tuple[str, Mapping[str, Any], str, list[Any] | None]:
    """(external_id, data, split, gold labels) of a valid row; raises ValueError with the
    reason. A row with ``gold_labels`` (its known answer) is a gold item."""
    if not isinstance(row, Mapping):
        raise ValueError(f"row must be an object with external_id and data, got {type(row).__name__}")
    if not row.keys() <= _FIELDS:
        unknown = sorted(map(str, row.keys() - _FIELDS))
        raise ValueError(f"unknown fields {', '.join(unknown)}: put payload fields inside data")
    ext = row.get("external_id")
    if type(ext) is not str:
        if not isinstance(ext, int) or isinstance(ext, bool):
            raise ValueError("external_id is missing or not a string")
        ext = str(ext)
    if not ext or len(ext) > MAX_EXTERNAL_ID or ext.isspace():
        raise ValueError(f"external_id must have 1-{MAX_EXTERNAL_ID} characters, got {len(ext)}")
    if "\x00" in ext:
        raise ValueError("external_id holds a NUL character: ids are text")
    try:
        ext.encode()
    except UnicodeEncodeError:
        raise ValueError("external_id holds a lone surrogate (such as \\ud800), which is not "
                         "text: fix the file's encoding") from None
    data = row.get("data")
    if not isinstance(data, Mapping):
        raise ValueError("data must be an object, e.g. {\"text\": \"...\"}")
    gold = (_check_gold(row, labels) if span_project is None
            else _span_gold(span_project, row, data))
    if single and gold is not None and len(gold) != 1:
        raise ValueError(f"a classification project's gold answer is one label, got {gold}")
    split = row.get("split") or ("gold" if gold is not None else "pool")
    if split not in SPLITS:
        raise ValueError(f"split {split!r} is not one of {', '.join(SPLITS)}")
    if gold is not None and split != "gold":
        raise ValueError(f"a row with gold_labels is a gold item: drop split {split!r} or "
                         "set it to 'gold'")
    private = row.get("private")
    if private is not None and not isinstance(private, Mapping):
        raise ValueError("private must be an object of fields never shown to annotators")
    return ext, data, split, gold


def _existing_ids(session: Session, project_id: int, ids: Sequence[str]) -> set[str]:
    if not ids:
        return set()
    stmt = select(Item.external_id).where(
        Item.project_id == project_id, in_values(Item.external_id, ids, dialect_of(session)))
    return set(session.execute(stmt).scalars())


def _insert_batch(session: Session, project_id: int, batch: list[tuple[int, Any]],
                  next_row: int, result: ImportResult, labels: Sequence[Any] = (),
                  seed: int = 0, single: bool = False,
                  span_project: Project | None = None) -> int:
    """Validate and insert one batch of (input index, row); returns the next free row number."""
    valid: list[tuple[int, str, Mapping[str, Any], str, list[Any] | None]] = []
    private: dict[int, str] = {}
    for index, raw in batch:
        try:
            valid.append((index, *_check_row(raw, labels, single, span_project)))
            if raw.get("private"):
                private[index] = _canonical(raw["private"])
        except (ValueError, TypeError) as exc:
            ext = raw.get("external_id") if isinstance(raw, Mapping) else None
            result.rejected.append(RowError(index, str(exc), None if ext is None else str(ext)))
    known = _existing_ids(session, project_id, [v[1] for v in valid])
    created = bind_value(session, Item.__table__.c.created_at, utcnow())
    values: list[tuple[Any, ...]] = []
    for index, ext, data, split, gold in valid:
        if ext in known:
            result.duplicates.append(RowError(index, "external_id already in the project", ext))
            continue
        text = _canonical(data)
        try:
            encoded = text.encode()
        except UnicodeEncodeError as exc:
            result.rejected.append(RowError(index, f"data holds text that is not valid Unicode "
                                            f"({exc.reason} at character {exc.start}): a lone "
                                            "surrogate such as \\ud800; fix the file's "
                                            "encoding", ext))
            continue
        if len(encoded) > MAX_ITEM_BYTES:
            result.rejected.append(RowError(index, f"data is {len(encoded):,} bytes, more than "
                                            f"the {MAX_ITEM_BYTES:,} an item may hold: keep "
                                            "large content in files and store their address",
                                            ext))
            continue
        known.add(ext)
        result.stored.append((index, ext, next_row + len(values)))
        values.append((project_id, ext, text, split, hashlib.sha256(encoded).hexdigest(),
                       next_row + len(values), created,
                       None if gold is None else json.dumps(gold), private.get(index)))
    # Seeded random keys: the queue's order until a model ranks the items.
    keys = queue_keys(seed, project_id, np.arange(next_row, next_row + len(values))).tolist()
    values = [(*v, key, key) for v, key in zip(values, keys, strict=True)]
    bulk_insert(session, cast(Table, Item.__table__), _COLUMNS, values)
    result.inserted += len(values)
    return next_row + len(values)


def next_free_row(session: Session, project_id: int) -> int:
    """The row the project's next item gets (rows are dense, in import order)."""
    return int(session.execute(
        select(func.coalesce(func.max(Item.row) + 1, 0)).where(Item.project_id == project_id)
    ).scalar_one())


def add_items(session: Session, project_id: int, rows: Iterable[Any], *,
              batch_size: int = DEFAULT_BATCH_SIZE, refresh_stats: bool = True) -> ImportResult:
    """Insert rows ``{external_id, data, split, gold_labels}`` in batches, streaming ``rows``
    (``gold_labels``, the known answer, makes a gold item).

    Valid rows get dense row numbers after the project's last one. Malformed rows are listed in
    ``rejected`` and rows whose external_id is already in the project (or earlier in ``rows``)
    in ``duplicates``, each with its 0-based input index; neither stops the import. The caller
    commits (all or nothing).

    After ``ANALYZE_AFTER_ROWS`` or more new rows the planner statistics are refreshed, unless
    ``refresh_stats`` is False (a caller adding many batches refreshes once at the end).
    """
    if batch_size < 1:
        raise InvalidInput(f"batch_size must be >= 1, got {batch_size}")
    project = lock_project(session, project_id)
    labels = list(project.labels)
    seed = settings_of(project.settings).random_state
    next_row = next_free_row(session, project_id)
    result = ImportResult()
    numbered = enumerate(rows)
    while batch := list(islice(numbered, batch_size)):
        next_row = _insert_batch(session, project_id, batch, next_row, result, labels, seed,
                                 project.task == "classification",
                                 project if project.task == "spans" else None)
    if refresh_stats and result.inserted >= ANALYZE_AFTER_ROWS:
        refresh_statistics(session, "items")
    return result


def get_item(session: Session, project_id: int, item_id: int) -> Item:
    return item_in_project(session, project_id, item_id)


def count_items(session: Session, project_id: int, split: str | None = None) -> int:
    stmt = select(func.count()).select_from(Item).where(Item.project_id == project_id)
    if split is not None:
        stmt = stmt.where(Item.split == split)
    return int(session.execute(stmt).scalar_one())


def iter_items(session: Session, project_id: int, *, batch_size: int = 10_000,
               with_data: bool = True, from_row: int = 0) -> Iterator[list[Row[Any]]]:
    """Batches of rows ``(id, row, external_id, split, purged_at[, data])`` in ``row`` order
    (keyset pages), from row ``from_row`` on.

    Memory stays at one batch: featurize a million items without loading them all.
    """
    columns: list[Any] = [Item.id, Item.row, Item.external_id, Item.split, Item.purged_at]
    if with_data:
        columns.append(Item.data)
    last = from_row - 1
    while True:
        stmt = (select(*columns).where(Item.project_id == project_id, Item.row > last)
                .order_by(Item.row).limit(batch_size))
        batch = list(session.execute(stmt))
        if not batch:
            return
        yield batch
        last = batch[-1].row


def item_ids_for_rows(session: Session, project_id: int, rows: Sequence[int]) -> list[int]:
    """Item ids of the given array-store rows, in the same order; unknown rows raise."""
    wanted = [int(r) for r in rows]
    found: dict[int, int] = {}
    for start in range(0, len(wanted), 5000):
        chunk = wanted[start:start + 5000]
        stmt = select(Item.row, Item.id).where(Item.project_id == project_id,
                                               Item.row.in_(chunk))
        found.update({r: i for r, i in session.execute(stmt)})
    missing = [r for r in wanted if r not in found]
    if missing:
        raise InvalidInput(f"{len(missing)} rows are not items of project {project_id} "
                           f"(first: {missing[:5]}); rows run 0..n-1 in import order")
    return [found[r] for r in wanted]


def set_gold(session: Session, project_id: int, item_id: int, labels: Any) -> Item:
    """Make the item a gold item with the known answer ``labels`` (None: back to the pool)."""
    item = item_in_project(session, project_id, item_id)
    project = lock_project(session, project_id)
    if labels is None:
        item.gold_labels, item.split = None, "pool"
        return item
    if project.task == "spans":
        item.gold_labels, item.split = check_item_spans(project, item.data, labels), "gold"
        return item
    try:
        gold = _check_gold({"gold_labels": labels}, project.labels)
    except ValueError as exc:
        raise InvalidInput(str(exc)) from exc
    if project.task == "classification" and gold is not None and len(gold) != 1:
        raise InvalidInput(f"a classification project's gold answer is one label, got {gold}")
    item.gold_labels, item.split = gold, "gold"
    return item


def item_page(session: Session, project_id: int, *, split: str | None = None, limit: int = 100,
              after: int | None = None) -> list[Item]:
    """Up to ``limit`` items by id, those after id ``after``, of ``split`` when given."""
    stmt = select(Item).where(Item.project_id == project_id).order_by(Item.id).limit(limit)
    if split is not None:
        stmt = stmt.where(Item.split == split)
    if after is not None:
        stmt = stmt.where(Item.id > after)
    return list(session.execute(stmt).scalars())


def item_ids_by_external_id(session: Session, project_id: int,
                            external_ids: Sequence[str]) -> dict[str, int]:
    """External id -> item id of those of ``external_ids`` that are items of the project."""
    out: dict[str, int] = {}
    ids = list(dict.fromkeys(external_ids))
    for start in range(0, len(ids), 1000):
        stmt = select(Item.external_id, Item.id).where(
            Item.project_id == project_id, Item.external_id.in_(ids[start:start + 1000]))
        out.update({str(e): int(i) for e, i in session.execute(stmt)})
    return out
