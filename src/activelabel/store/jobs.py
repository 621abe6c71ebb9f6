"""The durable job table: enqueue, claim (one worker per job), heartbeat, finish, requeue."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import case, func, select, update
from sqlalchemy.orm import Session

from ._util import get_or_raise
from .db import dialect_of, for_update_skip_locked
from .errors import Conflict, InvalidInput
from .models import JOB_KINDS, JOB_PRIORITY, Job, JobStatus, utcnow

__all__ = [
    "claim_job",
    "claim_job_by_id",
    "count_pending_jobs",
    "enqueue_job",
    "fail_job",
    "finish_job",
    "get_job",
    "give_back_job",
    "heartbeat",
    "job_waiting",
    "list_jobs",
    "requeue_stale_jobs",
    "save_checkpoint",
]

_CLAIM_ATTEMPTS = 5


def enqueue_job(session: Session, kind: str, payload: Mapping[str, Any] | None = None, *,
                project_id: int | None = None) -> Job:
    if kind not in JOB_KINDS:
        raise InvalidInput(f"unknown job kind {kind!r}: use one of {', '.join(JOB_KINDS)}")
    job = Job(kind=kind, status=JobStatus.QUEUED, payload=dict(payload or {}), project_id=project_id,
              attempts=0)
    session.add(job)
    session.flush()
    return job


def get_job(session: Session, job_id: int) -> Job:
    return get_or_raise(session, Job, job_id)


def list_jobs(session: Session, *, project_id: int | None = None, status: str | None = None,
              limit: int = 100) -> list[Job]:
    stmt = select(Job).order_by(Job.id.desc()).limit(limit)
    if project_id is not None:
        stmt = stmt.where(Job.project_id == project_id)
    if status is not None:
        stmt = stmt.where(Job.status == status)
    return list(session.execute(stmt).scalars())


#: A job of a later kind in :data:`JOB_PRIORITY` queued this long is taken in its turn, by
#: age: where a worker serves several busy projects (``auto`` cadence queues a round a few
#: labels after the last), a round may be queued whenever a job ends, and a label check
#: behind them waited as long as rounds kept coming. A check yields to the rounds queued at
#: each of its model fits, so a round then waits one fit at most.
PRIORITY_AGING_SECONDS = 60.0


def claim_job(session: Session, kinds: Collection[str], worker_id: str, *,
              now: datetime | None = None) -> Job | None:
    """Take the oldest queued job of ``kinds`` for this worker (of the kinds first in
    :data:`JOB_PRIORITY`, unless a later kind's job has waited
    :data:`PRIORITY_AGING_SECONDS`), or None when there is none.

    The conditional UPDATE (status still 'queued') makes the claim atomic on any database;
    PostgreSQL also skips rows another worker is claiming instead of waiting for them.
    """
    if not kinds:
        raise InvalidInput("kinds is empty: pass the job kinds this worker runs, e.g. ['round']")
    now = now or utcnow()
    for _ in range(_CLAIM_ATTEMPTS):
        aged = now - timedelta(seconds=PRIORITY_AGING_SECONDS)
        priority = case((Job.created_at <= aged, 0),
                        else_=case(JOB_PRIORITY, value=Job.kind, else_=0))
        stmt = (select(Job.id).where(Job.status == JobStatus.QUEUED, Job.kind.in_(sorted(kinds)))
                .order_by(priority, Job.id).limit(1))
        job_id = session.execute(for_update_skip_locked(stmt, dialect_of(session))).scalar()
        if job_id is None:
            return None
        claimed = session.execute(
            update(Job).where(Job.id == job_id, Job.status == JobStatus.QUEUED)
            .values(status=JobStatus.RUNNING, worker_id=worker_id, attempts=Job.attempts + 1,
                    started_at=now, heartbeat_at=now)
            .execution_options(synchronize_session=False))
        if claimed.rowcount == 1:  # type: ignore[attr-defined]
            return session.get(Job, job_id, populate_existing=True)
    return None


def _own_running(session: Session, job_id: int, worker_id: str) -> Job:
    job = get_or_raise(session, Job, job_id)
    session.flush()
    session.refresh(job)  # another process may have requeued it
    if job.status != JobStatus.RUNNING or job.worker_id != worker_id:
        raise Conflict(f"job {job_id} is {job.status} and held by {job.worker_id!r}, not by "
                       f"{worker_id!r}: it was requeued after missed heartbeats; drop it")
    return job


def heartbeat(session: Session, job_id: int, worker_id: str, *,
              progress: Mapping[str, Any] | None = None, now: datetime | None = None) -> Job:
    """Record that the worker is alive (and its progress); Conflict if the job was taken away."""
    job = _own_running(session, job_id, worker_id)
    job.heartbeat_at = now or utcnow()
    if progress is not None:
        job.progress = dict(progress)
    return job


def save_checkpoint(session: Session, job_id: int, worker_id: str | None,
                    checkpoint: Mapping[str, Any]) -> None:
    """Keep where a job has got to (``payload["checkpoint"]``) in the caller's transaction, so
    the work committed with it and the checkpoint stand or fall together; a resumed job starts
    from it. Conflict when the job is no longer held by ``worker_id`` (``None``: a job run in
    place, never claimed), and the caller's transaction must then roll back."""
    job = session.get(Job, job_id, populate_existing=True, with_for_update=True)
    if job is None or job.worker_id != worker_id:
        holder = None if job is None else job.worker_id
        raise Conflict(f"job {job_id} is held by {holder!r}, not by {worker_id!r}: it was "
                       "requeued after missed heartbeats; drop it")
    job.payload = {**(job.payload or {}), "checkpoint": dict(checkpoint)}


def finish_job(session: Session, job_id: int, worker_id: str, *,
               result: Mapping[str, Any] | None = None, now: datetime | None = None) -> Job:
    job = _own_running(session, job_id, worker_id)
    job.status, job.finished_at = JobStatus.DONE, now or utcnow()
    job.result = None if result is None else dict(result)
    return job


def fail_job(session: Session, job_id: int, worker_id: str, error: str, *,
             now: datetime | None = None) -> Job:
    job = _own_running(session, job_id, worker_id)
    job.status, job.finished_at, job.error = JobStatus.FAILED, now or utcnow(), error
    return job


def requeue_stale_jobs(session: Session, older_than_seconds: float, *, max_attempts: int = 3,
                       now: datetime | None = None) -> list[int]:
    """Running jobs whose last heartbeat is older than ``older_than_seconds`` go back to the
    queue (or fail after ``max_attempts`` claims); returns their ids. Run it on worker start."""
    if older_than_seconds <= 0:
        raise InvalidInput(f"older_than_seconds must be > 0, got {older_than_seconds}")
    now = now or utcnow()
    cutoff = now - timedelta(seconds=older_than_seconds)
    stale = (select(Job).where(Job.status == JobStatus.RUNNING, Job.heartbeat_at < cutoff)
             .order_by(Job.id))
    jobs = list(session.execute(for_update_skip_locked(stale, dialect_of(session))).scalars())
    for job in jobs:
        if job.attempts >= max_attempts:
            job.status, job.finished_at = JobStatus.FAILED, now
            job.error = f"worker {job.worker_id} stopped answering; gave up after {job.attempts} attempts"
        else:
            job.status, job.worker_id, job.heartbeat_at = JobStatus.QUEUED, None, None
    session.flush()
    return [job.id for job in jobs]


def claim_job_by_id(session: Session, job_id: int, worker_id: str, *,
                    now: datetime | None = None) -> bool:
    """Take the queued job ``job_id`` for ``worker_id`` (running it in place); False when a
    worker already has it (NotFound for an unknown job)."""
    get_job(session, job_id)
    now = now or utcnow()
    claimed = session.execute(
        update(Job).where(Job.id == job_id, Job.status == JobStatus.QUEUED)
        .values(status=JobStatus.RUNNING, worker_id=worker_id, attempts=Job.attempts + 1,
                started_at=now, heartbeat_at=now)
        .execution_options(synchronize_session=False))
    return bool(claimed.rowcount == 1)  # type: ignore[attr-defined]


def give_back_job(session: Session, job_id: int, worker_id: str) -> bool:
    """Put a job the worker holds back in the queue (another worker redoes it); False when the
    worker no longer holds it."""
    held = session.get(Job, job_id, populate_existing=True)
    if held is None or held.status != JobStatus.RUNNING or held.worker_id != worker_id:
        return False
    held.status, held.worker_id, held.heartbeat_at = JobStatus.QUEUED, None, None
    return True


def count_pending_jobs(session: Session, project_id: int) -> int:
    """The project's jobs queued or running."""
    stmt = select(func.count()).select_from(Job).where(
        Job.project_id == project_id, Job.status.in_((JobStatus.QUEUED, JobStatus.RUNNING)))
    return int(session.execute(stmt).scalar_one())


def job_waiting(session: Session, kinds: Collection[str]) -> bool:
    """Whether a job of ``kinds`` is queued (what a worker's idle work looks for between its
    steps: one index probe)."""
    stmt = select(Job.id).where(Job.status == JobStatus.QUEUED,
                                Job.kind.in_(sorted(kinds))).limit(1)
    return session.execute(stmt).first() is not None
