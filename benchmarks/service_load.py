"""Load on the labeling server: concurrent annotators pulling tasks and labeling them.

Starts ``activelabel serve`` (with its worker) as a real process on SQLite or PostgreSQL, seeds a
project with ``--items`` synthetic two-class texts, then runs ``--annotators`` simulated
annotators at once, each looping: ask for the next task, think (``--think-ms``, default a uniform
1-4 s: a quick human), annotate it. ``--no-pause`` (``--think-ms 0,0``) measures capacity
instead: every annotator sends its next call the moment the last one returns. Two phases
of ``--annotations`` labels each (or of ``--seconds`` each, whichever ends first):

- ``idle``: nothing else runs;
- ``round running``: rounds (featurize, train, score the whole pool, select) run in the worker
  back to back for the whole phase, each asked for as soon as the last one ended; the table
  says for how many seconds of the phase one was running.

Annotators arrive at random moments of one think time (not all in the same millisecond).

``--after-answer`` runs the labeling page's flow under ``suggestion_display`` after_answer (the
default): after thinking, each annotator sends the chosen label to ``POST tasks/suggestions``
(which keeps it as their blind answer) and then annotates, three calls per item instead of
two; the table adds that call's p99.

``--sweep 20,50,200`` replaces the two phases by one idle phase per number of annotators (the
first N of them), to see whether throughput holds as the team grows. ``--baseline DIR`` runs
the whole measurement (a fresh server, data and seed round) with another checkout's ``src``
too (a worktree of an earlier commit), alternating with this one ``--repeats`` times, so that
both see the same machine; the table says which code each row measured.

Reported per phase: throughput, p50 / p99 latency of next-task and annotate, duplicate
hand-outs (an item handed to more annotators than the project's overlap) and lost annotations
(acknowledged with 201 but missing from the database or the export). Both must be 0; the exit
status is 1 otherwise.

    python benchmarks/service_load.py                                   # SQLite in a temp dir
    python benchmarks/service_load.py --db postgresql+psycopg://postgres@127.0.0.1:5432/test
    python benchmarks/service_load.py --quick                           # smoke test
    python benchmarks/service_load.py --no-pause --sweep 20,50,200 --seconds 30 \
        --baseline /work/wt/base                                        # capacity, before/after

On PostgreSQL the run uses a new schema, dropped afterwards (``--keep`` keeps it).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter, defaultdict
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import numpy as np

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(REPO / "src"))

from _pg import drop_schema, pg_schema  # noqa: E402  (this script's folder is on sys.path)
from activelabel.runtime.settings import resolve_location  # noqa: E402
from activelabel.store import DataLocation, Storage, create_token, create_user  # noqa: E402

API = "/api/v1"
#: ``--after-answer``: each annotator asks ``tasks/suggestions`` before annotating.
AFTER_ANSWER = False
LABELS = ("ham", "spam")
_HAM = ("see you at lunch", "call me when you are home", "meeting moved to three",
        "thanks for the photos", "running late again", "dinner at mum's on sunday")
_SPAM = ("win a free cruise now", "claim your cash prize", "urgent your account is locked",
         "cheap loans approved today", "text WIN to 80085", "you have been selected")
_WORDS = ("alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel", "india",
          "juliet", "kilo", "lima", "mike", "november", "oscar", "papa", "quebec", "romeo")


@dataclass
class PhaseResult:
    """What one phase measured."""

    phase: str
    code: str
    annotators: int
    annotations: int
    seconds: float
    throughput_per_s: float
    next_p50_ms: float
    next_p99_ms: float
    annotate_p50_ms: float
    annotate_p99_ms: float
    #: The server's own time (its ``Server-Timing`` header): request reached the app to answer.
    next_server_p99_ms: float
    annotate_server_p99_ms: float
    duplicate_handouts: int
    lost_annotations: int
    empty_next: int
    errors: int
    round_overlap_s: float | None = None
    #: The machine's 1-minute load average as the phase ended (other work shares the cores).
    load: float | None = None
    round_status: str | None = None
    rounds_done: int | None = None
    rounds_failed: int | None = None
    round_seconds: float | None = None
    #: ``--after-answer``: the p99 of ``POST tasks/suggestions`` (None without).
    suggest_p99_ms: float | None = None


@dataclass
class Tally:
    """Shared by the annotators of one phase (one event loop: no locks needed)."""

    target: int
    #: ``time.perf_counter()`` at which the phase ends even short of its target.
    until: float = float("inf")
    acked: list[tuple[int, str, int]] = field(default_factory=list)  # (item, user, annotation)
    handouts: dict[int, set[str]] = field(default_factory=lambda: defaultdict(set))
    next_ms: list[float] = field(default_factory=list)
    annotate_ms: list[float] = field(default_factory=list)
    next_server_ms: list[float] = field(default_factory=list)
    annotate_server_ms: list[float] = field(default_factory=list)
    suggest_ms: list[float] = field(default_factory=list)
    empty: int = 0
    errors: list[str] = field(default_factory=list)

    @property
    def done(self) -> bool:
        return len(self.acked) >= self.target or time.perf_counter() >= self.until


# ---- the server --------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Server:
    """``python -m activelabel serve`` in its own process group, killed on exit."""

    def __init__(self, data_dir: Path, db: str, log: Path, processes: int | None = None,
                 src: Path = REPO / "src") -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = {k: v for k, v in os.environ.items() if not k.startswith("ACTIVELABEL_")}
        env["PYTHONPATH"] = str(src)
        with log.open("ab") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "activelabel", "serve", "--data-dir", str(data_dir),
                 "--db", db, "--port", str(self.port), "--log-level", "warning",
                 *([] if processes is None else ["--processes", str(processes)])],
                env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        self.log = log
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise SystemExit(f"server exited early:\n{log.read_text()[-3000:]}")
            try:
                if httpx.get(self.url + API + "/health", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                time.sleep(0.1)
        self.stop()
        raise SystemExit(f"server not healthy after 60 s:\n{log.read_text()[-3000:]}")

    def stop(self) -> None:
        for sig in (signal.SIGTERM, signal.SIGKILL):
            try:
                os.killpg(self.proc.pid, sig)
                self.proc.wait(timeout=15)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                pass


# ---- seeding -----------------------------------------------------------------------------------


def make_items(n: int, seed: int = 0) -> tuple[list[dict[str, Any]], dict[str, str]]:
    """``n`` two-class texts (a spam or ham phrase plus noise words) and their true labels."""
    rng = random.Random(seed)
    rows, oracle = [], {}
    for i in range(n):
        label = "spam" if rng.random() < 0.3 else "ham"
        phrase = rng.choice(_SPAM if label == "spam" else _HAM)
        noise = " ".join(rng.choice(_WORDS) for _ in range(rng.randint(3, 12)))
        ext = f"t{i:07d}"
        rows.append({"external_id": ext, "data": {"text": f"{phrase} {noise} {i}"}})
        oracle[ext] = label
    return rows, oracle


def make_users(location: DataLocation, n: int) -> tuple[str, dict[str, str]]:
    """An admin token and ``n`` annotators (name -> token), written straight to the database."""
    storage = Storage(location)
    try:
        with storage.sessions() as session, session.begin():
            admin = create_user(session, "bench_admin", is_admin=True)
            _, admin_token = create_token(session, admin.id, "bench")
            tokens = {}
            for i in range(n):
                user = create_user(session, f"annotator{i:03d}")
                tokens[user.username] = create_token(session, user.id, "bench")[1]
    finally:
        storage.close()
    return admin_token, tokens


def check(response: httpx.Response) -> Any:
    if response.status_code >= 400:
        raise SystemExit(f"{response.request.method} {response.request.url} -> "
                         f"{response.status_code}: {response.text[:500]}")
    return response.json() if response.content else None


def seed_project(url: str, admin: str, annotators: list[str], rows: list[dict[str, Any]],
                 overlap: int) -> int:
    headers = {"Authorization": f"Bearer {admin}"}
    with httpx.Client(base_url=url + API, headers=headers, timeout=300) as http:
        project = check(http.post("/projects", json={
            "name": "load", "task": "classification", "labels": list(LABELS),
            "settings": {"featurizer": "text", "batch_size": 200, "overlap": overlap,
                         "retrain_every_labels": 10_000_000, "strategy": "margin"}}))
        pid = int(project["id"])
        for start in range(0, len(rows), 5000):
            check(http.post(f"/projects/{pid}/items", json=rows[start:start + 5000]))
        for name in annotators:
            check(http.post(f"/projects/{pid}/members",
                            json={"username": name, "role": "annotator"}))
        # The seed batch, as a project starts: the phases then serve a round's ranking.
        answer = check(http.post(f"/projects/{pid}/rounds"))
        round_id = int(answer.get("round_id") or answer["id"])
        deadline = time.monotonic() + 300
        while (status := check(http.get(f"/projects/{pid}/rounds/{round_id}"))["status"]) != "done":
            if status == "failed" or time.monotonic() > deadline:
                raise SystemExit(f"the seed round {round_id} is {status} (see the server log)")
            time.sleep(0.2)
    return pid


# ---- the annotators ----------------------------------------------------------------------------


def _task_item(task: dict[str, Any]) -> tuple[int, str]:
    item = task["item"]
    return int(item["id"]), str(item["external_id"])


async def annotator(http: httpx.AsyncClient, pid: int, name: str, token: str,
                    oracle: dict[str, str], tally: Tally, rng: random.Random,
                    think: tuple[float, float]) -> None:
    headers = {"Authorization": f"Bearer {token}"}
    # Arrive at a random moment of one think time, as people do: 50 requests in the same
    # millisecond measure the start-up burst, not the steady load.
    await asyncio.sleep(rng.uniform(0, think[1]))
    while not tally.done:
        try:
            await one_task(http, pid, name, headers, oracle, tally, rng, think)
        except httpx.TransportError as exc:  # counted; the annotator carries on
            tally.errors.append(f"{type(exc).__name__}: {exc}")
            await asyncio.sleep(0.05)


async def one_task(http: httpx.AsyncClient, pid: int, name: str, headers: dict[str, str],
                   oracle: dict[str, str], tally: Tally, rng: random.Random,
                   think: tuple[float, float]) -> None:
    """Next task, think, annotate: one cycle of one annotator."""
    t0 = time.perf_counter()
    response = await http.get(f"{API}/projects/{pid}/tasks/next", params={"n": 1},
                              headers=headers)
    tally.next_ms.append((time.perf_counter() - t0) * 1000)
    tally.next_server_ms.append(server_ms(response))
    if response.status_code != 200:
        tally.errors.append(f"next {response.status_code}: {response.text[:200]}")
        await asyncio.sleep(0.05)
        return
    tasks = response.json()
    tasks = tasks.get("tasks", tasks) if isinstance(tasks, dict) else tasks
    if not tasks:
        tally.empty += 1
        await asyncio.sleep(0.05)
        return
    item_id, ext = _task_item(tasks[0])
    tally.handouts[item_id].add(name)
    await asyncio.sleep(rng.uniform(*think))
    if AFTER_ANSWER:  # the page shows the model's label once the annotator has chosen
        t0 = time.perf_counter()
        response = await http.post(f"{API}/projects/{pid}/tasks/suggestions", headers=headers,
                                   json={"answers": [{"item_id": item_id,
                                                      "labels": [oracle[ext]]}]})
        tally.suggest_ms.append((time.perf_counter() - t0) * 1000)
        if response.status_code != 200:
            tally.errors.append(f"suggestions {response.status_code}: {response.text[:200]}")
    body = {"item_id": item_id, "labels": [oracle[ext]], "client_key": str(uuid.uuid4()),
            "duration_ms": rng.randint(800, 4000)}
    t0 = time.perf_counter()
    response = await http.post(f"{API}/projects/{pid}/annotations", json=body,
                               headers=headers)
    tally.annotate_ms.append((time.perf_counter() - t0) * 1000)
    tally.annotate_server_ms.append(server_ms(response))
    if response.status_code == 201:
        tally.acked.append((item_id, name, int(response.json()["id"])))
    else:
        tally.errors.append(f"annotate {response.status_code}: {response.text[:200]}")


def server_ms(response: httpx.Response) -> float:
    """The ``app;dur=`` of the answer's ``Server-Timing`` header (NaN without one)."""
    for part in response.headers.get("server-timing", "").split(","):
        name, _, params = part.strip().partition(";")
        if name == "app" and params.startswith("dur="):
            return float(params[4:])
    return float("nan")


async def run_annotators(url: str, pid: int, tokens: dict[str, str], oracle: dict[str, str],
                         target: int, seed: int, think: tuple[float, float],
                         seconds: float | None = None) -> tuple[Tally, float]:
    tally = Tally(target)
    # One client (one keep-alive connection) per annotator, as each annotator's browser has
    # its own, all built before the clock starts with one TLS context between them (httpx
    # loads the CA bundle for every client otherwise, even over plain HTTP). One client
    # shared by all made the load generator itself the bottleneck: its connection pool
    # walks every connection for every request, so its CPU per request grew with the number
    # of annotators (against a server that answers at once: 2.3, 3.5 and 5.3 ms per request
    # at 20, 50 and 200, so 114, 92 and 57 requests/s; one client each: 0.8 ms at all three).
    tls = ssl.create_default_context()
    async with contextlib.AsyncExitStack() as stack:
        clients = [await stack.enter_async_context(httpx.AsyncClient(
            base_url=url, timeout=60, verify=tls,
            limits=httpx.Limits(max_connections=1, max_keepalive_connections=1)))
            for _ in tokens]
        start = time.perf_counter()
        if seconds is not None:
            tally.until = start + seconds
        await asyncio.gather(*(
            annotator(http, pid, name, token, oracle, tally, random.Random(seed + i), think)
            for i, (http, (name, token)) in enumerate(zip(clients, tokens.items(), strict=True))))
        return tally, time.perf_counter() - start


# ---- checks ------------------------------------------------------------------------------------


def duplicates(tally: Tally, overlap: int) -> int:
    """Hand-outs beyond the overlap: items given to more distinct annotators than allowed."""
    return sum(max(0, len(users) - overlap) for users in tally.handouts.values())


def lost(location: DataLocation, url: str, admin: str, pid: int, acked: list[tuple[int, str, int]],
         folder: Path) -> int:
    """Acknowledged annotations missing from the database or from the export."""
    from sqlalchemy import select

    from activelabel.store.models import Annotation, Item

    storage = Storage(location, run_migrations=False)
    try:
        with storage.read_sessions() as session:
            stored = set(session.execute(select(Annotation.id).where(
                Annotation.project_id == pid)).scalars())
            ext_of = dict(session.execute(select(Item.id, Item.external_id).where(
                Item.project_id == pid)).all())
    finally:
        storage.close()
    path = folder / f"export-{pid}.jsonl"
    headers = {"Authorization": f"Bearer {admin}"}
    with httpx.stream("GET", f"{url}{API}/projects/{pid}/export", params={"format": "jsonl"},
                      headers=headers, timeout=300) as response, path.open("wb") as out:
        if response.status_code != 200:
            raise SystemExit(f"export failed: {response.status_code} {response.read()[:300]!r}")
        for chunk in response.iter_bytes():
            out.write(chunk)
    exported: set[tuple[str, str]] = set()
    with path.open() as rows:
        for line in rows:
            row = json.loads(line)
            for ann in row.get("annotations") or []:
                exported.add((row["external_id"], str(ann.get("annotator"))))
    return sum(1 for item, user, ann_id in acked
               if ann_id not in stored or (ext_of.get(item), user) not in exported)


# ---- phases ------------------------------------------------------------------------------------


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) if values else float("nan")


def _epoch(stamp: str | None) -> float | None:
    """An ISO timestamp of the API as seconds since the epoch."""
    return None if stamp is None else datetime.fromisoformat(stamp).timestamp()


class Rounds:
    """Keeps rounds running back to back in a thread, for as long as the phase lasts: asks for
    a round, polls it until it ends, asks for the next. Records how long each was running."""

    def __init__(self, url: str, admin: str, pid: int) -> None:
        self.url, self.admin, self.pid = url, admin, pid
        self.spans: list[tuple[float, float]] = []  # (started, finished) per round, epoch s
        self.worker_s: list[float] = []  # each round's total_s as the worker timed it
        self.statuses: Counter[str] = Counter()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def _loop(self) -> None:
        headers = {"Authorization": f"Bearer {self.admin}"}
        with httpx.Client(base_url=self.url + API, headers=headers, timeout=30) as http:
            while not self._stop.is_set():
                answer = check(http.post(f"/projects/{self.pid}/rounds"))
                self._follow(http, int(answer.get("round_id") or answer["id"]))

    def _follow(self, http: httpx.Client, round_id: int) -> None:
        while True:
            record = check(http.get(f"/projects/{self.pid}/rounds/{round_id}"))
            if record["status"] in ("done", "failed"):
                # The worker's own times (same machine, same clock): a round shorter than the
                # polling interval still counts for what it ran.
                ended = _epoch(record["finished_at"]) or time.time()
                self.spans.append((_epoch(record["started_at"]) or ended, ended))
                self.statuses[str(record["status"])] += 1
                total = (record.get("timings") or {}).get("total_s")
                if total is not None:
                    self.worker_s.append(float(total))
                return
            time.sleep(0.2)  # as a dashboard would poll: the polls are load on the server too

    def start(self) -> Rounds:
        self._thread.start()
        return self

    def stop(self) -> None:
        """Ask for no more rounds and wait for the one in progress to end."""
        self._stop.set()
        self._thread.join(timeout=600)

    def overlap(self, began: float, ended: float) -> float:
        """Seconds of the span ``began`` - ``ended`` (epoch) during which a round ran."""
        return sum(max(0.0, min(ended, b) - max(began, a)) for a, b in self.spans)


def phase(name: str, args: argparse.Namespace, ctx: dict[str, Any], with_round: bool,
          annotators: int | None = None) -> PhaseResult:
    """One phase with the first ``annotators`` annotators (all by default)."""
    tokens = dict(list(ctx["tokens"].items())[:annotators])
    rounds = Rounds(ctx["url"], ctx["admin"], ctx["pid"]).start() if with_round else None
    began = time.time()
    tally, seconds = asyncio.run(run_annotators(ctx["url"], ctx["pid"], tokens,
                                                ctx["oracle"], args.annotations, args.seed,
                                                args.think, args.seconds))
    ended = began + seconds
    result = PhaseResult(
        phase=name, code=ctx["code"], annotators=len(tokens), annotations=len(tally.acked),
        seconds=round(seconds, 2),
        throughput_per_s=round(len(tally.acked) / seconds, 1),
        next_p50_ms=round(percentile(tally.next_ms, 50), 1),
        next_p99_ms=round(percentile(tally.next_ms, 99), 1),
        annotate_p50_ms=round(percentile(tally.annotate_ms, 50), 1),
        annotate_p99_ms=round(percentile(tally.annotate_ms, 99), 1),
        next_server_p99_ms=round(percentile(tally.next_server_ms, 99), 1),
        annotate_server_p99_ms=round(percentile(tally.annotate_server_ms, 99), 1),
        duplicate_handouts=duplicates(tally, args.overlap),
        lost_annotations=lost(ctx["settings"], ctx["url"], ctx["admin"], ctx["pid"],
                              ctx["acked"] + tally.acked, ctx["folder"]),
        empty_next=tally.empty, errors=len(tally.errors), load=round(os.getloadavg()[0], 1),
        suggest_p99_ms=round(percentile(tally.suggest_ms, 99), 1) if tally.suggest_ms else None)
    ctx["acked"] += tally.acked
    for message, count in Counter(tally.errors).most_common(3):
        print(f"  {name}: {count} x {message}", file=sys.stderr)
    if rounds is not None:
        rounds.stop()
        result.round_overlap_s = round(rounds.overlap(began, ended), 2)
        result.round_status = ", ".join(f"{n} {s}" for s, n in sorted(rounds.statuses.items()))
        result.rounds_done = rounds.statuses["done"]
        result.rounds_failed = rounds.statuses["failed"]
        result.round_seconds = (round(float(np.mean(rounds.worker_s)), 2)
                                if rounds.worker_s else None)
    return result


def table(results: list[PhaseResult], backend: str) -> str:
    cols = [("code", "code"), ("phase", "phase"), ("annotators", "annotators"),
            ("labels", "annotations"), ("s", "seconds"),
            ("labels/s", "throughput_per_s"), ("next p50 ms", "next_p50_ms"),
            ("next p99 ms", "next_p99_ms"), ("annotate p50 ms", "annotate_p50_ms"),
            ("annotate p99 ms", "annotate_p99_ms"), ("next app p99", "next_server_p99_ms"),
            ("annotate app p99", "annotate_server_p99_ms"),
            *([("suggest p99 ms", "suggest_p99_ms")] if AFTER_ANSWER else []),
            ("dup hand-outs", "duplicate_handouts"),
            ("lost", "lost_annotations"), ("errors", "errors"),
            ("round overlap s", "round_overlap_s"), ("load", "load")]
    rows = [[h for h, _ in cols]] + [
        ["-" if getattr(r, k) is None else str(getattr(r, k)) for _, k in cols] for r in results]
    widths = [max(len(row[i]) for row in rows) for i in range(len(cols))]
    lines = [f"service load on {backend}"]
    for n, row in enumerate(rows):
        lines.append("  ".join(cell.rjust(w) for cell, w in zip(row, widths, strict=True)))
        if n == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--db", help="database URL (default: SQLite in a temporary folder)")
    parser.add_argument("--items", type=int, default=20_000, help="pool size")
    parser.add_argument("--annotators", type=int, default=50)
    parser.add_argument("--annotations", type=int, default=None,
                        help="labels per phase (default 2000; with --seconds, no limit)")
    parser.add_argument("--overlap", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--think-ms", default="1000,4000",
                        help="LO,HI: each annotator thinks a uniform LO-HI ms before labeling")
    parser.add_argument("--no-pause", action="store_true",
                        help="capacity: no thinking at all (--think-ms 0,0)")
    parser.add_argument("--seconds", type=float, default=None,
                        help="end each phase after this many seconds, even short of "
                             "--annotations")
    parser.add_argument("--sweep", default=None,
                        help="N1,N2,...: one idle phase per number of annotators instead of "
                             "the two phases (e.g. 20,50,200)")
    parser.add_argument("--baseline", type=Path, default=None,
                        help="another checkout (e.g. a worktree of an earlier commit) measured "
                             "the same way, alternating with this one")
    parser.add_argument("--repeats", type=int, default=1,
                        help="with --baseline: how many times each checkout runs")
    parser.add_argument("--processes", type=int, default=None,
                        help="API processes of the server (activelabel serve --processes; "
                             "default: serve's own, 1 on SQLite and 2 on PostgreSQL)")
    parser.add_argument("--quick", action="store_true",
                        help="smoke test: 2000 items, 10 annotators, 100 labels per phase")
    parser.add_argument("--no-round", action="store_true", help="skip the phase with a round")
    parser.add_argument("--after-answer", action="store_true",
                        help="the page's after_answer flow: POST tasks/suggestions with the "
                             "chosen label before each annotation")
    parser.add_argument("--out", type=Path, help="write the results as JSON here")
    parser.add_argument("--keep", action="store_true", help="keep the data folder / PG schema")
    args = parser.parse_args(argv)
    global AFTER_ANSWER
    AFTER_ANSWER = args.after_answer
    if args.annotations is None:
        args.annotations = 2000 if args.seconds is None else 10**9
    if args.quick:
        args.items, args.annotators, args.annotations = 2000, 10, 100
        args.think_ms = "5,20"
    if args.no_pause:
        args.think_ms = "0,0"
    args.sweep = _sweep(parser, args.sweep)
    if args.sweep:
        args.annotators = max(args.sweep)
        args.no_round = True
    if args.seconds is not None and args.seconds <= 0:
        parser.error("--seconds must be > 0")
    if args.repeats < 1:
        parser.error("--repeats must be >= 1")
    if args.baseline is not None and not (args.baseline / "src" / "activelabel").is_dir():
        parser.error(f"--baseline {args.baseline}: no src/activelabel there (give a checkout)")
    try:
        low, high = (float(x) / 1000 for x in args.think_ms.split(","))
    except ValueError:
        parser.error(f"--think-ms takes LO,HI in milliseconds, got {args.think_ms!r}")
    if not 0 <= low <= high:
        parser.error("--think-ms needs 0 <= LO <= HI")
    args.think = (low, high)
    if min(args.items, args.annotators, args.annotations, args.overlap) < 1:
        parser.error("--items, --annotators, --annotations and --overlap must be >= 1")
    phases = len(args.sweep) if args.sweep else 1 if args.no_round else 2
    if args.seconds is None and args.annotations * phases > args.items:
        parser.error(f"--items must be at least {phases} times --annotations ({phases} phases)")
    return args


def _sweep(parser: argparse.ArgumentParser, given: str | None) -> list[int]:
    """``--sweep N1,N2,...`` as a list of positive numbers (empty without the option)."""
    if given is None:
        return []
    try:
        counts = [int(x) for x in given.split(",") if x.strip()]
    except ValueError:
        parser.error(f"--sweep takes numbers of annotators like 20,50,200, got {given!r}")
    if not counts or min(counts) < 1:
        parser.error(f"--sweep needs at least one number of annotators >= 1, got {given!r}")
    return counts


def run(args: argparse.Namespace, code: str, src: Path) -> list[PhaseResult]:
    """The whole measurement with the package in ``src``: fresh data, server, seed round and
    the phases; ``code`` names the checkout in the table."""
    folder = Path(tempfile.mkdtemp(prefix="al-load-"))
    db, schema = args.db or f"sqlite:///{folder / 'activelabel.db'}", None
    if db.startswith("postgres"):
        db, schema = pg_schema(args.db)
    location = resolve_location(folder / "data", db)
    server = None
    results: list[PhaseResult] = []
    try:
        Storage(location).close()  # migrate before the users are written
        admin, tokens = make_users(location, args.annotators)
        server = Server(location.data_dir, db, folder / "server.log", args.processes, src)
        rows, oracle = make_items(args.items, args.seed)
        t0 = time.perf_counter()
        pid = seed_project(server.url, admin, list(tokens), rows, args.overlap)
        print(f"{code}: seeded {args.items} items in {time.perf_counter() - t0:.1f} s; "
              f"{args.annotators} annotators, {args.annotations} labels per phase",
              file=sys.stderr)
        ctx = {"url": server.url, "admin": admin, "tokens": tokens, "oracle": oracle,
               "pid": pid, "settings": location, "folder": folder, "acked": [], "code": code}
        if args.sweep:
            for count in args.sweep:
                results.append(phase(f"idle, {count}", args, ctx, False, count))
                print(table(results[-1:], code), file=sys.stderr)
        else:
            results.append(phase("idle", args, ctx, with_round=False))
            if not args.no_round:
                results.append(phase("round running", args, ctx, with_round=True))
    finally:
        if server is not None:
            server.stop()
        if schema is not None and not args.keep:
            drop_schema(args.db, schema)
        if not args.keep:
            import shutil

            shutil.rmtree(folder, ignore_errors=True)
    return results


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    backend = "postgresql" if (args.db or "").startswith("postgres") else "sqlite"
    checkouts = [("this", REPO / "src")]
    if args.baseline is not None:
        checkouts = [("baseline", args.baseline.resolve() / "src"), *checkouts]
    results: list[PhaseResult] = []
    for _ in range(args.repeats):
        for code, src in checkouts:
            results += run(args, code, src)
    print(table(results, backend))
    for r in results:
        if r.round_status is not None:
            print(f"rounds back to back: {r.round_status}, {r.round_seconds} s each in the "
                  f"worker; running for {r.round_overlap_s} s of the {r.seconds} s phase")
    if args.out is not None:
        args.out.write_text(json.dumps({"backend": backend, "config": {
            k: getattr(args, k) for k in ("items", "annotators", "annotations", "overlap",
                                          "think_ms", "processes", "seconds", "sweep")},
            "phases": [asdict(r) for r in results]}, indent=2) + "\n")
    bad = [r for r in results if r.duplicate_handouts or r.lost_annotations or r.rounds_failed]
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
