"""Rounds of a span project: an entity-cue cold start, then a CRF trained on the voted spans,
measured on the holdout (entity F1), the pool tagged and the next batch picked by the
project's span strategy; the model's spans come back as suggestions with the tasks."""

from __future__ import annotations

import pickle
from typing import Any

import numpy as np
import pytest

from activelabel.labeling.payoff import payoff
from activelabel.labeling.review import review_queue
from activelabel.labeling.rounds import request_rerank
from activelabel.labeling.span_rounds import SPAN_PREDICTIONS, span_truth
from activelabel.labeling.tasks import lease_tasks
from activelabel.runtime.settings import Storage
from activelabel.sequence import CrfTagger
from activelabel.store import (
    InvalidInput,
    activate_model_version,
    add_items,
    add_member,
    annotate,
    create_user,
    get_project,
    get_round,
    item_ids_for_rows,
    list_models,
    next_tasks,
    round_selections,
)
from tests.support.projects import new_project, request_and_run_round, run_job

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
    with engine_storage.read_sessions() as session:  # the round's record (it read "auto")
        assert get_round(session, pid, trained["round_id"]).strategy == "diverse_token_entropy"
    assert trained["model_version"] == 1
    metrics = trained["metrics"]
    assert "stop_set_kappa" not in metrics  # the first model: nothing before it to compare
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


def test_span_payoff_is_entity_f1_on_audit_draws(engine_storage: Storage) -> None:
    """A span project's audit labels measure its model (entity F1 over the audit sentences,
    with a bootstrap interval) and trace random sampling's curve; they never train it."""
    rows, truth = _rows(300, 20)
    seeded = new_project(engine_storage, labels=TYPES, task="spans", rows=rows,
                         settings={"batch_size": 20, "audit_share": 0.5,
                                   "target_accuracy": 0.9})
    pid, owner = seeded.project_id, seeded.owner_id
    _label(engine_storage, pid, owner, list(range(280, 300)), truth)  # the holdout
    request_and_run_round(engine_storage, pid)  # the cold start
    with engine_storage.sessions() as session, session.begin():
        tasks = next_tasks(session, pid, owner, 120, audit_share=0.5)
        audit = [t.item for t in tasks if t.ranked_by == "audit"]
        assert len(audit) >= 40  # Binomial(120, 0.5)
        for t in tasks:
            annotate(session, pid, owner, t.item.id, truth[t.item.row])
        # an annotator who says "no entity" where there are two (the model finds them)
        wrong = next(item for item in audit if truth[item.row])
        annotate(session, pid, owner, wrong.id, [])
    trained = request_and_run_round(engine_storage, pid)
    assert trained["metrics"]["n_train"] == 120 - len(audit)
    curve = trained["metrics"]["random_curve"]
    assert [m for m, _ in curve][:2] == [10, 20]
    assert all(0.0 <= a <= 1.0 for _, a in curve)
    with engine_storage.read_sessions() as session:
        found = payoff(session, engine_storage.arrays, get_project(session, pid))
    assert found["measure"] == "entity_f1"
    assert found["interval"] == "bootstrap"
    assert found["audit_labels"] == found["audit_draws"] == len(audit)
    assert found["random_curve"] == curve
    # the toy pattern is learned: every audit entity is found, and the two the mislabeled
    # sentence left out count as false positives
    entities = sum(len(truth[item.row]) for item in audit) - 2
    assert found["accuracy"] == pytest.approx(2 * entities / (2 * entities + 2))
    assert found["low"] <= found["accuracy"] <= found["high"] <= 1.0
    # the target names the task's score: entity F1, on the holdout and in the payoff
    assert found["to_target"] == pytest.approx(0.9 - found["accuracy"], abs=1e-6)
    assert found["target_accuracy"] == 0.9
    (rule,) = [v for v in trained["metrics"]["stopping"] if v["rule"] == "target_accuracy"]
    f1 = trained["metrics"]["entity_f1"]
    assert rule["reason"].startswith(f"holdout entity_f1 {f1:.3f}")
    assert found["audit_entities"] == entities  # the answers' entities (the people's)
    assert found["note"] is None


def test_span_payoff_waits_for_enough_entities(engine_storage: Storage) -> None:
    """Six audit sentences naming two entities each: a bootstrap of twelve entities would look
    surer than it is, so there is no F1 yet, and the note says what it waits for."""
    rows, truth = _rows(200, 0)
    seeded = new_project(engine_storage, labels=TYPES, task="spans", rows=rows,
                         settings={"batch_size": 20, "audit_share": 0.5})
    pid, owner = seeded.project_id, seeded.owner_id
    _label(engine_storage, pid, owner, list(range(0, 40)), truth)
    request_and_run_round(engine_storage, pid)  # a model
    with engine_storage.sessions() as session, session.begin():
        audit = [t.item for t in next_tasks(session, pid, owner, 150, audit_share=0.5)
                 if t.ranked_by == "audit"]
        named = [item for item in audit if truth[item.row]][:7]
        assert len(named) == 7
        for item in named:
            annotate(session, pid, owner, item.id, truth[item.row])
        # a second annotator sees no entity in the last one: each of its spans has half of
        # the votes, a tie, left out as a classifier's ties are
        other = create_user(session, "second")
        add_member(session, pid, other.id, "annotator")
        annotate(session, pid, other.id, named[-1].id, [])
    with engine_storage.read_sessions() as session:
        found = payoff(session, engine_storage.arrays, get_project(session, pid))
    assert found["audit_labels"] == 6
    assert found["audit_entities"] == 12
    assert found["accuracy"] is None
    assert found["note"] == (
        "6 audit sentences labeled, holding 12 entities: entity F1 is measured from 20")


def test_payoff_notes_say_why_there_is_no_score() -> None:
    from activelabel.labeling.payoff import ACCURACY, ENTITY_F1, _note

    assert _note(ACCURACY, 0.05, 0, None, True, 4) == (
        "4 audit labels on items the active model has not scored yet: the next round "
        "measures them")
    assert _note(ACCURACY, 0.0, 0, None, False) == (
        "audit draws are off (audit_share 0): nothing measures the model")
    assert "trained on another label set" in _note(ACCURACY, 0.05, 9, None, True, 9)
    assert "predictions are not stored" in _note(ENTITY_F1, 0.05, 30, 40, True, 30)


def test_stable_predictions_compare_the_two_span_models_tags() -> None:
    """Two span models are compared by the BIO tags they give the stop set's tokens, not by
    how sure each is of its tagging: the same confidence with other spans is not stable."""
    from activelabel.labeling.span_rounds import _stop_kappa

    offsets = [[(0, 3), (4, 9), (10, 12), (13, 18)], [(0, 4), (5, 7)], [(0, 2)]]
    rows = np.arange(3, dtype=np.intp)
    # row, start, end, type index, confidence
    old = np.array([[0, 0, 3, 0, 0.9], [0, 13, 18, 1, 0.9], [1, 0, 4, 0, 0.8]])
    same = old.copy()
    moved = np.array([[0, 0, 9, 0, 0.9], [0, 13, 18, 0, 0.9], [1, 0, 4, 0, 0.8]])
    assert _stop_kappa(old, same, offsets, rows) == 1.0
    kappa = _stop_kappa(old, moved, offsets, rows)
    assert kappa is not None
    assert kappa < 0.7  # two of the seven tokens tagged otherwise, one span typed otherwise
    assert _stop_kappa(None, moved, offsets, rows) is None  # no model before


def test_the_span_stop_set_is_what_the_model_before_tagged(engine_storage: Storage) -> None:
    """Items imported since the last round were never tagged by the model before: they are
    not in the stop set (else a model identical to the one before reads as unstable), and the
    recorded kappa is the two models' tags compared on the rest."""
    from activelabel.labeling.span_rounds import _stop_kappa
    from activelabel.spans import item_tokens

    rows, truth = _rows(160, 20)
    seeded = new_project(engine_storage, labels=TYPES, task="spans", rows=rows[:100],
                         settings={"batch_size": 10, "audit_share": 0.0})
    pid = seeded.project_id
    _label(engine_storage, pid, seeded.owner_id, list(range(0, 30)), truth)
    assert request_and_run_round(engine_storage, pid)["model_version"] == 1
    with engine_storage.sessions() as session, session.begin():
        add_items(session, pid, [{**r, "split": "pool"} for r in rows[100:140]])
    same = request_and_run_round(engine_storage, pid)  # the same labels: the same CRF
    assert same["metrics"]["stop_set_kappa"] == 1.0
    v2 = engine_storage.arrays.load(pid, SPAN_PREDICTIONS, mmap=False)
    assert v2 is not None
    assert set(v2[:, 0].astype(int)) & set(range(100, 140))  # it tagged the new items too
    _label(engine_storage, pid, seeded.owner_id, list(range(30, 50)), truth)
    moved = request_and_run_round(engine_storage, pid)
    v3 = engine_storage.arrays.load(pid, SPAN_PREDICTIONS, mmap=False)
    offsets = [item_tokens(r["data"])[1] for r in rows[:140]]
    expected = _stop_kappa(v2, v3, offsets, np.arange(140, dtype=np.intp))
    assert moved["metrics"]["stop_set_kappa"] == pytest.approx(expected)


def test_training_spans_are_voted_and_gold_overrides() -> None:
    a = {"start": 0, "end": 4, "label": "person"}
    b = {"start": 6, "end": 9, "label": "location"}
    labels = {0: [[a, b], [a], [a, b]], 1: [[a], [b]], 2: [[]]}
    assert span_truth(labels, {}) == {0: [a, b], 1: [], 2: []}
    assert span_truth(labels, {1: [b]}) == {0: [a, b], 1: [b], 2: []}


def test_rerank_with_a_stored_span_model_trains_nothing(engine_storage: Storage,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """Rolling back to an older span model re-tags the pool with its stored CRF: no training,
    no new version, its spans are the suggestions again and its batch the head of the queue."""
    rows, truth = _rows(120, 30)
    seeded = new_project(engine_storage, labels=TYPES, task="spans", rows=rows,
                         settings={"batch_size": 15, "audit_share": 0.0})
    pid = seeded.project_id
    _label(engine_storage, pid, seeded.owner_id, list(range(0, 20)) + list(range(90, 120)),
           truth)
    first = request_and_run_round(engine_storage, pid)
    assert first["model_version"] == 1
    v1_spans = engine_storage.arrays.load(pid, SPAN_PREDICTIONS, mmap=False)
    _label(engine_storage, pid, seeded.owner_id, list(range(20, 26)), truth)
    second = request_and_run_round(engine_storage, pid)
    assert second["model_version"] == 2
    assert -1.0 <= second["metrics"]["stop_set_kappa"] <= 1.0  # its tags against v1's
    with engine_storage.sessions() as session, session.begin():
        v1_id = activate_model_version(session, pid, 1).id
        rnd, _ = request_rerank(session, pid, 1, requested_by=seeded.owner_id)
        job_id = rnd.job_id
    assert job_id is not None

    def no_training(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("a re-ranking round trained a model")

    monkeypatch.setattr(CrfTagger, "fit", no_training)
    result = run_job(engine_storage, job_id)
    assert result["model_version"] == 1
    # a re-ranking round has no new model: stable predictions has nothing to compare
    assert "stop_set_kappa" not in result["metrics"]
    assert "train" not in [p.get("stage") for p in result["_progress"]]
    assert result["metrics"]["entity_f1"] == first["metrics"]["entity_f1"]
    np.testing.assert_array_equal(
        engine_storage.arrays.load(pid, SPAN_PREDICTIONS, mmap=False), v1_spans)
    with engine_storage.read_sessions() as session:
        assert [m.version for m in list_models(session, pid)] == [1, 2]
        sels = round_selections(session, result["round_id"])
        assert len(sels) == 15
        assert {s.model_version_id for s in sels} == {v1_id}


def test_rerank_refuses_a_version_that_holds_no_span_model(engine_storage: Storage) -> None:
    rows, truth = _rows(60, 10)
    seeded = new_project(engine_storage, labels=TYPES, task="spans", rows=rows,
                         settings={"batch_size": 10, "audit_share": 0.0})
    pid = seeded.project_id
    _label(engine_storage, pid, seeded.owner_id, list(range(0, 20)) + list(range(50, 60)),
           truth)
    request_and_run_round(engine_storage, pid)
    with engine_storage.read_sessions() as session:
        path = list_models(session, pid)[0].artifact_path
    assert path is not None
    with open(path, "wb") as fh:
        pickle.dump({"model": "not a tagger", "task": "spans"}, fh)
    with engine_storage.sessions() as session, session.begin():
        rnd, _ = request_rerank(session, pid, 1, requested_by=None)
        job_id = rnd.job_id
    assert job_id is not None
    with pytest.raises(InvalidInput, match="holds no span model"):
        run_job(engine_storage, job_id)


def test_review_filter_by_label_matches_the_models_spans_on_model_reasons(
        engine_storage: Storage) -> None:
    """A holdout sentence labeled with its person only: the model is sure of the place too,
    so "model disagrees" lists it, and a filter on "location" keeps that entry although no
    annotator gave a place (the model's span carries the type)."""
    rows, truth = _rows(120, 30)
    seeded = new_project(engine_storage, labels=TYPES, task="spans", rows=rows,
                         settings={"batch_size": 10, "audit_share": 0.0})
    pid = seeded.project_id
    _label(engine_storage, pid, seeded.owner_id, list(range(0, 40)) + list(range(90, 118)),
           truth)
    target = 118  # even: names a person and a place
    assert len(truth[target]) == 2
    with engine_storage.sessions() as session, session.begin():
        [item_id] = item_ids_for_rows(session, pid, [target])
        annotate(session, pid, seeded.owner_id, item_id, truth[target][:1])
    request_and_run_round(engine_storage, pid)
    with engine_storage.sessions() as session:
        project = get_project(session, pid)
        model, _ = review_queue(session, engine_storage, project, reason="model_disagrees")
        assert item_id in [e.item_id for e in model]
        by_type = {label: [(e.item_id, e.reason.value) for e in review_queue(
            session, engine_storage, project, label=label, limit=500)[0]]
            for label in TYPES}
    assert (item_id, "model_disagrees") in by_type["location"]
    assert (item_id, "model_disagrees") in by_type["person"]  # the annotator's person span
    entry = next(e for e in model if e.item_id == item_id)
    assert entry.model_labels == ["location"]
    place = next(s for s in truth[target] if s["label"] == "location")
    words = rows[target]["data"]["text"][place["start"]:place["end"]]
    assert f"e.g. '{words}' location (" in entry.detail  # in words, not offsets
