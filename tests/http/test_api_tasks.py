"""Next tasks: leases, overlap, release, private fields, suggestion and why."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np

from activelabel.store import (
    activate_model_version,
    blind_answers,
    create_model_version,
    create_round,
    finish_round,
    record_selection,
)
from tests.support.api import Api, Person, assert_error


def _ids(tasks: list[dict]) -> list[int]:  # type: ignore[type-arg]
    return [t["item"]["id"] for t in tasks]


def test_next_tasks_lease_items_and_validate_n(api: Api) -> None:
    owner = api.person("owner")
    pid = api.project(owner, n_items=5, settings={"lease_seconds": 60})
    ann = api.member(pid, "annotator")
    answer = api.get(f"/projects/{pid}/tasks/next", ann, params={"n": 2})
    assert answer.status_code == 200, answer.text
    tasks = answer.json()
    items = api.get(f"/projects/{pid}/items", owner).json()["items"]
    by_rank = [i["external_id"] for i in sorted(items, key=lambda i: (i["queue_rank"], i["id"]))]
    assert [t["item"]["external_id"] for t in tasks] == by_rank[:2]  # seeded, not file order
    assert all(t["lease_expires_at"] and t["suggestion"] is None for t in tasks)
    assert all(t["why"]["ranked_by"] == "random" and t["why"]["detail"] ==
               "random order before the first model (seeded)" for t in tasks)
    # Asking again renews the same leases instead of handing out more items.
    assert _ids(api.get(f"/projects/{pid}/tasks/next", ann, params={"n": 2}).json()) == _ids(tasks)
    for bad in ("0", "101", "many", "-1"):
        error = assert_error(api.get(f"/projects/{pid}/tasks/next", ann, params={"n": bad}),
                             422, "invalid_input")
        assert error["details"][0]["field"] == "query.n"
    assert_error(api.get(f"/projects/{pid}/tasks/next", api.person("out")), 404, "not_found")
    assert_error(api.get(f"/projects/{pid}/tasks/next"), 401, "unauthorized")


def test_two_annotators_get_disjoint_items_with_overlap_one(api: Api) -> None:
    owner = api.person("owner")
    pid = api.project(owner, n_items=6, settings={"overlap": 1})
    first, second = api.member(pid, "annotator"), api.member(pid, "annotator")
    a = _ids(api.get(f"/projects/{pid}/tasks/next", first, params={"n": 4}).json())
    b = _ids(api.get(f"/projects/{pid}/tasks/next", second, params={"n": 4}).json())
    assert len(a) == 4
    assert len(b) == 2
    assert not set(a) & set(b)
    # A released item goes back to the queue and to the next caller.
    released = api.post(f"/projects/{pid}/tasks/{a[0]}/release", first)
    assert released.status_code == 200
    assert released.json()["released"] is True
    assert_error(api.post(f"/projects/{pid}/tasks/{a[0]}/release", first), 404, "not_found")
    assert_error(api.post(f"/projects/{pid}/tasks/{a[1]}/release", second), 404, "not_found")
    assert _ids(api.get(f"/projects/{pid}/tasks/next", second, params={"n": 4}).json()) == [
        *b, a[0]]


def test_overlap_two_gives_each_item_to_two_annotators(api: Api) -> None:
    owner = api.person("owner")
    pid = api.project(owner, n_items=3, settings={"overlap": 2})
    people = [api.member(pid, "annotator") for _ in range(3)]
    got = [_ids(api.get(f"/projects/{pid}/tasks/next", p, params={"n": 3}).json())
           for p in people]
    assert got[0] == got[1]
    assert len(got[0]) == 3
    assert got[2] == []


def test_private_fields_are_hidden_from_annotators_only(api: Api) -> None:
    owner = api.person("owner")
    pid = api.project(owner, n_items=3, private_fields=["secret"], settings={"overlap": 3})
    ann, rev = api.member(pid, "annotator"), api.member(pid, "reviewer")
    for task in api.get(f"/projects/{pid}/tasks/next", ann, params={"n": 3}).json():
        assert task["item"]["data"] == {"text": task["item"]["data"]["text"]}
        assert "secret" not in str(task)
    for who in (rev, owner):
        data = [t["item"]["data"] for t in
                api.get(f"/projects/{pid}/tasks/next", who, params={"n": 3}).json()]
        assert sorted(d["secret"] for d in data) == ["s0", "s1", "s2"]


def test_tasks_carry_suggestion_and_why_from_the_latest_round(api: Api) -> None:
    owner = api.person("owner")
    pid = api.project(owner, n_items=4, labels=["pos", "neg", "neutral"],
                      settings={"suggestion_min_confidence": 0, "suggestion_display": "always"})
    ann = api.member(pid, "annotator")
    items = api.get(f"/projects/{pid}/items", owner).json()["items"]
    ids = [i["id"] for i in items]
    keys = {i["id"]: i["queue_rank"] for i in items}
    with api.storage.sessions() as session, session.begin():
        rnd = create_round(session, pid, strategy="margin", batch_size=2)
        model = create_model_version(session, pid, round_id=rnd.id)
        activate_model_version(session, pid, model.version)
        record_selection(session, pid, rnd.id, [ids[3], ids[1]], [0.75, 0.5],
                         model_version_id=model.id)
        finish_round(session, pid, rnd.id, model_version_id=model.id, n_labels_used=0)
        number, version, round_id = rnd.number, model.version, rnd.id
    probs = np.array([[0.2, 0.7, 0.1], [0.1, 0.1, 0.8], [0.3, 0.3, 0.4], [0.6, 0.3, 0.1]],
                     dtype=np.float32)
    api.storage.arrays.save(pid, "probs", probs)
    tasks = api.get(f"/projects/{pid}/tasks/next", ann, params={"n": 3}).json()
    third = min((ids[0], ids[2]), key=lambda i: (keys[i], i))
    assert _ids(tasks) == [ids[3], ids[1], third]  # ranked first, then by seeded key
    assert tasks[0]["why"] == {"strategy": "margin", "score": 0.75, "round": number,
                               "round_id": round_id, "rank": 0, "model_version": version,
                               "ranked_by": "strategy",
                               "detail": f"picked by round {number}'s strategy margin (rank 1)"}
    assert tasks[1]["why"]["rank"] == 1
    assert tasks[2]["why"]["ranked_by"] == "random"  # no ranking was written behind the batch
    assert tasks[0]["suggestion"]["label"] == "pos"
    assert abs(tasks[0]["suggestion"]["confidence"] - 0.6) < 1e-6
    # the runner-up (what the model hesitates over) and the round that trained the model
    assert tasks[0]["suggestion"]["runner_up"] == "neg"
    assert abs(tasks[0]["suggestion"]["runner_up_confidence"] - 0.3) < 1e-6
    assert {t["suggestion"]["model_round"] for t in tasks} == {number}
    assert tasks[1]["suggestion"]["label"] == "neutral"
    assert tasks[2]["suggestion"]["label"] == ("neg" if third == ids[0] else "neutral")
    assert {t["suggestion"]["model_version"] for t in tasks} == {version}
    # A replaced probability file is picked up (new round, new scores).
    api.storage.arrays.save(pid, "probs", probs[:, ::-1].copy())
    again = api.get(f"/projects/{pid}/tasks/next", ann, params={"n": 3}).json()
    assert again[0]["suggestion"]["label"] == "neutral"


def test_concurrent_callers_never_share_an_item_beyond_the_overlap(api: Api) -> None:
    owner = api.person("owner")
    pid = api.project(owner, n_items=40, settings={"overlap": 1})
    people = [api.member(pid, "annotator") for _ in range(8)]

    def work(person: Person) -> tuple[set[int], int]:
        """Every item handed to ``person`` over three cycles, and the labels given."""
        handed: set[int] = set()
        given = 0
        for _ in range(3):
            answer = api.get(f"/projects/{pid}/tasks/next", person, params={"n": 2})
            assert answer.status_code == 200, answer.text
            got = _ids(answer.json())
            handed.update(got)
            if got:
                done = api.post(f"/projects/{pid}/annotations", person,
                                json={"item_id": got[0], "labels": ["pos"]})
                assert done.status_code == 201, done.text
                given += 1
        return handed, given

    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(work, people))
    handouts = [item for handed, _ in results for item in handed]
    assert len(handouts) == len(set(handouts))  # no item went to two people
    assert sum(given for _, given in results) >= 8
    labeled = api.get(f"/projects/{pid}/stats", owner).json()["labeled"]
    assert labeled == sum(given for _, given in results)


def _trained(api: Api, pid: int, probs: np.ndarray) -> None:  # type: ignore[type-arg]
    """An active model of a finished round whose probabilities are ``probs``."""
    with api.storage.sessions() as session, session.begin():
        rnd = create_round(session, pid, strategy="margin", batch_size=1)
        model = create_model_version(session, pid, round_id=rnd.id)
        activate_model_version(session, pid, model.version)
        finish_round(session, pid, rnd.id, model_version_id=model.id, n_labels_used=0)
    api.storage.arrays.save(pid, "probs", probs.astype(np.float32))


def test_no_suggestion_below_the_confidence_threshold_is_handed_out(api: Api) -> None:
    owner = api.person("owner")
    pid = api.project(owner, n_items=4, labels=["a", "b", "c", "d"],
                      settings={"overlap": 3, "suggestion_display": "always"})
    ann, rev = api.member(pid, "annotator"), api.member(pid, "reviewer")
    _trained(api, pid, np.array([[0.45, 0.25, 0.2, 0.1], [0.55, 0.15, 0.15, 0.15],
                                 [0.25, 0.25, 0.25, 0.25], [0.1, 0.1, 0.1, 0.7]]))

    def confidences(who: Person) -> dict[str, float | None]:
        tasks = api.get(f"/projects/{pid}/tasks/next", who, params={"n": 4}).json()
        assert len(tasks) == 4
        return {t["item"]["external_id"]: None if t["suggestion"] is None
                else round(t["suggestion"]["confidence"], 2) for t in tasks}

    # four labels: chance is 0.25, the default threshold twice that (0.5), for every role
    for who in (ann, rev, owner):
        assert confidences(who) == {"x0": None, "x1": 0.55, "x2": None, "x3": 0.7}
    changed = api.patch(f"/projects/{pid}", owner,
                        json={"settings": {"suggestion_min_confidence": 0.6}})
    assert changed.status_code == 200, changed.text
    assert confidences(ann) == {"x0": None, "x1": None, "x2": None, "x3": 0.7}
    api.patch(f"/projects/{pid}", owner, json={"settings": {"suggestion_min_confidence": 0}})
    assert None not in confidences(ann).values()
    api.patch(f"/projects/{pid}", owner, json={"settings": {"suggestion_display": "never"}})
    assert set(confidences(ann).values()) == {None}


def test_the_default_threshold_is_at_most_0_6(api: Api) -> None:
    owner = api.person("owner")
    pid = api.project(owner, n_items=3, labels=["yes", "no"],
                      settings={"suggestion_display": "always"})
    ann = api.member(pid, "annotator")
    _trained(api, pid, np.array([[0.59, 0.41], [0.6, 0.4], [0.2, 0.8]]))
    tasks = api.get(f"/projects/{pid}/tasks/next", ann, params={"n": 3}).json()
    got = {t["item"]["external_id"]: t["suggestion"] and t["suggestion"]["label"] for t in tasks}
    assert got == {"x0": None, "x1": "yes", "x2": "no"}  # twice chance (1.0) capped at 0.6


def test_after_answer_an_annotator_gets_the_suggestion_with_an_answer_only(api: Api) -> None:
    """Under after_answer (the default) an annotator's tasks carry no suggestion (the
    browser's developer tools would show it), only a group number shared by the tasks the
    model gives one label; the suggestion comes back for an answered item, as a task under
    always would carry it. Reviewers and owners get it with their tasks."""
    owner = api.person("owner")
    pid = api.project(owner, n_items=5, labels=["a", "b", "c"], settings={"overlap": 3})
    ann, rev = api.member(pid, "annotator"), api.member(pid, "reviewer")
    _trained(api, pid, np.array([[0.1, 0.8, 0.1], [0.7, 0.2, 0.1], [0.34, 0.33, 0.33],
                                 [0.1, 0.9, 0.0], [0.9, 0.05, 0.05]]))
    assert api.get(f"/projects/{pid}", owner).json()["settings"]["suggestion_display"] == \
        "after_answer"
    tasks = api.get(f"/projects/{pid}/tasks/next", ann, params={"n": 5}).json()
    assert [t["suggestion"] for t in tasks] == [None] * 5
    assert '"label"' not in api.get(f"/projects/{pid}/tasks/next", ann,
                                    params={"n": 5}).text  # nowhere in the payload
    group = {t["item"]["external_id"]: t["group"] for t in tasks}
    # x0 and x3 (b), x1 and x4 (a): one number each, named in order of first appearance;
    # x2 is below the threshold (twice chance: 0.67), so in no group
    order = [t["group"] for t in tasks if t["group"] is not None]
    assert list(dict.fromkeys(order)) == [1, 2]  # numbered as they first appear
    assert group["x0"] == group["x3"] != group["x1"] == group["x4"]
    assert group["x2"] is None
    assert {g for g in group.values() if g is not None} == {1, 2}
    ids = {t["item"]["external_id"]: t["item"]["id"] for t in tasks}
    # the answer (any of the project's labels) brings the suggestion; no label is given
    answered = api.post(f"/projects/{pid}/tasks/suggestions", ann, json={"answers": [
        {"item_id": ids["x0"], "labels": ["c"]}, {"item_id": ids["x2"], "labels": ["a"]},
        {"item_id": ids["x4"], "labels": ["a"]}]})
    assert answered.status_code == 200, answered.text
    got = {a["item_id"]: a["suggestion"] for a in answered.json()}
    assert got[ids["x2"]] is None
    assert (got[ids["x0"]]["label"], got[ids["x4"]]["label"]) == ("b", "a")
    assert abs(got[ids["x0"]]["confidence"] - 0.8) < 1e-6
    assert got[ids["x0"]]["model_round"] == 1  # the page names the model by its round
    assert api.get(f"/projects/{pid}/stats", owner).json()["labeled"] == 0
    # the same suggestion an owner's (or a reviewer's) task carries
    for who in (owner, rev):
        theirs = api.get(f"/projects/{pid}/tasks/next", who, params={"n": 5}).json()
        carried = {t["item"]["id"]: t["suggestion"] for t in theirs}
        assert carried[ids["x0"]] == got[ids["x0"]]
        assert {t["group"] for t in theirs} == {None}
    # under always the annotator's tasks carry it; under never the answer brings none
    api.patch(f"/projects/{pid}", owner, json={"settings": {"suggestion_display": "always"}})
    always = api.get(f"/projects/{pid}/tasks/next", ann, params={"n": 5}).json()
    assert {t["item"]["id"]: t["suggestion"] for t in always}[ids["x0"]] == got[ids["x0"]]
    assert {t["group"] for t in always} == {None}
    api.patch(f"/projects/{pid}", owner, json={"settings": {"suggestion_display": "never"}})
    never = api.post(f"/projects/{pid}/tasks/suggestions", ann, json={"answers": [
        {"item_id": ids["x0"], "labels": ["b"]}]})
    assert never.json() == [{"item_id": ids["x0"], "suggestion": None}]
    # an answer is one the project takes, about one of its items
    error = assert_error(api.post(f"/projects/{pid}/tasks/suggestions", ann, json={
        "answers": [{"item_id": ids["x0"], "labels": ["z"]}]}), 400, "invalid_input")
    assert "unknown labels ['z']" in error["message"]
    assert_error(api.post(f"/projects/{pid}/tasks/suggestions", ann, json={
        "answers": [{"item_id": ids["x0"], "labels": ["a", "b"]}]}), 400, "invalid_input")
    other = api.project(owner, n_items=1, labels=["a", "b", "c"])
    foreign = api.get(f"/projects/{other}/items", owner).json()["items"][0]["id"]
    assert_error(api.post(f"/projects/{pid}/tasks/suggestions", ann, json={
        "answers": [{"item_id": foreign, "labels": ["a"]}]}), 404, "not_found")
    assert_error(api.post(f"/projects/{pid}/tasks/suggestions", ann, json={"answers": []}),
                 422, "invalid_input")
    assert_error(api.post(f"/projects/{pid}/tasks/suggestions", api.person("out"), json={
        "answers": [{"item_id": ids["x0"], "labels": ["a"]}]}), 404, "not_found")
    # an annotator asks about the items handed to them only (as they label only those), so
    # the suggestions of the rest of the pool stay out of reach; free_labeling lifts it
    api.patch(f"/projects/{pid}", owner, json={"settings": {"free_labeling": False}})
    other_ann = api.member(pid, "annotator")
    assert api.post(f"/projects/{pid}/tasks/suggestions", ann, json={
        "answers": [{"item_id": ids["x0"], "labels": ["a"]}]}).status_code == 200
    refused = assert_error(api.post(f"/projects/{pid}/tasks/suggestions", other_ann, json={
        "answers": [{"item_id": ids["x0"], "labels": ["a"]}]}), 403, "forbidden")
    assert "not handed to you" in refused["message"]
    api.patch(f"/projects/{pid}", owner, json={"settings": {"free_labeling": True}})
    assert api.post(f"/projects/{pid}/tasks/suggestions", other_ann, json={
        "answers": [{"item_id": ids["x0"], "labels": ["a"]}]}).status_code == 200


def _blind(api: Api, pid: int) -> dict[tuple[int, int], list[str]]:
    """The blind answers kept in the project: (user id, item id) -> labels."""
    with api.storage.sessions() as session:
        return {(r.user_id, r.item_id): r.labels for r in blind_answers(session, pid)}


def test_the_first_answer_before_the_suggestion_is_kept_and_counted(api: Api) -> None:
    """Under after_answer an annotator's first answer for an item is kept as their blind
    answer; asking again with other labels keeps it (and brings the suggestion again); a
    refused call keeps nothing; reviewers' answers (their tasks carry the suggestion) are not
    blind. GET anchoring compares each with the label submitted after it."""
    owner = api.person("owner")
    pid = api.project(owner, n_items=4, labels=["a", "b", "c"],
                      settings={"overlap": 3, "free_labeling": False})
    ann, rev, late = (api.member(pid, "annotator"), api.member(pid, "reviewer"),
                      api.member(pid, "annotator"))
    _trained(api, pid, np.array([[0.1, 0.8, 0.1], [0.7, 0.2, 0.1], [0.34, 0.33, 0.33],
                                 [0.1, 0.9, 0.0]]))
    tasks = api.get(f"/projects/{pid}/tasks/next", ann, params={"n": 4}).json()
    ids = {t["item"]["id"]: t["item"]["external_id"] for t in tasks}
    x = {name: item_id for item_id, name in ids.items()}
    url = f"/projects/{pid}/tasks/suggestions"

    def ask(who: Person, *answers: tuple[str, str]) -> Any:
        return api.post(url, who, json={"answers": [
            {"item_id": x[name], "labels": [label]} for name, label in answers]})

    # refused calls keep nothing, not even the answers of the call that were fine
    assert_error(ask(ann, ("x0", "c"), ("x1", "z")), 400, "invalid_input")
    other = api.project(owner, n_items=1, labels=["a", "b", "c"])
    foreign = api.get(f"/projects/{other}/items", owner).json()["items"][0]["id"]
    assert_error(api.post(url, ann, json={"answers": [
        {"item_id": x["x0"], "labels": ["c"]}, {"item_id": foreign, "labels": ["a"]}]}),
        404, "not_found")
    assert_error(api.post(url, ann, json={"answers": [
        {"item_id": x["x0"], "labels": ["c"]}, {"item_id": x["x1"]}]}), 422, "invalid_input")
    assert_error(ask(late, ("x0", "c")), 403, "forbidden")  # not handed to them
    assert_error(ask(api.person("out"), ("x0", "c")), 404, "not_found")
    assert _blind(api, pid) == {}
    # the first answer is kept, with the suggestion it brought
    first = ask(ann, ("x0", "c"), ("x1", "a"), ("x2", "a"))
    assert first.status_code == 200, first.text
    assert {ids[a["item_id"]]: a["suggestion"] and a["suggestion"]["label"]
            for a in first.json()} == {"x0": "b", "x1": "a", "x2": None}
    kept = {(ann.id, x["x0"]): ["c"], (ann.id, x["x1"]): ["a"], (ann.id, x["x2"]): ["a"]}
    assert _blind(api, pid) == kept
    # asked again with other labels: the suggestion comes again, the first answer stays
    again = ask(ann, ("x0", "b"), ("x2", "b"))
    assert again.status_code == 200, again.text
    assert again.json()[0]["suggestion"] == first.json()[0]["suggestion"]
    assert _blind(api, pid) == kept
    # a reviewer's tasks carry the suggestion: their answer is not blind
    assert ask(rev, ("x3", "a")).status_code == 200
    assert _blind(api, pid) == kept
    report = api.get(f"/projects/{pid}/anchoring", owner)
    assert report.status_code == 200, report.text
    assert report.json() == [{
        "user_id": ann.id, "username": ann.username, "blind_answers": 3, "submitted": 0,
        "changed": 0, "changed_share": None, "disagreed_with_suggestion": 0,
        "switched_to_suggestion": 0, "switched_share": None}]
    # x0: c before, b (the model's) submitted; x1: a kept (the model's too); x2: a, then c
    # (no suggestion showed); the first label submitted counts, not a later correction
    for name, label in (("x0", "b"), ("x1", "a"), ("x2", "c"), ("x0", "a")):
        done = api.post(f"/projects/{pid}/annotations", ann,
                        json={"item_id": x[name], "labels": [label]})
        assert done.status_code == 201, done.text
    [row] = api.get(f"/projects/{pid}/anchoring", rev).json()
    assert {k: row[k] for k in ("blind_answers", "submitted", "changed",
                                "disagreed_with_suggestion", "switched_to_suggestion",
                                "switched_share")} == {
        "blind_answers": 3, "submitted": 3, "changed": 2, "disagreed_with_suggestion": 1,
        "switched_to_suggestion": 1, "switched_share": 1.0}
    assert abs(row["changed_share"] - 2 / 3) < 1e-9
    assert_error(api.get(f"/projects/{pid}/anchoring", ann), 403, "forbidden")
    # the export shows each kept blind answer beside the annotation it preceded
    exported = [json.loads(line) for line in api.get(
        f"/projects/{pid}/export", owner, params={"format": "jsonl"}).text.splitlines()]
    blind_of = {row["external_id"]: [a.get("blind_answer") for a in row["annotations"]]
                for row in exported}
    version = first.json()[0]["suggestion"]["model_version"]
    assert blind_of == {
        "x0": [{"labels": ["c"], "suggested": ["b"], "model_version": version}],
        "x1": [{"labels": ["a"], "suggested": ["a"], "model_version": version}],
        "x2": [{"labels": ["a"], "suggested": None, "model_version": None}]}
    # under always the suggestion shows with the task: an answer then is not blind
    api.patch(f"/projects/{pid}", owner, json={"settings": {"suggestion_display": "always"}})
    assert api.get(f"/projects/{pid}/tasks/next", late, params={"n": 4}).status_code == 200
    assert ask(late, ("x3", "a")).status_code == 200
    assert _blind(api, pid) == kept
