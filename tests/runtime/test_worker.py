"""The worker: runs jobs, records failures, survives bad jobs, picks up jobs of dead workers."""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

import activelabel.runtime.worker as worker_module
from activelabel.http.config import ServerSettings
from activelabel.labeling.imports import enqueue_import, save_upload, upload_path
from activelabel.labeling.quality import (
    CHECK_CURRENT,
    CHECK_NONE,
    LabelCheck,
    label_table,
    read_label_check,
    request_label_check,
)
from activelabel.labeling.rounds import request_round
from activelabel.runtime.server import run_job_inline
from activelabel.runtime.settings import ENV_DATA_DIR, ENV_DB, Storage
from activelabel.runtime.worker import Worker
from activelabel.store import (
    NotFound,
    claim_job,
    enqueue_job,
    get_job,
    get_project,
    get_round,
    list_rounds,
)
from activelabel.store.models import utcnow
from tests.support.projects import label_rows, new_project, run_label_checks, text_rows


def _queue_import(storage: Storage, project_id: int, n: int = 20) -> int:
    content = "\n".join(json.dumps(r) for r in text_rows(n)).encode()
    path = save_upload(storage, project_id, "rows.jsonl", io.BytesIO(content))
    with storage.sessions() as session, session.begin():
        return enqueue_import(session, project_id, path, requested_by=None).id


def test_worker_runs_an_import_then_its_cold_start_round(fresh_storage: Storage) -> None:
    seeded = new_project(fresh_storage, labels=["a", "b"],
                         settings={"batch_size": 3, "featurizer_params": {"n_components": 4}})
    job_id = _queue_import(fresh_storage, seeded.project_id)
    worker = Worker(fresh_storage, worker_id="w-test")
    assert worker.run_once()
    with fresh_storage.read_sessions() as session:
        job = get_job(session, job_id)
        assert job.status == "done"
        assert job.worker_id == "w-test"
        assert job.result is not None
        assert job.result["inserted"] == 20
        assert job.progress is not None
        assert "rows_seen" in job.progress
        [rnd] = list_rounds(session, seeded.project_id)
    assert worker.run_once()  # the cold-start round the import asked for
    assert not worker.run_once()
    with fresh_storage.read_sessions() as session:
        assert get_round(session, seeded.project_id, rnd.id).status == "done"
        assert get_job(session, rnd.job_id).status == "done"  # type: ignore[arg-type]


def test_an_import_done_removes_its_upload_and_never_the_users_own_file(
        fresh_storage: Storage, tmp_path: Path) -> None:
    seeded = new_project(fresh_storage, labels=["a", "b"])
    uploaded = _queue_import(fresh_storage, seeded.project_id)
    own = tmp_path / "mine.jsonl"  # a file named directly, not saved as an upload
    own.write_text("\n".join(json.dumps(r) for r in text_rows(5, start=20)))
    with fresh_storage.sessions() as session, session.begin():
        enqueue_import(session, seeded.project_id, own, requested_by=None)
        upload = Path(str(get_job(session, uploaded).payload["path"]))  # type: ignore[index]
    assert upload.is_file()
    worker = Worker(fresh_storage)
    assert worker.run_once()
    assert not upload.exists()  # its rows are in the database, where a purge reaches them
    assert worker.run_once()
    assert own.is_file()
    with fresh_storage.read_sessions() as session:
        assert [get_job(session, uploaded).status] == ["done"]
    inline = _queue_import(fresh_storage, seeded.project_id, n=3)  # `import --wait` runs it here
    with fresh_storage.read_sessions() as session:
        upload = Path(str(get_job(session, inline).payload["path"]))  # type: ignore[index]
    assert run_job_inline(fresh_storage, inline).status == "done"
    assert not upload.exists()


def test_an_upload_with_rejected_rows_or_another_import_waiting_is_kept(
        fresh_storage: Storage) -> None:
    seeded = new_project(fresh_storage, labels=["a", "b"])
    lines = [json.dumps(r) for r in text_rows(4)] + ["{not json"]
    path = save_upload(fresh_storage, seeded.project_id, "rows.jsonl",
                       io.BytesIO("\n".join(lines).encode()))
    with fresh_storage.sessions() as session, session.begin():
        first = enqueue_import(session, seeded.project_id, path, requested_by=None).id
    assert run_job_inline(fresh_storage, first).result["rejected_count"] == 1  # type: ignore[index]
    assert path.is_file()  # to be imported again, once mended
    clean = save_upload(fresh_storage, seeded.project_id, "more.jsonl", io.BytesIO(
        "\n".join(json.dumps(r) for r in text_rows(3, start=10)).encode()))
    with fresh_storage.sessions() as session, session.begin():
        ids = [enqueue_import(session, seeded.project_id, clean, requested_by=None).id
               for _ in range(2)]
    run_job_inline(fresh_storage, ids[0])
    assert clean.is_file()  # the second import of it still waits
    run_job_inline(fresh_storage, ids[1])
    assert not clean.exists()


def test_uploads_unused_for_the_keep_hours_are_swept_unless_an_import_reads_them(
        fresh_storage: Storage) -> None:
    seeded = new_project(fresh_storage, labels=["a", "b"])
    pid = seeded.project_id

    def saved(name: str) -> Path:
        return save_upload(fresh_storage, pid, name, io.BytesIO(b'{"text": "x"}\n'))

    def age(path: Path, hours: float) -> None:
        then = time.time() - hours * 3600
        os.utime(path, (then, then))

    never_imported, waiting, previewed, fresh = (
        saved(f"{n}.jsonl") for n in ("preview", "waiting", "again", "fresh"))
    rejected = save_upload(fresh_storage, pid, "rejected.jsonl",
                           io.BytesIO(b'{"text": "fine"}\n{not json\n'))
    with fresh_storage.sessions() as session, session.begin():
        first = enqueue_import(session, pid, rejected, requested_by=None).id
    assert run_job_inline(fresh_storage, first).result["rejected_count"] == 1  # type: ignore[index]
    assert rejected.is_file()  # kept after its import, to be imported again
    half_written = never_imported.with_name("0123456789ab-cut.jsonl.part")
    half_written.write_bytes(b'{"text"')
    with fresh_storage.sessions() as session, session.begin():
        queued = enqueue_import(session, pid, waiting, requested_by=None).id
    for path in (never_imported, rejected, waiting, previewed, half_written):
        age(path, 25)
    age(fresh, 23)
    assert upload_path(fresh_storage, pid, previewed.name) == previewed  # a use: kept
    worker = Worker(fresh_storage, settings=ServerSettings(upload_keep_hours=24))
    assert worker.run_once()  # the sweep, then the queued jobs (an import, a round)
    while worker.run_once():
        pass
    assert not never_imported.exists()
    assert not rejected.exists()
    assert not half_written.exists()
    assert previewed.is_file()
    assert fresh.is_file()
    with fresh_storage.read_sessions() as session:
        assert get_job(session, queued).status == "done"  # read before the sweep took it
    assert not waiting.exists()  # then removed as any upload imported in full
    with pytest.raises(NotFound, match="upload_keep_hours"):
        upload_path(fresh_storage, pid, never_imported.name)
    age(previewed, 25)
    assert worker.sweep_uploads() == [previewed]


def test_failed_jobs_are_marked_with_the_error_and_the_worker_goes_on(
        fresh_storage: Storage, tmp_path: Path) -> None:
    # items without the "text" field the text featurizer reads: the round must fail
    seeded = new_project(fresh_storage, labels=["a", "b"],
                         rows=[{"external_id": f"n{i}", "data": {"value": i}} for i in range(10)])
    with fresh_storage.sessions() as session, session.begin():
        rnd, _ = request_round(session, seeded.project_id, requested_by=None, reason="manual")
        bad_import = enqueue_job(session, "import", {"path": str(tmp_path / "gone.jsonl")},
                                 project_id=seeded.project_id).id
        round_job = rnd.job_id
    worker = Worker(fresh_storage)
    assert worker.run_once()
    assert worker.run_once()
    assert not worker.run_once()
    with fresh_storage.read_sessions() as session:
        failed_round = get_round(session, seeded.project_id, rnd.id)
        assert failed_round.status == "failed"
        assert "text" in str(failed_round.error)
        job = get_job(session, round_job)  # type: ignore[arg-type]
        assert job.status == "failed"
        assert job.error == failed_round.error
        imp = get_job(session, bad_import)
        assert imp.status == "failed"
        assert "gone" in str(imp.error)


def test_a_new_worker_picks_up_the_job_of_a_dead_one(fresh_storage: Storage) -> None:
    seeded = new_project(fresh_storage, labels=["a", "b"])
    job_id = _queue_import(fresh_storage, seeded.project_id, n=5)
    long_ago = utcnow() - timedelta(minutes=10)
    with fresh_storage.sessions() as session, session.begin():
        taken = claim_job(session, ["import"], "dead-worker", now=long_ago)
        assert taken is not None
        assert taken.id == job_id
    worker = Worker(fresh_storage, worker_id="heir", stale_seconds=60)
    assert worker.run_once()
    with fresh_storage.read_sessions() as session:
        job = get_job(session, job_id)
        assert (job.status, job.worker_id, job.attempts) == ("done", "heir", 2)
        assert job.result is not None
        assert job.result["inserted"] == 5


def test_a_live_job_is_not_taken_from_its_worker(fresh_storage: Storage) -> None:
    seeded = new_project(fresh_storage, labels=["a", "b"])
    job_id = _queue_import(fresh_storage, seeded.project_id, n=5)
    with fresh_storage.sessions() as session, session.begin():
        assert claim_job(session, ["import"], "alive") is not None
    assert not Worker(fresh_storage, stale_seconds=60).run_once()
    with fresh_storage.read_sessions() as session:
        assert get_job(session, job_id).worker_id == "alive"


def test_run_forever_stops_when_asked(fresh_storage: Storage) -> None:
    seeded = new_project(fresh_storage, labels=["a", "b"],
                         settings={"featurizer_params": {"n_components": 4}})
    job_id = _queue_import(fresh_storage, seeded.project_id)
    stop = threading.Event()
    thread = threading.Thread(target=Worker(fresh_storage, poll_seconds=0.05).run_forever,
                              args=(stop,))
    thread.start()
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        with fresh_storage.read_sessions() as session:
            if get_job(session, job_id).status == "done":
                break
        time.sleep(0.05)
    stop.set()
    thread.join(timeout=10)
    assert not thread.is_alive()
    with fresh_storage.read_sessions() as session:
        assert get_job(session, job_id).status == "done"


def test_run_forever_does_idle_work_only_when_no_job_waits(
        fresh_storage: Storage, monkeypatch: pytest.MonkeyPatch) -> None:
    seeded = new_project(fresh_storage, labels=["a", "b"],
                         settings={"featurizer_params": {"n_components": 4}})
    job_id = _queue_import(fresh_storage, seeded.project_id)
    seen: list[str] = []  # the job's status at each idle step
    stop = threading.Event()

    def idle_step(storage: Storage, **kwargs: Any) -> bool:
        with storage.read_sessions() as session:
            seen.append(get_job(session, job_id).status)
        if len(seen) >= 3:
            stop.set()
        return True  # work done: the loop looks for jobs again at once

    monkeypatch.setattr("activelabel.labeling.sentences.embed_step", idle_step)
    thread = threading.Thread(target=Worker(fresh_storage, poll_seconds=0.05).run_forever,
                              args=(stop,))
    thread.start()
    thread.join(timeout=60)
    assert not thread.is_alive()
    assert seen[:3] == ["done", "done", "done"]  # the import first, then the idle work


@pytest.mark.slow
def test_worker_process_exits_cleanly_on_sigterm(fresh_storage: Storage, backend: str) -> None:
    if backend != "sqlite":
        return  # the signal handling does not depend on the database
    env = {**os.environ, ENV_DATA_DIR: str(fresh_storage.location.data_dir),
           ENV_DB: fresh_storage.location.db_url}
    proc = subprocess.Popen([sys.executable, "-m", "activelabel", "worker"], env=env,
                            stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 20
        assert proc.stderr is not None
        os.set_blocking(proc.stderr.fileno(), False)
        seen = b""
        while b"started" not in seen and time.monotonic() < deadline:
            seen += proc.stderr.read() or b""
            time.sleep(0.05)
        assert b"started" in seen, seen
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stderr.close()


def test_an_interrupted_job_is_given_back_to_the_queue(fresh_storage: Storage,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    seeded = new_project(fresh_storage, labels=["a", "b"])
    job_id = _queue_import(fresh_storage, seeded.project_id, n=5)

    def interrupted(*_: Any, **__: Any) -> dict[str, Any]:
        raise KeyboardInterrupt

    monkeypatch.setattr(worker_module, "handler_for", lambda kind: interrupted)
    with pytest.raises(KeyboardInterrupt):
        Worker(fresh_storage, worker_id="leaving").run_once()
    with fresh_storage.read_sessions() as session:
        job = get_job(session, job_id)
        assert (job.status, job.worker_id) == ("queued", None)
    monkeypatch.undo()
    assert Worker(fresh_storage).run_once()
    with fresh_storage.read_sessions() as session:
        assert get_job(session, job_id).status == "done"


def test_a_worker_whose_job_was_taken_over_stops_at_its_next_report(
        fresh_storage: Storage) -> None:
    """A worker that missed its heartbeats (a stalled machine) finds at its next progress
    report that its job went to another worker, and stops: never two runs at once."""
    from activelabel.runtime.worker import Heartbeat, JobLost
    from activelabel.store import requeue_stale_jobs

    seeded = new_project(fresh_storage, labels=["a", "b"])
    job_id = _queue_import(fresh_storage, seeded.project_id, n=5)
    with fresh_storage.sessions() as session, session.begin():
        assert claim_job(session, ["import"], "stalled",
                         now=utcnow() - timedelta(minutes=5)) is not None
    with Heartbeat(fresh_storage, job_id, "stalled", interval=3600) as beat:
        beat.progress({"stage": "read"})  # still its own: nothing happens
        with fresh_storage.sessions() as session, session.begin():
            assert requeue_stale_jobs(session, 1, now=utcnow() + timedelta(minutes=1)) == [job_id]
            assert claim_job(session, ["import"], "heir") is not None
        with pytest.raises(JobLost, match="another worker"):
            beat.progress({"stage": "write"})
    with fresh_storage.read_sessions() as session:
        assert get_job(session, job_id).worker_id == "heir"


def test_heartbeats_come_often_enough_to_requeue_a_dead_workers_job_in_seconds() -> None:
    from activelabel.runtime.worker import HEARTBEAT_SECONDS, REQUEUE_EVERY_SECONDS, STALE_SECONDS

    assert STALE_SECONDS <= 15
    assert STALE_SECONDS >= 5 * HEARTBEAT_SECONDS  # a few missed beats are not a death
    assert REQUEUE_EVERY_SECONDS <= STALE_SECONDS / 2


def test_the_worker_runs_every_kind_the_job_table_accepts() -> None:
    from activelabel.store.models import JOB_KINDS, JOB_PRIORITY

    # one list of kinds: a kind the store queues is one a worker claims and can run
    assert worker_module.JOB_KINDS is JOB_KINDS
    assert set(JOB_PRIORITY) == set(JOB_KINDS)
    for kind in JOB_KINDS:
        assert callable(worker_module.handler_for(kind))


def _labeled_for_a_check(storage: Storage) -> tuple[int, Callable[[], LabelCheck]]:
    """A text project with 24 labels; the read of its kept label check."""
    seeded = new_project(storage, labels=["a", "b"], rows=text_rows(30),
                         settings={"featurizer_params": {"n_components": 4}})
    label_rows(storage, seeded, list(range(24)), ["a", "b"] * 12)

    def read() -> LabelCheck:
        with storage.read_sessions() as session:
            project = get_project(session, seeded.project_id)
            return read_label_check(storage, project, label_table(session, project))

    return seeded.project_id, read


def _a_check_claimed_and_a_round_queued(storage: Storage) -> tuple[
        Callable[[], LabelCheck], Worker, Any, Any]:
    """A labeled project's label check claimed by a worker, then a round queued: (the read
    of the check, the worker, the check's job, the round)."""
    pid, read = _labeled_for_a_check(storage)
    key = read().key
    assert key is not None
    check_id = request_label_check(storage, pid, key)
    worker = Worker(storage, worker_id="w-test")
    check = worker._claim()
    assert check is not None
    assert check.id == check_id
    with storage.sessions() as session, session.begin():
        rnd, _ = request_round(session, pid, requested_by=None, reason="manual")
        session.expunge(rnd)
    return read, worker, check, rnd


def test_worker_runs_the_label_check_the_review_queue_asks_for(fresh_storage: Storage) -> None:
    """A ``label_check`` job: the worker checks the labels and keeps the result the review
    queue reads (up to date with the labels it read)."""
    pid, read = _labeled_for_a_check(fresh_storage)
    check = read()
    assert check.state == CHECK_NONE
    assert check.key is not None
    job_id = request_label_check(fresh_storage, pid, check.key)
    assert job_id is not None
    assert request_label_check(fresh_storage, pid, check.key) is None  # queued
    worker = Worker(fresh_storage, worker_id="w-test")
    assert worker.run_once()
    with fresh_storage.read_sessions() as session:
        job = get_job(session, job_id)
        assert (job.status, job.result["labels"]) == ("done", 24)  # type: ignore[index]
    check = read()
    assert (check.state, check.labels_checked) == (CHECK_CURRENT, 24)
    assert not worker.run_once()


def test_a_label_check_waits_for_the_rounds_queued(fresh_storage: Storage) -> None:
    """A worker takes a queued round before an older label check (a check of a large
    project takes minutes; the round keeps the annotators' queue ranked)."""
    seeded = new_project(fresh_storage, labels=["a", "b"], rows=text_rows(12))
    with fresh_storage.sessions() as session, session.begin():
        check = enqueue_job(session, "label_check", {}, project_id=seeded.project_id).id
        later = enqueue_job(session, "round", {}, project_id=seeded.project_id).id
    with fresh_storage.sessions() as session, session.begin():
        first = claim_job(session, ["round", "import", "label_check"], "w")
        second = claim_job(session, ["round", "import", "label_check"], "w")
    assert first is not None
    assert second is not None
    assert (first.id, second.id) == (later, check)


def test_a_label_check_waiting_a_minute_goes_before_the_rounds_queued_after_it(
        fresh_storage: Storage) -> None:
    """Where one worker serves several busy projects, a round may be queued whenever a job
    ends, and a label check behind them waited as long as rounds kept coming. Past PRIORITY_AGING_SECONDS a check takes its
    turn by age (the rounds then run at its fits)."""
    from activelabel.store.jobs import PRIORITY_AGING_SECONDS
    from activelabel.store.models import Job

    seeded = new_project(fresh_storage, labels=["a", "b"], rows=text_rows(12))
    kinds = ["round", "import", "label_check"]
    with fresh_storage.sessions() as session, session.begin():
        check = enqueue_job(session, "label_check", {}, project_id=seeded.project_id)
        check.created_at = utcnow() - timedelta(seconds=PRIORITY_AGING_SECONDS - 5)
        fresh = enqueue_job(session, "round", {}, project_id=seeded.project_id).id
        check_id = check.id
    with fresh_storage.sessions() as session, session.begin():
        first = claim_job(session, kinds, "w")  # not yet aged: the round first
        assert first is not None
        assert first.id == fresh
        later = enqueue_job(session, "round", {}, project_id=seeded.project_id).id
        aged = session.get(Job, check_id)
        assert aged is not None
        aged.created_at = utcnow() - timedelta(seconds=PRIORITY_AGING_SECONDS + 1)
    with fresh_storage.sessions() as session, session.begin():
        second = claim_job(session, kinds, "w")
        third = claim_job(session, kinds, "w")
    assert second is not None
    assert third is not None
    assert (second.id, third.id) == (check_id, later)


def test_a_round_queued_while_a_label_check_runs_runs_at_the_checks_next_report(
        fresh_storage: Storage) -> None:
    """A worker in a label check (its five fits take minutes on a large project) runs a round
    queued meanwhile at the check's next report, then finishes the check; the checks' rest
    after it leaves the round's time out. (Here that report is the check's first, before its
    fits; that it reports before each fit is the next test's.)"""
    from activelabel.labeling.quality import CHECK_REST_FACTOR, _rest_until

    read, worker, check, rnd = _a_check_claimed_and_a_round_queued(fresh_storage)
    check_id, round_job, pid = check.id, rnd.job_id, rnd.project_id
    worker._run(check)
    assert not worker.run_once()  # the round ran inside the check
    with fresh_storage.read_sessions() as session:
        done, ran = get_job(session, check_id), get_job(session, round_job)  # type: ignore[arg-type]
        assert (done.status, ran.status) == ("done", "done")
        assert done.started_at < ran.started_at <= ran.finished_at <= done.finished_at  # type: ignore[operator]
        yielded = done.result["yielded_s"]  # type: ignore[index]
        assert (ran.finished_at - ran.started_at).total_seconds() <= yielded  # type: ignore[operator]
        assert yielded < (done.finished_at - done.started_at).total_seconds()  # type: ignore[operator]
        took = done.finished_at - done.started_at - timedelta(seconds=yielded)  # type: ignore[operator]
        assert _rest_until(done) == done.finished_at + took * CHECK_REST_FACTOR  # type: ignore[operator]
        assert get_round(session, pid, rnd.id).status == "done"
    assert read().state == CHECK_CURRENT


def test_the_check_reports_before_each_model_fit(fresh_storage: Storage) -> None:
    """The check's reports, where its worker runs the rounds queued: one as it starts, then
    one before each of its five cross-validation fits."""
    from activelabel.labeling.quality import run_label_check

    pid, read = _labeled_for_a_check(fresh_storage)
    key = read().key
    assert key is not None
    check_id = request_label_check(fresh_storage, pid, key)
    with fresh_storage.sessions() as session, session.begin():
        job = claim_job(session, ["label_check"], "w-test")
        assert job is not None
        assert job.id == check_id
        session.expunge(job)
    reports: list[dict[str, Any]] = []
    result = run_label_check(fresh_storage, job, progress=lambda values: reports.append(
        dict(values)))
    assert result["kept"]
    fits = [r["fits"] for r in reports]
    assert fits == list(range(len(fits)))
    assert len(fits) >= 6


def test_a_check_stopped_at_a_fit_is_no_failure_of_its_model(fresh_storage: Storage,
                                                             caplog: pytest.LogCaptureFixture
                                                             ) -> None:
    """A report that ends the job (lost to another worker, stopped) ends the check there: it
    is not taken for the model failing, whose fallback would train the default model."""
    from activelabel.labeling import quality
    from activelabel.runtime.worker import JobLost

    pid, _ = _labeled_for_a_check(fresh_storage)
    with fresh_storage.read_sessions() as session:
        project = get_project(session, pid)
        table = label_table(session, project)
        settings = quality.settings_of(dict(project.settings or {}))
    tried: list[int] = []

    def probs_of(make: Callable[[], Any]) -> Any:
        tried.append(1)
        return make()

    def lost() -> None:
        raise JobLost("job 1 was given to another worker")

    with pytest.raises(JobLost):
        quality._out_of_fold(table, settings, 2, probs_of, between=lost)
    assert tried == [1]
    assert "default checks instead" not in caplog.text


def test_a_database_error_while_a_check_yields_leaves_the_check_to_go_on(
        fresh_storage: Storage, monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture) -> None:
    """The worker cannot claim the queued round from within the check (the database away):
    logged, and the check goes on with the project's model and ends done; the round waits."""
    from sqlalchemy.exc import OperationalError

    read, worker, check, rnd = _a_check_claimed_and_a_round_queued(fresh_storage)
    check_id = check.id
    real = worker_module.claim_job

    def claim(session: Any, kinds: Any, worker_id: str, **kw: Any) -> Any:
        if "label_check" not in kinds:
            raise OperationalError("SELECT", {}, Exception("database is locked"))
        return real(session, kinds, worker_id, **kw)

    monkeypatch.setattr(worker_module, "claim_job", claim)
    worker._run(check)
    assert "could not be run" in caplog.text
    assert "default checks instead" not in caplog.text
    with fresh_storage.read_sessions() as session:
        assert get_job(session, check_id).status == "done"  # type: ignore[arg-type]
        assert get_job(session, rnd.job_id).status == "queued"  # type: ignore[arg-type]
    assert read().state == CHECK_CURRENT


def test_a_stopping_worker_runs_no_round_inside_the_check(fresh_storage: Storage) -> None:
    """Asked to stop, the worker finishes the check in hand and starts nothing inside it."""
    _, worker, check, rnd = _a_check_claimed_and_a_round_queued(fresh_storage)
    worker._stop = threading.Event()
    worker._stop.set()
    worker._run(check)
    with fresh_storage.read_sessions() as session:
        assert get_job(session, check.id).status == "done"
        assert get_job(session, rnd.job_id).status == "queued"


def test_a_round_runs_no_job_inside_it(fresh_storage: Storage) -> None:
    """Only a job of a later priority lets others run inside it: a round reports without
    running the label check queued behind it."""
    pid, read = _labeled_for_a_check(fresh_storage)
    with fresh_storage.sessions() as session, session.begin():
        rnd, _ = request_round(session, pid, requested_by=None, reason="manual")
    worker = Worker(fresh_storage, worker_id="w-test")
    first = worker._claim()
    assert first is not None
    assert first.id == rnd.job_id
    key = read().key
    assert key is not None
    check_id = request_label_check(fresh_storage, pid, key)
    worker._run(first)
    with fresh_storage.read_sessions() as session:
        assert get_job(session, check_id).status == "queued"  # type: ignore[arg-type]
        assert "yielded_s" not in (get_job(session, rnd.job_id).result or {})


def test_a_kept_label_check_of_another_database_is_not_read(fresh_storage: Storage) -> None:
    """The result file names its project (id and creation time): a data folder restored
    beside another database reads as no check yet; a check done on these labels is not
    asked again where its result cannot be read (it was, on every read of the queue)."""
    pid, read = _labeled_for_a_check(fresh_storage)
    key = read().key
    assert key is not None
    request_label_check(fresh_storage, pid, key)
    run_label_checks(fresh_storage, pid)
    assert read().state == CHECK_CURRENT
    path = fresh_storage.arrays.project_dir(pid) / "label_check.json"
    kept = json.loads(path.read_text())
    assert kept["project"].startswith(f"{pid}@")
    path.write_text(json.dumps({**kept, "project": f"{pid}@2020-01-01T00:00:00"}))
    assert read().state == CHECK_NONE
    path.write_text("{not json")
    assert read().state == CHECK_NONE
    assert request_label_check(fresh_storage, pid, key) is None
