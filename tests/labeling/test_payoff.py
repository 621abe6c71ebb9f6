"""Audit draws: a share of tasks drawn uniformly at random, hidden from annotators, kept out of
training; the payoff estimated from their labels."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from sqlalchemy import select

from activelabel.estimates import curve_bounds, curve_draws, labels_needed
from activelabel.labeling.governance import purge
from activelabel.labeling.payoff import payoff
from activelabel.labeling.rounds import request_rerank, request_round
from activelabel.labeling.tasks import lease_tasks
from activelabel.runtime.settings import Storage
from activelabel.store import (
    add_member,
    annotate,
    create_user,
    get_project,
    get_round,
    next_tasks,
)
from activelabel.store.models import Item
from tests.support.projects import digit_rows, new_project, run_job, text_rows

Arrays = tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]]


def _round(storage: Storage, project_id: int) -> dict[str, Any]:
    with storage.sessions() as session, session.begin():
        rnd, _ = request_round(session, project_id, requested_by=None, reason="manual")
        job_id = rnd.job_id
    assert job_id is not None
    return run_job(storage, job_id)


def _cold_started(storage: Storage, images: Any, n: int, **settings: Any) -> Any:
    """A project of ``n`` digit images (margin, batches of 40) past its cold-start round."""
    seeded = new_project(storage, rows=digit_rows(images, n), settings={
        "featurizer": "image", "featurizer_params": {"field": "image"}, "batch_size": 40,
        "strategy": "margin", **settings})
    _round(storage, seeded.project_id)
    return seeded


def test_a_share_of_tasks_are_uniform_audit_draws_hidden_from_annotators(
        engine_storage: Storage, digits: Arrays) -> None:
    images, _ = digits
    seeded = new_project(engine_storage, rows=digit_rows(images, 400),
                         settings={"audit_share": 0.5})
    pid = seeded.project_id
    with engine_storage.sessions() as session, session.begin():
        tasks = next_tasks(session, pid, seeded.owner_id, 200, audit_share=0.5)
        drawn = [t for t in tasks if t.ranked_by == "audit"]
        assert 60 <= len(drawn) <= 140  # Binomial(200, 0.5)
        assert all(t.item.audit_drawn_at is not None for t in drawn)
        assert all(t.item.audit_drawn_at is None for t in tasks if t not in drawn)
        assert len({t.item.id for t in tasks}) == 200
    with engine_storage.sessions() as session, session.begin():
        annotator = create_user(session, "auditee")
        add_member(session, pid, annotator.id, "annotator")
        project = get_project(session, pid)
        views = lease_tasks(session, engine_storage.arrays, project, "annotator",
                            annotator.id, 100)
        assert views
        assert all(v.why is not None and v.why.ranked_by != "audit" for v in views)
        assert all("audit" not in v.why.detail for v in views if v.why is not None)
        owner_views = lease_tasks(session, engine_storage.arrays, project, "owner",
                                  seeded.owner_id, 200)
        assert any(v.why is not None and v.why.ranked_by == "audit" for v in owner_views)


def test_audit_labels_never_train_and_give_the_payoff(engine_storage: Storage,
                                                      digits: Arrays) -> None:
    images, target = digits
    seeded = _cold_started(engine_storage, images, 600, target_accuracy=0.99)
    pid = seeded.project_id

    def label(tasks: list[Any]) -> None:
        for t in tasks:
            annotate(session, pid, seeded.owner_id, t.item.id, [str(int(target[t.item.row]))])

    with engine_storage.sessions() as session, session.begin():
        label(next_tasks(session, pid, seeded.owner_id, 40))  # the seed batch
        label(next_tasks(session, pid, seeded.owner_id, 120, audit_share=0.5))
        n_audit = session.execute(select(Item.id).where(
            Item.project_id == pid, Item.audit_drawn_at.is_not(None))).all()
    result = _round(engine_storage, pid)
    with engine_storage.read_sessions() as session:
        rnd = get_round(session, pid, result["round_id"])
        metrics = rnd.metrics or {}
        assert metrics["n_train"] == 160 - len(n_audit)  # audit labels do not train
        assert rnd.n_labels_used == 160  # but they are labels spent
        curve = metrics["random_curve"]
        assert [m for m, _ in curve][:2] == [10, 20]
        found = payoff(session, engine_storage.arrays, get_project(session, pid))
    assert found["audit_labels"] == found["audit_draws"] == len(n_audit)
    assert found["interval"] == "wilson"
    assert found["low"] <= found["accuracy"] <= found["high"]
    assert 0.5 < found["accuracy"] <= 1.0
    assert found["labels_spent"] == 160
    assert found["random_curve"] == curve
    # What random sampling would need to reach the audited accuracy, read off the curve (None
    # when the audited accuracy is beyond the curve's reach, as a small audit's 1.0 may be).
    points = [(int(m), float(a)) for m, a in curve]
    needed = labels_needed(points, found["accuracy"])
    # and at the interval's ends, so a reader sees what the count is worth (an extrapolation
    # is given only with both ends)
    # and the curve's own error: each point was scored on the draws after its labels
    draws = curve_draws(points)
    assert draws is not None
    assert draws <= len(n_audit) <= draws + 1
    worse, better = curve_bounds(points, draws)
    ends = [labels_needed(better, found["low"]), labels_needed(worse, found["high"])]
    unread = needed is None or (needed[1] and ends[1] is None)
    assert found["random_labels_needed"] == (None if unread else round(needed[0]))
    assert found["random_labels_range"] == (None if unread else [
        None if end is None else round(end[0]) for end in ends])
    assert found["to_target"] == round(0.99 - found["accuracy"], 6)
    assert found["target_status"] == ("below" if found["high"] < 0.99 else "below_by_estimate")

    # a re-ranking round trains nothing and traces no curve: the payoff keeps the last one
    with engine_storage.sessions() as session, session.begin():
        rnd, _ = request_rerank(session, pid, found["model_version"], requested_by=None)
        job_id = rnd.job_id
    assert job_id is not None
    reranked = run_job(engine_storage, job_id)
    assert "random_curve" not in reranked["metrics"]
    assert "stop_set_kappa" not in reranked["metrics"]  # no new model to compare
    with engine_storage.read_sessions() as session:
        again = payoff(session, engine_storage.arrays, get_project(session, pid))
    assert again["random_curve"] == curve
    # a purged audit draw is gone from the draws, the labels and the estimate
    with engine_storage.sessions() as session, session.begin():
        audited = session.execute(select(Item).where(
            Item.project_id == pid, Item.audit_drawn_at.is_not(None))).scalars().first()
        assert audited is not None
        purge(session, engine_storage, pid, item_ids=[audited.id], external_ids=[],
              actor_id=seeded.owner_id)
    with engine_storage.read_sessions() as session:
        after = payoff(session, engine_storage.arrays, get_project(session, pid))
    assert after["audit_draws"] == after["audit_labels"] == len(n_audit) - 1


def test_labeled_audit_draws_without_a_model_say_so(engine_storage: Storage,
                                                    digits: Arrays) -> None:
    images, target = digits
    seeded = new_project(engine_storage, rows=digit_rows(images, 200), settings={
        "featurizer": "image", "featurizer_params": {"field": "image"}, "audit_share": 0.5})
    pid = seeded.project_id
    with engine_storage.read_sessions() as session:
        found = payoff(session, engine_storage.arrays, get_project(session, pid))
    assert found["note"] == ("no audit labels yet: 50.0% of tasks are drawn at random to "
                             "measure the model")
    with engine_storage.sessions() as session, session.begin():
        tasks = next_tasks(session, pid, seeded.owner_id, 40, audit_share=0.5)
        audit = [t for t in tasks if t.ranked_by == "audit"]
        for t in audit:
            annotate(session, pid, seeded.owner_id, t.item.id, [str(int(target[t.item.row]))])
    with engine_storage.read_sessions() as session:
        found = payoff(session, engine_storage.arrays, get_project(session, pid))
    assert found["accuracy"] is None
    assert found["audit_labels"] == len(audit) > 0  # labeled, though no model reads them yet
    assert found["note"] == f"{len(audit)} audit labels in; no model to measure yet"


def test_hits_compare_each_audit_answer_with_the_models() -> None:
    from types import SimpleNamespace

    from activelabel.labeling.payoff import _hits

    probs = np.array([[0.9, 0.1, 0.1], [0.9, 0.8, 0.1], [0.1, 0.1, 0.7]])
    single = SimpleNamespace(labels=["a", "b", "c"], task="classification")
    assert _hits(single, probs, [0, 1, 2], {0: "a", 1: "a", 2: "c"}).tolist() == [
        True, True, True]
    other_labels = SimpleNamespace(labels=["a", "b"], task="classification")
    assert _hits(other_labels, probs, [0], {0: "a"}).size == 0  # a model of another label set


def test_a_multilabel_model_is_measured_by_label_f1() -> None:
    """Micro F1 over the audit items' labels, with a bootstrap interval: a model that gives
    no label is not right on the items that have none (their share would read 80% here)."""
    from types import SimpleNamespace

    from activelabel.labeling.payoff import _estimate

    multi = SimpleNamespace(labels=["a", "b", "c"], task="multilabel")
    rows = list(range(100))
    answers = {r: (["a", "b"] if r % 10 == 0 else ["c"] if r % 10 == 5 else []) for r in rows}
    silent = np.full((100, 3), 0.2)
    found = _estimate(multi, None, silent, rows, answers)  # type: ignore[arg-type]
    assert found.accuracy == 0.0
    sure = np.zeros((100, 3))
    for r, labels in answers.items():
        sure[r, [multi.labels.index(x) for x in labels]] = 0.9
    sure[1, 2] = 0.7  # one label given that no annotator gave: 30 found, 30 true, 31 given
    found = _estimate(multi, None, sure, rows, answers)  # type: ignore[arg-type]
    assert found.accuracy == pytest.approx(60 / 61)
    assert found.low < found.accuracy <= found.high == 1.0
    few = {r: answers[r] for r in rows[:40]}  # 12 labels: fewer than F1 is measured from
    assert _estimate(multi, None, sure, rows[:40], few).accuracy is None  # type: ignore[arg-type]


def test_audit_draws_not_answered_yet_are_never_pseudo_labeled(
        engine_storage: Storage, digits: Arrays, handed_pool: list[Any]) -> None:
    """Self-training learns the model's own guesses for unlabeled pool items; an audit draw
    waiting for its answer is one, but it measures the model, so the round leaves it out of
    the rows it hands the fit (and the random-sampling curve's fits)."""
    images, target = digits
    seeded = _cold_started(engine_storage, images, 400, audit_share=0.5)
    pid = seeded.project_id
    with engine_storage.sessions() as session, session.begin():
        seed_batch = next_tasks(session, pid, seeded.owner_id, 40)
        for t in seed_batch:  # answered
            annotate(session, pid, seeded.owner_id, t.item.id, [str(int(target[t.item.row]))])
        answered = [t.item.row for t in seed_batch]
        drawn = [t.item.row for t in next_tasks(session, pid, seeded.owner_id, 80,
                                                audit_share=0.5) if t.ranked_by == "audit"]
    assert drawn  # Binomial(80, 0.5) draws, none answered
    assert handed_pool == []  # the cold start hands none
    result = _round(engine_storage, pid)
    with engine_storage.read_sessions() as session:
        rnd = get_round(session, pid, result["round_id"])
        assert rnd.status == "done", rnd.error
        pool_rows = {i.row for i in session.execute(select(Item).where(
            Item.project_id == pid, Item.split == "pool")).scalars()}
    assert len(handed_pool) == 1
    # every unlabeled pool item but the audit draws waiting for their answers
    assert set(handed_pool[0].tolist()) == pool_rows - set(answered) - set(drawn)


def test_a_multilabel_project_traces_random_sampling_from_its_audit_labels(
        engine_storage: Storage) -> None:
    """Multi-label audit answers (label sets) train the curve's models and score them as
    the payoff does: micro F1 over the labels."""
    groups = {"alpha": "a", "beta": "a", "gamma": "g", "delta": "g", "omega": "o", "sigma": "o"}

    def answer(text: str) -> list[str]:
        return sorted({groups[w] for w in text.split()[:2]})

    rows = text_rows(400)
    seeded = new_project(engine_storage, labels=["a", "g", "o"], task="multilabel", rows=rows,
                         settings={"batch_size": 20, "strategy": "entropy",
                                   "audit_share": 0.5, "target_accuracy": 0.9})
    pid = seeded.project_id
    _round(engine_storage, pid)  # the cold start
    with engine_storage.sessions() as session, session.begin():
        tasks = next_tasks(session, pid, seeded.owner_id, 160, audit_share=0.5)
        n_audit = sum(t.ranked_by == "audit" for t in tasks)
        for t in tasks:
            annotate(session, pid, seeded.owner_id, t.item.id,
                     answer(rows[t.item.row]["data"]["text"]))
    result = _round(engine_storage, pid)
    curve = result["metrics"]["random_curve"]
    assert [m for m, _ in curve][:3] == [10, 20, 40]
    assert curve[-1][1] > 0.8  # two words name the set: learned from the audit labels alone
    with engine_storage.read_sessions() as session:
        found = payoff(session, engine_storage.arrays, get_project(session, pid))
    assert found["audit_labels"] == n_audit
    assert found["measure"] == "label_f1"
    assert found["interval"] == "bootstrap"
    assert found["audit_entities"] is None
    assert found["audit_positives"] >= n_audit  # every text names one set or two
    assert found["random_curve"] == curve
    assert result["metrics"]["random_curve_measure"] == "label_f1"
    (rule,) = [v for v in result["metrics"]["stopping"] if v["rule"] == "target_accuracy"]
    assert rule["reason"].startswith("no holdout label_f1")  # the target names label F1
    assert found["accuracy"] is not None
    assert found["accuracy"] > 0.8


def label_audit_draws(storage: Storage, seeded: Any, target: Any, n_tasks: int = 80) -> int:
    """Hand out ``n_tasks`` tasks at audit share 0.5 and label the audit draws among them (a
    digits project's true labels); returns how many."""
    with storage.sessions() as session, session.begin():
        audit = [t for t in next_tasks(session, seeded.project_id, seeded.owner_id, n_tasks,
                                       audit_share=0.5) if t.ranked_by == "audit"]
        for t in audit:
            annotate(session, seeded.project_id, seeded.owner_id, t.item.id,
                     [str(int(target[t.item.row]))])
    assert len(audit) >= 20
    return len(audit)


def done_rounds(storage: Storage, project_id: int, metrics: list[dict[str, Any]]) -> None:
    """Rounds recorded as done with these metrics, in order (what the payoff reads)."""
    with storage.sessions() as session, session.begin():
        for m in metrics:
            rnd, _ = request_round(session, project_id, requested_by=None, reason="manual")
            rnd.status, rnd.metrics = "done", m


def test_a_curve_of_another_measure_is_not_read(engine_storage: Storage) -> None:
    """A multi-label project's rounds before label F1 traced exact-set accuracy (recorded
    without a measure): its label F1 is not read against that curve, which would say random
    sampling needed a handful of labels."""
    from activelabel.labeling.payoff import _last_curve

    seeded = new_project(engine_storage, labels=["a", "g", "o"], task="multilabel",
                         rows=text_rows(40))
    pid = seeded.project_id
    old, new = [[10, 0.64], [20, 0.65]], [[10, 0.0], [20, 0.1]]
    done_rounds(engine_storage, pid, [{"random_curve": old}])
    with engine_storage.read_sessions() as session:
        assert _last_curve(session, pid, "label_f1") == []
        assert _last_curve(session, pid, "accuracy") == [(10, 0.64), (20, 0.65)]
    done_rounds(engine_storage, pid, [{"random_curve": new, "random_curve_measure": "label_f1"},
                                      {}])
    with engine_storage.read_sessions() as session:
        assert _last_curve(session, pid, "label_f1") == [(10, 0.0), (20, 0.1)]
        # a label F1 curve is not an accuracy curve: the one before it is read
        assert _last_curve(session, pid, "accuracy") == [(10, 0.64), (20, 0.65)]
    done_rounds(engine_storage, pid, [{"random_curve": new}])  # a span round's, untagged
    with engine_storage.read_sessions() as session:
        assert _last_curve(session, pid, "entity_f1") == [(10, 0.0), (20, 0.1)]


def test_the_payoff_looks_a_few_rounds_back_for_a_curve(engine_storage: Storage,
                                                        digits: Arrays) -> None:
    """Re-ranking rounds trace no curve: the one before them is shown, within the last
    CURVE_LOOKBACK rounds (each stats request reads at most those)."""
    from activelabel.labeling.payoff import CURVE_LOOKBACK

    images, target = digits
    seeded = new_project(engine_storage, rows=digit_rows(images, 300), settings={
        "featurizer": "image", "featurizer_params": {"field": "image"}, "audit_share": 0.5})
    pid = seeded.project_id
    curve = [[10, 0.5], [20, 0.7]]
    done_rounds(engine_storage, pid, [{"random_curve": curve}])
    with engine_storage.read_sessions() as session:  # fewer than 20 audit labels: none read
        assert payoff(session, engine_storage.arrays, get_project(session, pid))[
            "random_curve"] == []
    label_audit_draws(engine_storage, seeded, target)
    done_rounds(engine_storage, pid, [{}] * (CURVE_LOOKBACK - 1))
    with engine_storage.read_sessions() as session:
        assert payoff(session, engine_storage.arrays, get_project(session, pid))[
            "random_curve"] == curve
    done_rounds(engine_storage, pid, [{}])
    with engine_storage.read_sessions() as session:
        assert payoff(session, engine_storage.arrays, get_project(session, pid))[
            "random_curve"] == []
