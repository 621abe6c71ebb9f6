"""Running the service: uvicorn with the API beside worker processes, and jobs run in place.

``activelabel serve`` migrates the database, starts ``activelabel worker`` processes (same
settings, passed through the environment so a database password never shows in ``ps``), runs
uvicorn in the foreground and stops the workers when it exits. A worker that dies is restarted.
Workers ignore Ctrl-C (the server sends them SIGTERM) and, on Linux, get SIGTERM when the
server process itself is killed, as do the API processes of ``--processes`` (two by default on
PostgreSQL: :func:`default_processes`).

:func:`run_job_inline` runs one queued job (a round, an import) in the calling process: what
``activelabel round --wait``, ``import --wait`` and the demo use to be done at once.
"""

from __future__ import annotations

import contextlib
import functools
import gc
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..store import DataLocation, Storage, claim_job_by_id, finish_job, get_job
from ..store.db import backend_of
from ..store.errors import InvalidInput
from ..store.models import Job, JobStatus
from .logs import logging_config
from .settings import ENV_DATA_DIR, ENV_DB, resolve_location
from .worker import (
    Heartbeat,
    JobLost,
    after_done,
    handler_for,
    handler_options,
    record_failure,
)

if TYPE_CHECKING:
    from ..http.config import ServerSettings

__all__ = [
    "WorkerProcesses",
    "app_from_env",
    "check_port",
    "default_processes",
    "run_job_inline",
    "serve",
]

#: Seconds a stopping worker gets to finish its heartbeat and exit before it is killed.
STOP_GRACE_SECONDS = 10.0
#: How long an idle client connection stays open. Longer than an annotator's pause between
#: two calls, so a browser or client reusing its connection does not race the server closing it
#: (uvicorn's 5 s default); longer than the 60 s idle timeout of common proxies, too.
KEEP_ALIVE_SECONDS = 75
#: Seconds an API process may take to start (import the app, open the database) and to
#: answer its supervisor's ping.
CHILD_START_SECONDS = 60
#: Restarts of a crashing worker per minute before giving up on it.
MAX_RESTARTS_PER_MINUTE = 5
#: The ``nice`` of the worker processes ``serve`` starts: on a machine with few cores,
#: training yields to the requests of people labeling. The lowest nice, not Linux's
#: ``SCHED_IDLE``: that starves the worker outright on a busy machine, while it may hold a
#: lock requests wait for (SQLite's write lock during a heartbeat, item rows while a round
#: writes its ranking), and an unprivileged process cannot leave it again.
WORKER_NICE = 19
#: API processes ``serve`` runs when not told, by database. SQLite writes one transaction at a
#: time in the file, so a second process only adds a writer that waits in SQLite's busy
#: handler (on 2 cores, rounds running: p99 16 / 24 ms with two against 16 / 20 ms with one);
#: PostgreSQL's writes run side by side, and a second interpreter halves the time a request
#: waits for the GIL (p99 with rounds running 27 / 27 ms with two, 37 / 32 ms with one).
DEFAULT_PROCESSES = {"sqlite": 1, "postgresql": 2}


def default_processes(db_url: str, cpus: int | None = None) -> int:
    """The API processes for a database when none are asked for: by database, at most one
    per core this process may run on (ValueError for a URL of another database)."""
    if cpus is None:
        cpus = (len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity")
                else os.cpu_count() or 1)
    return max(1, min(DEFAULT_PROCESSES[backend_of(db_url)], cpus))


def check_port(host: str, port: int) -> None:
    """Fail early with a clear message when the address is taken (uvicorn would only log)."""
    if not 0 < port < 65536:
        raise InvalidInput(f"port {port} is out of range: pass --port between 1 and 65535")
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            raise InvalidInput(f"cannot listen on {host}:{port} ({exc.strerror}): pass another "
                               "--port, or stop what is using it") from None


#: The ``serve`` process an API child belongs to (set by ``serve`` for the children it starts).
ENV_SERVE_PID = "ACTIVELABEL_SERVE_PID"


def _die_with_parent(parent: int | None) -> None:
    """Ask Linux to send this process SIGTERM when its parent dies (best effort; nothing
    elsewhere): a ``serve`` killed outright leaves no worker or API process behind.

    A parent that died before the request (a ``serve`` killed while this child was still
    starting) sends nothing: when the process is no longer ``parent``'s child, it sends
    itself the signal the parent's death would have.
    """
    if not sys.platform.startswith("linux"):
        return
    try:
        import ctypes

        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        return
    if parent is not None and os.getppid() != parent:
        os.kill(os.getpid(), signal.SIGTERM)


def _worker_preexec(parent: int) -> None:  # pragma: no cover - runs between fork and exec
    """Ignore Ctrl-C (the server stops its workers with SIGTERM, letting a job end cleanly),
    lower the worker's CPU priority (a round never slows the answers to annotators down), and
    end the worker with the server (:func:`_die_with_parent`)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    with contextlib.suppress(OSError):
        os.nice(WORKER_NICE)
    _die_with_parent(parent)


class WorkerProcesses:
    """``n`` ``activelabel worker`` child processes on the given location, kept running."""

    def __init__(self, location: DataLocation, n: int = 1, *,
                 log: Callable[[str], None] | None = None) -> None:
        if n < 0:
            raise InvalidInput(f"the number of workers must be >= 0, got {n}")
        self.location = location
        self.n = n
        self.log = log or (lambda message: print(message, file=sys.stderr, flush=True))
        self.procs: list[subprocess.Popen[bytes]] = []
        self._restarts: list[list[float]] = []
        self._stop = threading.Event()
        self._monitor: threading.Thread | None = None

    def _spawn(self) -> subprocess.Popen[bytes]:
        env = {**os.environ, ENV_DATA_DIR: str(self.location.data_dir),
               ENV_DB: self.location.db_url}
        return subprocess.Popen([sys.executable, "-m", "activelabel", "worker"], env=env,
                                preexec_fn=functools.partial(_worker_preexec, os.getpid()))

    def start(self) -> None:
        self.procs = [self._spawn() for _ in range(self.n)]
        self._restarts = [[] for _ in range(self.n)]
        self.log(f"started {self.n} worker process(es): pids "
                 f"{', '.join(str(p.pid) for p in self.procs)}")
        self._monitor = threading.Thread(target=self._watch, name="worker-monitor", daemon=True)
        self._monitor.start()

    def _watch(self) -> None:
        """Restart a worker that exited on its own, unless it keeps crashing."""
        while not self._stop.wait(1.0):
            for i, proc in enumerate(self.procs):
                code = proc.poll()
                if code is None or self._stop.is_set():
                    continue
                now = time.monotonic()
                recent = [t for t in self._restarts[i] if now - t < 60] + [now]
                self._restarts[i] = recent
                if len(recent) > MAX_RESTARTS_PER_MINUTE:
                    continue  # crashing in a loop: leave it down (the log says why)
                self.log(f"worker pid {proc.pid} exited with status {code}; restarting it")
                self.procs[i] = self._spawn()

    def stop(self) -> None:
        """SIGTERM every worker, wait for them, then SIGKILL the ones still running."""
        self._stop.set()
        if self._monitor is not None:
            self._monitor.join(timeout=2)
        for proc in self.procs:
            if proc.poll() is None:
                proc.terminate()
        deadline = time.monotonic() + STOP_GRACE_SECONDS
        for proc in self.procs:
            try:
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def _metrics_dir(location: DataLocation) -> Path:
    """An empty folder where the API processes keep their request histograms (``/metrics``
    from any of them reports all)."""
    folder = location.data_dir / ".metrics"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    return folder


def build_app(location: DataLocation) -> Any:
    """The API over ``location``, with the heap built so far frozen out of the collector.

    Everything imported and built at start-up (the libraries, the app, its routes) lives as long
    as the process, yet Python's oldest-generation collection walks all of it: each such pass
    stopped every request for about 200 ms (the p99 of tasks/next under load). Frozen objects
    are never walked, so these passes only see what requests created since.
    """
    from ..http.app import create_app
    from ..http.config import server_settings_from_env

    app = create_app(location, settings=server_settings_from_env())
    gc.collect()
    gc.freeze()
    return app


def app_from_env() -> Any:
    """The API for settings taken from the environment (each ``--processes`` child calls it;
    the child ends with the ``serve`` that started it, which uvicorn's supervisor does not
    see to when it is killed outright)."""
    serve_pid = os.environ.get(ENV_SERVE_PID, "")
    _die_with_parent(int(serve_pid) if serve_pid.isdigit() else None)
    return build_app(resolve_location())


def serve(location: DataLocation, *, host: str = "127.0.0.1", port: int = 8000, workers: int = 1,
          processes: int | None = None, log_level: str = "info",
          announce: Callable[[str], None] | None = None) -> None:
    """Migrate, start ``workers`` worker processes, run the API in ``processes`` uvicorn
    processes (:func:`default_processes` when None) until interrupted, then stop the workers."""
    import uvicorn

    from ..http.config import server_settings_from_env

    # A bad ACTIVELABEL_* setting stops here, before anything starts.
    logs = logging_config(server_settings_from_env().log_format, log_level)
    if processes is None:
        processes = default_processes(location.db_url)
    if processes < 1:
        raise InvalidInput(f"the number of API processes must be >= 1, got {processes}")
    check_port(host, port)
    Storage(location).close()  # migrate once here, before the workers and the app open it
    pool = WorkerProcesses(location, workers)
    shown = f"[{host}]" if ":" in host else host
    if announce is not None:
        announce(f"http://{'127.0.0.1' if host in ('0.0.0.0', '') else shown}:{port}")
    if workers:
        pool.start()
    try:
        if processes == 1:
            config = uvicorn.Config(build_app(location), host=host, port=port,
                                    log_level=log_level, log_config=logs,
                                    timeout_graceful_shutdown=5,
                                    timeout_keep_alive=KEEP_ALIVE_SECONDS)
            uvicorn.Server(config).run()
        else:  # uvicorn's own supervisor; the children build the app from the environment
            os.environ.update({ENV_DATA_DIR: str(location.data_dir), ENV_DB: location.db_url,
                               ENV_SERVE_PID: str(os.getpid()),
                               "PROMETHEUS_MULTIPROC_DIR": str(_metrics_dir(location))})
            uvicorn.run(f"{__name__}:app_from_env", factory=True, host=host, port=port,
                        workers=processes, log_level=log_level, log_config=logs,
                        timeout_graceful_shutdown=5,
                        timeout_keep_alive=KEEP_ALIVE_SECONDS, **_supervisor_options())
    finally:
        pool.stop()


# ---- running one job in this process -------------------------------------------------------


def _supervisor_options() -> dict[str, Any]:
    """uvicorn's supervisor kills a child that does not answer its ping within
    ``timeout_worker_healthcheck`` (5 s), which a child still importing the app on a busy
    machine may miss, again and again; the API processes get ``CHILD_START_SECONDS``."""
    import inspect

    import uvicorn

    if "timeout_worker_healthcheck" in inspect.signature(uvicorn.Config).parameters:
        return {"timeout_worker_healthcheck": CHILD_START_SECONDS}
    return {}


def _claim_this(storage: Storage, job_id: int, worker_id: str) -> bool:
    """Take the queued job for ``worker_id``; False when a worker already has it."""
    with storage.sessions() as session, session.begin():
        return claim_job_by_id(session, job_id, worker_id)


def _wait_done(storage: Storage, job_id: int, timeout: float | None) -> Job:
    deadline = None if timeout is None else time.monotonic() + timeout
    while True:
        with storage.read_sessions() as session:
            job = get_job(session, job_id)
            if job.status in (JobStatus.DONE, JobStatus.FAILED):
                return job
        if deadline is not None and time.monotonic() > deadline:
            raise TimeoutError(f"job {job_id} is still {job.status} after {timeout:.0f} s")
        time.sleep(0.2)


def run_job_inline(storage: Storage, job_id: int, *,
                   on_progress: Callable[[Mapping[str, Any]], None] | None = None,
                   timeout: float | None = None,
                   settings: ServerSettings | None = None) -> Job:
    """Run the queued job here and return it finished (status done or failed).

    When a worker process claimed it first, wait for that worker instead. A failing handler
    marks the job (and its round) failed with the error, as the worker does. ``settings``:
    the server's, as a worker reads them (by default from the ``ACTIVELABEL_*`` variables).
    """
    if settings is None:  # a bad ACTIVELABEL_* setting stops here, before the job is claimed
        from ..http.config import server_settings_from_env

        settings = server_settings_from_env()
    worker_id = f"inline-{socket.gethostname()}-{os.getpid()}"
    if not _claim_this(storage, job_id, worker_id):
        return _wait_done(storage, job_id, timeout)
    with storage.sessions() as session:
        job = get_job(session, job_id)
    handler = handler_for(job.kind)
    try:
        with Heartbeat(storage, job_id, worker_id, on_progress=on_progress) as beat:
            result = handler(storage, job, progress=beat.progress,
                             **handler_options(job.kind, settings))
    except JobLost:  # a worker took it over: wait for that worker instead
        return _wait_done(storage, job_id, timeout)
    except BaseException as exc:
        record_failure(storage, job, worker_id, exc)
        if not isinstance(exc, Exception):
            raise
    else:
        with storage.sessions() as session, session.begin():
            finish_job(session, job_id, worker_id, result=result)
        after_done(storage, job, result)
    return _wait_done(storage, job_id, 5)
