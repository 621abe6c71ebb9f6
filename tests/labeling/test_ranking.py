"""The whole queue ranked after a round: batch, then every other item by the model's score;
items imported later placed by the active model; never file order."""

from __future__ import annotations

import io
import json
import threading
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import select, update

from activelabel.labeling import ranking as ranking_module
from activelabel.labeling.imports import enqueue_import, save_upload
from activelabel.labeling.ranking import (
    Ranking,
    full_ranking,
    margin_positions,
    margins,
    seeded_order,
    write_full_ranking,
)
from activelabel.labeling.tasks import why_of
from activelabel.runtime.settings import Storage
from activelabel.store import next_tasks, round_selections
from activelabel.store import queue as queue_module
from activelabel.store.models import Item
from activelabel.store.queue import RANDOM_BASE, SCORED_BASE, queue_keys
from tests.support.projects import (
    digit_rows,
    label_rows,
    new_project,
    request_and_run_round,
    run_job,
)

Arrays = tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]]
N, HOLDOUT, BATCH = 200, 40, 10


def _ranks(storage: Storage, project_id: int) -> dict[int, tuple[float, str, int]]:
    """row -> (queue rank, split, labels)."""
    with storage.read_sessions() as session:
        return {int(r): (float(q), str(s), int(n)) for r, q, s, n in session.execute(
            select(Item.row, Item.queue_rank, Item.split, Item.n_labels)
            .where(Item.project_id == project_id))}


def test_full_ranking_puts_pool_by_margin_and_other_splits_among_them() -> None:
    rng = np.random.default_rng(0)
    probs = rng.dirichlet([1.0, 1.0, 1.0], size=1000).astype(np.float32)
    splits = np.where(np.arange(1000) % 10 == 0, "holdout", "pool")
    batch = np.array([5, 7, 9])
    ranking = full_ranking(splits, batch, probs, multilabel=False, seed=1, project_id=1)
    assert ranking.rows.shape[0] == 997
    assert not set(ranking.rows.tolist()) & {5, 7, 9}
    assert sorted(ranking.ranks.tolist()) == (SCORED_BASE + 3 + np.arange(997)).tolist()
    order = ranking.rows[np.argsort(ranking.ranks)]
    pool = [r for r in order if splits[r] == "pool"]
    m = margins(probs, False)
    assert np.all(np.diff(m[pool]) >= 0)  # most uncertain first
    place = {int(r): i for i, r in enumerate(order)}
    held = sorted(place[r] for r in order if splits[r] == "holdout")
    assert held[0] < 100
    assert held[-1] > 897
    assert np.all(np.diff(ranking.sorted_margins) >= 0)


def test_a_model_of_one_class_ranks_the_pool_in_a_seeded_random_order() -> None:
    """Every item scores alike under a model that has seen one class: ranked by row, the
    queue behind the batch was the file's order (a sorted upload's next rows of the same
    class). Equal margins go in a seeded random order; unequal ones still by margin."""
    n = 2_000
    probs = np.tile(np.array([[1.0, 0.0]], dtype=np.float32), (n, 1))
    splits = np.full(n, "pool")

    def queue(seed: int) -> list[int]:
        ranking = full_ranking(splits, np.array([0, 1]), probs, multilabel=False, seed=seed,
                               project_id=3)
        return ranking.rows[np.argsort(ranking.ranks)].tolist()

    first = queue(1)
    assert sorted(first) == list(range(2, n))
    assert np.median(first[:100]) > n / 4  # not the file's first rows
    assert first == queue(1)  # reproducible
    assert first != queue(2)
    probs[500:510] = [0.5, 0.5]  # ten items the model is unsure of come first still
    assert set(queue(1)[:10]) == set(range(500, 510))


@settings(max_examples=60, deadline=None)
@given(st.lists(st.sampled_from([0.0, 0.25, 0.5, 1.0]), min_size=0, max_size=60),
       st.integers(0, 2**31 - 1))
def test_seeded_order_sorts_by_value_then_by_the_rows_queue_keys(values: list[float],
                                                                 seed: int) -> None:
    """The order the queue and the cold-start shortlist read: ascending values, and within
    equal values the rows' seeded keys (only the runs of ties are sorted again)."""
    v = np.asarray(values, dtype=np.float64)
    rows = np.arange(100, 100 + v.shape[0])
    got = seeded_order(v, rows, seed, 7)
    assert np.array_equal(got, np.lexsort((queue_keys(seed, 7, rows), v)))


def test_new_items_of_one_margin_spread_over_the_run_of_equal_margins() -> None:
    """An import after a round places each new item beside the nearest ranked margin. Under
    a model of one class every margin is the same: each new item went to the run's head, all
    with one rank, then by row (the file's order). Within a run of equal margins the seeded
    draw places it; elsewhere the nearest margin does."""
    ranked = np.array([0.1, 0.2, 0.5, 0.5, 0.5, 0.5, 0.9])
    draw = np.array([0.0, 0.5, 0.99, 0.3])
    got = margin_positions(ranked, np.array([0.5, 0.5, 0.5, 0.3]), draw)
    assert np.allclose(got[:3], (2 + 4 * draw[:3]) / 7)  # spread over the four 0.5s
    assert got[3] == pytest.approx(2 / 7)  # between 0.2 and 0.5, whatever the draw
    one_class = margin_positions(np.ones(1000), np.ones(5), np.array([.1, .3, .5, .7, .9]))
    assert np.allclose(one_class, [.1, .3, .5, .7, .9])


def test_margins_of_multilabel_and_single_class_rows() -> None:
    p = np.array([[0.9, 0.45], [0.2, 0.1]])
    assert np.allclose(margins(p, True), [0.1, 0.6])
    assert np.allclose(margins(np.array([[1.0]]), False), [1.0])


def test_after_a_round_every_item_is_ranked_and_tasks_say_why(engine_storage: Storage,
                                                              digits: Arrays) -> None:
    images, target = digits
    seeded = new_project(engine_storage, rows=digit_rows(images, N, HOLDOUT), settings={
        "featurizer": "image", "featurizer_params": {"field": "image"}, "batch_size": BATCH,
        "strategy": "margin"})
    pid = seeded.project_id
    before = _ranks(engine_storage, pid)
    assert all(q >= RANDOM_BASE for q, _, _ in before.values())  # seeded keys from import
    cold = request_and_run_round(engine_storage, pid)["round_id"]
    with engine_storage.read_sessions() as session:
        seed_ids = [s.item_id for s in round_selections(session, cold)]
        seed_rows = [session.get(Item, i).row for i in seed_ids]  # type: ignore[union-attr]
    after_cold = _ranks(engine_storage, pid)
    assert sorted(after_cold[r][0] for r in seed_rows) == list(range(BATCH))
    assert sum(q >= RANDOM_BASE for q, _, _ in after_cold.values()) == N - BATCH
    label_rows(engine_storage, seeded, seed_rows + list(range(N - HOLDOUT, N - HOLDOUT // 2)),
               [str(int(target[r])) for r in
                seed_rows + list(range(N - HOLDOUT, N - HOLDOUT // 2))])
    request_and_run_round(engine_storage, pid)
    ranks = _ranks(engine_storage, pid)
    assert all(q < RANDOM_BASE for q, _, _ in ranks.values())  # nothing left unranked
    assert sorted(q for q, _, _ in ranks.values() if q < SCORED_BASE) == list(range(BATCH))
    probs = engine_storage.arrays.load(pid, "probs")
    assert probs is not None
    behind = sorted((q, r) for r, (q, s, n) in ranks.items()
                    if q >= SCORED_BASE and s == "pool")
    m = margins(probs, False)[[r for _, r in behind]]
    assert np.all(np.diff(m) >= 0)
    with engine_storage.sessions() as session, session.begin():
        tasks = next_tasks(session, pid, seeded.owner_id, BATCH + 20)
        kinds = [t.ranked_by for t in tasks]
        assert kinds[:BATCH] == ["strategy"] * BATCH
        assert kinds[BATCH:] == ["model_score"] * 20
        why = why_of(tasks[-1])
        assert why.detail.startswith("ranked behind round 2's batch by the model's score")
        assert why.model_version == 1
        assert why.rank is not None
        assert f"(rank {why.rank + 1})" in why.detail
        hidden = why_of(tasks[-1], reveal_audit=False)  # what an annotator sees
        assert hidden.rank is None
        assert "(rank" not in hidden.detail
        assert hidden.detail.startswith("ranked behind round 2's batch by the model's score")
        rows = [t.item.row for t in tasks[BATCH:]]
    assert rows != sorted(rows)  # not file order
    # Imported after the round: scored by the active model and placed by their margin.
    lines = [json.dumps({**row, "external_id": f"new{i}"})
             for i, row in enumerate(digit_rows(images[N:N + 30], 30))]
    path = save_upload(engine_storage, pid, "more.jsonl", io.BytesIO("\n".join(lines).encode()))
    with engine_storage.sessions() as session, session.begin():
        job_id = enqueue_import(session, pid, path, requested_by=None).id
    assert run_job(engine_storage, job_id)["ranked_by_model"] == 30
    ranks = _ranks(engine_storage, pid)
    new = [ranks[r][0] for r in range(N, N + 30)]
    assert all(SCORED_BASE <= q < RANDOM_BASE for q in new)
    assert len(set(new)) > 5  # placed by margin, not bunched at one place


def test_full_ranking_write_leaves_leased_rows_last_and_ends_complete(
        engine_storage: Storage, digits: Arrays, monkeypatch: Any) -> None:
    """PostgreSQL writes the ranking in short transactions around the leased items (what an
    annotation updates next), then those, skipping a row an annotation holds locked until it
    commits; every row ends with its rank. SQLite: short transactions with a pause between
    them (the API's writers get the one write lock there), one from ``REBUILD_FROM_ROWS``."""
    images, _ = digits
    seeded = new_project(engine_storage, rows=digit_rows(images, 60))
    pid = seeded.project_id
    with engine_storage.sessions() as session, session.begin():
        leased = [t.item.row for t in next_tasks(session, pid, seeded.owner_id, 3)]
        held_id = int(session.scalar(select(Item.id).where(Item.project_id == pid,
                                                           Item.row == leased[0])))
    rows = np.arange(60, dtype=np.int64)
    ranking = Ranking(rows, SCORED_BASE + 59.0 - rows, np.empty(0), 0)
    calls: list[tuple[list[int], bool, list[int]]] = []

    def spy(session: Any, project_id: int, r: Any, k: Any, *, wait: bool) -> set[int]:
        if wait:  # the annotation commits while the waiting write waits (not before: a
            threading.Timer(0.3, release.set).start()  # loaded machine is slow to get here)
        done = queue_module.write_ranking_locked_rows(session, project_id, r, k, wait=wait)
        calls.append((sorted(int(x) for x in r), wait, sorted(done)))
        return done

    sqlite_writes: list[int] = []

    def sqlite_spy(session: Any, project_id: int, r: Any, k: Any) -> int:
        assert session.in_transaction()
        sqlite_writes.append(len(r))
        return queue_module.write_ranking(session, project_id, r, k)

    monkeypatch.setattr(ranking_module, "PG_WRITE_CHUNK", 7)
    monkeypatch.setattr(ranking_module, "SQLITE_WRITE_CHUNK", 7)
    monkeypatch.setattr(ranking_module, "write_ranking_locked_rows", spy)
    monkeypatch.setattr(ranking_module, "write_ranking", sqlite_spy)
    locked, release = threading.Event(), threading.Event()

    def annotation_in_flight() -> None:  # holds the leased item's row, as a label count does
        with engine_storage.sessions() as session, session.begin():
            session.execute(update(Item).where(Item.id == held_id)
                            .values(n_labels=Item.n_labels))
            locked.set()
            release.wait(10)

    postgres = engine_storage.engine.dialect.name == "postgresql"
    holder = threading.Thread(target=annotation_in_flight)
    if postgres:
        holder.start()
        assert locked.wait(10)
    try:
        write_full_ranking(engine_storage, pid, ranking)
    finally:
        release.set()
        if postgres:
            holder.join()
    assert {r: q for r, (q, _, _) in _ranks(engine_storage, pid).items()} == {
        int(r): SCORED_BASE + 59.0 - r for r in rows}
    if postgres:  # only the leased rows were left to the end; the locked one skipped, waited
        assert calls[0][:2] == (sorted(leased), False)
        assert calls[0][2] == sorted(leased[1:])
        assert calls[-1] == ([leased[0]], True, [leased[0]])
        assert sqlite_writes == []
    else:
        assert calls == []
        assert sqlite_writes == [7] * 8 + [4]
        sqlite_writes.clear()  # a pool this size from REBUILD_FROM_ROWS on: one transaction
        monkeypatch.setattr(ranking_module, "REBUILD_FROM_ROWS", 60)
        write_full_ranking(engine_storage, pid, ranking)
        assert sqlite_writes == [60]
