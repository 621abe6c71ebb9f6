"""Durable jobs, rounds with selection provenance, model versions, audit, flags."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import inspect
from sqlalchemy.orm import Session

import activelabel.store.audit as audit_module
from activelabel.store import (
    Conflict,
    InvalidInput,
    activate_model_version,
    active_model_version,
    claim_job,
    create_model_version,
    create_round,
    enqueue_job,
    fail_job,
    fail_round,
    finish_job,
    finish_round,
    flag_item,
    heartbeat,
    list_audit,
    list_flags,
    list_models,
    list_rounds,
    record_audit,
    record_selection,
    requeue_stale_jobs,
    resolve_flag,
    round_selections,
    selection_rows,
    start_round,
)
from activelabel.store.models import Item, Project, User, utcnow
from activelabel.store.queue import RANDOM_BASE
from tests.support.projects import make_items


def test_jobs_are_claimed_once_in_order(session: Session, project: Project) -> None:
    first = enqueue_job(session, "round", {"n": 1}, project_id=project.id)
    second = enqueue_job(session, "import", {"n": 2}, project_id=project.id)
    got = claim_job(session, ["round", "import"], "w1")
    assert got is not None
    assert got.id == first.id
    assert (got.status, got.worker_id, got.attempts) == ("running", "w1", 1)
    assert claim_job(session, ["round"], "w2") is None
    assert claim_job(session, ["import"], "w2").id == second.id  # type: ignore[union-attr]
    heartbeat(session, first.id, "w1", progress={"done": 3})
    assert finish_job(session, first.id, "w1", result={"ok": True}).status == "done"
    assert fail_job(session, second.id, "w2", "boom").error == "boom"
    with pytest.raises(InvalidInput):
        enqueue_job(session, "dance")


def test_stale_jobs_are_requeued_then_given_up(session: Session) -> None:
    job = enqueue_job(session, "round")
    old = utcnow() - timedelta(minutes=10)
    claim_job(session, ["round"], "dead", now=old)
    assert requeue_stale_jobs(session, 60, max_attempts=2) == [job.id]
    assert (job.status, job.worker_id) == ("queued", None)
    with pytest.raises(Conflict, match="requeued"):
        heartbeat(session, job.id, "dead")
    claim_job(session, ["round"], "dead-again", now=old)
    assert requeue_stale_jobs(session, 60, max_attempts=2) == [job.id]
    assert job.status == "failed"
    assert "gave up" in (job.error or "")
    fresh = enqueue_job(session, "round")
    claim_job(session, ["round"], "alive")
    assert requeue_stale_jobs(session, 60) == []
    assert fresh.status == "running"


def test_rounds_selection_sets_the_queue(session: Session, project: Project) -> None:
    items = make_items(session, project.id, 5)
    r1 = create_round(session, project.id, strategy="entropy", batch_size=2)
    r2 = create_round(session, project.id, strategy="entropy", batch_size=2)
    assert (r1.number, r2.number) == (1, 2)
    start_round(session, project.id, r1.id)
    model = create_model_version(session, project.id, round_id=r1.id, n_train=10)
    record_selection(session, project.id, r1.id, [items[3], items[1]], [0.7, 0.5],
                     model_version_id=model.id)
    record_selection(session, project.id, r2.id, [items[0]], [0.9])
    ranks = {i: session.get(Item, i).queue_rank for i in items}  # type: ignore[union-attr]
    keys = {i: session.get(Item, i).queue_key for i in items}  # type: ignore[union-attr]
    assert all(k is not None and k >= RANDOM_BASE for k in keys.values())
    # Out of the batch: back to the seeded random key written at import.
    assert ranks == {**keys, items[0]: 0.0}
    sel = round_selections(session, r1.id)
    assert [(s.item_id, s.rank, s.model_version_id) for s in sel] == [
        (items[3], 0, model.id), (items[1], 1, model.id)]
    external = {i: session.get(Item, i).external_id for i in items}  # type: ignore[union-attr]
    assert selection_rows(session, r1.id) == [
        (items[3], external[items[3]], 0, 0.7, "entropy", model.version),
        (items[1], external[items[1]], 1, 0.5, "entropy", model.version)]
    assert selection_rows(session, r2.id, limit=5) == [
        (items[0], external[items[0]], 0, 0.9, "entropy", None)]
    assert selection_rows(session, r1.id, limit=0) == []
    finish_round(session, project.id, r1.id, model_version_id=model.id, n_labels_used=10,
                 metrics={"accuracy": 0.8}, timings={"train_s": 1.0, "score_s": 0.5,
                                                     "select_s": 0.1})
    fail_round(session, project.id, r2.id, "out of memory")
    assert [(r.status, r.metrics) for r in list_rounds(session, project.id)] == [
        ("done", {"accuracy": 0.8}), ("failed", None)]
    with pytest.raises(Conflict):
        finish_round(session, project.id, r1.id)
    with pytest.raises(InvalidInput, match="not in project"):
        record_selection(session, project.id, r1.id, [10**9])


def test_exactly_one_active_model(session: Session, project: Project) -> None:
    v1 = create_model_version(session, project.id)
    v2 = create_model_version(session, project.id, parent_id=v1.id)
    assert [m.version for m in list_models(session, project.id)] == [1, 2]
    activate_model_version(session, project.id, 2)
    activate_model_version(session, project.id, 1)  # rollback
    assert active_model_version(session, project.id) is v1
    assert not v2.is_active
    assert sum(m.is_active for m in list_models(session, project.id)) == 1


def test_audit_is_append_only_and_filterable(session: Session, project: Project,
                                             owner: User) -> None:
    record_audit(session, "create", "project", project.id, project_id=project.id,
                 actor_id=owner.id, after={"name": project.name})
    record_audit(session, "activate", "model_version", 2, project_id=project.id,
                 before={"active": 1}, after={"active": 2})
    events = list_audit(session, project_id=project.id)
    assert [e.action for e in events] == ["activate", "create"]
    assert list_audit(session, entity="project", entity_id=project.id)[0].actor_id == owner.id
    assert list_audit(session, project_id=project.id, before_id=events[0].id) == [events[1]]
    public = [n for n in audit_module.__all__ if any(w in n for w in ("update", "delete"))]
    assert public == []
    assert inspect(events[0]).persistent


def test_flags(session: Session, project: Project, owner: User) -> None:
    [item] = make_items(session, project.id, 1)
    flag = flag_item(session, project.id, item, owner.id, "two labels fit")
    assert list_flags(session, project.id) == [flag]
    resolve_flag(session, project.id, flag.id, owner.id, "use pos")
    assert list_flags(session, project.id) == []
    with pytest.raises(Conflict):
        resolve_flag(session, project.id, flag.id, owner.id)
    with pytest.raises(InvalidInput):
        flag_item(session, project.id, item, owner.id, "  ")


@settings(max_examples=25, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rankings=st.lists(st.permutations(range(8)).map(lambda p: p[:4]), min_size=1,
                         max_size=4))
def test_each_ranking_replaces_the_last_exactly(session: Session, owner: User,
                                                rankings: list[list[int]]) -> None:
    """Whatever overlaps the rankings have (items kept at the same rank, moved, dropped,
    added), the queue holds the last one and nothing of the earlier ones."""
    from activelabel.store import create_project

    project = create_project(session, f"ranks {uuid.uuid4().hex[:8]}", "classification",
                             ["a", "b"], created_by=owner.id)
    items = make_items(session, project.id, 8)
    for ranking in rankings:
        rnd = create_round(session, project.id, strategy="entropy", batch_size=4)
        record_selection(session, project.id, rnd.id, [items[i] for i in ranking])
    session.expire_all()
    ranks = {i: session.get(Item, i).queue_rank for i in items}  # type: ignore[union-attr]
    last = {items[i]: float(rank) for rank, i in enumerate(rankings[-1])}
    keys = {i: session.get(Item, i).queue_key for i in items}  # type: ignore[union-attr]
    assert ranks == {i: last.get(i, keys[i]) for i in items}
    record_selection(session, project.id, create_round(
        session, project.id, strategy="entropy", batch_size=4).id, [])
    session.expire_all()
    assert all(session.get(Item, i).queue_rank == keys[i] for i in items)  # type: ignore[union-attr]
