"""A purge of payloads and the features derived from them: nothing built from a removed payload
is kept, whenever the build that read it ran, and no model trained before the purge is taken
for one of the features rebuilt after it."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import scipy.sparse as sp
from sqlalchemy import select, update

from activelabel.labeling import featurize
from activelabel.labeling.featurize import cached_fingerprint, ensure_features
from activelabel.labeling.governance import purge
from activelabel.labeling.snapshots import read_snapshot, take_snapshot
from activelabel.labeling.stats import project_counts
from activelabel.labeling.versions import activate_version
from activelabel.runtime.settings import Storage
from activelabel.store import (
    Conflict,
    get_project,
    item_ids_for_rows,
    iter_items,
    list_audit,
    round_selections,
)
from activelabel.store.governance import get_snapshot
from activelabel.store.models import Annotation, Item, Job, ModelVersion, Round, Snapshot
from tests.support.projects import (
    Seeded,
    label_rows,
    new_project,
    request_and_run_round,
    run_job,
    text_rows,
)

ROWS = 40
PURGED_ROW = 5
#: TF-IDF and LSA only: the same with the sentence model installed or not
SETTINGS = {"featurizer_params": {"n_components": 8, "sentence_weight": None},
            "audit_share": 0.0}


def _project(storage: Storage) -> Seeded:
    return new_project(storage, labels=["a", "b"], rows=text_rows(ROWS), settings=SETTINGS)


def _purge_row(storage: Storage, seeded: Seeded, row: int, session: Any = None) -> None:
    def run(s: Any) -> None:
        item = next(i for batch in iter_items(s, seeded.project_id) for i in batch
                    if i.row == row)
        purge(s, storage, seeded.project_id, item_ids=[item.id], external_ids=[],
              actor_id=seeded.owner_id)

    if session is not None:
        run(session)
        return
    with storage.sessions() as s, s.begin():
        run(s)


def _row(X: Any, row: int) -> np.ndarray:
    return np.asarray(X[row].todense() if sp.issparse(X) else X[row]).ravel()


def test_a_model_from_before_a_purge_is_not_taken_for_the_rebuilt_features(
        engine_storage: Storage) -> None:
    seeded = _project(engine_storage)
    label_rows(engine_storage, seeded, list(range(12)),
               ["a" if "alpha" in r["data"]["text"] else "b" for r in text_rows(12)])
    request_and_run_round(engine_storage, seeded.project_id)
    trained_on = cached_fingerprint(engine_storage, seeded.project_id)
    assert trained_on is not None
    _purge_row(engine_storage, seeded, PURGED_ROW)
    rebuilt = ensure_features(engine_storage, seeded.project_id)
    assert rebuilt.rebuilt
    assert not _row(rebuilt.X, PURGED_ROW).any()
    # the TF-IDF and LSA were fitted again: the active model (trained on the old ones) must
    # not score with them; its fingerprint says so to the ML backend and to import placement
    assert rebuilt.fingerprint != trained_on
    assert cached_fingerprint(engine_storage, seeded.project_id) != trained_on


def test_a_build_that_read_the_payloads_before_a_purge_keeps_nothing(
        engine_storage: Storage, monkeypatch: pytest.MonkeyPatch) -> None:
    seeded = _project(engine_storage)
    fit = featurize._fit_transform
    purged: list[int] = []

    def purge_during_the_build(*args: Any, **kwargs: Any) -> Any:
        if not purged:  # the records are read; a purge commits before the build saves
            _purge_row(engine_storage, seeded, PURGED_ROW)
            purged.append(PURGED_ROW)
        return fit(*args, **kwargs)

    monkeypatch.setattr(featurize, "_fit_transform", purge_during_the_build)
    during = ensure_features(engine_storage, seeded.project_id)
    assert purged
    assert _row(during.X, PURGED_ROW).any()  # this build read the payload ...
    assert cached_fingerprint(engine_storage, seeded.project_id) is None  # ... and kept nothing
    after = ensure_features(engine_storage, seeded.project_id)
    assert after.rebuilt
    assert not _row(after.X, PURGED_ROW).any()


def test_a_build_between_a_purge_and_its_commit_keeps_nothing(engine_storage: Storage) -> None:
    seeded = _project(engine_storage)
    with engine_storage.sessions() as session, session.begin():
        _purge_row(engine_storage, seeded, PURGED_ROW, session)
        # not committed yet: a build now reads the payload as it was, and saves its features
        between = ensure_features(engine_storage, seeded.project_id)
        assert _row(between.X, PURGED_ROW).any()
    after = ensure_features(engine_storage, seeded.project_id)  # the commit renewed the stamp
    assert after.rebuilt
    assert not _row(after.X, PURGED_ROW).any()


def test_a_purged_item_is_neither_picked_nor_learned_from(engine_storage: Storage) -> None:
    seeded = new_project(engine_storage, labels=["a", "b"], rows=text_rows(ROWS),
                         settings={**SETTINGS, "strategy": "margin", "batch_size": 10})
    label_rows(engine_storage, seeded, list(range(12)),
               ["a" if "alpha" in r["data"]["text"] else "b" for r in text_rows(12)])
    for row in (3, 20, 21, 22):  # one labeled, three not
        _purge_row(engine_storage, seeded, row)
    done = request_and_run_round(engine_storage, seeded.project_id)
    with engine_storage.read_sessions() as session:
        rnd = session.get(Round, done["round_id"])
        assert rnd is not None
        rows = {i.id: i.row for batch in iter_items(session, seeded.project_id) for i in batch}
        picked = [rows[s.item_id] for s in round_selections(session, rnd.id)]
        metrics = dict(rnd.metrics or {})
    # an emptied text is the most uncertain of all (it reads as nothing): never picked
    assert len(picked) == 10
    assert not {20, 21, 22} & set(picked)
    assert metrics["n_train"] == 11  # the purged row's label is kept, not learned from
    assert metrics["n_candidates"] == ROWS - 12 - 3


def test_the_backlog_leaves_out_the_items_purged_before_anyone_labeled_them(
        engine_storage: Storage) -> None:
    seeded = _project(engine_storage)
    label_rows(engine_storage, seeded, [0, 1], ["a", "b"])
    for row in (1, 7):  # one labeled, one not
        _purge_row(engine_storage, seeded, row)
    with engine_storage.read_sessions() as session:
        counts = project_counts(session, seeded.project_id)
    assert counts.n_items == ROWS
    assert counts.labeled["pool"] == 2
    assert counts.backlog == ROWS - 2 - 1


def _snapshot(storage: Storage, seeded: Seeded) -> tuple[int, Path]:
    with storage.sessions() as session, session.begin():
        snap = take_snapshot(session, storage, get_project(session, seeded.project_id),
                             created_by=None)
        return snap.id, Path(snap.path)


def _stored_snapshot(storage: Storage, seeded: Seeded, snapshot_id: int) -> Snapshot:
    with storage.read_sessions() as session:
        snap = get_snapshot(session, seeded.project_id, snapshot_id)
        session.expunge(snap)
        return snap


def test_a_purge_empties_the_item_in_every_snapshot_and_keeps_them_verifiable(
        engine_storage: Storage) -> None:
    seeded = _project(engine_storage)
    label_rows(engine_storage, seeded, [0, 1, 2], ["a", "b", "a"])
    first, first_file = _snapshot(engine_storage, seeded)
    label_rows(engine_storage, seeded, [3], ["b"])
    second, second_file = _snapshot(engine_storage, seeded)
    secret = json.dumps(text_rows(2)[1]["data"]["text"])  # the text of row 1
    assert secret in first_file.read_text()
    _purge_row(engine_storage, seeded, 1)
    for snapshot_id, old_file, n_lines in ((first, first_file, 3), (second, second_file, 4)):
        snap = _stored_snapshot(engine_storage, seeded, snapshot_id)
        header, lines = read_snapshot(snap)  # the content hash checks out
        assert len(lines) == n_lines
        assert not old_file.exists()
        assert secret not in Path(snap.path).read_text()
        by_row = {line["external_id"]: line for line in lines}
        assert by_row["t1"]["data"] == {}
        assert by_row["t1"]["consensus"] == "b"  # the labels stay
        assert by_row["t0"]["data"] == text_rows(1)[0]["data"]
        assert header["content_hash"] == snap.content_hash
        assert header["redacted"][0]["items"] == 1
        assert header["redacted"][0]["content_hash_before"] != snap.content_hash
    with engine_storage.read_sessions() as session:
        events = [e for e in list_audit(session, project_id=seeded.project_id, entity="snapshot")
                  if e.action == "redact"]
    assert sorted(int(e.entity_id) for e in events) == [first, second]


def test_a_purge_rolled_back_leaves_the_snapshots_as_they_were(engine_storage: Storage) -> None:
    seeded = _project(engine_storage)
    label_rows(engine_storage, seeded, [0, 1], ["a", "b"])
    snapshot_id, snapshot_file = _snapshot(engine_storage, seeded)
    before = _stored_snapshot(engine_storage, seeded, snapshot_id)

    def purge_then_fail() -> None:
        with engine_storage.sessions() as session, session.begin():
            _purge_row(engine_storage, seeded, 1, session)
            raise RuntimeError("the purge's transaction fails")

    with pytest.raises(RuntimeError):
        purge_then_fail()
    after = _stored_snapshot(engine_storage, seeded, snapshot_id)
    assert (after.content_hash, after.path) == (before.content_hash, before.path)
    assert sorted(snapshot_file.parent.iterdir()) == [snapshot_file]  # the new file is gone
    read_snapshot(after)
    _purge_row(engine_storage, seeded, 10)  # in no snapshot: none written again
    untouched = _stored_snapshot(engine_storage, seeded, snapshot_id)
    assert (untouched.content_hash, untouched.path) == (before.content_hash, before.path)
    assert sorted(snapshot_file.parent.iterdir()) == [snapshot_file]


def test_a_purged_item_leaves_the_queue_order_and_rounds_rank_it_no_more(
        engine_storage: Storage) -> None:
    seeded = new_project(engine_storage, labels=["a", "b"], rows=text_rows(ROWS),
                         settings={**SETTINGS, "strategy": "margin", "batch_size": 5})
    label_rows(engine_storage, seeded, list(range(10)),
               ["a" if "alpha" in r["data"]["text"] else "b" for r in text_rows(10)])
    request_and_run_round(engine_storage, seeded.project_id)
    _purge_row(engine_storage, seeded, 30)

    def order_of(row: int) -> tuple[Any, Any]:
        with engine_storage.read_sessions() as session:
            item = next(i for i in session.execute(select(Item).where(
                Item.project_id == seeded.project_id, Item.row == row)).scalars())
            return item.queue_rank, item.queue_key

    assert order_of(30) == (None, None)  # no claim or audit draw walks past it
    assert order_of(31)[0] is not None
    request_and_run_round(engine_storage, seeded.project_id)  # ranks the pool again
    assert order_of(30) == (None, None)
    assert order_of(31)[0] is not None


def test_a_purged_image_reads_as_a_blank_one(engine_storage: Storage) -> None:
    rows = [{"external_id": f"p{i}", "data": {"image": [[i % 3, 1, 0], [2, i % 5, 1]]}}
            for i in range(12)]
    seeded = new_project(engine_storage, labels=["a", "b"], rows=rows,
                         settings={"featurizer": "image", "audit_share": 0.0})
    ensure_features(engine_storage, seeded.project_id)
    _purge_row(engine_storage, seeded, 4)
    rebuilt = ensure_features(engine_storage, seeded.project_id)  # it raised: '' is no image
    assert rebuilt.rebuilt
    assert rebuilt.n_items == 12
    blank = new_project(engine_storage, labels=["a", "b"],
                        rows=[{"external_id": "z", "data": {"image": [[0, 0, 0], [0, 0, 0]]}},
                              *rows[:1]], settings={"featurizer": "image"})
    zero = ensure_features(engine_storage, blank.project_id)
    np.testing.assert_allclose(_row(rebuilt.X, 4), _row(zero.X, 0), atol=1e-6)


SECRET = "Zqxjvquorblemark"


def _holding_secret(storage: Storage) -> list[str]:
    """Files of the data folder (a SQLite database and its log among them) that hold the
    secret word in any case (a span model keeps words in lower case)."""
    root = storage.location.data_dir
    return sorted(str(p.relative_to(root)) for p in root.rglob("*")
                  if p.is_file() and SECRET.lower().encode() in p.read_bytes().lower())


def test_no_byte_of_a_purged_text_is_left_in_the_data_folder(engine_storage: Storage) -> None:
    rows = text_rows(ROWS)
    rows[PURGED_ROW]["data"]["text"] = f"alpha {SECRET} beta " + "filler " * 40
    seeded = new_project(engine_storage, labels=["a", "b"], rows=rows, settings=SETTINGS)
    label_rows(engine_storage, seeded, list(range(12)), ["a", "b"] * 6)
    request_and_run_round(engine_storage, seeded.project_id)
    assert _holding_secret(engine_storage)  # the database (SQLite), features, ...
    _purge_row(engine_storage, seeded, PURGED_ROW)
    # with SQLite, the write-ahead log held the old payload until the purge folded it in
    assert _holding_secret(engine_storage) == []
    request_and_run_round(engine_storage, seeded.project_id)
    assert _holding_secret(engine_storage) == []


def _span_project(storage: Storage) -> tuple[Seeded, list[Any]]:
    from tests.labeling.test_span_rounds import TYPES, _rows

    rows, truth = _rows(60, 20)
    rows[3]["data"]["text"] = f"i met {SECRET} in Paris today"
    truth[3] = [{"start": 6, "end": 6 + len(SECRET), "label": "person"}]
    seeded = new_project(storage, labels=TYPES, task="spans", rows=rows,
                         settings={"batch_size": 10, "audit_share": 0.0})
    return seeded, truth


def _versions(storage: Storage, project_id: int) -> dict[int, tuple[str | None, bool]]:
    with storage.read_sessions() as session:
        return {mv.version: (mv.artifact_path, mv.is_active)
                for mv in session.execute(select(ModelVersion).where(
                    ModelVersion.project_id == project_id)).scalars()}


def _later_label_times(storage: Storage, project_id: int, row: int) -> None:
    """The item's labels stamped an hour ahead (an imported file's own times may be)."""
    with storage.sessions() as session, session.begin():
        [item_id] = item_ids_for_rows(session, project_id, [row])
        session.execute(update(Annotation).where(Annotation.item_id == item_id).values(
            created_at=datetime.now(UTC) + timedelta(hours=1)))


def test_a_purge_removes_the_span_models_that_may_have_learned_the_items_words(
        engine_storage: Storage) -> None:
    from tests.labeling.test_span_rounds import _label

    seeded, truth = _span_project(engine_storage)
    pid = seeded.project_id
    _label(engine_storage, pid, seeded.owner_id, [0, 1, 2, 4, 5, 6, *range(40, 60)], truth)
    assert request_and_run_round(engine_storage, pid)["model_version"] == 1
    _label(engine_storage, pid, seeded.owner_id, [3, 7, 8], truth)  # the secret sentence
    _later_label_times(engine_storage, pid, 3)  # the versions are told by revision, not clock
    assert request_and_run_round(engine_storage, pid)["model_version"] == 2
    before = _versions(engine_storage, pid)
    assert [p for p in _holding_secret(engine_storage) if p.startswith("models/")] == [
        f"models/project_{pid}/v2.pkl"]  # a span model keeps the words it trained on
    _purge_row(engine_storage, seeded, 45)  # a holdout sentence: no model trained on it
    _purge_row(engine_storage, seeded, 3)
    after = _versions(engine_storage, pid)
    assert after[1] == before[1]  # trained before the first label of the item: kept
    assert after[2] == (None, True)  # its file gone, the version kept in the history
    assert not Path(str(before[2][0])).exists()
    assert _holding_secret(engine_storage) == []
    with engine_storage.read_sessions() as session:
        forgot = [e for e in list_audit(session, project_id=pid) if e.action == "forget"]
        queued = session.execute(select(Round).where(Round.project_id == pid,
                                                     Round.status == "queued")).scalars().all()
    assert [(e.entity, (e.after or {})["version"]) for e in forgot] == [("model_version", 2)]
    assert len(queued) == 1  # a round to train a model without the purged sentence
    with engine_storage.sessions() as session, session.begin(), \
            pytest.raises(Conflict, match="removed by a purge"):
        activate_version(session, pid, 2, seeded.owner_id)
    trained = run_job(engine_storage, int(queued[0].job_id or 0))
    assert trained["model_version"] == 3
    assert _holding_secret(engine_storage) == []
    _purge_row(engine_storage, seeded, 3)  # again: nothing new to forget
    assert _versions(engine_storage, pid)[3][0] is not None


def test_a_rollback_queued_to_a_model_a_purge_removed_trains_instead(
        engine_storage: Storage) -> None:
    from tests.labeling.test_span_rounds import _label

    seeded, truth = _span_project(engine_storage)
    pid = seeded.project_id
    _label(engine_storage, pid, seeded.owner_id, [*range(8), *range(40, 60)], truth)
    request_and_run_round(engine_storage, pid)
    _label(engine_storage, pid, seeded.owner_id, [8, 9], truth)
    request_and_run_round(engine_storage, pid)
    with engine_storage.sessions() as session, session.begin():
        _, rerank, _ = activate_version(session, pid, 1, seeded.owner_id)  # queued, not run
        job_id = int(rerank.job_id or 0)
    _purge_row(engine_storage, seeded, 3)  # both models learned it
    assert {v: path for v, (path, _) in _versions(engine_storage, pid).items()} == {
        1: None, 2: None}
    done = run_job(engine_storage, job_id)  # the rollback's round trains a new model instead
    assert done["model_version"] == 3
    assert _holding_secret(engine_storage) == []


def _round_purging_while_it_trains(storage: Storage, monkeypatch: pytest.MonkeyPatch,
                                   rows: list[int]) -> dict[str, Any]:
    """A span round (the secret sentence labeled) during whose training ``rows`` are purged:
    committed, their after-commit work not done yet (no new purge stamp), so that the round
    must see the purge in the database itself. The round's result."""
    from activelabel.labeling import governance, rounds
    from tests.labeling.test_span_rounds import _label

    seeded, truth = _span_project(storage)
    _label(storage, seeded.project_id, seeded.owner_id, [*range(10), *range(40, 60)], truth)
    train = rounds.span_round

    def purge_while_training(*args: Any, **kwargs: Any) -> Any:
        out = train(*args, **kwargs)
        with monkeypatch.context() as m:
            m.setattr(governance, "new_purge_stamp", lambda *a: None)
            for row in rows:
                _purge_row(storage, seeded, row)
        return out

    monkeypatch.setattr(rounds, "span_round", purge_while_training)
    return request_and_run_round(storage, seeded.project_id)


def test_a_span_round_that_read_the_labels_before_a_purge_keeps_no_model(
        engine_storage: Storage, monkeypatch: pytest.MonkeyPatch) -> None:
    done = _round_purging_while_it_trains(engine_storage, monkeypatch, [3])  # it learned 3
    assert done["model_version"] is None
    assert "purged while the round ran" in done["metrics"]["model_discarded"]
    assert not [p for p in _holding_secret(engine_storage) if p.startswith("models/")]


def test_a_purge_of_items_a_span_round_did_not_learn_from_keeps_its_model(
        engine_storage: Storage, monkeypatch: pytest.MonkeyPatch) -> None:
    # 30 was never labeled; 45 is the holdout's (measured, not learned)
    done = _round_purging_while_it_trains(engine_storage, monkeypatch, [30, 45])
    assert done["model_version"] == 1
    assert "model_discarded" not in done["metrics"]


def test_sqlite_overwrites_freed_bytes(engine_storage: Storage) -> None:
    if engine_storage.engine.dialect.name != "sqlite":
        pytest.skip("a SQLite setting")
    with engine_storage.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA secure_delete").scalar_one() == 1


def test_a_log_readers_held_is_emptied_by_the_worker_later(fresh_storage: Storage) -> None:
    import sqlite3

    from activelabel.labeling.governance import wal_fold_pending
    from activelabel.runtime.worker import Worker

    if fresh_storage.engine.dialect.name != "sqlite":
        pytest.skip("SQLite's write-ahead log")
    rows = text_rows(ROWS)
    rows[PURGED_ROW]["data"]["text"] = f"alpha {SECRET} beta"
    seeded = new_project(fresh_storage, labels=["a", "b"], rows=rows, settings=SETTINGS)
    reader = sqlite3.connect(fresh_storage.location.data_dir / "activelabel.db",
                             isolation_level=None)
    reader.execute("BEGIN")
    reader.execute("SELECT count(*) FROM items").fetchone()  # holds an older snapshot
    _purge_row(fresh_storage, seeded, PURGED_ROW)
    assert wal_fold_pending(fresh_storage)
    assert "activelabel.db-wal" in _holding_secret(fresh_storage)
    reader.execute("COMMIT")
    reader.close()
    assert Worker(fresh_storage).fold_wal()
    assert not wal_fold_pending(fresh_storage)
    assert _holding_secret(fresh_storage) == []


def _queued(storage: Storage, project_id: int) -> list[tuple[int, dict[str, Any]]]:
    """The project's queued rounds, oldest first: (job id, job payload)."""
    with storage.read_sessions() as session:
        found = session.execute(select(Round).where(
            Round.project_id == project_id, Round.status == "queued").order_by(Round.number)
        ).scalars().all()
        jobs = [session.get(Job, r.job_id) for r in found]
        return [(j.id, dict(j.payload or {})) for j in jobs if j is not None]


def test_a_purge_that_removes_the_active_model_always_gets_a_training_round(
        engine_storage: Storage) -> None:
    from activelabel.store import activate_model_version
    from tests.labeling.test_span_rounds import _label

    seeded, truth = _span_project(engine_storage)
    pid = seeded.project_id
    _label(engine_storage, pid, seeded.owner_id, [0, 1, 2, 4, *range(40, 60)], truth)
    request_and_run_round(engine_storage, pid)  # v1, before the secret sentence's label
    _label(engine_storage, pid, seeded.owner_id, [3, 5], truth)
    request_and_run_round(engine_storage, pid)  # v2 learned it
    with engine_storage.sessions() as session, session.begin():
        _, rerank, _ = activate_version(session, pid, 1, seeded.owner_id)  # queued rollback
        # ... while a round already running makes v2 active again
        activate_model_version(session, pid, 2)
    _purge_row(engine_storage, seeded, 3)
    # v1 is kept, but re-ranking with it would leave the active v2 without a file: it trains
    assert [p.get("model_version") for _, p in _queued(engine_storage, pid)] == [None]
    assert run_job(engine_storage, int(rerank.job_id or 0))["model_version"] == 3


def test_a_rollback_a_worker_holds_already_is_followed_by_a_training_round(
        engine_storage: Storage) -> None:
    from tests.labeling.test_span_rounds import _label

    seeded, truth = _span_project(engine_storage)
    pid = seeded.project_id
    _label(engine_storage, pid, seeded.owner_id, [*range(8), *range(40, 60)], truth)
    request_and_run_round(engine_storage, pid)
    request_and_run_round(engine_storage, pid)
    with engine_storage.sessions() as session, session.begin():
        _, rerank, _ = activate_version(session, pid, 1, seeded.owner_id)
        job = session.get(Job, rerank.job_id)
        assert job is not None
        job.status = "running"  # claimed by a worker, its payload read
    _purge_row(engine_storage, seeded, 3)
    queued = _queued(engine_storage, pid)
    assert [p.get("model_version") for _, p in queued] == [1, None]  # a training round after
    assert run_job(engine_storage, queued[1][0])["model_version"] == 3
