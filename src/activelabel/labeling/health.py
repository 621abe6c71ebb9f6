"""How a server is doing, for load balancers and operators: the database answers, the data
folder's disk has room, the worker takes jobs, rounds finish."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.exc import SQLAlchemyError

from ..store import JobStatus, RoundStatus, Storage
from ..store.models import Job, Round, utcnow

__all__ = ["ServerHealth", "server_health"]

#: A queued job waiting this long while no job runs means no worker is taking jobs.
WORKER_SILENT = timedelta(minutes=2)


@dataclass(frozen=True)
class ServerHealth:
    database: str  # ok | unavailable
    disk: str  # ok | full (below the server's minimum free space)
    disk_free_bytes: int
    worker: str  # ok (a job runs with a fresh heartbeat), idle, stalled, unknown
    oldest_queued_job_at: datetime | None
    last_round_at: datetime | None

    @property
    def ok(self) -> bool:
        return self.database == "ok" and self.disk == "ok"


def server_health(storage: Storage, *, min_free_bytes: int,
                  now: datetime | None = None) -> ServerHealth:
    """The server's health; never raises (what cannot be read says so)."""
    now = now or utcnow()
    free = shutil.disk_usage(storage.location.data_dir).free
    disk = "ok" if free >= min_free_bytes else "full"
    try:
        with storage.read_sessions() as session:
            running = session.execute(select(func.max(Job.heartbeat_at)).where(
                Job.status == JobStatus.RUNNING)).scalar()
            queued = session.execute(select(func.min(Job.created_at)).where(
                Job.status == JobStatus.QUEUED)).scalar()
            last = session.execute(select(func.max(Round.finished_at)).where(
                Round.status == RoundStatus.DONE)).scalar()
    except SQLAlchemyError:
        return ServerHealth("unavailable", disk, free, "unknown", None, None)
    if running is not None and now - running < WORKER_SILENT:
        worker = "ok"
    elif queued is not None and now - queued > WORKER_SILENT:
        worker = "stalled"
    else:
        worker = "idle"
    return ServerHealth("ok", disk, free, worker, queued, last)
