"""Helpers for tests that run the service as real processes: ports, the environment, the
command line, the server and its workers, and SMS projects made through the API.

Server processes start in their own session so that teardown can kill the server and its
worker processes together. Their databases come from :mod:`tests.support.databases`.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

from activelabel.client import Client

__all__ = [
    "ROUND_TIMEOUT",
    "SEED",
    "SRC",
    "START_TIMEOUT",
    "ServerProcess",
    "child_env",
    "done_rounds",
    "free_port",
    "import_sms",
    "make_token",
    "run_cli",
    "task_external_id",
    "task_item_id",
    "wait_until",
    "write_sms",
]

SRC = Path(__file__).resolve().parents[2] / "src"
#: Seconds a server gets to answer /api/v1/health after it starts.
START_TIMEOUT = 60.0
#: Seed batch (the projects' batch_size) and how long a round may take.
SEED = 20
ROUND_TIMEOUT = 90


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def child_env(**extra: str) -> dict[str, str]:
    """The environment for ``python -m activelabel``: this source tree, no inherited settings."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ACTIVELABEL_")}
    env.update({"PYTHONPATH": str(SRC), "COLUMNS": "200"}, **extra)
    return env


def run_cli(*args: str | Path, data_dir: Path, db: str | None = None,
            timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """``activelabel ARGS --data-dir DIR [--db URL]`` as a process."""
    storage = ["--data-dir", str(data_dir)] + ([] if db is None else ["--db", db])
    return subprocess.run([sys.executable, "-m", "activelabel", *map(str, args), *storage],
                          capture_output=True, text=True, env=child_env(), timeout=timeout,
                          check=False)


def make_token(data_dir: Path, db: str | None, username: str, *, admin: bool = False) -> str:
    """A new user and an API token for it, through the command line (as a script would)."""
    flags = ["--admin"] if admin else []
    made = run_cli("users", "create", username, "--password", "password123", *flags,
                   data_dir=data_dir, db=db)
    assert made.returncode == 0, made.stderr
    token = run_cli("tokens", "create", username, data_dir=data_dir, db=db)
    assert token.returncode == 0, token.stderr
    return token.stdout.strip().splitlines()[-1]


def write_sms(shared_data: Path, path: Path, n: int, *, start: int = 0) -> dict[str, str]:
    """The first ``n`` SMS rows after ``start`` as an import file without their labels;
    returns external id -> true label (the oracle)."""
    labels: dict[str, str] = {}
    with (shared_data / "sms_spam.jsonl").open() as src, path.open("w") as out:
        for i, line in enumerate(src):
            if i < start:
                continue
            if len(labels) == n:
                break
            row = json.loads(line)
            labels[row["id"]] = row["label"]
            out.write(json.dumps({"external_id": row["id"], "data": {"text": row["text"]}}) + "\n")
    return labels


class ServerProcess:
    """``activelabel serve`` on a free port, with its worker; ``stop``/``kill`` end them all."""

    def __init__(self, data_dir: Path, db: str, *, env: dict[str, str] | None = None,
                 workers: int = 1, processes: int | None = None) -> None:
        self.data_dir, self.db, self.workers, self.processes = data_dir, db, workers, processes
        self.env = env or {}
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen[bytes] | None = None
        self.log = data_dir / "server.log"

    def start(self, *, same_port: bool = False) -> ServerProcess:
        """Start (again: on a new free port, or with ``same_port`` where it was, as a
        restarted server that its open pages reach again)."""
        if not same_port:
            self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        args = [sys.executable, "-m", "activelabel", "serve", "--data-dir", str(self.data_dir),
                "--db", self.db, "--port", str(self.port), "--workers", str(self.workers),
                "--log-level", "warning",
                *([] if self.processes is None else ["--processes", str(self.processes)])]
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(args, env=child_env(**self.env), stdout=log,
                                         stderr=subprocess.STDOUT, start_new_session=True)
        self._wait_healthy()
        return self

    def _wait_healthy(self) -> None:
        assert self.proc is not None
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"server exited with {self.proc.returncode}:\n{self.logs()}")
            try:
                if httpx.get(f"{self.url}/api/v1/health", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        self.kill()
        raise AssertionError(f"server not healthy after {START_TIMEOUT} s:\n{self.logs()}")

    def logs(self) -> str:
        return self.log.read_text(errors="replace")[-5000:] if self.log.exists() else ""

    def _signal_group(self, sig: int) -> None:
        assert self.proc is not None
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, sig)

    def kill(self) -> None:
        """SIGKILL the server and its workers at once (a crash, a power cut)."""
        if self.proc is None:
            return
        self._signal_group(signal.SIGKILL)
        self.proc.wait(timeout=10)
        self.proc = None

    def stop(self) -> None:
        """SIGTERM (a clean shutdown); SIGKILL whatever still runs after 15 s."""
        if self.proc is None:
            return
        self._signal_group(signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(timeout=15)
        self._signal_group(signal.SIGKILL)  # workers left behind, if any
        if self.proc.poll() is None:
            self.proc.wait(timeout=10)
        self.proc = None


def wait_until(check: Any, timeout: float = 60, poll: float = 0.1, what: str = "condition") -> Any:
    """Call ``check`` until it returns something truthy; that value, or AssertionError."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not reached after {timeout} s")
        time.sleep(poll)


def task_item_id(task: dict[str, Any]) -> int:
    return int(task["item"]["id"])


def task_external_id(task: dict[str, Any]) -> str:
    return str(task["item"]["external_id"])


def done_rounds(client: Client, project_id: int) -> list[dict[str, Any]]:
    return [r for r in client.rounds(project_id) if r["status"] == "done"]


def import_sms(client: Client, shared_data: Path, folder: Path, n: int,
               settings: dict[str, Any] | None = None) -> tuple[int, dict[str, str]]:
    """A new project with ``n`` SMS rows imported through the API; (project id, oracle).

    No audit draws (``audit_share`` 0) unless ``settings`` asks: the tests read the order the
    rounds give, and a random 5% of draws would mix into it (tests/labeling/test_payoff.py)."""
    oracle = write_sms(shared_data, folder / "sms.jsonl", n)
    project = client.create_project(
        "sms", ["ham", "spam"], guidelines="Is the message spam?",
        settings={"featurizer": "text", "batch_size": SEED, "retrain_every_labels": 10_000,
                  "audit_share": 0.0, **(settings or {})})
    job = client.upload(project["id"], folder / "sms.jsonl")
    finished = client.wait_for_job(project["id"], job, timeout=60)
    assert finished["result"]["inserted"] == n
    assert finished["result"]["rejected_count"] == 0
    return int(project["id"]), oracle
