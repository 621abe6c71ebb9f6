"""Rounds: cold start, training + evaluation + selection, rerank, auto-requests, features cache."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sqlalchemy import select

from activelabel.labeling.consensus import item_majority as consensus
from activelabel.labeling.featurize import ensure_features
from activelabel.labeling.rounds import after_annotation, request_rerank, request_round
from activelabel.runtime.settings import Storage
from activelabel.store import (
    activate_model_version,
    add_items,
    get_round,
    list_audit,
    list_models,
    next_tasks,
    round_selections,
)
from activelabel.store.models import Item, Job, ModelVersion
from tests.support.projects import digit_rows, label_rows, new_project, run_job, text_rows

Arrays = tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]]
N, HOLDOUT, BATCH = 300, 60, 20


def _round(storage: Storage, project_id: int, reason: str = "manual") -> int:
    with storage.sessions() as session, session.begin():
        rnd, created = request_round(session, project_id, requested_by=None, reason=reason)
        assert created
        job_id = rnd.job_id
        assert job_id is not None
    result = run_job(storage, job_id)
    return int(result["round_id"])


def _selected_rows(storage: Storage, project_id: int, round_id: int) -> list[int]:
    with storage.read_sessions() as session:
        sels = round_selections(session, round_id)
        rows = {i.id: i.row for i in session.execute(
            select(Item).where(Item.project_id == project_id)).scalars()}
        return [rows[s.item_id] for s in sels]


def _digits_project(storage: Storage, digits: Arrays, **settings: Any) -> Any:
    images, _ = digits
    return new_project(storage, rows=digit_rows(images, N, HOLDOUT), settings={
        "featurizer": "image", "featurizer_params": {"field": "image"}, "batch_size": BATCH,
        "strategy": "margin", **settings})


def test_cold_start_picks_a_diverse_seed_from_the_pool(engine_storage: Storage,
                                                       digits: Arrays) -> None:
    seeded = _digits_project(engine_storage, digits)
    round_id = _round(engine_storage, seeded.project_id, "cold_start")
    rows = _selected_rows(engine_storage, seeded.project_id, round_id)
    assert len(rows) == BATCH
    assert len(set(rows)) == BATCH
    assert sorted(rows) != list(range(BATCH))  # not the first rows
    assert all(r < N - HOLDOUT for r in rows)  # pool only, never holdout
    _, target = digits
    assert len({int(target[r]) for r in rows}) >= 7  # covers most digits without labels
    with engine_storage.read_sessions() as session:
        rnd = get_round(session, seeded.project_id, round_id)
        assert rnd.status == "done"
        assert rnd.model_version_id is None
        assert {s.strategy for s in round_selections(session, round_id)} == {"cold_start"}
        assert set(rnd.timings or {}) >= {"featurize_s", "train_s", "score_s", "select_s",
                                          "total_s"}
    with engine_storage.sessions() as session, session.begin():
        tasks = next_tasks(session, seeded.project_id, seeded.owner_id, BATCH)
        assert [t.item.row for t in tasks] == rows  # the queue serves the seed in rank order
        assert tasks[0].selection is not None


def test_round_trains_evaluates_on_holdout_and_ranks_the_queue(engine_storage: Storage,
                                                               digits: Arrays) -> None:
    _, target = digits
    seeded = _digits_project(engine_storage, digits, target_accuracy=0.5, label_budget=BATCH)
    seed = _round(engine_storage, seeded.project_id, "cold_start")
    seed_rows = _selected_rows(engine_storage, seeded.project_id, seed)
    holdout = list(range(N - HOLDOUT, N))
    label_rows(engine_storage, seeded, seed_rows + holdout,
               [str(int(target[r])) for r in seed_rows + holdout])
    round_id = _round(engine_storage, seeded.project_id)
    rows = _selected_rows(engine_storage, seeded.project_id, round_id)
    assert len(rows) == BATCH
    assert not set(rows) & set(seed_rows)
    assert all(r < N - HOLDOUT for r in rows)
    with engine_storage.read_sessions() as session:
        rnd = get_round(session, seeded.project_id, round_id)
        assert rnd.status == "done", rnd.error
        metrics = rnd.metrics or {}
        assert metrics["n_holdout"] == HOLDOUT
        assert metrics["n_train"] == BATCH
        assert 0.4 < metrics["accuracy"] <= 1.0
        assert metrics["macro_f1"] is not None
        assert rnd.n_labels_used == BATCH  # holdout labels are not labels spent
        fired = {d["rule"] for d in metrics["stopping"] if d["stop"]}
        assert fired == {"budget", "target_accuracy"}
        assert metrics["stop"] is True
        [stable] = [d for d in metrics["stopping"] if d["rule"] == "stabilizing_predictions"]
        assert stable["reason"].endswith("to compare, have 1")  # the first model
        model = session.get(ModelVersion, rnd.model_version_id)
        assert model is not None
        assert model.is_active
        assert model.version == 1
        assert model.n_train == BATCH
        assert Path(str(model.artifact_path)).exists()
        sels = round_selections(session, round_id)
        assert {s.strategy for s in sels} == {"margin"}
        assert all(s.model_version_id == model.id and s.score is not None for s in sels)
        assert [s.score for s in sels] == sorted((s.score for s in sels), reverse=True)
    probs = engine_storage.arrays.load(seeded.project_id, "probs")
    assert probs is not None
    assert probs.shape == (N, 10)
    assert probs.dtype == np.float32
    with engine_storage.sessions() as session, session.begin():
        tasks = next_tasks(session, seeded.project_id, seeded.owner_id, 5)
        assert [t.item.row for t in tasks] == rows[:5]
        assert tasks[0].selection is not None
        assert tasks[0].selection.round_id == round_id
    # the next round reports its gain over this one
    label_rows(engine_storage, seeded, rows, [str(int(target[r])) for r in rows])
    third = _round(engine_storage, seeded.project_id)
    with engine_storage.read_sessions() as session:
        gain = get_round(session, seeded.project_id, third).gain or {}
        assert set(gain) >= {"accuracy", "macro_f1", "per_100_labels"}
        assert gain["labels_added"] == BATCH


def test_rerank_after_rollback_scores_with_the_older_model(engine_storage: Storage,
                                                           digits: Arrays) -> None:
    _, target = digits
    seeded = _digits_project(engine_storage, digits)
    label_rows(engine_storage, seeded, list(range(0, 200, 10)),
               [str(int(target[r])) for r in range(0, 200, 10)])
    first = _round(engine_storage, seeded.project_id)
    label_rows(engine_storage, seeded, _selected_rows(engine_storage, seeded.project_id, first),
               [str(int(target[r])) for r in _selected_rows(
                   engine_storage, seeded.project_id, first)])
    _round(engine_storage, seeded.project_id)
    with engine_storage.sessions() as session, session.begin():
        assert [m.version for m in list_models(session, seeded.project_id)] == [1, 2]
        v1 = activate_model_version(session, seeded.project_id, 1)
        v1_id = v1.id
        rnd, created = request_rerank(session, seeded.project_id, 1, requested_by=seeded.owner_id)
        again, created_again = request_rerank(session, seeded.project_id, 1, requested_by=None)
        assert created
        assert not created_again
        assert again.id == rnd.id
        job_id = rnd.job_id
    assert job_id is not None
    result = run_job(engine_storage, job_id)
    assert result["model_version"] == 1
    with engine_storage.read_sessions() as session:
        done = get_round(session, seeded.project_id, result["round_id"])
        assert done.status == "done"
        assert done.model_version_id == v1_id
        assert len(list_models(session, seeded.project_id)) == 2  # no training, no new version
        sels = round_selections(session, done.id)
        assert len(sels) == BATCH
        assert {s.model_version_id for s in sels} == {v1_id}
        job = session.get(Job, job_id)
        assert job is not None
        assert job.payload["reason"] == "rollback"
        assert list_audit(session, project_id=seeded.project_id, entity="round")


def test_round_is_requested_after_retrain_every_labels_and_not_twice(
        engine_storage: Storage, digits: Arrays) -> None:
    _, target = digits
    seeded = _digits_project(engine_storage, digits, retrain_every_labels=5)
    label_rows(engine_storage, seeded, [0, 1, 2, 3], [str(int(target[r])) for r in range(4)])
    with engine_storage.sessions() as session, session.begin():
        assert after_annotation(session, seeded.project_id) is None
    label_rows(engine_storage, seeded, [4], [str(int(target[4]))])
    with engine_storage.sessions() as session, session.begin():
        rnd = after_annotation(session, seeded.project_id)
        assert rnd is not None
        assert rnd.status == "queued"
        round_id, job_id = rnd.id, rnd.job_id
    label_rows(engine_storage, seeded, list(range(5, 12)),
               [str(int(target[r])) for r in range(5, 12)])
    with engine_storage.sessions() as session, session.begin():
        assert after_annotation(session, seeded.project_id) is None  # one is queued already
        same, created = request_round(session, seeded.project_id, requested_by=None,
                                      reason="manual")
        assert same.id == round_id
        assert not created
        jobs = session.execute(select(Job).where(Job.project_id == seeded.project_id)).scalars()
        assert [j.id for j in jobs] == [job_id]
        assert session.get(Job, job_id).payload == {  # type: ignore[union-attr]
            "round_id": round_id, "reason": "retrain_every_labels"}
    assert job_id is not None
    run_job(engine_storage, job_id)
    with engine_storage.sessions() as session, session.begin():
        assert after_annotation(session, seeded.project_id) is None  # 12 labels used, 0 new


def test_features_are_rebuilt_when_missing_or_stale(engine_storage: Storage) -> None:
    seeded = new_project(engine_storage, labels=["a", "b"], rows=text_rows(40),
                         settings={"featurizer": "text", "featurizer_params": {
                             "n_components": 8, "sentence_weight": None}})
    first = ensure_features(engine_storage, seeded.project_id)
    assert first.rebuilt
    assert first.X.shape[0] == 40
    assert first.embeddings.shape == (40, 8)
    assert not ensure_features(engine_storage, seeded.project_id).rebuilt
    engine_storage.arrays.delete(seeded.project_id, "embeddings")
    again = ensure_features(engine_storage, seeded.project_id)
    assert again.rebuilt
    np.testing.assert_allclose(again.embeddings, first.embeddings, atol=1e-5)
    with engine_storage.sessions() as session, session.begin():
        add_items(session, seeded.project_id, text_rows(5, start=40))
    grown = ensure_features(engine_storage, seeded.project_id)
    assert grown.rebuilt
    assert grown.X.shape[0] == 45


def test_text_and_multilabel_rounds(engine_storage: Storage) -> None:
    seeded = new_project(engine_storage, labels=["greek", "end", "other"], task="multilabel",
                         rows=text_rows(80), settings={"batch_size": 6, "strategy": "entropy"})
    label_rows(engine_storage, seeded, list(range(12)),
               [["greek", "end"] if r % 6 == 4 else ["greek"] for r in range(12)])
    round_id = _round(engine_storage, seeded.project_id)
    rows = _selected_rows(engine_storage, seeded.project_id, round_id)
    assert len(rows) == 6
    assert not set(rows) & set(range(12))
    probs = engine_storage.arrays.load(seeded.project_id, "probs")
    assert probs is not None
    assert probs.shape == (80, 3)


def test_consensus_is_the_majority_and_skips_ties() -> None:
    assert consensus([["a"], ["b"], ["a"]], multilabel=False) == "a"
    assert consensus([["a"], ["b"]], multilabel=False) is None
    assert consensus([["x", "y"], ["x"], ["x", "z"]], multilabel=True) == ["x"]
    assert consensus([], multilabel=False) is None


def test_request_round_for_a_missing_project_is_not_found(engine_storage: Storage) -> None:
    from activelabel.store import NotFound

    with engine_storage.sessions() as session, session.begin(), pytest.raises(NotFound):
        request_round(session, 999_999, requested_by=None, reason="manual")


def test_class_weights_raise_the_weighted_label_in_the_batch(engine_storage: Storage,
                                                             digits: Arrays) -> None:
    _, target = digits
    picked: dict[str, int] = {}
    for name, weights in (("plain", {}), ("weighted", {"3": 100.0})):
        seeded = _digits_project(engine_storage, digits, class_weights=weights)
        seed = _round(engine_storage, seeded.project_id, "cold_start")
        seed_rows = _selected_rows(engine_storage, seeded.project_id, seed)
        label_rows(engine_storage, seeded, seed_rows, [str(int(target[r])) for r in seed_rows])
        rows = _selected_rows(engine_storage, seeded.project_id, _round(engine_storage,
                                                                        seeded.project_id))
        picked[name] = sum(int(target[r]) == 3 for r in rows)
    assert picked["weighted"] >= picked["plain"] + 3, picked


def test_a_round_learns_pseudo_labels_from_unlabeled_pool_items_and_stores_none(
        engine_storage: Storage, digits: Arrays, monkeypatch: pytest.MonkeyPatch,
        handed_pool: list[np.ndarray[Any, Any]]) -> None:
    """Self-training: the round's model also learns the pool items it is surest of, with
    their predicted class; only unlabeled pool items (never holdout), none stored as a label,
    and the training-label count unchanged. ``pseudo_labels`` 0 turns it off."""
    from activelabel.labeling import rounds
    from activelabel.store.models import Annotation

    _, target = digits
    handed = handed_pool
    curve_pool: list[Any] = []  # what the payoff's random-sampling curve trains with
    curve = rounds.audit_curve

    def curve_spy(*args: Any, unlabeled: Any = None) -> Any:
        curve_pool.append(None if unlabeled is None else unlabeled.shape[0])
        return curve(*args, unlabeled=unlabeled)

    monkeypatch.setattr(rounds, "audit_curve", curve_spy)
    found: dict[str, Any] = {}
    for name, settings in (("default", {}), ("off", {"pseudo_labels": 0})):
        handed.clear()
        curve_pool.clear()
        seeded = _digits_project(engine_storage, digits, **settings)
        seed = _round(engine_storage, seeded.project_id, "cold_start")
        seed_rows = _selected_rows(engine_storage, seeded.project_id, seed)
        holdout = list(range(N - HOLDOUT, N))
        label_rows(engine_storage, seeded, seed_rows + holdout,
                   [str(int(target[r])) for r in seed_rows + holdout])
        with engine_storage.read_sessions() as session:
            before = len(session.execute(select(Annotation.id)).all())
        round_id = _round(engine_storage, seeded.project_id)
        with engine_storage.read_sessions() as session:
            rnd = get_round(session, seeded.project_id, round_id)
            assert rnd.status == "done", rnd.error
            assert len(session.execute(select(Annotation.id)).all()) == before
            found[name] = dict(rnd.metrics or {})
            item_of = {i.row: i.id for i in session.execute(
                select(Item).where(Item.project_id == seeded.project_id)).scalars()}
            trained = session.execute(select(ModelVersion.training_set_hash).where(
                ModelVersion.project_id == seeded.project_id)).scalar_one()
        # the hash names what the fit learned from: the labels, and the pool it was handed
        digest = hashlib.sha256()
        for r in sorted(seed_rows):
            digest.update(f"{item_of[r]}:{str(int(target[r]))!r};".encode())
        if name == "default":
            digest.update(b"unlabeled:")
            digest.update(np.asarray([item_of[r] for r in handed[0]], dtype="<i8").tobytes())
        assert trained == digest.hexdigest()
        found[name]["present"] = len({int(target[r]) for r in seed_rows})
        assert found[name]["n_train"] == BATCH
        if name == "default":
            assert len(handed) == 1
            assert set(handed[0].tolist()) == set(range(N - HOLDOUT)) - set(seed_rows)
            assert curve_pool == [len(handed[0])]  # like for like with the round's model
        else:
            assert handed == []
            assert curve_pool == [None]
    # ceil(20 labels / 10 classes) = 2 for each class the labels hold
    assert found["default"]["pseudo_labels"] == found["default"]["present"] * 2
    assert found["off"]["pseudo_labels"] == 0


def test_a_rounds_self_training_fades_with_its_training_labels_and_stops_past_600(
        engine_storage: Storage, digits: Arrays) -> None:
    """Past 300 training labels a round keeps only the surest share of its pseudo-labels
    (fading to none at 600), counted on the training labels alone: the holdout's labels do
    not move the fade."""
    from activelabel.models import PSEUDO_NONE_FROM

    _, target = digits
    n, holdout = 1000, 60
    images, _ = digits
    found: dict[int, dict[str, Any]] = {}
    for n_train in (450, PSEUDO_NONE_FROM + 50):
        seeded = new_project(engine_storage, rows=digit_rows(images, n, holdout), settings={
            "featurizer": "image", "featurizer_params": {"field": "image"},
            "batch_size": BATCH, "strategy": "margin"})
        rows = list(range(n_train)) + list(range(n - holdout, n))
        label_rows(engine_storage, seeded, rows, [str(int(target[r])) for r in rows])
        round_id = _round(engine_storage, seeded.project_id)
        with engine_storage.read_sessions() as session:
            rnd = get_round(session, seeded.project_id, round_id)
            assert rnd.status == "done", rnd.error
            found[n_train] = dict(rnd.metrics or {})
        assert found[n_train]["n_train"] == n_train
    # 450 labels: fade (600 - 450) / 300 = 0.5 of at most 45 a class (a few classes have
    # fewer than 45 predicted among the 490 unlabeled items); with the holdout's 60 labels
    # counted the fade would be 0.3, at most ceil(0.3 * 510) = 153 pseudo-labels
    assert 153 < found[450]["pseudo_labels"] <= 225, found[450]
    assert found[PSEUDO_NONE_FROM + 50]["pseudo_labels"] == 0


def test_a_multilabel_rerank_keeps_the_target_verdict_on_label_f1(engine_storage: Storage
                                                                    ) -> None:
    """The target names a multi-label project's holdout label F1: a training round reads it,
    and a re-ranking round of that model (a rollback) reads the same, as the model holds it
    (it was read as missing: the re-rank kept accuracy, macro-F1 and ECE only)."""
    groups = {"alpha": "a", "beta": "a", "gamma": "g", "delta": "g", "omega": "o", "sigma": "o"}
    rows = text_rows(120)
    for i, row in enumerate(rows):
        row["split"] = "holdout" if i >= 80 else "pool"
    seeded = new_project(engine_storage, labels=["a", "g", "o"], task="multilabel", rows=rows,
                         settings={"batch_size": 10, "audit_share": 0.0,
                                   "target_accuracy": 0.5})
    answers = [sorted({groups[w] for w in r["data"]["text"].split()[:2]}) for r in rows]
    labeled = list(range(40)) + list(range(80, 120))
    label_rows(engine_storage, seeded, labeled, [answers[r] for r in labeled])
    trained = _round(engine_storage, seeded.project_id)
    with engine_storage.sessions() as session, session.begin():
        first = get_round(session, seeded.project_id, trained)
        f1 = (first.metrics or {})["label_f1"]
        verdict = next(v for v in (first.metrics or {})["stopping"]
                       if v["rule"] == "target_accuracy")
        version = max(m.version for m in list_models(session, seeded.project_id))
        rnd, _ = request_rerank(session, seeded.project_id, version, requested_by=None)
        job_id = rnd.job_id
    assert verdict["reason"].startswith(f"holdout label_f1 {f1:.3f}")
    assert job_id is not None
    again = run_job(engine_storage, job_id)
    with engine_storage.read_sessions() as session:
        metrics = get_round(session, seeded.project_id, again["round_id"]).metrics or {}
    assert metrics["label_f1"] == f1
    assert next(v for v in metrics["stopping"] if v["rule"] == "target_accuracy") == verdict


def test_a_multilabel_rounds_gain_is_its_label_f1s(engine_storage: Storage) -> None:
    """A round's gain is the change of the task's score: a multi-label project's label F1
    (the exact-set accuracy it measured moves where the label F1 does not, and the reverse),
    per 100 labels added."""
    groups = {"alpha": "a", "beta": "a", "gamma": "g", "delta": "g", "omega": "o", "sigma": "o"}
    rows = text_rows(140)
    for i, row in enumerate(rows):
        row["split"] = "holdout" if i >= 100 else "pool"
    seeded = new_project(engine_storage, labels=["a", "g", "o"], task="multilabel", rows=rows,
                         settings={"batch_size": 10, "audit_share": 0.0})
    answers = [sorted({groups[w] for w in r["data"]["text"].split()[:2]}) for r in rows]
    first = list(range(10)) + list(range(100, 140))
    label_rows(engine_storage, seeded, first, [answers[r] for r in first])
    one = _round(engine_storage, seeded.project_id)
    label_rows(engine_storage, seeded, list(range(10, 60)), answers[10:60])
    two = _round(engine_storage, seeded.project_id)
    with engine_storage.read_sessions() as session:
        before = get_round(session, seeded.project_id, one).metrics or {}
        after = get_round(session, seeded.project_id, two)
        gain = after.gain or {}
        metrics = after.metrics or {}
    assert gain["measure"] == "label_f1"
    assert gain["score"] == pytest.approx(metrics["label_f1"] - before["label_f1"])
    assert gain["labels_added"] == 50
    assert gain["per_100_labels"] == pytest.approx(100 * gain["score"] / 50)
    assert gain["accuracy"] == pytest.approx(metrics["accuracy"] - before["accuracy"])
    from activelabel.labeling.operations import project_gauges

    with engine_storage.read_sessions() as session:  # /metrics's gauge names it too
        [gauges] = [g for g in project_gauges(session) if g.project_id == seeded.project_id]
    assert (gauges.holdout_measure, gauges.holdout_score) == ("label_f1", metrics["label_f1"])


@pytest.mark.parametrize(("gain", "task", "expected"), [
    # recorded before the gain named its measure: accuracy, a classifier's score
    ({"accuracy": 0.1, "per_100_labels": 0.5}, "classification",
     {"accuracy": 0.1, "per_100_labels": 0.5, "measure": "accuracy", "score": 0.1}),
    # ... and not a multi-label or span project's: nothing is said of their score
    ({"accuracy": 0.1, "per_100_labels": 0.5}, "multilabel",
     {"accuracy": 0.1, "per_100_labels": None, "measure": "label_f1", "score": None}),
    ({"accuracy": 0.1, "per_100_labels": 0.5}, "spans",
     {"accuracy": 0.1, "per_100_labels": None, "measure": "entity_f1", "score": None}),
    ({"accuracy": 0.1, "measure": "label_f1", "score": 0.2, "per_100_labels": 1.0},
     "multilabel",
     {"accuracy": 0.1, "measure": "label_f1", "score": 0.2, "per_100_labels": 1.0}),
    (None, "spans", None),
])
def test_task_gain_names_the_score_of_older_rounds(gain: dict[str, Any] | None, task: str,
                                                   expected: dict[str, Any] | None) -> None:
    from activelabel.labeling.insights import task_gain

    assert task_gain(gain, task) == expected
