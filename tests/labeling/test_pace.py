"""Rounds sized and timed to the team's pace; strategy auto; per-annotator prefetch."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import numpy as np
import pytest
from sqlalchemy import select

from activelabel.cli import outlook_lines
from activelabel.labeling.insights import outlook
from activelabel.labeling.pace import (
    MAX_QUEUE_WAIT_S,
    project_pace,
    recent_round_seconds,
    retrain_after,
    suggested_prefetch,
)
from activelabel.labeling.rounds import after_annotation, request_round
from activelabel.pace import EARLY_STRATEGY
from activelabel.runtime.settings import Storage
from activelabel.store import create_user, get_project, get_round
from activelabel.store.governance import list_decisions
from activelabel.store.models import Round
from tests.support.projects import digit_rows, label_rows, new_project, run_job

Arrays = tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]]
N, HOLDOUT = 300, 60


def _round(storage: Storage, project_id: int) -> int:
    with storage.sessions() as session, session.begin():
        rnd, created = request_round(session, project_id, requested_by=None, reason="manual")
        assert created
        job_id = rnd.job_id
    assert job_id is not None
    return int(run_job(storage, job_id)["round_id"])


def _project(storage: Storage, digits: Arrays, **settings: Any) -> Any:
    images, _ = digits
    return new_project(storage, rows=digit_rows(images, N, HOLDOUT), settings={
        "featurizer": "image", "featurizer_params": {"field": "image"}, **settings})


def _last_round_took(storage: Storage, round_id: int, seconds: float) -> None:
    with storage.sessions() as session, session.begin():
        rnd = session.get(Round, round_id)
        assert rnd is not None
        assert rnd.finished_at is not None
        rnd.started_at = rnd.created_at = rnd.finished_at - timedelta(seconds=seconds)


def test_pace_counts_training_labels_of_active_annotators(engine_storage: Storage,
                                                          digits: Arrays) -> None:
    _, target = digits
    seeded = _project(engine_storage, digits)
    holdout = list(range(N - HOLDOUT, N))
    label_rows(engine_storage, seeded, holdout, [str(int(target[r])) for r in holdout])
    with engine_storage.read_sessions() as session:
        assert project_pace(session, seeded.project_id).labels_per_minute == 0
    label_rows(engine_storage, seeded, list(range(12)), [str(int(target[r])) for r in range(12)])
    with engine_storage.sessions() as session, session.begin():
        other = create_user(session, "pace_other").id
    label_rows(engine_storage, seeded, list(range(12, 18)),
               [str(int(target[r])) for r in range(12, 18)], user_id=other)
    with engine_storage.read_sessions() as session:
        pace = project_pace(session, seeded.project_id)
        # labels within a minute count over a minute: 12/min and 6/min
        assert pace.active_annotators == 2
        assert pace.per_annotator[seeded.owner_id] == pytest.approx(12)
        assert pace.labels_per_minute == pytest.approx(18)
        assert suggested_prefetch(session, seeded.project_id, other) == 6
        assert suggested_prefetch(session, seeded.project_id, seeded.owner_id) == 12


def test_auto_batch_and_cadence_follow_pace_and_round_duration(engine_storage: Storage,
                                                               digits: Arrays) -> None:
    _, target = digits
    seeded = _project(engine_storage, digits, batch_size="auto", retrain_every_labels="auto",
                      max_model_lag=1000, strategy="margin")
    first = _round(engine_storage, seeded.project_id)  # cold start: nothing measured yet
    with engine_storage.read_sessions() as session:
        rnd = get_round(session, seeded.project_id, first)
        assert rnd.batch_size == 50
        assert (rnd.metrics or {})["pace"]["labels_per_minute"] == 0
        assert retrain_after(get_project(session, seeded.project_id), rnd) == 50
    _last_round_took(engine_storage, first, 60.0)
    label_rows(engine_storage, seeded, list(range(30)), [str(int(target[r])) for r in range(30)])
    second = _round(engine_storage, seeded.project_id)
    with engine_storage.read_sessions() as session:
        rnd = get_round(session, seeded.project_id, second)
        plan = (rnd.metrics or {})["pace"]
        # 30 labels/min x 60 s = 30 labels while a round runs: batch 60, next round after 30
        assert plan["labels_per_minute"] == pytest.approx(30)
        assert plan["round_seconds"] == pytest.approx(60)
        assert (plan["batch_size"], plan["retrain_after"]) == (60, 30)
        assert rnd.batch_size == 60
        # every round's verdicts: stable predictions against the model before, uncertainty
        verdicts = {d["rule"] for d in (rnd.metrics or {})["stopping"]}
        assert verdicts == {"stabilizing_predictions", "low_uncertainty"}
        assert 0 <= (rnd.metrics or {})["pool_uncertainty_mean"] <= 1
    label_rows(engine_storage, seeded, list(range(100, 129)),
               [str(int(target[r])) for r in range(100, 129)])
    with engine_storage.sessions() as session, session.begin():
        assert after_annotation(session, seeded.project_id) is None  # 29 of 30
    label_rows(engine_storage, seeded, [129], [str(int(target[129]))])
    with engine_storage.sessions() as session, session.begin():
        assert after_annotation(session, seeded.project_id) is not None


def test_with_overlap_the_auto_cadence_counts_items(engine_storage: Storage,
                                                    digits: Arrays) -> None:
    """Overlap 2: two annotators label the same 15 items in a minute, 30 labels. A batch and
    the trigger are items (the trigger counts items labeled since the round), so the plan
    reads 15 items a minute: batch 30, next round after 15 items. Before, it read 30 labels
    as 30 items, so a round came after twice the labels planned and the outlook's time to
    the target was half what it takes."""
    _, target = digits
    seeded = _project(engine_storage, digits, batch_size="auto", retrain_every_labels="auto",
                      max_model_lag=1000, strategy="margin", overlap=2, target_accuracy=0.99)
    first = _round(engine_storage, seeded.project_id)
    _last_round_took(engine_storage, first, 60.0)
    with engine_storage.sessions() as session, session.begin():
        other = create_user(session, "pace_overlap").id
    rows = list(range(15))
    values = [str(int(target[r])) for r in rows]
    label_rows(engine_storage, seeded, rows, values)
    label_rows(engine_storage, seeded, rows, values, user_id=other)
    second = _round(engine_storage, seeded.project_id)
    with engine_storage.read_sessions() as session:
        plan = (get_round(session, seeded.project_id, second).metrics or {})["pace"]
        assert plan["labels_per_minute"] == pytest.approx(30)
        assert plan["labels_per_item"] == pytest.approx(2.0)
        assert (plan["batch_size"], plan["retrain_after"]) == (30, 15)
        assert plan["reason"].endswith("next round after 15 items")
        project = get_project(session, seeded.project_id)
        pace = outlook(session, project)["pace"]
        assert pace["labels_per_item"] == pytest.approx(2.0)
        assert pace["counts"] == "items"  # the dashboard and the CLI say so from this
        line = outlook_lines(session, project)[0]  # `activelabel status`
        assert "labels/min (2.0 labels an item)" in line
        assert "next round after 15 items (auto)" in line


def test_a_round_counts_from_when_it_was_asked(engine_storage: Storage,
                                               digits: Arrays) -> None:
    """The team labels on while a round waits for a worker (behind idle embedding, an
    import, a label check): in a served run rounds ran in 0.5 s after 3-7 s in the queue, and
    the plan read 0 s a round. The duration the plan reads runs from the ask."""
    seeded = _project(engine_storage, digits, batch_size="auto", strategy="margin")
    first = _round(engine_storage, seeded.project_id)
    with engine_storage.sessions() as session, session.begin():
        rnd = session.get(Round, first)
        assert rnd is not None
        assert rnd.finished_at is not None
        rnd.started_at = rnd.finished_at - timedelta(seconds=0.5)
        rnd.created_at = rnd.finished_at - timedelta(seconds=6.5)
    with engine_storage.read_sessions() as session:
        assert recent_round_seconds(session, seeded.project_id) == pytest.approx(6.5)
    with engine_storage.sessions() as session, session.begin():  # the worker down an hour
        rnd = session.get(Round, first)
        assert rnd is not None
        assert rnd.started_at is not None
        rnd.created_at = rnd.started_at - timedelta(hours=1)
    with engine_storage.read_sessions() as session:  # says nothing of the next round
        assert recent_round_seconds(session, seeded.project_id) == pytest.approx(
            0.5 + MAX_QUEUE_WAIT_S)


def test_max_model_lag_caps_the_auto_cadence(engine_storage: Storage, digits: Arrays) -> None:
    _, target = digits
    seeded = _project(engine_storage, digits, retrain_every_labels="auto", max_model_lag=7,
                      batch_size=40, strategy="margin")
    first = _round(engine_storage, seeded.project_id)
    _last_round_took(engine_storage, first, 60.0)
    label_rows(engine_storage, seeded, list(range(30)), [str(int(target[r])) for r in range(30)])
    second = _round(engine_storage, seeded.project_id)
    with engine_storage.read_sessions() as session:
        rnd = get_round(session, seeded.project_id, second)
        plan = (rnd.metrics or {})["pace"]
        assert (plan["batch_size"], plan["retrain_after"]) == (40, 7)
        assert "batch 40 (set)" in plan["reason"]


def test_strategy_auto_starts_representative_and_logs_the_choice(engine_storage: Storage,
                                                                 digits: Arrays) -> None:
    _, target = digits
    seeded = _project(engine_storage, digits, strategy="auto", batch_size=20)
    _round(engine_storage, seeded.project_id)  # cold start
    rows = list(range(0, 20)) + list(range(N - HOLDOUT, N))  # 20 < 3 a class for 10
    label_rows(engine_storage, seeded, rows, [str(int(target[r])) for r in rows])
    second = _round(engine_storage, seeded.project_id)
    third = _round(engine_storage, seeded.project_id)
    with engine_storage.read_sessions() as session:
        rnd = get_round(session, seeded.project_id, second)
        schedule = (rnd.metrics or {})["schedule"]
        assert schedule["strategy"] == EARLY_STRATEGY
        assert schedule["switched"] is True
        assert "immature" in schedule["reason"]
        later = (get_round(session, seeded.project_id, third).metrics or {})["schedule"]
        assert later["switched"] is False
        log = [d for d in list_decisions(session, seeded.project_id) if d.topic == "strategy"]
        assert len(log) == 1
        assert log[0].from_round == rnd.number
        assert EARLY_STRATEGY in log[0].text
        assert log[0].author_id is None
        strategies = set(session.execute(select(Round.strategy).where(
            Round.project_id == seeded.project_id)).scalars())
        assert strategies == {"auto"}
