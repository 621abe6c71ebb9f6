"""``activelabel serve`` as a process: a taken port, worker restarts, no orphaned worker."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from activelabel.runtime.server import (
    WORKER_NICE,
    WorkerProcesses,
    check_port,
    default_processes,
)
from activelabel.runtime.settings import resolve_location
from activelabel.store.errors import InvalidInput
from tests.support.processes import ServerProcess, child_env, wait_until


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie (exited, not yet reaped) counts as gone
    stat = Path(f"/proc/{pid}/stat")
    return not (stat.exists() and stat.read_text().split(") ")[-1].startswith("Z"))


def worker_pids(server_pid: int) -> list[int]:
    out = subprocess.run(["pgrep", "-P", str(server_pid)], capture_output=True, text=True,
                         check=False).stdout
    return [int(p) for p in out.split()]


@pytest.fixture
def taken_port() -> Iterator[int]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield int(sock.getsockname()[1])


def test_a_taken_port_is_one_clear_error(taken_port: int, tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match="pass another --port"):
        check_port("127.0.0.1", taken_port)
    proc = subprocess.run(
        [sys.executable, "-m", "activelabel", "serve", "--data-dir", str(tmp_path),
         "--port", str(taken_port)], capture_output=True, text=True, env=child_env(),
        timeout=60, check=False)
    assert proc.returncode == 2
    assert proc.stderr.startswith("error: cannot listen on 127.0.0.1:")
    assert "Traceback" not in proc.stderr


@pytest.mark.parametrize(("url", "cpus", "expected"), [
    ("sqlite:////data/activelabel.db", 8, 1),
    ("postgresql+psycopg://postgres@127.0.0.1:5432/test", 8, 2),
    ("postgresql://db/x", 1, 1),
    ("postgres://u@db/x", 4, 2),
])
def test_api_processes_default_by_database(url: str, cpus: int, expected: int) -> None:
    assert default_processes(url, cpus) == expected


def test_api_processes_default_counts_the_cores_it_may_use() -> None:
    url = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    assert default_processes(url) == min(2, cores or 1)
    with pytest.raises(ValueError, match="unsupported database URL"):
        default_processes("mysql+pymysql://db/x")


def test_workers_are_restarted_and_stopped(tmp_path: Path) -> None:
    pool = WorkerProcesses(resolve_location(tmp_path), 1, log=lambda message: None)
    pool.start()
    try:
        first = pool.procs[0]
        first.terminate()
        first.wait(timeout=30)
        wait_until(lambda: pool.procs[0] is not first, 10, what="worker restart")
        assert pool.procs[0].poll() is None
        # Training yields the CPU to the server's requests: the worker runs niced.
        assert os.getpriority(os.PRIO_PROCESS, pool.procs[0].pid) == min(
            19, os.getpriority(os.PRIO_PROCESS, 0) + WORKER_NICE)
    finally:
        pool.stop()
    assert all(p.poll() is not None for p in pool.procs)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="parent-death signal is Linux")
def test_killed_server_leaves_no_worker_behind(tmp_path: Path) -> None:
    server = ServerProcess(tmp_path, f"sqlite:///{tmp_path / 'activelabel.db'}").start()
    try:
        assert server.proc is not None
        workers = wait_until(lambda: worker_pids(server.proc.pid), 10, what="worker started")
        os.kill(server.proc.pid, signal.SIGKILL)  # the server alone, not its process group
        server.proc.wait(timeout=10)
        wait_until(lambda: not any(alive(pid) for pid in workers), 10, poll=0.1,
                   what="worker gone after the server died")
    finally:
        server.stop()


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="parent-death signal is Linux")
def test_killed_server_leaves_no_api_process_behind(tmp_path: Path) -> None:
    """With several API processes (uvicorn's supervisor, the default on PostgreSQL) a
    ``serve`` killed outright takes its API children and its worker with it, and frees the
    port for the next ``serve``."""
    server = ServerProcess(tmp_path, f"sqlite:///{tmp_path / 'activelabel.db'}",
                           processes=2).start()
    try:
        assert server.proc is not None
        pid = server.proc.pid

        def started() -> list[int] | None:
            children = worker_pids(pid)
            return children if len(children) >= 3 else None

        children = wait_until(started, 30, what="worker and two API processes started")
        os.kill(pid, signal.SIGKILL)  # the server alone, not its process group
        server.proc.wait(timeout=10)
        wait_until(lambda: not any(alive(child) for child in children), 20, poll=0.1,
                   what="API processes and worker gone after the server died")
        with socket.socket() as sock:
            assert sock.connect_ex(("127.0.0.1", server.port)) != 0  # nobody answers there
    finally:
        server.stop()


def test_the_served_app_starts_with_its_heap_frozen(tmp_path: Path) -> None:
    """What start-up built is frozen out of the cyclic collector (its full passes walked it
    all, stopping every request for ~200 ms); objects made afterwards are still collected."""
    import gc

    from activelabel.runtime.server import build_app

    gc.unfreeze()
    app = build_app(resolve_location(data_dir=tmp_path / "data"))
    try:
        assert gc.get_freeze_count() > 10_000
        later: list[object] = []
        later.append(later)  # a cycle made after start-up is not frozen
        del later
        assert gc.collect() > 0
    finally:
        gc.unfreeze()
        app.state.storage.close()


def test_metrics_count_the_requests_of_every_api_process(tmp_path: Path) -> None:
    """With two API processes a scrape reaches one of them, yet counts every request."""
    import httpx
    from prometheus_client.parser import text_string_to_metric_families

    from tests.support.processes import make_token

    db = f"sqlite:///{tmp_path / 'activelabel.db'}"
    server = ServerProcess(tmp_path, db, processes=2, workers=0).start()
    try:
        token = make_token(tmp_path, db, "ops", admin=True)
        headers = {"Authorization": f"Bearer {token}"}
        with httpx.Client(base_url=server.url, headers=headers) as client:
            for _ in range(40):  # new connections: spread over both processes
                assert httpx.get(f"{server.url}/api/v1/me", headers=headers).status_code == 200
            text = client.get("/metrics").text
        counted = sum(s.value for f in text_string_to_metric_families(text)
                      for s in f.samples if s.name.endswith("_count")
                      and s.labels.get("route") == "/api/v1/me")
        assert counted == 40
    finally:
        server.stop()


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="parent-death signal is Linux")
def test_a_child_whose_server_died_while_it_started_ends_itself() -> None:
    """A ``serve`` killed while an API child was still importing dies before the child asks for
    the parent-death signal, which then never comes: the child sees it is no longer that
    server's child and ends as the signal would have ended it."""
    code = ("import time; from activelabel.runtime.server import _die_with_parent; "
            "_die_with_parent(1); time.sleep(60)")  # pid 1 is not this child's parent
    proc = subprocess.run([sys.executable, "-c", code], timeout=30)
    assert proc.returncode == -signal.SIGTERM
