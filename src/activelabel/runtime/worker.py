"""The background worker: claims round and import jobs from the durable job table and runs them.

A job is claimed atomically (one worker per job), heartbeated from a thread while it runs,
and finished with its result or failed with the error message (its round too); a bad job
never stops the worker. A job of a later priority (a label check) lets the rounds and imports
queued meanwhile run at each of its reports (between its model fits), so a round never waits
for a check to end. Jobs of a worker that stopped heartbeating are put back in the
queue at start and periodically, so a restart loses no job. SIGTERM / SIGINT stop the
worker after the current job; a second signal gives the job back to the queue and exits.
"""

from __future__ import annotations

import contextlib
import logging
import logging.config
import os
import signal
import socket
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..store import (
    ActivelabelError,
    Conflict,
    DataLocation,
    Storage,
    claim_job,
    fail_job,
    fail_round,
    finish_job,
    give_back_job,
    heartbeat,
    job_waiting,
    requeue_stale_jobs,
)
from ..store.models import JOB_KINDS, JOB_PRIORITY, Job

if TYPE_CHECKING:
    from ..http.config import ServerSettings

__all__ = [
    "HEARTBEAT_SECONDS",
    "JOB_KINDS",
    "STALE_SECONDS",
    "Heartbeat",
    "JobLost",
    "Worker",
    "after_done",
    "handler_for",
    "handler_options",
    "main",
    "record_failure",
]

log = logging.getLogger("activelabel.worker")

#: Seconds between two heartbeats of a running job.
HEARTBEAT_SECONDS = 2.0
#: A running job whose heartbeat is older than this belongs to a dead worker.
STALE_SECONDS = 15.0
#: Seconds between two sweeps for stale jobs.
REQUEUE_EVERY_SECONDS = 5.0
#: Seconds between two checks for stale models (``retrain_when_stale``).
STALE_MODELS_EVERY_SECONDS = 60.0
#: Seconds between two sweeps of unused uploads (``upload_keep_hours``).
UPLOAD_SWEEP_EVERY_SECONDS = 3600.0
#: How often the worker tries again to empty SQLite's write-ahead log after a purge could not.
WAL_FOLD_EVERY_SECONDS = 10.0
#: Least time between two progress writes to the job row.
PROGRESS_SECONDS = 0.5
#: Seconds the idle work waits after it failed.
IDLE_PAUSE_SECONDS = 60.0
#: Least seconds between two looks for urgent jobs from within a job of a later priority.
URGENT_EVERY_SECONDS = 0.5
Handler = Callable[..., dict[str, Any]]


def handler_for(kind: str) -> Handler:
    """The function that runs jobs of ``kind``: ``handler(storage, job, progress=...)``."""
    if kind == "round":
        from ..labeling.rounds import run_round

        return run_round
    if kind == "import":
        from ..labeling.imports import run_import

        return run_import
    if kind == "label_check":
        from ..labeling.quality import run_label_check

        return run_label_check
    raise ActivelabelError(f"unknown job kind {kind!r}: this worker runs {', '.join(JOB_KINDS)}")


def after_done(storage: Storage, job: Job, result: Mapping[str, Any]) -> None:
    """What follows a job's success once it is recorded (``result``: the job's): an import's
    uploaded file goes (``labeling.imports.discard_upload``). A failure here is logged, never
    the job's."""
    if job.kind != "import":
        return
    from ..labeling.imports import discard_upload

    try:
        discard_upload(storage, job, result)
    except Exception:  # the job is done and recorded; the file waits
        log.exception("job %s: its uploaded file could not be removed", job.id)


def handler_options(kind: str, settings: ServerSettings | None = None) -> dict[str, Any]:
    """What the handler of ``kind`` takes from the server's settings (``settings``, else the
    ``ACTIVELABEL_*`` variables of this process): a round, the hosts a model served elsewhere
    may be called at (``model_hosts``)."""
    if kind != "round":
        return {}
    if settings is None:
        from ..http.config import server_settings_from_env

        settings = server_settings_from_env()
    return {"model_hosts": settings.model_host_rules()}


class JobLost(Exception):
    """The job was requeued and claimed by another worker: stop running it here."""


class Heartbeat:
    """Beats for one running job from a thread; progress is written at most every 0.5 s and
    also handed to ``on_progress`` (a command line showing it)."""

    def __init__(self, storage: Storage, job_id: int, worker_id: str,
                 interval: float = HEARTBEAT_SECONDS,
                 on_progress: Callable[[Mapping[str, Any]], None] | None = None) -> None:
        self.storage, self.job_id, self.worker_id = storage, job_id, worker_id
        self.interval = interval
        self.on_progress = on_progress
        self.latest: dict[str, Any] | None = None
        self.lost = False
        self._written = 0.0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"heartbeat-{job_id}",
                                        daemon=True)

    def _beat(self) -> None:
        with self._lock:
            try:
                with self.storage.sessions() as session, session.begin():
                    heartbeat(session, self.job_id, self.worker_id, progress=self.latest)
                self._written = time.monotonic()
            except Conflict:
                self.lost = True  # requeued after missed beats: another worker owns it now
            except Exception:  # a missed beat (busy database) is retried at the next one
                log.warning("heartbeat of job %s failed", self.job_id, exc_info=True)

    def progress(self, values: Mapping[str, Any]) -> None:
        """Report progress: written at most every 0.5 s, and at once when the job enters a
        new stage. JobLost when the job was given to another worker meanwhile (this worker
        missed its heartbeats): the handler stops there, so a job never runs twice at once
        past its next report (a round reports before it writes anything)."""
        new_stage = values.get("stage") != (self.latest or {}).get("stage")
        self.latest = dict(values)
        if self.on_progress is not None:
            self.on_progress(values)
        if new_stage or time.monotonic() - self._written >= PROGRESS_SECONDS:
            self._beat()
        if self.lost:
            raise JobLost(f"job {self.job_id} was given to another worker after missed "
                          "heartbeats; this worker stops it")

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self._beat()

    def __enter__(self) -> Heartbeat:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=self.interval + 5)


def record_failure(storage: Storage, job: Job, worker_id: str, exc: BaseException) -> None:
    """Mark the job (and its round) failed with the error, logged; never raises."""
    message = f"{type(exc).__name__}: {exc}"
    if isinstance(exc, (ActivelabelError, KeyboardInterrupt)):
        log.warning("job %s failed: %s", job.id, message)
    else:
        log.exception("job %s failed: %s", job.id, message)
    try:
        with storage.sessions() as session, session.begin():
            with contextlib.suppress(Conflict):
                fail_job(session, job.id, worker_id, message)
            round_id = (job.payload or {}).get("round_id")
            if job.kind == "round" and round_id is not None and job.project_id is not None:
                with contextlib.suppress(ActivelabelError):
                    fail_round(session, job.project_id, int(round_id), message)
    except Exception:
        log.exception("could not record the failure of job %s", job.id)


class Worker:
    """Runs queued jobs of ``JOB_KINDS`` one at a time; ``run_once`` or ``run_forever``.
    ``settings``: the server's (by default read from the ``ACTIVELABEL_*`` variables)."""

    def __init__(self, storage: Storage, *, worker_id: str | None = None,
                 poll_seconds: float = 0.5, heartbeat_seconds: float = HEARTBEAT_SECONDS,
                 stale_seconds: float = STALE_SECONDS,
                 settings: ServerSettings | None = None) -> None:
        if settings is None:
            from ..http.config import server_settings_from_env

            settings = server_settings_from_env()
        self.settings = settings
        self.storage = storage
        self.worker_id = worker_id or (f"{socket.gethostname()}-{os.getpid()}-"
                                       f"{uuid.uuid4().hex[:6]}")
        self.poll_seconds = poll_seconds
        self.heartbeat_seconds = heartbeat_seconds
        self.stale_seconds = stale_seconds
        self._last_sweep = float("-inf")
        self._last_model_check = float("-inf")
        self._last_upload_sweep = float("-inf")
        self._last_wal_fold = float("-inf")
        self._idle_paused_until = float("-inf")
        self._last_urgent = float("-inf")
        self._stop: threading.Event | None = None

    def requeue_stale(self) -> list[int]:
        """Put the jobs of dead workers (no heartbeat for ``stale_seconds``) back in the queue."""
        with self.storage.sessions() as session, session.begin():
            ids = requeue_stale_jobs(session, self.stale_seconds)
        self._last_sweep = time.monotonic()
        if ids:
            log.info("requeued stale jobs %s", ids)
        return ids

    def queue_stale_models(self) -> list[int]:
        """Queue a round for every project whose model is stale and asks for it."""
        from ..labeling.drift import request_stale_rounds

        self._last_model_check = time.monotonic()
        with self.storage.sessions() as session, session.begin():
            return request_stale_rounds(session)

    def sweep_uploads(self) -> list[Path]:
        """Remove the uploads unused for the server's ``upload_keep_hours`` that no import
        reads; a failure is logged (the files wait for the next sweep)."""
        from ..labeling.imports import sweep_uploads

        self._last_upload_sweep = time.monotonic()
        try:
            removed = sweep_uploads(self.storage, self.settings.upload_keep_hours * 3600.0)
        except Exception:
            log.exception("the sweep of unused uploads failed; it runs again in %.0f s",
                          UPLOAD_SWEEP_EVERY_SECONDS)
            return []
        if removed:
            log.info("removed %d upload(s) unused for %d hours: %s", len(removed),
                     self.settings.upload_keep_hours, ", ".join(p.name for p in removed))
        return removed

    def fold_wal(self) -> bool:
        """Empty SQLite's write-ahead log where a purge could not (readers held it): the
        purged payloads' old bytes go with it; True when nothing is left to do."""
        from ..labeling.governance import fold_wal, wal_fold_pending

        self._last_wal_fold = time.monotonic()
        if not wal_fold_pending(self.storage):
            return True
        try:
            return fold_wal(self.storage)
        except Exception:
            log.exception("emptying the write-ahead log after a purge failed; tried again in "
                          "%.0f s", WAL_FOLD_EVERY_SECONDS)
            return False

    def idle_step(self) -> bool:
        """With no job queued: a few seconds of the work no round waits for (the sentence
        vectors of projects that lack them), ended early once a job is queued (looked for at
        most every :data:`URGENT_EVERY_SECONDS`); False when there is none."""
        if time.monotonic() < self._idle_paused_until:
            return False
        from ..labeling.sentences import embed_step

        try:
            return embed_step(self.storage, stop=self._job_queued)
        except Exception:  # never the worker's end: jobs go on, the idle work waits
            log.exception("idle work failed; paused for %.0f s", IDLE_PAUSE_SECONDS)
            self._idle_paused_until = time.monotonic() + IDLE_PAUSE_SECONDS
            return False

    def _job_queued(self) -> bool:
        """Whether a job waits for this worker, or it is stopping (looked for at most every
        :data:`URGENT_EVERY_SECONDS`; False between looks)."""
        if self._stop is not None and self._stop.is_set():
            return True
        if time.monotonic() - self._last_urgent < URGENT_EVERY_SECONDS:
            return False
        self._last_urgent = time.monotonic()
        try:
            with self.storage.read_sessions() as session:
                return job_waiting(session, JOB_KINDS)
        except Exception:  # the database away: the step ends at its deadline, as before
            log.exception("could not look for queued jobs during idle work")
            return False

    def _claim(self, kinds: tuple[str, ...] = JOB_KINDS) -> Job | None:
        with self.storage.sessions() as session, session.begin():
            return claim_job(session, kinds, self.worker_id)

    def run_once(self) -> bool:
        """Claim one job and run it to the end; False when the queue is empty."""
        if time.monotonic() - self._last_sweep >= REQUEUE_EVERY_SECONDS:
            self.requeue_stale()
        if time.monotonic() - self._last_model_check >= STALE_MODELS_EVERY_SECONDS:
            self.queue_stale_models()
        if time.monotonic() - self._last_upload_sweep >= UPLOAD_SWEEP_EVERY_SECONDS:
            self.sweep_uploads()
        if time.monotonic() - self._last_wal_fold >= WAL_FOLD_EVERY_SECONDS:
            self.fold_wal()
        job = self._claim()
        if job is None:
            return False
        self._run(job)
        return True

    def _run(self, job: Job) -> None:
        log.info("job %s (%s) started", job.id, job.kind)
        urgent = tuple(k for k in JOB_KINDS
                       if JOB_PRIORITY.get(k, 0) < JOB_PRIORITY.get(job.kind, 0))
        yielded = [0.0]
        try:
            handler = handler_for(job.kind)
            with Heartbeat(self.storage, job.id, self.worker_id,
                           self.heartbeat_seconds) as beat:
                progress = beat.progress if not urgent else self._yielding(
                    beat.progress, urgent, yielded)
                result = handler(self.storage, job, progress=progress,
                                 **handler_options(job.kind, self.settings))
        except JobLost as exc:  # another worker has it now: not a failure of the job
            log.warning("%s", exc)
            return
        except Exception as exc:
            self._fail(job, exc)
            return
        except BaseException:  # interrupted (second SIGTERM, Ctrl-C): hand the job back
            self._give_back(job)
            raise
        if yielded[0]:
            result = {**result, "yielded_s": round(yielded[0], 3)}
        try:
            with self.storage.sessions() as session, session.begin():
                finish_job(session, job.id, self.worker_id, result=result)
            log.info("job %s done", job.id)
            after_done(self.storage, job, result)
        except Conflict:
            log.warning("job %s finished but was requeued meanwhile; its result is dropped",
                        job.id)

    def _yielding(self, report: Callable[[Mapping[str, Any]], None], kinds: tuple[str, ...],
                  yielded: list[float]) -> Callable[[Mapping[str, Any]], None]:
        """``report`` that then runs the jobs of ``kinds`` queued meanwhile (looked for at
        most every :data:`URGENT_EVERY_SECONDS`), adding the seconds they took to
        ``yielded[0]``: the job resumes after them."""

        def stopping() -> bool:
            return self._stop is not None and self._stop.is_set()

        def progress(values: Mapping[str, Any]) -> None:
            report(values)  # JobLost: the job in hand is another worker's now
            if time.monotonic() - self._last_urgent < URGENT_EVERY_SECONDS or stopping():
                return
            start, ran = time.monotonic(), False
            try:
                while not stopping() and (job := self._claim(kinds)) is not None:
                    log.info("job %s (%s) runs before the rest of the job in hand", job.id,
                             job.kind)
                    ran = True
                    self._run(job)
            except Exception:  # the database away: the job in hand goes on, its report too
                log.exception("the jobs queued before the rest of the job in hand could not "
                              "be run; they wait for the worker")
            self._last_urgent = time.monotonic()
            if ran:
                yielded[0] += self._last_urgent - start

        return progress

    def _give_back(self, job: Job) -> None:
        """Put an interrupted job back in the queue at once (another worker redoes it)."""
        try:
            with self.storage.sessions() as session, session.begin():
                give_back_job(session, job.id, self.worker_id)
            log.info("job %s given back to the queue", job.id)
        except Exception:  # the stale-job sweep of the next worker requeues it anyway
            log.exception("could not give job %s back; it is requeued once stale", job.id)

    def _fail(self, job: Job, exc: BaseException) -> None:
        record_failure(self.storage, job, self.worker_id, exc)

    def run_forever(self, stop: threading.Event | None = None) -> None:
        """Run jobs until ``stop`` is set; the current job is finished first."""
        stop = self._stop = stop or threading.Event()
        self.requeue_stale()
        while not stop.is_set():
            try:
                busy = self.run_once() or self.idle_step()
            except Exception:  # database away: wait and retry rather than die
                log.exception("worker loop error; retrying")
                busy = False
            if not busy:
                stop.wait(self.poll_seconds)


class _Interrupted(BaseException):
    """Raised by the second stop signal: not an error of the job, so not caught as one."""


def main(location: DataLocation) -> None:
    """Run a worker on ``location`` until SIGTERM or SIGINT (the job in hand is finished)."""
    from ..http.config import server_settings_from_env
    from .logs import logging_config

    settings = server_settings_from_env()  # a bad ACTIVELABEL_* setting stops here
    logging.config.dictConfig(logging_config(settings.log_format))
    storage = Storage(location)
    stop = threading.Event()

    def on_signal(signum: int, _frame: Any) -> None:
        if stop.is_set():  # asked twice: give the current job back and leave now
            raise _Interrupted(signum)
        log.info("signal %s: stopping after the current job (again: give it back)", signum)
        stop.set()

    # A worker started by `serve` ignores Ctrl-C (the server sends SIGTERM): keep that.
    wanted = [sig for sig in (signal.SIGTERM, signal.SIGINT)
              if signal.getsignal(sig) is not signal.SIG_IGN]
    previous = {sig: signal.signal(sig, on_signal) for sig in wanted}
    worker = Worker(storage, settings=settings)
    log.info("worker %s started (database %s)", worker.worker_id, location.safe_db_url())
    try:
        worker.run_forever(stop)
    except _Interrupted as exc:
        log.info("signal %s again: stopped without finishing the job", exc.args[0])
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        storage.close()
        log.info("worker %s stopped", worker.worker_id)
