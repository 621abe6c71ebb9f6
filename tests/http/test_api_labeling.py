"""Annotations (revisions, idempotent retries), review, undo, flags, automatic rounds."""

from __future__ import annotations

import itertools
from types import SimpleNamespace
from typing import Any

import anyio
import pytest
from fastapi.security import HTTPAuthorizationCredentials
from sqlalchemy import text

from activelabel.http.auth import _semaphore, _write_turn
from activelabel.http.config import ServerSettings
from activelabel.store import Conflict, create_token, list_tokens
from tests.support.api import Api, Person, assert_error


def _items(api: Api, pid: int, owner: Person) -> list[int]:
    return [i["id"] for i in api.get(f"/projects/{pid}/items", owner).json()["items"]]


def _annotate(api: Api, pid: int, who: Person, item_id: int, labels: list[Any],
              **extra: Any) -> Any:
    return api.post(f"/projects/{pid}/annotations", who,
                    json={"item_id": item_id, "labels": labels, **extra})


def test_annotate_completes_the_lease_and_corrections_add_revisions(api: Api) -> None:
    owner = api.person("owner")
    pid = api.project(owner, n_items=3)
    ann = api.member(pid, "annotator")
    task = api.get(f"/projects/{pid}/tasks/next", ann, params={"n": 1}).json()[0]
    item_id = task["item"]["id"]
    answer = _annotate(api, pid, ann, item_id, ["pos"], duration_ms=1500)
    assert answer.status_code == 201, answer.text
    first = answer.json()
    assert first["kind"] == "label"
    assert first["labels"] == ["pos"]
    assert first["duration_ms"] == 1500
    assert first["annotator_id"] == ann.id
    # The lease is completed: nothing left to release; the next task is another item.
    assert_error(api.post(f"/projects/{pid}/tasks/{item_id}/release", ann), 404, "not_found")
    following = api.get(f"/projects/{pid}/tasks/next", ann, params={"n": 3}).json()
    assert item_id not in {t["item"]["id"] for t in following}
    second = _annotate(api, pid, ann, item_id, ["neg"]).json()
    assert second["kind"] == "correction"
    assert second["supersedes_id"] == first["id"]
    history = api.get(f"/projects/{pid}/items/{item_id}", owner).json()["history"]
    assert [r["labels"] for r in history] == [["pos"], ["neg"]]


def test_retried_submission_with_a_client_key_is_stored_once(api: Api) -> None:
    owner = api.person("owner")
    pid = api.project(owner, n_items=2)
    ann = api.member(pid, "annotator")
    first_item, second_item = _items(api, pid, owner)
    answers = [_annotate(api, pid, ann, first_item, ["pos"], client_key="key-1",
                         duration_ms=900) for _ in range(3)]
    assert {a.status_code for a in answers} == {201}
    assert len({a.json()["id"] for a in answers}) == 1
    history = api.get(f"/projects/{pid}/items/{first_item}", owner).json()["history"]
    assert len(history) == 1
    # The same key for another item is a client bug: refused, nothing stored.
    assert_error(_annotate(api, pid, ann, second_item, ["pos"], client_key="key-1"),
                 409, "conflict")
    assert api.get(f"/projects/{pid}/items/{second_item}", owner).json()["history"] == []
    # Keys belong to their user: another annotator may use the same string.
    other = api.member(pid, "annotator")
    assert _annotate(api, pid, other, first_item, ["neg"], client_key="key-1").status_code == 201


def test_annotation_validation_and_roles(api: Api) -> None:
    owner = api.person("owner")
    pid = api.project(owner, n_items=1)
    ann = api.member(pid, "annotator")
    (item_id,) = _items(api, pid, owner)
    error = assert_error(_annotate(api, pid, ann, item_id, ["maybe"]), 400, "invalid_input")
    assert "maybe" in error["message"]
    assert_error(_annotate(api, pid, ann, item_id, ["pos", "neg"]), 400, "invalid_input")
    assert_error(_annotate(api, pid, ann, 987654, ["pos"]), 404, "not_found")
    error = assert_error(_annotate(api, pid, ann, item_id, ["pos"], duration_ms=-5),
                         422, "invalid_input")
    assert error["details"][0]["field"] == "body.duration_ms"
    error = assert_error(api.post(f"/projects/{pid}/annotations", ann,
                                  json={"item_id": item_id}), 422, "invalid_input")
    assert error["details"][0]["field"] == "body.labels"
    assert_error(_annotate(api, pid, ann, item_id, [True]), 422, "invalid_input")
    assert_error(api.post(f"/projects/{pid}/annotations", ann, content=b"[",
                          headers={"Content-Type": "application/json"}), 422, "invalid_input")
    assert_error(_annotate(api, pid, api.person("out"), item_id, ["pos"]), 404, "not_found")
    assert_error(_annotate(api, pid, Person(0, "nobody", "al_wrong"), item_id, ["pos"]),
                 401, "unauthorized")
    assert api.get(f"/projects/{pid}/items/{item_id}", owner).json()["history"] == []


def test_the_labeling_calls_give_their_connection_back_whatever_they_answer(api: Api) -> None:
    """tasks/next and annotations run their work in one trip (auth.WriteTurn): the session
    closes after a commit, after an error in the work, and when the input is refused before
    the work runs."""
    owner = api.person("owner")
    pid = api.project(owner, n_items=2)
    ann = api.member(pid, "annotator")
    pool = api.storage.engine.pool
    before = pool.checkedout()  # type: ignore[attr-defined]
    (task,) = api.get(f"/projects/{pid}/tasks/next", ann, params={"n": 1}).json()
    item_id = task["item"]["id"]
    answers = [
        (_annotate(api, pid, ann, item_id, ["pos"]), 201),
        (_annotate(api, pid, ann, 987654, ["pos"]), 404),  # raised in the work
        (_annotate(api, pid, ann, item_id, ["maybe"]), 400),
        (_annotate(api, pid, ann, item_id, ["pos"], duration_ms=-5), 422),  # refused before
        (api.get(f"/projects/{pid}/tasks/next", ann, params={"n": 0}), 422),
        (api.get(f"/projects/{pid}/tasks/next", ann, params={"n": 1}), 200),
        (api.get(f"/projects/{pid}/tasks/next", Person(0, "x", "al_wrong")), 401),
    ]
    assert [r.status_code for r, _ in answers] == [want for _, want in answers]
    assert pool.checkedout() == before  # type: ignore[attr-defined]
    history = api.get(f"/projects/{pid}/items/{item_id}", owner).json()["history"]
    assert [h["labels"] for h in history] == [["pos"]]  # the refused calls stored nothing


def test_a_cancelled_turn_opens_nothing_and_a_turn_runs_once(api: Api) -> None:
    """A request cancelled before its work runs (shutdown, a timeout) leaves no session open
    (on SQLite a leaked one would hold the write lock): the turn opens its session in the
    trip that runs the work. A turn runs at most once."""
    owner = api.person("owner")
    pool = api.storage.engine.pool
    before = pool.checkedout()  # type: ignore[attr-defined]
    state = SimpleNamespace(storage=api.storage, settings=ServerSettings())
    request = SimpleNamespace(app=SimpleNamespace(state=state), path_params={},
                              state=SimpleNamespace())
    credentials = HTTPAuthorizationCredentials(scheme="Bearer", credentials=owner.token)
    ran: list[int] = []

    async def cancelled() -> None:
        with anyio.CancelScope() as scope:
            turn = await _write_turn(request, credentials)  # type: ignore[arg-type]
            scope.cancel()
            await turn.run(lambda caller: ran.append(caller.user.id))

    async def twice() -> None:
        turn = await _write_turn(request, credentials)  # type: ignore[arg-type]
        await turn.run(lambda caller: ran.append(caller.user.id))
        with pytest.raises(RuntimeError, match="already ran"):
            await turn.run(lambda caller: ran.append(caller.user.id))

    anyio.run(cancelled)
    assert ran == []
    assert pool.checkedout() == before  # type: ignore[attr-defined]
    anyio.run(twice)
    assert ran == [owner.id]
    assert pool.checkedout() == before  # type: ignore[attr-defined]
    with api.storage.sessions() as session, session.begin():  # the write lock is free
        session.execute(text("UPDATE users SET disabled = disabled WHERE id = :id"),
                        {"id": owner.id})


def _queued_turns(api: Api, people: list[Person], work: Any) -> list[Any]:
    """Run one turn per person, all queued while the write slot is taken (so that they wait
    together); each outcome is the work's result or the error it raised."""
    state = SimpleNamespace(storage=api.storage, settings=ServerSettings())
    request = SimpleNamespace(app=SimpleNamespace(state=state), path_params={},
                              state=SimpleNamespace())
    outcomes: list[Any] = [None] * len(people)

    async def one(i: int, who: Person) -> None:
        credentials = HTTPAuthorizationCredentials(scheme="Bearer", credentials=who.token)
        turn = await _write_turn(request, credentials)  # type: ignore[arg-type]
        try:
            outcomes[i] = await turn.run(lambda caller: work(i, caller))
        except Exception as exc:
            outcomes[i] = exc

    async def main() -> None:
        async with anyio.create_task_group() as tasks, _semaphore(api.storage, "write"):
            for i, who in enumerate(people):
                tasks.start_soon(one, i, who)
            await anyio.sleep(0.05)  # every turn waits for the slot

    anyio.run(main)
    return outcomes


def test_turns_waiting_together_share_one_commit_and_a_failure_is_its_own(api: Api) -> None:
    """Group commit (SQLite): turns that wait for the write slot at once run in one
    transaction; when one of them fails, the others' writes are still stored and only its
    own are not."""
    people = [api.person("grp") for _ in range(4)]

    counter = itertools.count()

    def token(i: int, caller: Any) -> tuple[int, str]:
        create_token(caller.session, caller.user.id, f"t{i}")
        return caller.session.info.setdefault("trip", next(counter)), caller.user.username

    together = _queued_turns(api, people, token)
    assert [name for _, name in together] == [p.username for p in people]
    # SQLite: one trip, one transaction; PostgreSQL runs each turn alone (GROUP_LIMITS).
    trips = 1 if api.storage.engine.dialect.name == "sqlite" else len(people)
    assert len({session for session, _ in together}) == trips

    def second(i: int, caller: Any) -> str:
        create_token(caller.session, caller.user.id, "second")
        if i == 2:
            raise Conflict("this turn fails after writing")
        return str(caller.user.username)

    outcomes = _queued_turns(api, people, second)
    assert isinstance(outcomes[2], Conflict)
    assert [outcomes[i] for i in (0, 1, 3)] == [people[i].username for i in (0, 1, 3)]
    with api.storage.sessions() as session:
        names = {p.username: [t.name for t in list_tokens(session, p.id)] for p in people}
    assert names == {p.username: ["test", f"t{i}"] + ([] if i == 2 else ["second"])
                     for i, p in enumerate(people)}
    assert api.storage.engine.pool.checkedout() == 0  # type: ignore[attr-defined]


def test_the_labeling_calls_check_the_token_before_the_input(api: Api) -> None:
    """tasks/next and annotations check their token in the trip that runs their work, after
    FastAPI has validated the input: a bad or missing token still gets 401 whatever the
    input, a good one with a bad input 422."""
    owner = api.person("owner")
    pid = api.project(owner, n_items=1)
    ann = api.member(pid, "annotator")
    wrong = Person(0, "nobody", "al_wrong")
    bad_body = {"item_id": 1, "labels": ["pos"], "duration_ms": -5}
    for who in (wrong, None):
        assert_error(api.get(f"/projects/{pid}/tasks/next", who, params={"n": 1}), 401,
                     "unauthorized")
        assert_error(api.get(f"/projects/{pid}/tasks/next", who, params={"n": 0}), 401,
                     "unauthorized")
        assert_error(_annotate(api, pid, wrong, 1, ["pos"]), 401, "unauthorized")
        assert_error(api.post(f"/projects/{pid}/annotations", who, json=bad_body), 401,
                     "unauthorized")
    assert api.get(f"/projects/{pid}/tasks/next", ann, params={"n": 0}).status_code == 422
    assert api.post(f"/projects/{pid}/annotations", ann, json=bad_body).status_code == 422


def test_review_and_undo(api: Api) -> None:
    owner = api.person("owner")
    pid = api.project(owner, n_items=2)
    ann, rev = api.member(pid, "annotator"), api.member(pid, "reviewer")
    first_item, second_item = _items(api, pid, owner)
    label = _annotate(api, pid, ann, first_item, ["pos"]).json()
    assert_error(api.post(f"/projects/{pid}/annotations/{label['id']}/review", ann,
                          json={"accept": True}), 403, "forbidden")
    corrected = api.post(f"/projects/{pid}/annotations/{label['id']}/review", rev,
                         json={"accept": False, "labels": ["neg"]})
    assert corrected.status_code == 201, corrected.text
    body = corrected.json()
    assert body["kind"] == "correction"
    assert body["labels"] == ["neg"]
    assert body["user_id"] == rev.id
    assert body["annotator_id"] == ann.id
    # The reviewed revision is superseded now: reviewing it again conflicts.
    assert_error(api.post(f"/projects/{pid}/annotations/{label['id']}/review", rev,
                          json={"accept": True}), 409, "conflict")
    accepted = api.post(f"/projects/{pid}/annotations/{body['id']}/review", owner,
                        json={"accept": True})
    assert accepted.json()["kind"] == "review_accept"
    # Undo withdraws the caller's own current label, keeping the history.
    _annotate(api, pid, ann, second_item, ["pos"])
    undone = api.post(f"/projects/{pid}/items/{second_item}/undo", ann)
    assert undone.status_code == 201
    assert undone.json()["labels"] is None
    assert_error(api.post(f"/projects/{pid}/items/{second_item}/undo", ann), 409, "conflict")
    history = api.get(f"/projects/{pid}/items/{second_item}", owner).json()
    assert [r["kind"] for r in history["history"]] == ["label", "undo"]
    assert history["current"] == []


def test_flags_are_raised_by_members_and_resolved_by_reviewers(api: Api) -> None:
    owner = api.person("owner")
    pid = api.project(owner, n_items=2)
    ann, other, rev = (api.member(pid, "annotator"), api.member(pid, "annotator"),
                       api.member(pid, "reviewer"))
    first_item, second_item = _items(api, pid, owner)
    flag = api.post(f"/projects/{pid}/flags", ann,
                    json={"item_id": first_item, "reason": "two topics at once"})
    assert flag.status_code == 201, flag.text
    api.post(f"/projects/{pid}/flags", other, json={"item_id": second_item, "reason": "empty"})
    assert_error(api.post(f"/projects/{pid}/flags", ann, json={"item_id": first_item,
                                                              "reason": "  "}),
                 400, "invalid_input")
    assert_error(api.post(f"/projects/{pid}/flags", ann, json={"item_id": first_item}),
                 422, "invalid_input")
    assert [f["reason"] for f in api.get(f"/projects/{pid}/flags", ann).json()] == [
        "two topics at once"]
    assert len(api.get(f"/projects/{pid}/flags", rev).json()) == 2
    flag_id = flag.json()["id"]
    assert_error(api.post(f"/projects/{pid}/flags/{flag_id}/resolve", ann, json={}),
                 403, "forbidden")
    resolved = api.post(f"/projects/{pid}/flags/{flag_id}/resolve", rev,
                        json={"note": "split it"})
    assert resolved.status_code == 200
    assert resolved.json()["resolved_by"] == rev.id
    assert_error(api.post(f"/projects/{pid}/flags/{flag_id}/resolve", rev), 409, "conflict")
    assert [f["item_id"] for f in api.get(f"/projects/{pid}/flags", rev).json()] == [
        second_item]
    every = api.get(f"/projects/{pid}/flags", rev, params={"unresolved_only": "false"}).json()
    assert len(every) == 2
    assert_error(api.get(f"/projects/{pid}/flags", api.person("out")), 404, "not_found")


def test_enough_new_labels_queue_a_round(api: Api) -> None:
    owner = api.person("owner")
    pid = api.project(owner, n_items=3, settings={"retrain_every_labels": 2})
    ann = api.member(pid, "annotator")
    first_item, second_item, _ = _items(api, pid, owner)
    _annotate(api, pid, ann, first_item, ["pos"])
    assert api.get(f"/projects/{pid}/rounds", owner).json() == []
    _annotate(api, pid, ann, second_item, ["neg"])
    rounds = api.get(f"/projects/{pid}/rounds", owner).json()
    assert [r["status"] for r in rounds] == ["queued"]
    jobs = api.get(f"/projects/{pid}/jobs", owner).json()
    assert jobs[0]["payload"]["reason"] == "retrain_every_labels"
