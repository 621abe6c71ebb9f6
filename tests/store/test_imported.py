"""Imported predictions: what ``tasks/next`` asks for on every call before a first model."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import event, select
from sqlalchemy.orm import Session

from activelabel.store import add_items
from activelabel.store import imported as imported_module
from activelabel.store.imported import ImportedPrediction, add_predictions, predictions_of
from activelabel.store.models import Item, Project


def test_a_project_without_predictions_is_not_asked_again_for_a_while(
        session: Session, project: Project, monkeypatch: pytest.MonkeyPatch) -> None:
    add_items(session, project.id, [{"external_id": f"i{i}", "data": {}} for i in range(3)])
    ids = list(session.scalars(select(Item.id).where(Item.project_id == project.id)))
    statements: list[str] = []

    def spy(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        statements.append(statement)

    bind = session.connection()
    event.listen(bind, "before_cursor_execute", spy)
    try:
        assert predictions_of(session, project.id, ids) == {}
        asked = len(statements)
        assert asked == 2  # the items' predictions, then whether the project holds any
        assert predictions_of(session, project.id, ids) == {}
        assert len(statements) == asked  # not asked again
        # Stored by this process: shown at once.
        add_predictions(session, project.id, None, [ImportedPrediction(ids[0], ["pos"], 0.9,
                                                                       "m")])
        assert list(predictions_of(session, project.id, ids)) == [ids[0]]
        # A project that holds some is asked every time.
        before = len(statements)
        assert list(predictions_of(session, project.id, ids[1:])) == []
        assert list(predictions_of(session, project.id, ids[1:])) == []
        assert len(statements) - before == 4
    finally:
        event.remove(bind, "before_cursor_execute", spy)


def test_predictions_stored_elsewhere_show_once_the_recheck_time_is_past(
        session: Session, project: Project, monkeypatch: pytest.MonkeyPatch) -> None:
    add_items(session, project.id, [{"external_id": "a", "data": {}}])
    item = session.scalar(select(Item.id).where(Item.project_id == project.id))
    assert item is not None
    assert predictions_of(session, project.id, [item]) == {}
    add_predictions(session, project.id, None, [ImportedPrediction(item, ["neg"], None, None)])
    # As if another process (the worker's import) had stored them: the mark stays.
    key = (id(session.get_bind()), project.id)
    imported_module._none_until[key] = float("inf")
    assert predictions_of(session, project.id, [item]) == {}
    imported_module._none_until[key] = 0.0  # the recheck time is past
    assert list(predictions_of(session, project.id, [item])) == [item]
