"""What the web pages read: progress, pool confidence, related examples, the dashboard, and
the show_suggestions setting."""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import pytest
from sqlalchemy import update

from activelabel.drift import answer_confidence
from activelabel.labeling.insights import (
    attach_simulation,
    histogram,
    interpolate,
    max_confidence,
    nearest_rows,
)
from activelabel.store import (
    InvalidInput,
    activate_model_version,
    create_model_version,
    create_round,
    finish_round,
    record_selection,
)
from activelabel.store.models import Assignment, utcnow
from tests.support.api import Api, assert_error


def _item_ids(api: Api, pid: int, owner: object) -> list[int]:
    return [i["id"] for i in api.get(f"/projects/{pid}/items", owner).json()["items"]]


def _label(api: Api, pid: int, who: object, item_id: int, label: str, ms: int = 2000) -> None:
    answer = api.post(f"/projects/{pid}/annotations", who,
                      json={"item_id": item_id, "labels": [label], "duration_ms": ms})
    assert answer.status_code == 201, answer.text


def _round_with_model(api: Api, pid: int, selected: list[int], probs: np.ndarray, *,
                      metrics: dict[str, object] | None = None,
                      gain: dict[str, object] | None = None, strategy: str = "margin") -> int:
    """A finished round that selected ``selected`` with an active model and its probs."""
    with api.storage.sessions() as session, session.begin():
        rnd = create_round(session, pid, strategy=strategy, batch_size=len(selected))
        model = create_model_version(session, pid, round_id=rnd.id)
        activate_model_version(session, pid, model.version)
        record_selection(session, pid, rnd.id, selected, [0.5] * len(selected),
                         model_version_id=model.id)
        finish_round(session, pid, rnd.id, model_version_id=model.id, n_labels_used=0,
                     metrics=metrics or {"accuracy": 0.8, "macro_f1": 0.7, "ece": 0.1},
                     gain=gain or {"accuracy": 0.05, "per_100_labels": 1.0})
        number = rnd.number
    api.storage.arrays.save(pid, "probs", probs.astype(np.float32))
    return int(number)


def test_progress_counts_the_batch_the_next_round_and_the_caller(api: Api) -> None:
    owner = api.person("owner")
    pid = api.project(owner, n_items=6, settings={"retrain_every_labels": 5})
    ann = api.member(pid, "annotator")
    ids = _item_ids(api, pid, owner)
    empty = api.get(f"/projects/{pid}/progress", ann).json()
    assert empty["items"] == 6
    assert empty["round"] is None
    assert empty["batch"] == {"selected": 0, "labeled": 0}
    assert empty["labels_to_next_round"] == 5
    assert empty["me"]["labels"] == 0
    number = _round_with_model(api, pid, ids[:4], np.full((6, 2), 0.5))
    _label(api, pid, ann, ids[0], "pos", ms=1000)
    _label(api, pid, ann, ids[1], "neg", ms=3000)
    _label(api, pid, owner, ids[5], "neg")
    got = api.get(f"/projects/{pid}/progress", ann).json()
    assert got["round"] == number
    assert got["batch"] == {"selected": 4, "labeled": 2}  # ids[5] was not in the batch
    assert got["labeled"] == 3
    assert got["labels_since_round"] == 3
    assert got["labels_to_next_round"] == 2
    assert got["me"]["labels"] == 2
    assert got["me"]["last_hour"] == 2
    assert abs(got["me"]["labels_per_hour"] - 3600 * 2 / 4.0) < 1e-6  # 2 labels in 4 s
    assert got["last_round"]["accuracy"] == 0.8
    assert got["last_round"]["gain"]["accuracy"] == 0.05
    api.post(f"/projects/{pid}/items/{ids[1]}/undo", ann)
    assert api.get(f"/projects/{pid}/progress", ann).json()["me"]["labels"] == 1
    assert_error(api.get(f"/projects/{pid}/progress", api.person("out")), 404, "not_found")


def test_progress_lists_the_items_the_caller_holds_and_no_other(api: Api) -> None:
    """``me.holding``: the caller's live leases, oldest first; a label, a release, a purge
    or an expiry ends one, and another member's leases are not listed."""
    owner = api.person("owner")
    pid = api.project(owner, n_items=8)
    ann = api.member(pid, "annotator")

    def holding(who: object) -> list[int]:
        return list(api.get(f"/projects/{pid}/progress", who).json()["me"]["holding"])

    assert holding(ann) == []
    mine = [t["item"]["id"] for t in api.get(f"/projects/{pid}/tasks/next", ann,
                                              params={"n": 5}).json()]
    theirs = [t["item"]["id"] for t in api.get(f"/projects/{pid}/tasks/next", owner,
                                                params={"n": 2}).json()]
    assert holding(ann) == mine
    assert holding(owner) == theirs
    _label(api, pid, ann, mine[0], "pos")
    assert api.post(f"/projects/{pid}/tasks/{mine[1]}/release", ann).status_code == 200
    assert api.post(f"/projects/{pid}/items/purge", owner,
                    json={"item_ids": [mine[2]]}).status_code == 200
    with api.storage.sessions() as session, session.begin():
        session.execute(update(Assignment).where(Assignment.item_id == mine[3])
                        .values(expires_at=utcnow() - timedelta(seconds=1)))
    assert holding(ann) == [mine[4]]
    assert holding(owner) == theirs


def test_progress_of_a_project_without_items_says_so(api: Api) -> None:
    owner = api.person("owner")
    pid = api.project(owner, n_items=0)
    assert api.get(f"/projects/{pid}/progress", owner).json()["items"] == 0


def test_confidence_histograms_cover_the_unlabeled_pool(api: Api) -> None:
    owner = api.person("owner")
    pid = api.project(owner, n_items=5)
    ids = _item_ids(api, pid, owner)
    assert api.get(f"/projects/{pid}/confidence", owner).json()["current"] is None
    probs = np.array([[0.95, 0.05], [0.55, 0.45], [0.3, 0.7], [0.5, 0.5], [0.9, 0.1]])
    _round_with_model(api, pid, ids[:2], probs)
    _label(api, pid, owner, ids[0], "pos")  # labeled: left out of the pool histogram
    api.storage.arrays.save(pid, "probs_previous", np.full((5, 2), 0.5, dtype=np.float32))
    got = api.get(f"/projects/{pid}/confidence", owner, params={"bins": 5}).json()
    assert got["edges"] == [0.0, 0.2, 0.4, 0.6, 0.8, 1.0]
    assert got["current"]["counts"] == [0, 0, 2, 1, 1]  # 0.55, 0.5 | 0.7 | 0.9
    assert got["current"]["n"] == 4
    assert abs(got["current"]["mean"] - (0.55 + 0.7 + 0.5 + 0.9) / 4) < 1e-6
    assert got["previous"]["counts"] == [0, 0, 4, 0, 0]
    ann = api.member(pid, "annotator")
    assert_error(api.get(f"/projects/{pid}/confidence", ann), 403, "forbidden")
    assert_error(api.get(f"/projects/{pid}/confidence", owner, params={"bins": 1}), 422,
                 "invalid_input")


def test_related_returns_the_nearest_labeled_items(api: Api) -> None:
    owner = api.person("owner")
    pid = api.project(owner, n_items=5, private_fields=["secret"])
    ids = _item_ids(api, pid, owner)
    ann = api.member(pid, "annotator")
    assert api.get(f"/projects/{pid}/items/{ids[0]}/related", ann).json() == []
    emb = np.array([[1, 0], [0.9, 0.1], [0, 1], [0.7, 0.7], [-1, 0]], dtype=np.float32)
    api.storage.arrays.save(pid, "embeddings", emb)
    for i, label in ((1, "pos"), (2, "neg"), (3, "pos"), (4, "neg")):
        _label(api, pid, owner, ids[i], label)
    got = api.get(f"/projects/{pid}/items/{ids[0]}/related", ann, params={"k": 2}).json()
    assert [r["item_id"] for r in got] == [ids[1], ids[3]]
    assert [r["label"] for r in got] == ["pos", "pos"]
    assert got[0]["similarity"] > got[1]["similarity"]
    assert "secret" not in got[0]["data"]
    assert got[0]["data"]["text"] == "item 1"
    assert "secret" in api.get(f"/projects/{pid}/items/{ids[0]}/related", owner).json()[0]["data"]
    purged = api.post(f"/projects/{pid}/items/purge", owner, json={"item_ids": [ids[1]]})
    assert purged.status_code == 200, purged.text
    api.storage.arrays.save(pid, "embeddings", emb)  # as rebuilt (the purge dropped them)
    got = api.get(f"/projects/{pid}/items/{ids[0]}/related", ann, params={"k": 2}).json()
    assert [r["item_id"] for r in got] == [ids[3], ids[2]]  # the purged one left out


def test_nearest_rows_is_chunked_and_skips_the_query(monkeypatch: object) -> None:
    import activelabel.labeling.insights as insights

    rng = np.random.default_rng(0)
    emb = rng.normal(size=(500, 8))
    candidates = np.arange(500, dtype=np.intp)
    full = emb @ emb[7] / np.linalg.norm(emb, axis=1) / np.linalg.norm(emb[7])
    full[7] = -np.inf
    expected = list(np.argsort(-full, kind="stable")[:5])
    monkeypatch.setattr(insights, "NEIGHBOUR_CHUNK", 37)  # type: ignore[attr-defined]
    got = nearest_rows(emb, 7, candidates, 5)
    assert [r for r, _ in got] == expected
    assert nearest_rows(emb, 7, np.array([7], dtype=np.intp), 3) == []


def test_confidence_helpers() -> None:
    assert histogram(np.array([0.0, 0.5, 1.0, 0.99]), 2) == [1, 3]
    assert list(max_confidence(np.array([[0.2, 0.8]]), False)) == [0.8]
    assert list(max_confidence(np.array([[0.9, 0.4]]), True)) == [0.6]
    # a span model's first column is the probability of its tagging: 0.3 is unsure
    assert list(answer_confidence(np.array([[0.3, 0.7]]), "spans")) == [0.3]
    assert list(answer_confidence(np.array([[0.3, 0.7]]), "classification")) == [0.7]
    assert list(answer_confidence(np.array([[0.9, 0.4]]), "multilabel")) == [0.6]


def test_dashboard_reports_rounds_annotators_and_labels(api: Api) -> None:
    owner = api.person("owner")
    pid = api.project(owner, n_items=4)
    ids = _item_ids(api, pid, owner)
    ann = api.member(pid, "annotator")
    number = _round_with_model(api, pid, ids, np.full((4, 2), 0.5))
    _label(api, pid, ann, ids[0], "pos", ms=1000)
    _label(api, pid, ann, ids[1], "pos", ms=3000)
    _label(api, pid, owner, ids[2], "neg", ms=500)
    got = api.get(f"/projects/{pid}/dashboard", owner).json()
    (rnd,) = got["rounds"]
    assert rnd["number"] == number
    assert rnd["labels_gathered"] == 3
    assert rnd["labeling_seconds"] == 4.5
    assert rnd["metrics"] == {"accuracy": 0.8, "macro_f1": 0.7, "ece": 0.1}
    assert rnd["gain"]["per_100_labels"] == 1.0
    by_name = {a["username"]: a for a in got["annotators"]}
    assert by_name[ann.username]["labels"] == 2
    assert by_name[ann.username]["median_seconds"] == 2.0
    assert got["label_counts"] == {"pos": 2, "neg": 1}
    assert got["drift"] is None  # no items arrived after the round
    stale = got["staleness"]
    assert (stale["stale"], stale["labels_since"], stale["new_items"]) == (False, 3, 0)
    assert_error(api.get(f"/projects/{pid}/dashboard", ann), 403, "forbidden")


def test_show_suggestions_off_hides_the_model_from_tasks(api: Api) -> None:
    owner = api.person("owner")
    pid = api.project(owner, n_items=2, settings={"suggestion_display": "always"})
    ids = _item_ids(api, pid, owner)
    _round_with_model(api, pid, ids, np.array([[0.9, 0.1], [0.2, 0.8]]))
    ann = api.member(pid, "annotator")
    tasks = api.get(f"/projects/{pid}/tasks/next", ann, params={"n": 2}).json()
    assert [t["suggestion"]["label"] for t in tasks] == ["pos", "neg"]
    changed = api.patch(f"/projects/{pid}", owner, json={"settings": {"show_suggestions": False}})
    assert changed.status_code == 200
    assert changed.json()["settings"]["show_suggestions"] is False
    tasks = api.get(f"/projects/{pid}/tasks/next", ann, params={"n": 2}).json()
    assert [t["suggestion"] for t in tasks] == [None, None]
    assert tasks[0]["why"] is not None  # why it was chosen is still shown
    assert_error(api.patch(f"/projects/{pid}", owner, json={
        "settings": {"show_suggestions": "no"}}), 422, "invalid_input")


def test_suggestion_display_never_hides_the_model_and_keys_name_known_labels(api: Api) -> None:
    owner = api.person("owner")
    pid = api.project(owner, n_items=2)
    ids = _item_ids(api, pid, owner)
    _round_with_model(api, pid, ids, np.array([[0.9, 0.1], [0.2, 0.8]]))
    ann = api.member(pid, "annotator")
    assert api.get(f"/projects/{pid}", owner).json()["settings"]["suggestion_display"] == \
        "after_answer"
    tasks = api.get(f"/projects/{pid}/tasks/next", ann, params={"n": 2}).json()
    assert [t["suggestion"] for t in tasks] == [None, None]  # it comes with the answer
    assert [t["group"] for t in tasks] == [1, 2]
    answered = api.post(f"/projects/{pid}/tasks/suggestions", ann, json={"answers": [
        {"item_id": t["item"]["id"], "labels": ["neg"]} for t in tasks]}).json()
    assert [a["suggestion"]["label"] for a in answered] == ["pos", "neg"]
    changed = api.patch(f"/projects/{pid}", owner, json={"settings": {
        "suggestion_display": "never", "label_keys": {"pos": "p", "neg": "n"},
        "label_colors": {"pos": "#1a7f37"}}})
    assert changed.status_code == 200, changed.text
    tasks = api.get(f"/projects/{pid}/tasks/next", ann, params={"n": 2}).json()
    assert [t["suggestion"] for t in tasks] == [None, None]
    assert_error(api.patch(f"/projects/{pid}", owner, json={
        "settings": {"label_keys": {"maybe": "m"}}}), 422, "invalid_input")
    assert_error(api.patch(f"/projects/{pid}", owner, json={
        "settings": {"label_colors": {"maybe": "#000000"}}}), 422, "invalid_input")


def test_labels_can_be_added_but_never_removed(api: Api) -> None:
    owner = api.person("owner")
    pid = api.project(owner, labels=["pos", "neg"])
    added = api.patch(f"/projects/{pid}", owner, json={"labels": ["pos", "neg", "neutral"]})
    assert added.status_code == 200, added.text
    assert added.json()["labels"] == ["pos", "neg", "neutral"]
    assert added.json()["guidelines_version"] == 2  # a new version of the label set
    versions = api.get(f"/projects/{pid}/versions", owner).json()
    assert versions[-1]["version"] == 2
    assert versions[-1]["labels"] == ["pos", "neg", "neutral"]
    error = assert_error(api.patch(f"/projects/{pid}", owner, json={"labels": ["pos", "x"]}),
                         400, "invalid_input")
    assert "'neg'" in error["message"]
    assert_error(api.patch(f"/projects/{pid}", owner, json={"labels": ["pos", "neg", "neg"]}),
                 400, "invalid_input")
    (event, *_) = api.get(f"/projects/{pid}/audit", owner).json()
    assert event["before"]["labels"] == ["pos", "neg"]
    assert event["after"]["labels"] == ["pos", "neg", "neutral"]



def _round_trained_on(api: Api, pid: int, n_train: int, accuracy: float) -> None:
    with api.storage.sessions() as session, session.begin():
        rnd = create_round(session, pid, strategy="margin", batch_size=1)
        finish_round(session, pid, rnd.id, model_version_id=None, n_labels_used=n_train,
                     metrics={"accuracy": accuracy, "macro_f1": accuracy, "n_train": n_train})


def test_an_attached_simulation_gives_each_round_its_random_estimate(api: Api) -> None:
    owner = api.person("owner")
    pid = api.project(owner, n_items=4)
    _round_trained_on(api, pid, 20, 0.8)
    _round_trained_on(api, pid, 45, 0.9)
    _round_trained_on(api, pid, 500, 0.95)
    before = api.get(f"/projects/{pid}/dashboard", owner).json()["rounds"]
    assert all("random_accuracy" not in r["metrics"] for r in before)
    attach_simulation(api.storage, pid, {"dataset": "x", "curves": {"random": [
        {"n_labeled": 40, "accuracy": 0.7, "macro_f1": 0.6},
        {"n_labeled": 20, "accuracy": 0.5, "macro_f1": 0.4}]}})
    rounds = api.get(f"/projects/{pid}/dashboard", owner).json()["rounds"]
    by_n = {r["metrics"]["n_train"]: r["metrics"] for r in rounds}
    assert by_n[20]["random_accuracy"] == 0.5
    assert by_n[20]["random_macro_f1"] == 0.4
    assert by_n[45]["random_accuracy"] is None  # beyond the simulated curve: no estimate
    assert by_n[500]["random_accuracy"] is None
    assert by_n[20]["accuracy"] == 0.8


def test_interpolation_and_a_simulation_without_random_is_refused(api: Api) -> None:
    curve = [{"n_labeled": 10, "accuracy": 0.5}, {"n_labeled": 30, "accuracy": 0.9}]
    assert interpolate(curve, 20, "accuracy") == 0.7
    assert interpolate(curve, 10, "accuracy") == 0.5
    assert interpolate(curve, 5, "accuracy") is None
    assert interpolate(curve, 20, "macro_f1") is None
    with pytest.raises(InvalidInput, match="--strategies random"):
        attach_simulation(api.storage, 1, {"curves": {"margin": curve}})
    with pytest.raises(InvalidInput, match="n_labeled"):
        attach_simulation(api.storage, 1, {"curves": {"random": [{"accuracy": 1}]}})


def test_a_multilabel_projects_rounds_report_its_label_f1(api: Api) -> None:
    """The dashboard and the labeling page's progress name a multi-label round's label F1 and
    its gain in it, and what an `auto` round ran; the rest of a round's record stays out."""
    owner = api.person("owner")
    pid = api.project(owner, n_items=4, task="multilabel")
    ids = _item_ids(api, pid, owner)
    metrics = {"accuracy": 0.6, "macro_f1": 0.3, "ece": 0.1, "label_f1": 0.45,
               "n_train": 40, "schedule": {"strategy": "cluster_margin", "reason": "long"},
               "stopping": [{"rule": "budget", "stop": False, "reason": "r"}],
               "random_curve": [[10, 0.1]]}
    gain = {"accuracy": -0.1, "macro_f1": 0.0, "measure": "label_f1", "score": 0.05,
            "per_100_labels": 0.25, "labels_added": 20}
    number = _round_with_model(api, pid, ids, np.full((4, 2), 0.5), metrics=metrics,
                               gain=gain, strategy="auto")
    got = api.get(f"/projects/{pid}/dashboard", owner).json()
    assert got["measure"] == "label_f1"
    (rnd,) = got["rounds"]
    assert rnd["metrics"] == {"accuracy": 0.6, "macro_f1": 0.3, "ece": 0.1, "label_f1": 0.45,
                              "n_train": 40, "schedule": {"strategy": "cluster_margin"}}
    assert rnd["gain"] == gain
    last = api.get(f"/projects/{pid}/progress", owner).json()["last_round"]
    assert (last["number"], last["measure"], last["score"]) == (number, "label_f1", 0.45)
    assert last["gain"]["score"] == 0.05


def test_an_older_multilabel_gain_names_no_label_f1(api: Api) -> None:
    """A round recorded before gains named their measure measured accuracy: a multi-label
    project's dashboard does not show it as a label F1 gain."""
    owner = api.person("owner")
    pid = api.project(owner, n_items=4, task="multilabel")
    _round_with_model(api, pid, _item_ids(api, pid, owner), np.full((4, 2), 0.5))
    (rnd,) = api.get(f"/projects/{pid}/dashboard", owner).json()["rounds"]
    assert rnd["gain"]["per_100_labels"] is None
    assert (rnd["gain"]["measure"], rnd["gain"]["score"]) == ("label_f1", None)
    got = api.get(f"/projects/{pid}/progress", owner).json()["last_round"]
    assert (got["measure"], got["score"], got["gain"]["score"]) == ("label_f1", None, None)
