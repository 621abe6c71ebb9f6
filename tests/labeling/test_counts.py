"""Counts that mean what they say: holdout and gold labels are never training labels, budget
spent, "labels used", an annotator's count or speed."""

from __future__ import annotations

from activelabel.labeling.operations import project_gauges
from activelabel.labeling.rounds import request_round
from activelabel.labeling.stats import labels_per_annotator, labels_spent, own_counts
from activelabel.runtime.settings import Storage
from activelabel.store import annotate, get_round, item_ids_for_rows
from tests.support.projects import new_project, run_job, text_rows

POOL, HOLDOUT, GOLD = 6, 5, 4


def _project(storage: Storage) -> tuple[int, int]:
    rows = text_rows(POOL + HOLDOUT + GOLD)
    for i, row in enumerate(rows):
        if POOL <= i < POOL + HOLDOUT:
            row["split"] = "holdout"
        elif i >= POOL + HOLDOUT:
            row["gold_labels"] = ["a"]
    seeded = new_project(storage, labels=["a", "b"], rows=rows,
                         settings={"label_budget": 10, "batch_size": 2})
    with storage.sessions() as session, session.begin():
        ids = item_ids_for_rows(session, seeded.project_id, range(len(rows)))
        for row, item_id in enumerate(ids):
            # Pool items: 1 s each; holdout and gold: 10 ms (would inflate the speed).
            annotate(session, seeded.project_id, seeded.owner_id, item_id,
                     ["a" if row % 2 else "b"], duration_ms=1000 if row < POOL else 10)
    return seeded.project_id, seeded.owner_id


def test_only_pool_labels_count_as_spent_and_for_annotators(engine_storage: Storage) -> None:
    pid, owner = _project(engine_storage)
    with engine_storage.read_sessions() as session:
        assert labels_spent(session, pid) == POOL
        mine = own_counts(session, pid, owner)
        assert mine["labels"] == POOL
        assert mine["last_hour"] == POOL
        assert mine["labels_per_hour"] == 3600.0  # 1 s a pool label, holdout/gold left out
        assert [a.labels for a in labels_per_annotator(session, pid)] == [POOL]
        [gauges] = [g for g in project_gauges(session) if g.project_id == pid]
        assert gauges.labels_per_minute == POOL / 10


def test_rounds_train_budget_and_report_pool_labels_only(engine_storage: Storage) -> None:
    pid, _ = _project(engine_storage)
    with engine_storage.sessions() as session, session.begin():
        rnd, _ = request_round(session, pid, requested_by=None, reason="manual")
        job_id = rnd.job_id
    assert job_id is not None
    result = run_job(engine_storage, job_id)
    with engine_storage.read_sessions() as session:
        done = get_round(session, pid, result["round_id"])
        assert done.status == "done", done.error
        assert done.n_labels_used == POOL  # "labels used": not 15
        metrics = done.metrics or {}
        assert metrics["n_train"] == POOL  # gold answers and holdout labels do not train
        assert metrics["n_holdout"] == HOLDOUT
        [budget] = [d for d in metrics["stopping"] if d["rule"] == "budget"]
        assert budget["stop"] is False
        assert f"{POOL}" in budget["reason"]
