"""Gold items: imported or set with their answer, mixed into tasks at the project's gold rate,
indistinguishable from pool tasks for annotators, scored per annotator."""

from __future__ import annotations

from typing import Any

from tests.support.api import Api, Person, assert_error


def _gold_project(api: Api, *, gold_rate: float, n_pool: int = 16,
                  n_gold: int = 4) -> tuple[int, Person]:
    owner = api.person("owner")
    pid = api.project(owner, settings={"gold_rate": gold_rate, "overlap": 1})
    rows: list[dict[str, Any]] = [{"external_id": f"p{i}", "data": {"text": f"pool {i}"}}
                                  for i in range(n_pool)]
    rows += [{"external_id": f"g{i}", "data": {"text": f"gold {i}"}, "gold_labels": ["pos"]}
             for i in range(n_gold)]
    added = api.post(f"/projects/{pid}/items", owner, json=rows).json()
    assert added["inserted"] == n_pool + n_gold, added
    return pid, owner


def _work(api: Api, pid: int, who: Person, n_tasks: int, label: str = "pos") -> list[dict]:
    """Ask for one task at a time and label it; the tasks seen."""
    seen = []
    for _ in range(n_tasks):
        tasks = api.get(f"/projects/{pid}/tasks/next", who, params={"n": 1}).json()
        if not tasks:
            break
        seen.append(tasks[0])
        answer = api.post(f"/projects/{pid}/annotations", who,
                          json={"item_id": tasks[0]["item"]["id"], "labels": [label]})
        assert answer.status_code == 201, answer.text
    return seen


def test_imported_gold_items_carry_their_answer(api: Api) -> None:
    pid, owner = _gold_project(api, gold_rate=0.25)
    gold = api.get(f"/projects/{pid}/items", owner, params={"split": "gold"}).json()["items"]
    assert len(gold) == 4
    assert {tuple(i["gold_labels"]) for i in gold} == {("pos",)}
    bad = api.post(f"/projects/{pid}/items", owner, json=[
        {"external_id": "b1", "data": {"text": "x"}, "gold_labels": ["maybe"]},
        {"external_id": "b2", "data": {"text": "x"}, "gold_labels": ["pos"], "split": "pool"}])
    assert bad.json()["rejected_count"] == 2
    assert "gold_labels must be" in bad.json()["rejected"][0]["reason"]


def test_gold_is_mixed_in_at_the_rate_and_looks_like_pool_work(api: Api) -> None:
    pid, owner = _gold_project(api, gold_rate=0.25)
    ann = api.member(pid, "annotator")
    seen = _work(api, pid, ann, 16)
    assert len(seen) == 16
    gold_ids = {i["id"] for i in api.get(f"/projects/{pid}/items", owner,
                                         params={"split": "gold"}).json()["items"]}
    served_gold = [t for t in seen if t["item"]["id"] in gold_ids]
    assert len(served_gold) == 4  # a quarter of 16
    assert {t["item"]["split"] for t in seen} == {"pool"}
    assert {t["why"] is None for t in seen} == {True}
    assert {frozenset(t) for t in served_gold} == {frozenset(t) for t in seen}
    assert {frozenset(t["item"]) for t in seen} == {frozenset(("id", "external_id", "split",
                                                               "data"))}
    # Owners see the split for what it is.
    mine = api.get(f"/projects/{pid}/tasks/next", owner, params={"n": 20}).json()
    assert "gold" in {t["item"]["split"] for t in mine}


def test_gold_goes_to_every_annotator_despite_the_overlap(api: Api) -> None:
    pid, owner = _gold_project(api, gold_rate=0.5, n_pool=8, n_gold=2)
    first, second = api.member(pid, "annotator"), api.member(pid, "annotator")
    gold_ids = {i["id"] for i in api.get(f"/projects/{pid}/items", owner,
                                         params={"split": "gold"}).json()["items"]}
    one = {t["item"]["id"] for t in _work(api, pid, first, 4)}
    two = {t["item"]["id"] for t in _work(api, pid, second, 4)}
    assert gold_ids <= one
    assert gold_ids <= two


def test_gold_accuracy_per_annotator_and_owners_set_answers(api: Api) -> None:
    pid, owner = _gold_project(api, gold_rate=0.25, n_pool=4, n_gold=2)
    good, bad = api.member(pid, "annotator"), api.member(pid, "annotator")
    gold = api.get(f"/projects/{pid}/items", owner, params={"split": "gold"}).json()["items"]
    for item in gold:
        for who, label in ((good, "pos"), (bad, "neg")):
            api.post(f"/projects/{pid}/annotations", who,
                     json={"item_id": item["id"], "labels": [label]})
    rows = {r["username"]: r for r in api.get(f"/projects/{pid}/annotators", owner).json()}
    assert rows[good.username]["gold_accuracy"] == 1.0
    assert rows[bad.username]["gold_accuracy"] == 0.0
    # The owner changes one answer: accuracies follow.
    changed = api.post(f"/projects/{pid}/gold", owner,
                       json=[{"item_id": gold[0]["id"], "labels": ["neg"]}])
    assert changed.status_code == 200, changed.text
    assert changed.json()[0]["gold_labels"] == ["neg"]
    rows = {r["username"]: r for r in api.get(f"/projects/{pid}/annotators", owner).json()}
    assert rows[good.username]["gold_accuracy"] == 0.5
    assert_error(api.post(f"/projects/{pid}/gold", good,
                          json=[{"item_id": gold[0]["id"], "labels": ["neg"]}]), 403, "forbidden")
    assert_error(api.post(f"/projects/{pid}/gold", owner,
                          json=[{"item_id": gold[0]["id"], "labels": ["maybe"]}]),
                 400, "invalid_input")
    audit = api.get(f"/projects/{pid}/audit", owner).json()
    assert audit[0]["action"] == "set_gold"


def test_gold_settings_are_validated(api: Api) -> None:
    owner = api.person("owner")
    pid = api.project(owner)
    for bad in ({"gold_rate": 1.5}, {"gold_alert_below": 0}, {"consensus": "vote"},
                {"agreement_target": 2}):
        answer = api.patch(f"/projects/{pid}", owner, json={"settings": bad})
        error = assert_error(answer, 422, "invalid_input")
        assert error["details"][0]["field"] == f"body.settings.{next(iter(bad))}"
