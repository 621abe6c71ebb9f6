"""What the pages read beside the resources, without HTTP: the labeled items (with their
consensus) that related examples and label counts come from, kept until the labels change."""

from __future__ import annotations

from typing import Any

import pytest

from activelabel.labeling.insights import labeled_rows
from activelabel.labeling.projects import change_project
from activelabel.store import Storage, get_project
from tests.support.projects import label_rows, new_project, text_rows


def test_labeled_rows_follow_every_new_label_and_the_consensus_setting(
        engine_storage: Storage) -> None:
    seeded = new_project(engine_storage, labels=["a", "b"], rows=text_rows(6))
    label_rows(engine_storage, seeded, [0, 1], ["a", "b"])
    with engine_storage.read_sessions() as session:
        first = labeled_rows(session, get_project(session, seeded.project_id))
        again = labeled_rows(session, get_project(session, seeded.project_id))
    assert {row: info["label"] for row, info in first.items()} == {0: "a", 1: "b"}
    assert again is first  # unchanged labels: read once
    label_rows(engine_storage, seeded, [2], ["b"])
    with engine_storage.read_sessions() as session:
        later = labeled_rows(session, get_project(session, seeded.project_id))
    assert {row: info["label"] for row, info in later.items()} == {0: "a", 1: "b", 2: "b"}
    with engine_storage.sessions() as session, session.begin():
        change_project(session, get_project(session, seeded.project_id), seeded.owner_id,
                       {"settings": {"consensus": "dawid_skene"}})
    with engine_storage.read_sessions() as session:
        method_changed = labeled_rows(session, get_project(session, seeded.project_id))
    assert method_changed is not later


def test_the_forecast_is_fitted_once_per_learning_curve(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every annotator's page asks the outlook after a few labels; the curve changes once a
    round, so the forecast (hundreds of refits) is not fitted again for the same curve."""
    from activelabel.labeling import insights

    calls: list[int] = []
    real = insights.forecast_labels

    def counted(*args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(insights, "forecast_labels", counted)
    insights._forecast_of.cache_clear()
    curve = [(50, 0.61), (100, 0.70), (150, 0.74), (200, 0.77), (250, 0.785)]
    first = insights.forecast(curve, 0.9, 10.0)
    assert insights.forecast(list(curve), 0.9, 10.0) == first
    assert len(calls) == 1
    insights.forecast([*curve, (300, 0.80)], 0.9, 10.0)  # a new round: fitted again
    insights.forecast(curve, 0.95, 10.0)  # another target
    assert len(calls) == 3


def test_with_overlap_the_forecast_says_items_and_their_time() -> None:
    """The curve counts labeled items; with an overlap of 2 each takes two labels, so the
    forecast says items, and its time is the items over the items a minute."""
    from activelabel.labeling import insights

    curve = [(50, 0.61), (100, 0.70), (150, 0.74), (200, 0.77), (250, 0.785)]
    one = insights.forecast(curve, 0.9, 10.0)
    two = insights.forecast(curve, 0.9, 5.0, labels_per_item=2.0)
    assert one["more"] == two["more"] > 0
    assert two["minutes"] == pytest.approx(2 * one["minutes"])
    assert "more labels (" in one["text"]
    assert "more labeled items (" in two["text"]
    assert "2.0 labels an item" in two["text"]
