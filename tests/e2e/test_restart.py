"""A crash in the middle of a round (server and worker killed at once) loses no job.

The restarted worker finds the job of the dead one, runs the round again from the start, and
the queue then serves its seed batch. SQLite and PostgreSQL (fixtures in conftest.py).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import select, update

from activelabel.client import Client
from activelabel.runtime.settings import resolve_location
from activelabel.runtime.worker import STALE_SECONDS
from activelabel.store import Storage, create_engine_for, create_token, create_user
from activelabel.store.models import Job, utcnow
from tests.support.processes import ROUND_TIMEOUT, SEED, ServerProcess, import_sms, wait_until


def admin_token(server: ServerProcess) -> str:
    storage = Storage(resolve_location(server.data_dir, server.db))
    try:
        with storage.sessions() as session, session.begin():
            user = create_user(session, "lead", is_admin=True)
            return create_token(session, user.id, "test")[1]
    finally:
        storage.close()


def stale_heartbeats(db_url: str) -> int:
    """Age the heartbeats of running jobs past the worker's limit, as if the crash happened
    long ago (the restarted worker then requeues them at once instead of in a minute)."""
    engine = create_engine_for(db_url)
    try:
        with engine.begin() as conn:
            long_ago = utcnow() - timedelta(seconds=STALE_SECONDS + 60)
            done = conn.execute(update(Job).where(Job.status == "running")
                                .values(heartbeat_at=long_ago))
            return int(done.rowcount)
    finally:
        engine.dispose()


def test_crash_mid_round_loses_no_job(server: ServerProcess, shared_data: Path,
                                      tmp_path: Path, connect: Callable[..., Client]) -> None:
    token = admin_token(server)
    client = connect(server.url, token)
    project_id, _ = import_sms(client, shared_data, tmp_path, 5000)

    # The cold-start round featurizes 5000 texts: kill everything while it runs.
    def running_round() -> dict[str, Any] | None:
        found = [r for r in client.rounds(project_id) if r["status"] != "queued"]
        return found[0] if found else None

    rnd = wait_until(running_round, 30, poll=0.01, what="round picked up by the worker")
    server.kill()  # API and worker die together, the round's job still marked running
    assert rnd["status"] == "running"
    assert stale_heartbeats(server.db) == 1
    server.start()

    client = connect(server.url, token)
    finished = client.wait_for_round(project_id, rnd["id"], timeout=ROUND_TIMEOUT)
    assert finished["status"] == "done"
    tasks = client.next_tasks(project_id, n=SEED)
    assert len(tasks) == SEED
    assert {t["why"]["round"] for t in tasks} == {finished["number"]}
    engine = create_engine_for(server.db)

    def jobs() -> list[tuple[Any, ...]]:
        with engine.connect() as conn:
            return [tuple(j) for j in conn.execute(
                select(Job.kind, Job.status, Job.attempts).order_by(Job.id)).all()]

    expected = [("import", "done", 1), ("round", "done", 2)]
    try:  # the worker closes the job just after the round's commit: wait for it
        wait_until(lambda: jobs() == expected, 30, what=f"jobs {expected}")
    finally:
        engine.dispose()
