"""The review queue, agreement and annotator quality over HTTP, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sklearn.metrics import cohen_kappa_score
from sqlalchemy import update

from activelabel.store import (
    activate_model_version,
    create_model_version,
    create_round,
    record_selection,
)
from activelabel.store.models import Item, Job, Project
from tests.support.api import Api, Person, assert_error
from tests.support.projects import run_label_checks


def _items(api: Api, pid: int, owner: Person) -> list[int]:
    return [i["id"] for i in api.get(f"/projects/{pid}/items", owner).json()["items"]]


def _label(api: Api, pid: int, who: Person, item_id: int, label: Any) -> dict[str, Any]:
    answer = api.post(f"/projects/{pid}/annotations", who,
                      json={"item_id": item_id, "labels": [label]})
    assert answer.status_code == 201, answer.text
    return dict(answer.json())


@pytest.fixture(autouse=True)
def _checks_never_rest(monkeypatch: pytest.MonkeyPatch) -> None:
    """A label check may follow the last at once (the rest between checks has its test)."""
    from activelabel.labeling import quality

    monkeypatch.setattr(quality, "CHECK_REST_FACTOR", 0.0)


def _checked(api: Api, pid: int, who: Person, **params: Any) -> list[dict[str, Any]]:
    """The review queue once the label check it asks for has run (a worker's job)."""
    asked = api.get(f"/projects/{pid}/review", who, params=params)
    assert asked.status_code == 200, asked.text
    assert len(run_label_checks(api.storage, pid)) == 1
    return list(api.get(f"/projects/{pid}/review", who, params=params).json())


# Three annotators on six items: a and b agree everywhere, c disagrees on items 2, 4 and 5.
PLAN = {"a": ["pos", "pos", "neg", "neg", "pos", "neg"],
        "b": ["pos", "pos", "neg", "neg", "pos", "neg"],
        "c": ["pos", "neg", "pos", "neg", "neg", "pos"]}


def _crowd(api: Api, **settings: Any) -> tuple[int, Person, dict[str, Person], list[int]]:
    owner = api.person("owner")
    pid = api.project(owner, n_items=6, settings={"overlap": 3, **settings})
    people = {name: api.member(pid, "annotator", f"ann_{name}") for name in PLAN}
    items = _items(api, pid, owner)
    for name, labels in PLAN.items():
        for item_id, label in zip(items, labels, strict=True):
            _label(api, pid, people[name], item_id, label)
    return pid, owner, people, items


def test_agreement_is_null_without_multiply_labeled_items(api: Api) -> None:
    owner = api.person("owner")
    pid = api.project(owner, n_items=3)
    ann = api.member(pid, "annotator")
    _label(api, pid, ann, _items(api, pid, owner)[0], "pos")
    body = api.get(f"/projects/{pid}/agreement", owner).json()
    assert body["n_items"] == 0
    assert body["krippendorff_alpha"] is None
    assert body["fleiss_kappa"] is None
    assert body["cohen_kappa_pairs"] == []
    assert body["below_target"] is False


def test_agreement_measures_match_the_reference_computation(api: Api) -> None:
    import krippendorff

    pid, owner, people, _ = _crowd(api, agreement_target=0.8)
    body = api.get(f"/projects/{pid}/agreement", owner).json()
    assert body["n_items"] == 6
    code = {"pos": 0, "neg": 1}
    data = np.array([[code[x] for x in PLAN[n]] for n in PLAN], dtype=float)
    expected_alpha = krippendorff.alpha(reliability_data=data, level_of_measurement="nominal")
    assert body["krippendorff_alpha"] == pytest.approx(expected_alpha)
    pairs = {frozenset((p["a"], p["b"])): p for p in body["cohen_kappa_pairs"]}
    a, b, c = (people[n].username for n in "abc")
    assert pairs[frozenset((a, b))]["kappa"] == pytest.approx(1.0)
    assert pairs[frozenset((a, c))]["kappa"] == pytest.approx(
        cohen_kappa_score(PLAN["a"], PLAN["c"]))
    assert pairs[frozenset((a, c))]["n"] == 6
    assert pairs[frozenset((a, c))]["below_target"] is True
    assert pairs[frozenset((a, b))]["below_target"] is False
    # Specific agreement of 'pos': item0 3*2, item1 2*1, item2 0, item4 2*1, item5 0 = 10 of
    # possible 3*2 + 2*2 + 1*2 + 2*2 + 1*2 = 18.
    assert body["per_label"]["pos"]["agreement"] == pytest.approx(10 / 18)
    assert body["per_label"]["pos"]["n"] == 5
    assert body["target"] == 0.8
    assert body["below_target"] is True


def test_quality_endpoints_check_roles(api: Api) -> None:
    pid, _owner, people, _ = _crowd(api)
    stranger = api.person("stranger")
    reviewer = api.member(pid, "reviewer")
    for path in ("review", "agreement", "annotators"):
        assert_error(api.get(f"/projects/{pid}/{path}"), 401, "unauthorized")
        assert_error(api.get(f"/projects/{pid}/{path}", people["a"]), 403, "forbidden")
        assert_error(api.get(f"/projects/{pid}/{path}", stranger), 404, "not_found")
        assert api.get(f"/projects/{pid}/{path}", reviewer).status_code == 200


def test_review_queue_lists_disagreements_with_their_labels(api: Api) -> None:
    pid, owner, people, items = _crowd(api)
    entries = api.get(f"/projects/{pid}/review", owner,
                      params={"reason": "disagreement"}).json()
    assert {e["item_id"] for e in entries} == {items[1], items[2], items[4], items[5]}
    first = entries[0]
    assert set(first) == {"item_id", "external_id", "reason", "score", "detail", "data",
                          "annotations", "consensus", "suggestion", "flag", "proposed"}
    assert first["proposed"] == []  # a disagreement puts forward no label beyond the annotators'
    assert first["reason"] == "disagreement"
    assert first["detail"] == "1 of 3 annotators disagree with the majority"
    assert first["score"] == pytest.approx(1 / 3)
    assert {a["annotator"] for a in first["annotations"]} == {p.username for p in people.values()}
    assert first["data"]["text"].startswith("item")
    by_item = {e["item_id"]: e for e in entries}
    assert by_item[items[2]]["consensus"] == "neg"
    # Filters: by annotator (only c disagrees), by label.
    only_a = api.get(f"/projects/{pid}/review", owner,
                     params={"reason": "disagreement", "annotator": people["a"].username})
    assert len(only_a.json()) == 4
    neg = api.get(f"/projects/{pid}/review", owner,
                  params={"reason": "disagreement", "label": "neg"}).json()
    assert {e["item_id"] for e in neg} == {items[1], items[2], items[4], items[5]}
    assert_error(api.get(f"/projects/{pid}/review", owner, params={"reason": "nope"}),
                 422, "invalid_input")
    assert_error(api.get(f"/projects/{pid}/review", owner, params={"annotator": "nobody"}),
                 400, "invalid_input")


def test_a_review_decision_records_its_reason_and_clears_the_entry(api: Api) -> None:
    pid, owner, people, items = _crowd(api)
    reviewer = api.member(pid, "reviewer")
    entry = next(e for e in api.get(f"/projects/{pid}/review", reviewer,
                                    params={"reason": "disagreement"}).json()
                 if e["item_id"] == items[2])
    careless = next(a for a in entry["annotations"] if a["annotator"] == people["c"].username)
    answer = api.post(f"/projects/{pid}/annotations/{careless['annotation_id']}/review",
                      reviewer, json={"accept": False, "labels": ["neg"],
                                      "reason": "guidelines 2.1: negations are neg"})
    assert answer.status_code == 201, answer.text
    assert answer.json()["reason"] == "guidelines 2.1: negations are neg"
    history = api.get(f"/projects/{pid}/items/{items[2]}", owner).json()["history"]
    assert history[-1]["reason"] == "guidelines 2.1: negations are neg"
    assert history[-1]["username"] == reviewer.username
    assert history[-1]["guidelines_version"] == 1
    left = api.get(f"/projects/{pid}/review", reviewer, params={"reason": "disagreement"})
    assert items[2] not in {e["item_id"] for e in left.json()}
    too_long = api.post(f"/projects/{pid}/annotations/{entry['annotations'][0]['annotation_id']}"
                        "/review", reviewer, json={"accept": True, "reason": "x" * 5001})
    assert_error(too_long, 422, "invalid_input")


def test_ties_flags_and_gold_misses_are_queued_with_their_reason(api: Api) -> None:
    owner = api.person("owner")
    pid = api.project(owner, n_items=3, settings={"overlap": 2})
    a, b = api.member(pid, "annotator"), api.member(pid, "annotator")
    items = _items(api, pid, owner)
    _label(api, pid, a, items[0], "pos")
    _label(api, pid, b, items[0], "neg")
    flag = api.post(f"/projects/{pid}/flags", a, json={"item_id": items[1],
                                                       "reason": "not English"}).json()
    with api.storage.sessions() as session, session.begin():
        session.execute(update(Item).where(Item.id == items[2])
                        .values(split="gold", gold_labels=["pos"]))
    _label(api, pid, a, items[2], "pos")
    _label(api, pid, b, items[2], "neg")
    entries = api.get(f"/projects/{pid}/review", owner).json()
    reasons = {(e["item_id"], e["reason"]) for e in entries}
    assert (items[0], "tie") in reasons
    assert (items[0], "disagreement") in reasons
    assert (items[1], "flagged") in reasons
    assert (items[2], "gold_miss") in reasons
    tie = next(e for e in entries if e["reason"] == "tie")
    assert tie["consensus"] is None
    assert tie["detail"] == "no majority: 1 'pos', 1 'neg'"
    flagged = next(e for e in entries if e["reason"] == "flagged")
    assert flagged["flag"] == {"id": flag["id"], "reason": "not English", "by": a.username}
    gold = next(e for e in entries if e["reason"] == "gold_miss")
    assert gold["detail"] == "1 of 2 annotators missed the gold answer 'pos'"
    assert {x["annotator"] for x in gold["annotations"]} == {a.username, b.username}
    resolved = api.post(f"/projects/{pid}/flags/{flag['id']}/resolve", owner,
                        json={"note": "fine"})
    assert resolved.status_code == 200
    event = api.get(f"/projects/{pid}/audit", owner).json()[0]
    assert (event["action"], event["entity"], event["after"]) == ("resolve", "flag",
                                                                  {"note": "fine"})
    assert not [e for e in api.get(f"/projects/{pid}/review", owner,
                                   params={"reason": "flagged"}).json()]
    limited = api.get(f"/projects/{pid}/review", owner, params={"limit": 1}).json()
    assert len(limited) == 1


def test_annotators_report_gold_consensus_and_dawid_skene(api: Api) -> None:
    pid, owner, people, items = _crowd(api, gold_alert_below=0.8)
    with api.storage.sessions() as session, session.begin():
        for item_id, label in zip(items[:3], ["pos", "pos", "neg"], strict=True):
            session.execute(update(Item).where(Item.id == item_id)
                            .values(split="gold", gold_labels=[label]))
    rows = {r["username"]: r for r in api.get(f"/projects/{pid}/annotators", owner).json()}
    a, c = rows[people["a"].username], rows[people["c"].username]
    assert a["labels"] == 6
    assert a["gold_n"] == 3
    assert a["gold_accuracy"] == pytest.approx(1.0)
    assert c["gold_accuracy"] == pytest.approx(1 / 3)
    assert c["gold_alert"] is True
    assert a["gold_alert"] is False
    # Leave-one-out: a's label equals the majority of b and c wherever b and c agree.
    assert a["agreement_with_consensus"] == pytest.approx(1.0)
    assert c["agreement_with_consensus"] == pytest.approx(2 / 6)
    assert c["estimated_accuracy"] < a["estimated_accuracy"]


def test_label_issues_rank_planted_flips_first(api: Api, shared_data: Path) -> None:
    owner = api.person("owner")
    pid = api.project(owner)
    rows = []
    with open(shared_data / "sms_spam.jsonl", encoding="utf-8") as handle:
        for line in handle:
            rows.append(json.loads(line))
            if len(rows) == 200:
                break
    added = api.post(f"/projects/{pid}/items", owner, json=[
        {"external_id": r["id"], "data": {"text": r["text"]}} for r in rows])
    assert added.json()["inserted"] == 200
    ann = api.member(pid, "annotator")
    ids = {i["external_id"]: i["id"] for i in api.get(
        f"/projects/{pid}/items", owner, params={"limit": 1000}).json()["items"]}
    spam = [r["id"] for r in rows if r["label"] == "spam"]
    flipped = set(spam[:3]) | set([r["id"] for r in rows if r["label"] == "ham"][:3])
    for r in rows:
        truth = "pos" if r["label"] == "spam" else "neg"
        label = ({"pos": "neg", "neg": "pos"}[truth]) if r["id"] in flipped else truth
        _label(api, pid, ann, ids[r["id"]], label)
    entries = _checked(api, pid, owner, reason="label_issue")
    found = {e["external_id"] for e in entries}
    recall = len(found & flipped) / len(flipped)
    print(f"label_issue recall on 200 sms with 6 flips: {recall:.2f} ({len(found)} flagged)")
    assert recall >= 0.33  # 0.50 here; the core test measures recall on a larger slice
    assert [e["score"] for e in entries] == sorted((e["score"] for e in entries), reverse=True)
    assert entries[0]["detail"].startswith("the label ")
    assert entries[0]["annotations"][0]["annotator"] == ann.username
    # a stored model that no longer loads (a plugin since uninstalled): the default model
    # checks the labels (the queue answered 500)
    with api.storage.sessions() as session, session.begin():
        project = session.get(Project, pid)
        assert project is not None
        project.settings = {**(project.settings or {}), "model": "gone_plugin"}
    again = _checked(api, pid, owner, reason="label_issue")
    assert {e["external_id"] for e in again} == found
    assert api.get(f"/projects/{pid}/label-check", owner).json()["job"]["status"] == "done"


def test_multilabel_label_check_finds_forgotten_labels(api: Api, shared_data: Path) -> None:
    """wnut17's tweets labeled with the entity types they name, 'person' forgotten in 20 of
    the sets that hold it: the label check puts up sets whose left-out label the project's
    model, out of fold, is sure of (few of them, a fair share the forgotten ones), names the
    label, and a filter by that label keeps them."""
    types = ["person", "location", "group", "corporation", "product", "creative-work"]
    owner = api.person("owner")
    pid = api.project(owner, labels=types, task="multilabel")
    rows = []
    with open(shared_data / "wnut17.jsonl", encoding="utf-8") as handle:
        for line in handle:
            row = json.loads(line)
            if row["split"] == "train":
                rows.append(row)
            if len(rows) == 800:
                break
    added = api.post(f"/projects/{pid}/items", owner, json=[
        {"external_id": r["id"], "data": {"text": r["text"]}} for r in rows])
    assert added.json()["inserted"] == len(rows)
    ann = api.member(pid, "annotator")
    ids: dict[str, int] = {}
    after = None
    while True:
        page = api.get(f"/projects/{pid}/items", owner, params={
            "limit": 1000, **({} if after is None else {"after": after})}).json()
        ids.update({i["external_id"]: i["id"] for i in page["items"]})
        if (after := page["next_after"]) is None:
            break
    named = [r["id"] for r in rows if any(s["label"] == "person" for s in r["spans"])]
    forgotten = set(named[::3][:20])
    for r in rows:
        given = sorted({s["label"] for s in r["spans"]} - ({"person"} if r["id"] in forgotten
                                                             else set()), key=types.index)
        answer = api.post(f"/projects/{pid}/annotations", ann,
                          json={"item_id": ids[r["id"]], "labels": given})
        assert answer.status_code == 201, answer.text
    entries = _checked(api, pid, owner, reason="label_issue", limit=500)
    found = {e["external_id"] for e in entries}
    print(f"multi-label label check: {len(entries)} flagged of {len(rows)}, "
          f"{len(found & forgotten)} of the {len(forgotten)} forgotten persons")
    assert 0 < len(entries) <= len(rows) // 20
    assert len(found & forgotten) >= 2
    assert len(found & forgotten) / len(found) >= 3 * len(forgotten) / len(rows)  # a lift
    first = next(e for e in entries if e["external_id"] in forgotten
                 and e["detail"].startswith("'person' looks left out: a model trained on "))
    assert [e["score"] for e in entries] == sorted((e["score"] for e in entries), reverse=True)
    by_person = api.get(f"/projects/{pid}/review", owner, params={
        "reason": "label_issue", "label": "person", "limit": 500}).json()
    assert first["item_id"] in {e["item_id"] for e in by_person}


def test_label_issues_with_many_intents_and_few_labels_each(api: Api, shared_data: Path
                                                             ) -> None:
    """40 intents of clinc150 at 2 to 6 labels each, one label in 25 flipped: the label
    check asks the project's own model, so the flips rank first and the correct labels are
    not flagged by the dozen (a plain logistic regression on the same features learned next
    to nothing from the half of the labels each fold had: it flagged 43 and ranked no flip
    in its first 8; the project's model on half the labels flagged 11 and ranked 5 flips
    there; on four fifths of them (five folds), temperature scaled, 9 and 7)."""
    rows: dict[str, list[dict[str, Any]]] = {}
    with open(shared_data / "clinc150.jsonl", encoding="utf-8") as handle:
        for line in handle:
            row = json.loads(line)
            if row["split"] == "train" and row["label"] != "oos":
                rows.setdefault(row["label"], []).append(row)
    intents = sorted(rows)[:40]
    # as a run hands them out: 2 to 6 labels an intent
    picked = [r for n, intent in enumerate(intents) for r in rows[intent][:3 + n % 4]]
    owner = api.person("owner")
    pid = api.project(owner, labels=intents)
    added = api.post(f"/projects/{pid}/items", owner, json=[
        {"external_id": r["id"], "data": {"text": r["text"]}} for r in picked])
    assert added.json()["inserted"] == len(picked)
    ann = api.member(pid, "annotator")
    ids = {i["external_id"]: i["id"] for i in api.get(
        f"/projects/{pid}/items", owner, params={"limit": 1000}).json()["items"]}
    flipped = {r["id"] for r in picked[2::25]}  # one in 25, each to the next intent
    for r in picked:
        label = r["label"]
        if r["id"] in flipped:
            label = intents[(intents.index(label) + 1) % len(intents)]
        _label(api, pid, ann, ids[r["id"]], label)
    entries = _checked(api, pid, owner, reason="label_issue", limit=500)
    ranked = [e["external_id"] for e in entries]
    first = set(ranked[:len(flipped)])
    print(f"label_issue with 40 intents: {len(entries)} flagged, "
          f"{len(first & flipped)} of the first {len(flipped)} flipped")
    assert len(first & flipped) >= 6
    assert len(entries) <= 20
    # each names the intent the check finds likelier: a flip's, mostly the one it came from
    truth = {r["id"]: r["label"] for r in picked}
    named = [e for e in entries if e["external_id"] in flipped
             and e["detail"].endswith(f"finds '{truth[e['external_id']]}' likelier")]
    print(f"{len(named)} of the flips flagged name their true intent")
    assert len(named) >= 4
    assert all(" likelier" in e["detail"] for e in entries)
    # a filter by an intent holds the labels the check finds likelier to be it
    some = next(e for e in named)
    by_label = api.get(f"/projects/{pid}/review", owner,
                       params={"reason": "label_issue", "label": truth[some["external_id"]]})
    assert some["item_id"] in {e["item_id"] for e in by_label.json()}


def test_model_disagreements_come_from_the_active_model(api: Api) -> None:
    pid, owner, _, items = _crowd(api)
    with api.storage.sessions() as session, session.begin():
        create_model_version(session, pid)
        activate_model_version(session, pid, 1)
    # The model says 'neg' for every item; the consensus is 'pos' on items 0, 1 and 4.
    api.storage.arrays.save(pid, "probs", np.tile([[0.1, 0.9]], (6, 1)).astype(np.float32))
    entries = api.get(f"/projects/{pid}/review", owner,
                      params={"reason": "model_disagrees"}).json()
    assert {e["item_id"] for e in entries} == {items[0], items[1], items[4]}
    first = entries[0]
    assert first["suggestion"] == {"label": "neg", "confidence": pytest.approx(0.9),
                                   "model_version": 1, "model_round": None}  # no round's
    assert first["score"] == pytest.approx(0.9)
    assert first["detail"] == "model version 1 says 'neg' (0.90); the consensus is 'pos'"
    assert first["proposed"] == ["neg"]  # the correction the page offers first
    # a filter by the model's label finds the items it says are that label
    assert {e["item_id"] for e in api.get(f"/projects/{pid}/review", owner, params={
        "reason": "model_disagrees", "label": "neg"}).json()} == {items[0], items[1], items[4]}
    with api.storage.sessions() as session, session.begin():  # a model a round trained
        rnd = create_round(session, pid, strategy="margin", batch_size=1)
        create_model_version(session, pid, round_id=rnd.id)
        activate_model_version(session, pid, 2)
        number = rnd.number
    entries = api.get(f"/projects/{pid}/review", owner,
                      params={"reason": "model_disagrees"}).json()
    assert entries[0]["detail"].startswith(f"the model of round {number} says 'neg'")
    # the round of the model behind the predictions, for the page to name it
    assert {(e["suggestion"]["model_version"], e["suggestion"]["model_round"])
            for e in entries} == {(2, number)}
    # a purged item: the model saw nothing of it, so it suspects its label no more
    assert api.post(f"/projects/{pid}/items/purge", owner,
                    json={"item_ids": [items[1]]}).status_code == 200
    entries = api.get(f"/projects/{pid}/review", owner,
                      params={"reason": "model_disagrees"}).json()
    assert {e["item_id"] for e in entries} == {items[0], items[4]}


def test_a_multilabel_models_sure_labels_put_an_item_up_for_review(api: Api) -> None:
    """A label the model is sure applies that the consensus leaves out, or sure does not
    apply that it gives: the entry names them, and the model's labels are the correction."""
    owner = api.person("owner")
    pid = api.project(owner, n_items=4, labels=["a", "b", "c"], task="multilabel")
    ann = api.member(pid, "annotator")
    items = _items(api, pid, owner)
    for item_id, labels in zip(items, [["a"], ["a", "b"], [], ["c"]], strict=True):
        answer = api.post(f"/projects/{pid}/annotations", ann,
                          json={"item_id": item_id, "labels": labels})
        assert answer.status_code == 201, answer.text
    with api.storage.sessions() as session, session.begin():
        create_model_version(session, pid)
        activate_model_version(session, pid, 1)
    api.storage.arrays.save(pid, "probs", np.array([
        [0.95, 0.2, 0.3],    # 'a' as given: nothing to say
        [0.97, 0.05, 0.1],   # sure 'b' does not apply
        [0.1, 0.92, 0.6],    # sure of 'b', which nobody gave ('c' at 0.6 is not sure)
        [0.5, 0.5, 0.85]],   # 'c' likely, not sure: nothing to say
        dtype=np.float32))
    entries = api.get(f"/projects/{pid}/review", owner,
                      params={"reason": "model_disagrees"}).json()
    assert [e["item_id"] for e in entries] == [items[1], items[2]]  # the surer first
    assert entries[0]["score"] == pytest.approx(0.95)
    assert entries[0]["detail"] == (
        "model version 1 says 'b' does not apply (0.05); the consensus is ['a', 'b']")
    assert entries[1]["detail"] == "model version 1 says 'b' applies (0.92); the consensus is []"
    assert entries[1]["suggestion"]["label"] == ["b", "c"]
    # filtered by label: the labels an entry is about ('c' at 0.6 is not one)
    by_c = api.get(f"/projects/{pid}/review", owner,
                   params={"reason": "model_disagrees", "label": "c"}).json()
    assert by_c == []
    # a reviewer's correction to the model's labels takes the item out of the queue
    annotation = entries[1]["annotations"][0]["annotation_id"]
    done = api.post(f"/projects/{pid}/annotations/{annotation}/review", owner,
                    json={"accept": False, "labels": ["b", "c"]})
    assert done.status_code in (200, 201), done.text
    entries = api.get(f"/projects/{pid}/review", owner,
                      params={"reason": "model_disagrees"}).json()
    assert [e["item_id"] for e in entries] == [items[1]]


def test_relabel_advice_prefers_a_contested_item_over_a_confident_new_one(api: Api) -> None:
    owner = api.person("owner")
    pid = api.project(owner, n_items=5, settings={"overlap": 3})
    a, b = api.member(pid, "annotator"), api.member(pid, "annotator")
    items = _items(api, pid, owner)
    assert api.get(f"/projects/{pid}/relabel", owner).json()["advice"] is None  # no model
    for who, labels in ((a, ["pos", "pos", "neg"]), (b, ["pos", "neg", "neg"])):
        for item_id, label in zip(items[:3], labels, strict=True):
            _label(api, pid, who, item_id, label)
    with api.storage.sessions() as session, session.begin():
        create_model_version(session, pid)
        activate_model_version(session, pid, 1)
    probs = np.array([[0.95, 0.05], [0.5, 0.5], [0.05, 0.95], [0.97, 0.03], [0.9, 0.1]])
    api.storage.arrays.save(pid, "probs", probs.astype(np.float32))
    body = api.get(f"/projects/{pid}/relabel", owner).json()
    assert body["advice"] == "relabel"
    assert body["relabel"][0]["item_id"] == items[1]
    assert body["relabel"][0]["n_labels"] == 2
    assert {x["item_id"] for x in body["label_new"]} == {items[3], items[4]}
    assert body["label_new"][0]["score"] <= body["label_new"][1]["score"]
    assert_error(api.get(f"/projects/{pid}/relabel", a), 403, "forbidden")


def test_review_queue_filters_by_the_round_that_selected_the_item(api: Api) -> None:
    pid, owner, _, items = _crowd(api)
    with api.storage.sessions() as session, session.begin():
        rnd = create_round(session, pid, strategy="margin", batch_size=2)
        record_selection(session, pid, rnd.id, [items[2], items[4]], [0.9, 0.8],
                         strategy="margin")
    picked = api.get(f"/projects/{pid}/review", owner,
                     params={"reason": "disagreement", "round": 1}).json()
    assert {e["item_id"] for e in picked} == {items[2], items[4]}
    assert api.get(f"/projects/{pid}/review", owner, params={"round": 2}).json() == []
    assert_error(api.get(f"/projects/{pid}/review", owner, params={"limit": 501}), 422,
                 "invalid_input")


def _sms_project(api: Api, shared_data: Path, n: int
                 ) -> tuple[int, Person, Person, list[dict[str, Any]], dict[str, int]]:
    """A project of the first ``n`` SMS texts (pid, owner, an annotator, the rows, their item
    ids by external id)."""
    owner = api.person("owner")
    pid = api.project(owner)
    with open(shared_data / "sms_spam.jsonl", encoding="utf-8") as handle:
        rows = [json.loads(line) for _, line in zip(range(n), handle, strict=False)]
    api.post(f"/projects/{pid}/items", owner, json=[
        {"external_id": r["id"], "data": {"text": r["text"]}} for r in rows])
    ann = api.member(pid, "annotator")
    ids = {i["external_id"]: i["id"] for i in api.get(
        f"/projects/{pid}/items", owner, params={"limit": 1000}).json()["items"]}
    return pid, owner, ann, rows, ids


def test_the_label_check_runs_as_a_job_and_never_on_the_request(
        api: Api, shared_data: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The review queue reads the newest label check and asks a worker for one of the
    current labels (one queued at a time; none again on labels a check failed on); its
    findings show once the check has run, and stay, marked stale, while labels change."""
    from activelabel.labeling import quality

    pid, owner, ann, rows, ids = _sms_project(api, shared_data, 80)
    spam = {r["id"] for r in rows if r["label"] == "spam"}
    flipped = {next(iter(sorted(spam))), next(r["id"] for r in rows if r["id"] not in spam)}
    for r in rows[:-1]:
        truth = "pos" if r["id"] in spam else "neg"
        _label(api, pid, ann, ids[r["id"]], ({"pos": "neg", "neg": "pos"}[truth]
                                              if r["id"] in flipped else truth))
    status = f"/projects/{pid}/label-check"
    assert_error(api.get(status, ann), 403, "forbidden")

    def trained(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("the review request trained a model")

    out_of_fold, compute_issues = quality._out_of_fold, quality._compute_issues
    monkeypatch.setattr(quality, "_out_of_fold", trained)
    for _ in range(2):  # the request asks once; a check already queued reads later labels
        assert api.get(f"/projects/{pid}/review", owner,
                       params={"reason": "label_issue"}).json() == []
    first = api.get(status, owner).json()
    assert first == {"state": "not_yet", "labels": 79, "labels_checked": None, "flagged": 0,
                     "finished_at": None, "next_check_after": None,
                     "job": {"id": first["job"]["id"], "status": "queued", "error": None}}
    with api.storage.read_sessions() as session:  # one asked
        assert session.query(Job).filter(Job.project_id == pid,
                                         Job.kind == "label_check").count() == 1
    monkeypatch.setattr(quality, "_out_of_fold", out_of_fold)
    assert run_label_checks(api.storage, pid) == [
        {"labels": 79, "flagged": api.get(status, owner).json()["flagged"], "kept": True}]
    done = api.get(status, owner).json()
    assert (done["state"], done["labels_checked"], done["job"]["status"]) == (
        "up_to_date", 79, "done")
    assert done["flagged"] > 0
    found = api.get(f"/projects/{pid}/review", owner, params={"reason": "label_issue"}).json()
    assert len(found) == done["flagged"]
    assert run_label_checks(api.storage, pid) == []  # current: nothing asked

    # a new label: the findings stay, marked stale, and a check of the new labels is asked
    _label(api, pid, ann, ids[rows[-1]["id"]], "pos" if rows[-1]["id"] in spam else "neg")
    again = api.get(f"/projects/{pid}/review", owner, params={"reason": "label_issue"}).json()
    assert [e["item_id"] for e in again] == [e["item_id"] for e in found]
    stale = api.get(status, owner).json()
    assert (stale["state"], stale["labels"], stale["labels_checked"]) == ("outdated", 80, 79)
    assert stale["job"]["status"] == "queued"

    # an undone label (the current labels' newest id goes down): the next check is kept
    # (it was thrown away as older, and a new one was asked on every read)
    newest = api.get(f"/projects/{pid}/items/{ids[rows[-1]['id']]}", owner).json()
    assert run_label_checks(api.storage, pid)[0]["kept"] is True
    assert api.post(f"/projects/{pid}/items/{newest['id']}/undo", ann).status_code == 201
    api.get(f"/projects/{pid}/review", owner)
    assert run_label_checks(api.storage, pid)[0]["kept"] is True
    assert api.get(status, owner).json()["state"] == "up_to_date"
    _label(api, pid, ann, ids[rows[-1]["id"]], "pos" if rows[-1]["id"] in spam else "neg")
    api.get(f"/projects/{pid}/review", owner)
    stale = api.get(status, owner).json()
    assert (stale["state"], stale["job"]["status"]) == ("outdated", "queued")

    # a check that fails is not asked again on the same labels
    monkeypatch.setattr(quality, "_compute_issues", trained)
    with pytest.raises(AssertionError):
        run_label_checks(api.storage, pid)
    monkeypatch.setattr(quality, "_compute_issues", compute_issues)
    failed = api.get(status, owner).json()
    assert (failed["state"], failed["job"]["status"]) == ("outdated", "failed")
    assert "trained a model" in failed["job"]["error"]
    api.get(f"/projects/{pid}/review", owner)
    assert api.get(status, owner).json()["job"]["id"] == failed["job"]["id"]


def test_the_check_status_never_reads_the_labels(
        api: Api, shared_data: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The review page polls the check's status every few seconds while a check is on its
    way: it tells the current labels from those checked by their revisions' mark, and counts
    the labels put up that are current still, without reading the labels (which cost what a
    review read costs); what it says matches the queue."""
    from activelabel.labeling import quality

    pid, owner, ann, rows, ids = _sms_project(api, shared_data, 60)
    truth = {r["id"]: "pos" if r["label"] == "spam" else "neg" for r in rows}
    flipped = [r["id"] for r in rows if r["label"] == "spam"][:2] + [
        r["id"] for r in rows if r["label"] == "ham"][:2]
    for r in rows:
        _label(api, pid, ann, ids[r["id"]], ({"pos": "neg", "neg": "pos"}[truth[r["id"]]]
                                              if r["id"] in flipped else truth[r["id"]]))
    found = _checked(api, pid, owner, reason="label_issue")
    assert len(found) >= 2

    def read(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("the status read the labels")

    status = f"/projects/{pid}/label-check"
    with monkeypatch.context() as patched:
        patched.setattr(quality, "current_labels", read)
        done = api.get(status, owner).json()
    assert (done["state"], done["labels"], done["labels_checked"], done["flagged"]) == (
        "up_to_date", 60, 60, len(found))
    # the first label put up is corrected by its annotator, the second withdrawn
    first, second = found[0]["item_id"], found[1]["item_id"]
    by_item = {v: k for k, v in ids.items()}
    _label(api, pid, ann, first, truth[by_item[first]])
    assert api.post(f"/projects/{pid}/items/{second}/undo", ann).status_code == 201
    with monkeypatch.context() as patched:
        patched.setattr(quality, "current_labels", read)
        stale = api.get(status, owner).json()
    assert (stale["state"], stale["labels"], stale["labels_checked"], stale["flagged"]) == (
        "outdated", 59, 60, len(found) - 2)
    assert stale["job"]["status"] == "queued"  # asked, as a read of the queue asks
    queue = api.get(f"/projects/{pid}/review", owner, params={"reason": "label_issue"}).json()
    assert len(queue) == stale["flagged"]
    assert {first, second}.isdisjoint(e["item_id"] for e in queue)


def test_a_check_of_an_earlier_method_reads_outdated_and_runs_again(
        api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    """A check kept before the check's method changed (an upgrade) is not shown as current:
    the first read asks for one by the new method."""
    from activelabel.labeling import quality

    pid, owner, _, _ = _crowd(api)
    monkeypatch.setattr(quality, "CHECK_VERSION", 1)
    api.get(f"/projects/{pid}/review", owner)
    assert len(run_label_checks(api.storage, pid)) == 1
    status = f"/projects/{pid}/label-check"
    assert api.get(status, owner).json()["state"] == "up_to_date"
    monkeypatch.setattr(quality, "CHECK_VERSION", 2)
    after = api.get(status, owner).json()
    assert (after["state"], after["job"]["status"]) == ("outdated", "queued")
    assert len(run_label_checks(api.storage, pid)) == 1
    assert api.get(status, owner).json()["state"] == "up_to_date"


def test_an_item_flagged_for_two_labels_names_both_likelier_labels(
        api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    """Two annotators' labels of one item flagged, each with its own likelier label: the one
    entry of the item is found by a filter on either."""
    from activelabel.labeling import quality

    owner = api.person("owner")
    pid = api.project(owner, labels=["a", "b", "c", "d"], n_items=12,
                      settings={"overlap": 2})
    first, second = api.member(pid, "annotator", "ann_1"), api.member(pid, "annotator", "ann_2")
    items = _items(api, pid, owner)
    given = [_label(api, pid, first, item, "a")["id"] for item in items]
    other = _label(api, pid, second, items[0], "b")["id"]
    planted = {given[0]: (0.9, "c"), other: (0.8, "d")}
    monkeypatch.setattr(quality, "_compute_issues", lambda *args, **kwargs: planted)
    api.get(f"/projects/{pid}/review", owner)
    assert len(run_label_checks(api.storage, pid)) == 1
    for label in ("c", "d"):
        entries = api.get(f"/projects/{pid}/review", owner,
                          params={"reason": "label_issue", "label": label}).json()
        assert [e["item_id"] for e in entries] == [items[0]], label
    entry = api.get(f"/projects/{pid}/review", owner, params={"reason": "label_issue"}).json()
    assert [e["detail"] for e in entry] == [
        "the label 'a' looks wrong: a model trained on the other labels gives it probability "
        "0.10 and finds 'c' likelier"]
    assert [e["proposed"] for e in entry] == [["c", "d"]]  # the corrections offered first


def test_a_span_project_has_no_label_check(api: Api) -> None:
    owner = api.person("owner")
    pid = api.project(owner, labels=["PER", "LOC"], task="spans")
    assert api.get(f"/projects/{pid}/review", owner).json() == []
    assert api.get(f"/projects/{pid}/label-check", owner).json() == {
        "state": "not_applicable", "labels": 0, "labels_checked": None, "flagged": 0,
        "finished_at": None, "next_check_after": None, "job": None}


def test_a_review_read_never_fails_for_the_check_it_asks_for(
        api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    """The queue is read even when asking for a label check cannot be written (a database
    busy or gone for the write)."""
    from sqlalchemy.exc import OperationalError

    from activelabel.labeling import quality

    pid, owner, _, _ = _crowd(api)  # 18 labels: a check is asked for

    def busy(*args: Any, **kwargs: Any) -> Any:
        raise OperationalError("INSERT INTO jobs", {}, Exception("database is locked"))

    monkeypatch.setattr(quality, "request_label_check", busy)
    answer = api.get(f"/projects/{pid}/review", owner)
    assert answer.status_code == 200, answer.text
    assert {e["reason"] for e in answer.json()} >= {"disagreement"}
    status = api.get(f"/projects/{pid}/label-check", owner)  # it asks as well
    assert status.status_code == 200, status.text
    assert status.json()["job"] is None


def test_below_ten_labels_no_check_is_shown_or_asked(api: Api) -> None:
    """Labels withdrawn below the check's minimum: the earlier check's findings go (they
    stayed, marked outdated, with no check ever asked again)."""
    owner = api.person("owner")
    pid = api.project(owner, n_items=10)
    ann = api.member(pid, "annotator")
    ids = _items(api, pid, owner)
    for n, item_id in enumerate(ids):
        _label(api, pid, ann, item_id, "pos" if n % 2 else "neg")
    api.get(f"/projects/{pid}/review", owner)
    assert len(run_label_checks(api.storage, pid)) == 1
    status = f"/projects/{pid}/label-check"
    assert api.get(status, owner).json()["state"] == "up_to_date"
    assert api.post(f"/projects/{pid}/items/{ids[-1]}/undo", ann).status_code == 201
    api.get(f"/projects/{pid}/review", owner)
    after = api.get(status, owner).json()
    assert (after["state"], after["labels"], after["flagged"]) == ("not_yet", 9, 0)
    assert after["job"]["status"] == "done"  # none asked


def test_label_checks_rest_four_times_their_duration(api: Api,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """After a check, the next waits four times its duration (checks take at most a fifth
    of a worker's time however often the queue is read); the status says until when, and a
    read after that asks for it."""
    from datetime import timedelta

    from activelabel.labeling import quality
    from activelabel.store.models import Job, utcnow

    monkeypatch.setattr(quality, "CHECK_REST_FACTOR", 4.0)
    pid, owner, people, items = _crowd(api)
    api.get(f"/projects/{pid}/review", owner)
    assert len(run_label_checks(api.storage, pid)) == 1
    finished = utcnow()
    with api.storage.sessions() as session, session.begin():  # a check of 30 s, just done
        job = session.query(Job).filter(Job.project_id == pid, Job.kind == "label_check").one()
        job.started_at, job.finished_at = finished - timedelta(seconds=30), finished
    _label(api, pid, people["c"], items[0], "neg")  # the labels change
    api.get(f"/projects/{pid}/review", owner)
    status = api.get(f"/projects/{pid}/label-check", owner).json()
    assert (status["state"], status["job"]["status"]) == ("outdated", "done")  # none asked
    rest = datetime.fromisoformat(status["next_check_after"])
    assert abs((rest - finished).total_seconds() - 120) < 1
    with api.storage.sessions() as session, session.begin():  # the rest is over
        job = session.query(Job).filter(Job.project_id == pid, Job.kind == "label_check").one()
        job.started_at, job.finished_at = (finished - timedelta(seconds=200),
                                           finished - timedelta(seconds=170))
    status = api.get(f"/projects/{pid}/label-check", owner).json()  # the status asks too
    assert status["next_check_after"] is None
    assert status["job"]["status"] == "queued"
