"""Rounds of a span project: an entity-cue cold start, then a CRF trained on the voted spans,
measured on the holdout (entity F1), the pool tagged and the next batch picked by the
project's span strategy; the model's spans come back as suggestions with the tasks."""

from __future__ import annotations

from typing import Any

import numpy as np

from activelabel.labeling.span_rounds import SPAN_PREDICTIONS, span_truth
from activelabel.labeling.tasks import lease_tasks
from activelabel.runtime.settings import Storage
from activelabel.store import annotate, get_project, item_ids_for_rows, round_selections
from tests.support.projects import new_project, request_and_run_round

TYPES = ["person", "location"]
PEOPLE = ["Anna", "Boris", "Chen", "Dara", "Emil", "Farah"]
PLACES = ["Paris", "Lagos", "Quito", "Oslo", "Hanoi", "Perth"]
FILLER = ["went", "to", "see", "the", "old", "market", "today", "with", "friends", "again"]


def sentence(i: int) -> tuple[str, list[dict[str, Any]]]:
    """Half the sentences name a person and a place, the others none."""
    rng = np.random.default_rng(i)
    words = [str(w) for w in rng.choice(FILLER, size=5)]
    if i % 2:
        return " ".join(words) + " .", []
    person, place = PEOPLE[i % 6], PLACES[(i // 2) % 6]
    text = f"i met {person} in {place} " + " ".join(words)
    start = len("i met ")
    at = text.index(f" in {place}") + 4
    return text, [{"start": start, "end": start + len(person), "label": "person"},
                  {"start": at, "end": at + len(place), "label": "location"}]


def _rows(n: int, holdout: int) -> tuple[list[dict[str, Any]], list[list[dict[str, Any]]]]:
    rows, truth = [], []
    for i in range(n):
        text, spans = sentence(i)
        rows.append({"external_id": f"s{i}", "data": {"text": text},
                     "split": "holdout" if i >= n - holdout else "pool"})
        truth.append(spans)
    return rows, truth


def _label(storage: Storage, project_id: int, user_id: int, rows: list[int],
           truth: list[list[dict[str, Any]]]) -> None:
    with storage.sessions() as session, session.begin():
        ids = item_ids_for_rows(session, project_id, rows)
        for item_id, row in zip(ids, rows, strict=True):
            annotate(session, project_id, user_id, item_id, truth[row])


def test_span_rounds_cold_start_train_select_and_suggest(engine_storage: Storage) -> None:
    rows, truth = _rows(160, 40)
    seeded = new_project(engine_storage, labels=TYPES, task="spans", rows=rows,
                         settings={"batch_size": 20, "span_strategy": "diverse_token_entropy",
                                   "audit_share": 0.0})
    pid = seeded.project_id
    cold = request_and_run_round(engine_storage, pid)
    assert cold["strategy"] == "entity_cold_start"
    assert cold["model_version"] is None
    with engine_storage.read_sessions() as session:
        picked = [s.item_id for s in round_selections(session, cold["round_id"])]
        row_of = dict(zip(item_ids_for_rows(session, pid, list(range(160))), range(160),
                          strict=True))
    picked_rows = [row_of[i] for i in picked]
    assert len(picked_rows) == 20
    assert all(r < 120 for r in picked_rows)  # pool only
    # sentences that name someone carry entity cues: the cold start prefers them
    assert sum(bool(truth[r]) for r in picked_rows) >= 15
    _label(engine_storage, pid, seeded.owner_id, picked_rows + list(range(120, 160)), truth)
    trained = request_and_run_round(engine_storage, pid)
    assert trained["strategy"] == "diverse_token_entropy"
    assert trained["model_version"] == 1
    metrics = trained["metrics"]
    assert metrics["n_holdout"] == 40
    assert metrics["entity_f1"] > 0.8  # the toy pattern is easy
    assert metrics["n_train"] == 20
    with engine_storage.read_sessions() as session:
        second = [row_of[s.item_id] for s in round_selections(session, trained["round_id"])]
    assert len(second) == 20
    assert not set(second) & set(picked_rows)
    assert all(r < 120 for r in second)
    predictions = engine_storage.arrays.load(pid, SPAN_PREDICTIONS, mmap=False)
    assert predictions is not None
    assert predictions.shape[1] == 5
    with engine_storage.sessions() as session, session.begin():
        project = get_project(session, pid)
        tasks = lease_tasks(session, engine_storage.arrays, project, "owner",
                            seeded.owner_id, 5)
    named = [t for t in tasks if t.suggestion is not None and t.suggestion.label]
    assert named, "the model's spans come with the tasks"
    # named by the round that trained the model, as every suggestion is (the cold start was
    # round 1, this one round 2)
    assert {t.suggestion.model_round for t in named if t.suggestion is not None} == {2}
    for task in named:
        assert task.suggestion is not None
        text = task.data["text"]
        for span in task.suggestion.label:
            assert text[span["start"]:span["end"]] in PEOPLE + PLACES
            assert span["label"] in TYPES
            assert 0 < span["confidence"] <= 1


def test_training_spans_are_voted_and_gold_overrides() -> None:
    a = {"start": 0, "end": 4, "label": "person"}
    b = {"start": 6, "end": 9, "label": "location"}
    labels = {0: [[a, b], [a], [a, b]], 1: [[a], [b]], 2: [[]]}
    assert span_truth(labels, {}) == {0: [a, b], 1: [], 2: []}
    assert span_truth(labels, {1: [b]}) == {0: [a, b], 1: [b], 2: []}
