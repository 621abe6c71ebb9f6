"""Bulk import: dense rows, rejected rows with reasons, duplicates reported not doubled."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from activelabel.store import add_items, content_hash, count_items, item_ids_for_rows, iter_items
from activelabel.store.models import Item, Project


def test_add_items_numbers_rows_densely_across_imports(session: Session, project: Project) -> None:
    first = add_items(session, project.id, [
        {"external_id": f"a{i}", "data": {"text": str(i)}} for i in range(7)], batch_size=3)
    second = add_items(session, project.id, [
        {"external_id": "b0", "data": {"text": "x"}, "split": "holdout"}])
    assert (first.inserted, second.inserted) == (7, 1)
    rows = session.execute(select(Item.row, Item.external_id).where(
        Item.project_id == project.id).order_by(Item.row)).all()
    assert [r.row for r in rows] == list(range(8))
    assert rows[-1].external_id == "b0"
    assert count_items(session, project.id, "holdout") == 1


def test_bad_rows_are_rejected_with_index_and_reason(session: Session, project: Project) -> None:
    rows = [
        {"external_id": "ok", "data": {"text": "fine"}},
        {"data": {"text": "no id"}},
        {"external_id": "nodata"},
        {"external_id": "badsplit", "data": {}, "split": "train"},
        "not an object",
        {"external_id": "extra", "data": {}, "label": "x"},
        {"external_id": 42, "data": {"n": 1}},
    ]
    result = add_items(session, project.id, rows)
    assert result.inserted == 2
    reasons = {e.index: e.reason for e in result.rejected}
    assert sorted(reasons) == [1, 2, 3, 4, 5]
    assert "external_id" in reasons[1]
    assert "data" in reasons[2]
    assert "split" in reasons[3]
    assert "put payload fields inside data" in reasons[5]
    assert result.seen == len(rows)


def test_duplicates_are_reported_never_doubled(session: Session, project: Project) -> None:
    add_items(session, project.id, [{"external_id": "x", "data": {"v": 1}}])
    result = add_items(session, project.id, [
        {"external_id": "x", "data": {"v": 2}},
        {"external_id": "y", "data": {"v": 3}},
        {"external_id": "y", "data": {"v": 4}},
    ], batch_size=2)
    assert result.inserted == 1
    assert [(d.index, d.external_id) for d in result.duplicates] == [(0, "x"), (2, "y")]
    assert session.execute(select(func.count()).select_from(Item).where(
        Item.project_id == project.id)).scalar() == 2
    assert session.execute(select(Item.row).where(Item.external_id == "y")).scalar() == 1


def test_iter_items_pages_in_row_order(session: Session, project: Project) -> None:
    add_items(session, project.id, [{"external_id": f"e{i}", "data": {"i": i}}
                                    for i in range(25)])
    batches = list(iter_items(session, project.id, batch_size=10))
    assert [len(b) for b in batches] == [10, 10, 5]
    assert [r.data["i"] for b in batches for r in b] == list(range(25))
    ids = item_ids_for_rows(session, project.id, [3, 0])
    assert [session.get(Item, i).row for i in ids] == [3, 0]  # type: ignore[union-attr]


def test_content_hash_ignores_key_order() -> None:
    assert content_hash({"a": 1, "b": 2}) == content_hash({"b": 2, "a": 1})
    assert content_hash({"a": 1}) != content_hash({"a": 2})


def test_a_bulk_insert_refreshes_the_planner_statistics(session: Session, project: Project) -> None:
    """The queue's plan depends on them: stale statistics made PostgreSQL sort the whole pool."""
    from sqlalchemy import text

    from activelabel.store.items import ANALYZE_AFTER_ROWS

    if session.get_bind().dialect.name != "postgresql":
        pytest.skip("SQLite plans without statistics; PRAGMA optimize leaves no trace to check")
    n = ANALYZE_AFTER_ROWS + 10
    result = add_items(session, project.id, [
        {"external_id": f"bulk{i}", "data": {"text": f"t{i}"}} for i in range(n)])
    assert result.inserted == n
    tuples = session.execute(text(
        "SELECT c.reltuples FROM pg_class c JOIN pg_namespace s ON s.oid = c.relnamespace "
        "WHERE c.relname = 'items' AND s.nspname = current_schema()")).scalar_one()
    assert tuples >= n  # ANALYZE counted the rows (-1 or 0 before)


def test_rows_a_database_cannot_hold_are_rejected_and_the_others_stored(
        session: Session, project: Project) -> None:
    """A lone surrogate in the data or the id, a NUL in the id, a payload beyond the limit:
    each a rejected row with its reason; the good rows around them go in (on both databases:
    PostgreSQL refuses NUL in text, and no database stores a lone surrogate)."""
    from activelabel.store.items import MAX_ITEM_BYTES

    rows = [{"external_id": "ok1", "data": {"text": "fine"}},
            {"external_id": "bad-text", "data": {"text": "broken \ud800 text"}},
            {"external_id": "bad\x00id", "data": {"text": "x"}},
            {"external_id": "bad\udfffid", "data": {"text": "x"}},
            {"external_id": "huge", "data": {"text": "x" * (MAX_ITEM_BYTES + 1)}},
            {"external_id": "ok2", "data": {"text": "also fine"}}]
    result = add_items(session, project.id, rows)
    assert result.inserted == 2
    reasons = {e.index: e.reason for e in result.rejected}
    assert set(reasons) == {1, 2, 3, 4}
    assert "not valid Unicode" in reasons[1]
    assert "NUL" in reasons[2]
    assert "lone surrogate" in reasons[3]
    assert "more than the" in reasons[4]
    assert count_items(session, project.id) == 2
