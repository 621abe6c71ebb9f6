"""Span projects over the API: items with text (tokens given or made), span annotations
checked against the item (token boundaries, overlap, known types; 422 otherwise), "no
entity" as an empty list, corrections as revisions."""

from __future__ import annotations

import json
from typing import Any

from tests.support.api import Api, Person, assert_error

TYPES = ["person", "location"]
TEXT = "Ann moved to New York City last May ."


def _span_project(api: Api, owner: Person, **settings: Any) -> tuple[int, list[int]]:
    pid = api.project(owner, labels=TYPES, task="spans", settings=settings)
    rows = [{"external_id": "a", "data": {"text": TEXT}},
            {"external_id": "b", "data": {"text": "@bob went to Rome", "tokens":
                                          ["@bob", "went", "to", "Rome"]}}]
    added = api.post(f"/projects/{pid}/items", owner, json=rows)
    assert added.json()["inserted"] == 2, added.text
    items = api.get(f"/projects/{pid}/items", owner).json()["items"]
    return pid, [i["id"] for i in sorted(items, key=lambda i: i["external_id"])]


def _annotate(api: Api, pid: int, who: Person, item_id: int, labels: Any) -> Any:
    return api.post(f"/projects/{pid}/annotations", who,
                    json={"item_id": item_id, "labels": labels})


def span(start: int, end: int, label: str = "location") -> dict[str, Any]:
    return {"start": start, "end": end, "label": label}


def test_span_annotations_are_checked_and_stored_sorted(api: Api) -> None:
    owner = api.person("owner")
    pid, (a, b) = _span_project(api, owner)
    ann = api.member(pid, "annotator")
    given = [span(13, 26), span(0, 3, "person")]
    answer = _annotate(api, pid, ann, a, given)
    assert answer.status_code == 201, answer.text
    assert answer.json()["labels"] == [span(0, 3, "person"), span(13, 26)]
    assert _annotate(api, pid, ann, b, []).status_code == 201  # no entity
    fixed = _annotate(api, pid, ann, b, [span(13, 17)])
    assert fixed.status_code == 201
    assert fixed.json()["kind"] == "correction"
    history = api.get(f"/projects/{pid}/items/{b}", owner).json()["history"]
    assert [r["labels"] for r in history] == [[], [span(13, 17)]]


def test_spans_that_do_not_fit_are_a_422_and_nothing_is_stored(api: Api) -> None:
    owner = api.person("owner")
    pid, (a, b) = _span_project(api, owner)
    ann = api.member(pid, "annotator")
    cases = [
        ([span(13, 20)], "token boundaries"),        # "New Yor"
        ([span(14, 26)], "token boundaries"),
        ([span(13, 26), span(17, 21)], "overlap"),   # New York City / York
        ([span(0, 3, "thing")], "unknown label"),
        ([span(30, 99)], "outside the text"),
        (["person"], "start, end and label"),
    ]
    for labels, message in cases:
        error = assert_error(_annotate(api, pid, ann, a, labels), 422, "invalid_input")
        assert message in error["message"], (labels, error)
    # a span without its type is refused by the request's schema
    assert_error(_annotate(api, pid, ann, a, [{"start": 0, "end": 3}]), 422, "invalid_input")
    # "@bob" is one given token: half of it is no span
    assert_error(_annotate(api, pid, ann, b, [span(1, 4, "person")]), 422, "invalid_input")
    assert api.get(f"/projects/{pid}/items/{a}", owner).json()["history"] == []


def test_the_project_may_allow_overlapping_spans(api: Api) -> None:
    owner = api.person("owner")
    pid, (a, _) = _span_project(api, owner, span_overlap=True)
    ann = api.member(pid, "annotator")
    answer = _annotate(api, pid, ann, a, [span(13, 26), span(13, 21, "location")])
    assert answer.status_code == 201, answer.text


def test_span_items_need_a_text_that_their_tokens_fit(api: Api) -> None:
    owner = api.person("owner")
    pid, _ = _span_project(api, owner)
    rows = [{"external_id": "c", "data": {"body": "no text field"}},
            {"external_id": "d", "data": {"text": "a b", "tokens": ["a", "x"]}},
            {"external_id": "e", "data": {"text": "Rome is big"},
             "gold_labels": [span(0, 4)]},
            {"external_id": "f", "data": {"text": "Rome is big"},
             "gold_labels": [span(0, 3)]}]
    result = api.post(f"/projects/{pid}/items", owner, json=rows).json()
    assert result["inserted"] == 1
    reasons = {r["external_id"]: r["reason"] for r in result["rejected"]}
    assert set(reasons) == {"c", "d", "f"}
    assert "text" in reasons["c"]
    assert "token 1 'x'" in reasons["d"]
    assert "token boundaries" in reasons["f"]


def test_reviewer_corrections_of_spans_are_checked_too(api: Api) -> None:
    owner = api.person("owner")
    pid, (a, _) = _span_project(api, owner)
    ann = api.member(pid, "annotator")
    first = _annotate(api, pid, ann, a, [span(0, 3, "person")]).json()
    reviewer = api.member(pid, "reviewer")
    bad = api.post(f"/projects/{pid}/annotations/{first['id']}/review", reviewer,
                   json={"accept": False, "labels": [span(0, 2, "person")]})
    assert_error(bad, 422, "invalid_input")
    good = api.post(f"/projects/{pid}/annotations/{first['id']}/review", reviewer,
                    json={"accept": False, "labels": [span(0, 3, "person"), span(13, 26)]})
    assert good.status_code in (200, 201), good.text
    assert good.json()["labels"] == [span(0, 3, "person"), span(13, 26)]


def test_span_agreement_consensus_and_review_reasons(api: Api) -> None:
    owner = api.person("owner")
    pid, (a, b) = _span_project(api, owner)
    first, second, third = (api.member(pid, "annotator") for _ in range(3))
    # item a: all three mark Ann; two say "New York City" is a location, one "York City"
    for who, place in ((first, span(13, 26)), (second, span(13, 26)), (third, span(17, 26))):
        assert _annotate(api, pid, who, a, [span(0, 3, "person"), place]).status_code == 201
    # item b: two annotators agree on Rome
    for who in (first, second):
        assert _annotate(api, pid, who, b, [span(13, 17)]).status_code == 201
    agreement = api.get(f"/projects/{pid}/agreement", owner).json()
    spans = agreement["span_agreement"]
    assert spans["n_items"] == 2
    assert spans["items_agreeing"] == 1
    assert spans["per_type"]["person"] == 1.0
    # location: pairs on a share 1 of 2 (once) and 0 of 2 (twice), b shares 1 of 2:
    # 2 * 2 shared of 4 * 2 given
    assert spans["per_type"]["location"] == 0.5
    # unitizing alpha: per pair over the items both labeled (a and b for the first two, who
    # agree; a alone with the third); not over all three, who did not all label b
    unitizing = spans["unitizing_alpha"]
    assert unitizing["n_items"] == 2
    assert unitizing["alpha"] is None
    pairs = {(p["a"], p["b"]): p for p in unitizing["pairs"]}
    assert pairs[(first.username, second.username)] == {
        "a": first.username, "b": second.username, "alpha": 1.0, "n": 2}
    assert pairs[(first.username, third.username)]["n"] == 1
    assert 0 < pairs[(first.username, third.username)]["alpha"] < 1
    exported = {r["external_id"]: r["labels"] for r in
                (json.loads(line) for line in
                 api.get(f"/projects/{pid}/export", owner, params={"format": "jsonl"})
                 .text.splitlines())}
    assert exported["a"] == [span(0, 3, "person"), span(13, 26)]  # voted
    queue = api.get(f"/projects/{pid}/review", owner, params={"reason": "disagreement"}).json()
    assert [e["external_id"] for e in queue] == ["a"]
    # the spans in words (they were offsets: "17-26 location")
    assert "'York City' location (1 of 3, boundary or type)" in queue[0]["detail"]
    # an item whose payload a purge removed: its offsets (its words are gone)
    purged = api.post(f"/projects/{pid}/items/purge", owner, json={"item_ids": [a]})
    assert purged.status_code == 200, purged.text
    after = api.get(f"/projects/{pid}/review", owner, params={"reason": "disagreement"}).json()
    assert "17-26 location (1 of 3, boundary or type)" in after[0]["detail"]
    assert queue[0]["consensus"] == [span(0, 3, "person"), span(13, 26)]


def test_the_review_filter_by_label_matches_span_types(api: Api) -> None:
    """A span answer is a list of spans: the review queue's label filter keeps the items
    where some annotator's span (or the consensus's) has that type."""
    owner = api.person("owner")
    pid, (a, b) = _span_project(api, owner)
    first, second = (api.member(pid, "annotator") for _ in range(2))
    assert _annotate(api, pid, first, a, [span(0, 3, "person")]).status_code == 201
    assert _annotate(api, pid, second, a, [span(0, 3, "person"), span(13, 26)]).status_code == 201
    assert _annotate(api, pid, first, b, [span(13, 17)]).status_code == 201
    assert _annotate(api, pid, second, b, []).status_code == 201

    def filtered(label: str) -> list[str]:
        found = api.get(f"/projects/{pid}/review", owner, params={"label": label})
        assert found.status_code == 200, found.text
        return sorted({e["external_id"] for e in found.json()})

    assert filtered("person") == ["a"]
    assert filtered("location") == ["a", "b"]
    # the same two annotators labeled both items: unitizing alpha over both of them
    unitizing = api.get(f"/projects/{pid}/agreement", owner).json()["span_agreement"][
        "unitizing_alpha"]
    assert unitizing["n_items"] == 2
    assert unitizing["per_type"]["person"] == 1.0  # both marked Ann alone
    assert unitizing["alpha"] < unitizing["per_type"]["person"]
    assert unitizing["per_type"]["location"] < 0.5  # one place each, neither shared
    assert [p["alpha"] for p in unitizing["pairs"]] == [unitizing["alpha"]]
    assert_error(api.get(f"/projects/{pid}/review", owner, params={"label": "date"}), 400,
                 "invalid_input")
