"""Overlap policies: every item, a share of the items, or only the uncertain ones get
``overlap`` annotators; the others get one."""

from __future__ import annotations

from typing import Any

from sqlalchemy import update

from activelabel.store.models import Item
from tests.support.api import Api, Person, assert_error


def _drain(api: Api, pid: int, who: Person) -> set[int]:
    """Label (as 'pos') every task the queue hands out to ``who``; the item ids."""
    got: set[int] = set()
    while tasks := api.get(f"/projects/{pid}/tasks/next", who, params={"n": 10}).json():
        for task in tasks:
            got.add(task["item"]["id"])
            api.post(f"/projects/{pid}/annotations", who,
                     json={"item_id": task["item"]["id"], "labels": ["pos"]})
    return got


def _rows(api: Api, pid: int, owner: Person) -> dict[int, int]:
    items = api.get(f"/projects/{pid}/items", owner, params={"limit": 100}).json()["items"]
    return {i["row"]: i["id"] for i in items}


def _project(api: Api, **settings: Any) -> tuple[int, Person, list[Person]]:
    owner = api.person("owner")
    pid = api.project(owner, n_items=20, settings={"overlap": 2, **settings})
    return pid, owner, [api.member(pid, "annotator") for _ in range(3)]


def test_share_policy_doubles_a_spread_share_of_items(api: Api) -> None:
    pid, owner, people = _project(api, overlap_policy="share", overlap_share=0.5)
    rows = _rows(api, pid, owner)
    picked = {rows[r] for r in range(20) if (r * 37) % 100 < 50}
    assert 8 <= len(picked) <= 12
    first, second, third = (_drain(api, pid, p) for p in people)
    assert first == set(rows.values())
    assert second == picked
    assert third == set()


def test_uncertain_policy_doubles_only_the_items_a_round_ranked(api: Api) -> None:
    pid, owner, people = _project(api, overlap_policy="uncertain")
    rows = _rows(api, pid, owner)
    ranked = {rows[r] for r in (3, 7, 11)}
    with api.storage.sessions() as session, session.begin():
        for rank, item_id in enumerate(sorted(ranked)):
            session.execute(update(Item).where(Item.id == item_id).values(queue_rank=rank))
    first, second = _drain(api, pid, people[0]), _drain(api, pid, people[1])
    assert first == set(rows.values())
    assert second == ranked


def test_all_policy_is_the_default_and_bad_policies_are_refused(api: Api) -> None:
    pid, _, people = _project(api)
    assert len(_drain(api, pid, people[0])) == 20
    assert len(_drain(api, pid, people[1])) == 20
    assert _drain(api, pid, people[2]) == set()
    owner = api.person("owner")
    other = api.project(owner)
    for bad in ({"overlap_policy": "some"}, {"overlap_share": 1.5}):
        assert_error(api.patch(f"/projects/{other}", owner, json={"settings": bad}), 422,
                     "invalid_input")
