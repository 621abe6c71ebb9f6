"""Soak: annotators label for many minutes while the server, the worker and the database die.

Starts a PostgreSQL server of its own (initdb in a temporary folder, a free port; as the
``postgres`` user when run as root), ``activelabel serve`` against it, a project of ``--items``
synthetic texts that retrains every ``--retrain-every`` labels, then ``--annotators`` simulated
annotators (next task, think ``--think-ms``, annotate; a call that fails for lack of a server is
retried with the same ``client_key`` until it is answered) for ``--minutes``. Meanwhile, at
random moments (one every ``--kill-every`` seconds on average, in turn):

- ``kill -9`` of the whole server (API processes and worker), restarted on the same port;
- ``kill -9`` of the worker alone (the server starts another);
- an immediate stop of PostgreSQL (as a crash), started again after ``--db-down`` seconds.

At the end everything is stopped cleanly, a fresh server is started, and the database is
compared with what the annotators were told: every acknowledged annotation must be stored
(``lost`` = 0), no annotator's label is stored twice for one answer (``doubled`` = 0: a retried
call with the same ``client_key`` is applied once), and no item is handed to more people than
the overlap allows at once (``over-overlap`` hand-outs). Latency p50 / p99 of both calls is
reported per minute, with the events of that minute. Exit status 1 when anything was lost or
doubled.

    python benchmarks/soak.py                      # 50 annotators, 10 minutes
    python benchmarks/soak.py --quick              # 20 annotators, 2 minutes
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(REPO / "src"))
sys.path.insert(0, str(HERE))

from activelabel.runtime.settings import resolve_location  # noqa: E402
from activelabel.store import Storage  # noqa: E402
from service_load import (  # noqa: E402  (this script's folder is on sys.path)
    API,
    check,
    free_port,
    make_items,
    make_users,
    percentile,
)

PG_BIN = Path(sorted(Path("/usr/lib/postgresql").glob("*/bin"))[-1]) \
    if Path("/usr/lib/postgresql").exists() else None


# ---- a PostgreSQL server of our own ------------------------------------------------------------


class Postgres:
    """A throwaway PostgreSQL cluster: initdb in ``folder``, started on a free port."""

    def __init__(self, folder: Path) -> None:
        if PG_BIN is None:
            raise SystemExit("PostgreSQL's server programs (initdb, pg_ctl) are not installed: "
                             "apt-get install postgresql")
        self.folder, self.port = folder, free_port()
        self.data = folder / "pgdata"
        folder.mkdir(parents=True, exist_ok=True)
        self.as_user = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        if self.as_user:
            shutil.chown(folder, "postgres")
        self._run(str(PG_BIN / "initdb"), "-D", str(self.data), "-U", "postgres",
                  "--auth=trust", "-E", "UTF8")
        self.start()
        self._run(str(PG_BIN / "createdb"), "-h", "127.0.0.1", "-p", str(self.port),
                  "-U", "postgres", "soak")
        self.url = f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/soak"

    def _run(self, *cmd: str) -> None:
        done = subprocess.run([*self.as_user, *cmd], capture_output=True, text=True)
        if done.returncode != 0:
            raise SystemExit(f"{' '.join(cmd)} failed:\n{done.stdout}{done.stderr}")

    def start(self) -> None:
        self._run(str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-l", str(self.folder / "pg.log"),
                  "-w", "-o", f"-p {self.port} -k {self.folder} -c listen_addresses=127.0.0.1 "
                  "-c max_connections=200", "start")

    def crash(self) -> None:
        """Stop at once, as a crash would (immediate mode: recovery at the next start)."""
        self._run(str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "stop")

    def stop(self) -> None:
        subprocess.run([*self.as_user, str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-m",
                        "fast", "stop"], capture_output=True)


# ---- the server --------------------------------------------------------------------------------


class Server:
    """``activelabel serve`` on a fixed port (restarted on the same one), in its own group."""

    def __init__(self, data_dir: Path, db: str, log: Path) -> None:
        self.data_dir, self.db, self.log = data_dir, db, log
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 120) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("ACTIVELABEL_")}
        env["PYTHONPATH"] = str(REPO / "src")
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "activelabel", "serve", "--data-dir", str(self.data_dir),
                 "--db", self.db, "--port", str(self.port), "--log-level", "warning"],
                env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise SystemExit(f"server exited early:\n{self.log.read_text()[-3000:]}")
            try:
                if httpx.get(self.url + API + "/health", timeout=2).status_code in (200, 503):
                    return
            except httpx.TransportError:
                time.sleep(0.2)
        raise SystemExit(f"server not up after {timeout:.0f} s:\n{self.log.read_text()[-3000:]}")

    def kill(self) -> None:
        """kill -9 of the server and everything it started."""
        if self.proc is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()

    def worker_pids(self) -> list[int]:
        if self.proc is None:
            return []
        found = subprocess.run(["pgrep", "-g", str(self.proc.pid), "-f", "activelabel.*worker"],
                               capture_output=True, text=True)
        return [int(p) for p in found.stdout.split()]

    def stop(self) -> None:
        if self.proc is None:
            return
        for sig in (signal.SIGTERM, signal.SIGKILL):
            try:
                os.killpg(self.proc.pid, sig)
                self.proc.wait(timeout=20)
                return
            except ProcessLookupError:
                return
            except subprocess.TimeoutExpired:
                continue


# ---- annotators --------------------------------------------------------------------------------


@dataclass
class Soak:
    """Shared by the annotators (one event loop: no locks needed)."""

    started: float
    until: float
    acked: dict[str, tuple[int, str, int]] = field(default_factory=dict)  # key -> ack
    calls: list[tuple[float, str, float]] = field(default_factory=list)  # (t, call, ms)
    held: dict[int, set[str]] = field(default_factory=lambda: defaultdict(set))
    over_overlap: int = 0
    retries: int = 0
    errors: Counter[str] = field(default_factory=Counter)
    events: list[tuple[float, str]] = field(default_factory=list)

    def minute(self, t: float) -> int:
        return int((t - self.started) // 60)


async def _call(http: httpx.AsyncClient, soak: Soak, kind: str, method: str, path: str,
                **kw: Any) -> httpx.Response:
    """One API call, retried (same body) until the server answers with no 5xx."""
    while True:
        t0 = time.perf_counter()
        try:
            response = await http.request(method, path, **kw)
        except httpx.TransportError as exc:
            soak.errors[f"{kind}: {type(exc).__name__}"] += 1
        else:
            if response.status_code < 500:
                soak.calls.append((time.perf_counter(), kind, (time.perf_counter() - t0) * 1000))
                return response
            soak.errors[f"{kind}: {response.status_code}"] += 1
        soak.retries += 1
        await asyncio.sleep(0.5)


async def annotator(http: httpx.AsyncClient, soak: Soak, pid: int, name: str, token: str,
                    oracle: dict[str, str], rng: random.Random,
                    think: tuple[float, float]) -> None:
    headers = {"Authorization": f"Bearer {token}"}
    await asyncio.sleep(rng.uniform(0, think[1]))
    while time.perf_counter() < soak.until:
        answer = await _call(http, soak, "next", "GET", f"{API}/projects/{pid}/tasks/next",
                             params={"n": 1}, headers=headers)
        tasks = answer.json() if answer.status_code == 200 else []
        tasks = tasks.get("tasks", tasks) if isinstance(tasks, dict) else tasks
        if not tasks:
            await asyncio.sleep(0.5)
            continue
        item = tasks[0]["item"]
        item_id, ext = int(item["id"]), str(item["external_id"])
        holders = soak.held[item_id]
        holders.add(name)
        if len(holders) > 1:
            soak.over_overlap += 1
        await asyncio.sleep(rng.uniform(*think))
        key = str(uuid.uuid4())
        body = {"item_id": item_id, "labels": [oracle[ext]], "client_key": key,
                "duration_ms": rng.randint(800, 4000)}
        answer = await _call(http, soak, "annotate", "POST", f"{API}/projects/{pid}/annotations",
                             json=body, headers=headers)
        holders.discard(name)
        if answer.status_code in (200, 201):
            soak.acked[key] = (item_id, name, int(answer.json()["id"]))
        else:  # a lease lost while the server was down: the item goes to someone else
            soak.errors[f"annotate {answer.status_code}: {answer.json().get('code', '')}"] += 1


def chaos(soak: Soak, server: Server, pg: Postgres, rng: random.Random, every: float,
          db_down: float, stop: threading.Event) -> None:
    """Kill something at random moments, in turn: the server, the worker, the database."""
    kinds = ["server", "worker", "database"]
    turn = 0
    while not stop.wait(rng.expovariate(1 / every)):
        if time.perf_counter() > soak.until - min(20.0, 0.1 * (soak.until - soak.started)):
            return  # the last moments let everything settle
        kind = kinds[turn % len(kinds)]
        turn += 1
        now = time.perf_counter()
        if kind == "server":
            server.kill()
            server.start()
            soak.events.append((now, f"server killed, back in {time.perf_counter() - now:.1f} s"))
        elif kind == "worker":
            pids = server.worker_pids()
            for pid in pids:
                os.kill(pid, signal.SIGKILL)
            soak.events.append((now, f"worker killed (pids {pids})"))
        else:
            pg.crash()
            stop.wait(db_down)
            pg.start()
            soak.events.append((now, f"database crashed, back after {db_down:.0f} s"))


# ---- the run -----------------------------------------------------------------------------------


def seed(url: str, admin: str, names: list[str], rows: list[dict[str, Any]],
         retrain_every: int) -> int:
    headers = {"Authorization": f"Bearer {admin}"}
    with httpx.Client(base_url=url + API, headers=headers, timeout=300) as http:
        pid = int(check(http.post("/projects", json={
            "name": "soak", "task": "classification", "labels": ["ham", "spam"],
            "settings": {"batch_size": 200, "retrain_every_labels": retrain_every,
                         "strategy": "margin", "lease_seconds": 120}}))["id"])
        for start in range(0, len(rows), 5000):
            check(http.post(f"/projects/{pid}/items", json=rows[start:start + 5000]))
        for name in names:
            check(http.post(f"/projects/{pid}/members", json={"username": name,
                                                                "role": "annotator"}))
    return pid


def verify(location: Any, pid: int, soak: Soak) -> dict[str, int]:
    """Acknowledged vs stored: lost, doubled (one client_key stored twice), stored."""
    from sqlalchemy import func, select

    from activelabel.store.models import Annotation

    storage = Storage(location, run_migrations=False)
    try:
        with storage.read_sessions() as session:
            stored = set(session.execute(select(Annotation.id).where(
                Annotation.project_id == pid)).scalars())
            doubled = session.execute(select(func.count()).select_from(
                select(Annotation.client_key).where(
                    Annotation.project_id == pid, Annotation.client_key.is_not(None))
                .group_by(Annotation.client_key).having(func.count() > 1).subquery())
            ).scalar_one()
    finally:
        storage.close()
    lost = sum(1 for _, _, ann_id in soak.acked.values() if ann_id not in stored)
    return {"acknowledged": len(soak.acked), "stored": len(stored), "lost": lost,
            "doubled": int(doubled)}


def report(soak: Soak, outcome: dict[str, int], args: argparse.Namespace) -> str:
    lines = [f"soak: {args.annotators} annotators, {args.minutes:g} min, think "
             f"{args.think_ms} ms, kill every ~{args.kill_every:g} s",
             "", "| minute | labels | next p50 / p99 ms | annotate p50 / p99 ms | events |",
             "|---|---|---|---|---|"]
    by_minute: dict[int, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    for t, kind, ms in soak.calls:
        by_minute[soak.minute(t)][kind].append(ms)
    events: dict[int, list[str]] = defaultdict(list)
    for t, what in soak.events:
        events[soak.minute(t)].append(what)
    labels = Counter(soak.minute(t) for t, kind, _ in soak.calls if kind == "annotate")
    def ms(values: list[float]) -> str:
        return f"{percentile(values, 50):.0f} / {percentile(values, 99):.0f}" if values else "–"

    for minute in sorted(by_minute):
        calls = by_minute[minute]
        lines.append(f"| {minute + 1} | {labels[minute]} | {ms(calls['next'])} | "
                     f"{ms(calls['annotate'])} | {'; '.join(events[minute])} |")
    lines += ["", "| acknowledged | stored | lost | doubled | over-overlap hand-outs | "
                  "retried calls |", "|---|---|---|---|---|---|",
              f"| {outcome['acknowledged']} | {outcome['stored']} | {outcome['lost']} | "
              f"{outcome['doubled']} | {soak.over_overlap} | {soak.retries} |"]
    if soak.errors:
        lines += ["", "answers while things were down: " + ", ".join(
            f"{k} x{v}" for k, v in soak.errors.most_common(8))]
    return "\n".join(lines)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--annotators", type=int, default=50)
    parser.add_argument("--items", type=int, default=30_000)
    parser.add_argument("--think-ms", default="1000,4000", help="min,max think time")
    parser.add_argument("--kill-every", type=float, default=60.0,
                        help="mean seconds between two kills")
    parser.add_argument("--db-down", type=float, default=5.0,
                        help="seconds the database stays down")
    parser.add_argument("--retrain-every", type=int, default=500)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quick", action="store_true", help="20 annotators, 2 minutes")
    parser.add_argument("--keep", action="store_true", help="keep the folder with the logs")
    args = parser.parse_args(argv)
    if args.quick:
        args.minutes, args.annotators, args.items, args.kill_every = 2.0, 20, 5000, 25.0
    lo, hi = (float(x) / 1000 for x in args.think_ms.split(","))
    if not 0 <= lo <= hi:
        parser.error(f"--think-ms must be min,max with 0 <= min <= max, got {args.think_ms}")
    args.think = (lo, hi)
    if args.minutes <= 0 or args.annotators < 1 or args.kill_every <= 0:
        parser.error("--minutes, --annotators and --kill-every must be positive")
    return args


async def _annotate(soak: Soak, url: str, pid: int, tokens: dict[str, str],
                    oracle: dict[str, str], args: argparse.Namespace) -> None:
    limits = httpx.Limits(max_connections=len(tokens) + 10,
                          max_keepalive_connections=len(tokens))
    async with httpx.AsyncClient(base_url=url, timeout=30, limits=limits) as http:
        await asyncio.gather(*(
            annotator(http, soak, pid, name, token, oracle, random.Random(args.seed + i),
                      args.think)
            for i, (name, token) in enumerate(tokens.items())))


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    folder = Path(tempfile.mkdtemp(prefix="activelabel-soak-"))
    folder.chmod(0o755)  # the database server's user reaches its folder inside
    pg = Postgres(folder / "pg")
    server: Server | None = None
    try:
        data_dir = folder / "data"
        location = resolve_location(data_dir, pg.url)
        Storage(location).close()  # migrate
        admin, tokens = make_users(location, args.annotators)
        server = Server(data_dir, pg.url, folder / "server.log")
        server.start()
        rows, oracle = make_items(args.items, args.seed)
        pid = seed(server.url, admin, list(tokens), rows, args.retrain_every)
        start = time.perf_counter()
        soak = Soak(started=start, until=start + args.minutes * 60)
        stop = threading.Event()
        killer = threading.Thread(target=chaos, args=(
            soak, server, pg, random.Random(args.seed), args.kill_every, args.db_down, stop),
            daemon=True)
        killer.start()
        asyncio.run(_annotate(soak, server.url, pid, tokens, oracle, args))
        stop.set()
        killer.join()
        server.stop()
        server.start()  # a clean start after all that: everything acknowledged is there
        outcome = verify(location, pid, soak)
        print(report(soak, outcome, args))
        return 0 if outcome["lost"] == 0 and outcome["doubled"] == 0 else 1
    finally:
        if server is not None:
            server.stop()
        pg.stop()
        if args.keep:
            print(f"\nkept: {folder} (server.log, pg/pg.log)")
        else:
            shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
