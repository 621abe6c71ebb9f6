"""CPU the API spends per labeling cycle (``GET tasks/next?n=1`` + ``POST annotations``).

``service_load.py`` measures what annotators see, but on a small machine its figures mix the
server's cost with the load generator's and with whatever else the machine runs. This script
calls the ASGI app in its own process (no sockets, no HTTP client, no uvicorn), with
``--concurrency`` annotators labeling back to back for ``--seconds``, and reports the CPU this
process spent per cycle (every thread: event loop, thread pool, drivers) beside the latency
and throughput. The database server's own CPU is not counted. ``--compare DIR`` runs the same
measurement on another checkout's ``src`` (a worktree of an earlier commit, say), alternating
with this one ``--repeats`` times, so that both see the same machine.

    python benchmarks/request_cpu.py                                   # SQLite in a temp dir
    python benchmarks/request_cpu.py --db postgresql+psycopg://postgres@127.0.0.1:5432/test
    git worktree add /tmp/before HEAD~3
    python benchmarks/request_cpu.py --db postgresql+psycopg://... --compare /tmp/before
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent


def measure(src: Path, db: str | None, seconds: float, concurrency: int,
            items: int) -> dict[str, Any]:
    """One measurement with the package found in ``src`` (run in a child process)."""
    sys.path.insert(0, str(HERE))
    sys.path.insert(0, str(src))
    from _pg import drop_schema, pg_schema
    from activelabel.http.app import create_app
    from activelabel.runtime.settings import resolve_location
    from activelabel.store import (
        Storage,
        add_items,
        add_member,
        create_project,
        create_token,
        create_user,
    )

    folder = Path(tempfile.mkdtemp(prefix="al-cpu-"))
    url, schema = (db, None) if db is None or not db.startswith("postgres") else pg_schema(db)
    url = url or f"sqlite:///{folder / 'activelabel.db'}"
    storage = Storage(resolve_location(folder / "data", url))
    try:
        with storage.sessions() as session, session.begin():
            admin = create_user(session, "bench_admin", is_admin=True)
            pid = create_project(session, "cpu", "classification", ["spam", "ham"],
                                 created_by=admin.id).id
            add_items(session, pid, [{"external_id": f"t{i}", "data": {"text": f"item {i} text"}}
                                     for i in range(items)])
            tokens = []
            for i in range(concurrency):
                user = create_user(session, f"annotator{i:03d}")
                add_member(session, pid, user.id, "annotator")
                tokens.append(create_token(session, user.id, "bench")[1])
        app = create_app(storage=storage)
        return asyncio.run(_drive(app, pid, tokens, seconds))
    finally:
        storage.close()
        if schema is not None:
            drop_schema(str(db), schema)


async def _call(app: Any, method: str, path: str, token: str, query: bytes = b"",
                body: bytes = b"") -> tuple[int, bytes]:
    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1",
             "method": method, "scheme": "http", "path": path, "raw_path": path.encode(),
             "query_string": query, "root_path": "", "client": ("127.0.0.1", 1),
             "server": ("127.0.0.1", 80), "state": {},
             "headers": [(b"authorization", f"Bearer {token}".encode()),
                         (b"content-type", b"application/json"),
                         (b"content-length", str(len(body)).encode())]}
    given = False
    status, chunks = 0, []

    async def receive() -> dict[str, Any]:
        nonlocal given
        if not given:
            given = True
            return {"type": "http.request", "body": body, "more_body": False}
        await asyncio.Event().wait()  # the client never disconnects
        raise AssertionError("unreachable")

    async def send(message: dict[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]
        elif message["type"] == "http.response.body":
            chunks.append(message.get("body", b""))

    await app(scope, receive, send)
    return status, b"".join(chunks)


async def _drive(app: Any, pid: int, tokens: list[str], seconds: float) -> dict[str, Any]:
    latency: dict[str, list[float]] = {"next": [], "annotate": []}
    cycles = [0]

    async def annotator(token: str, until: float) -> None:
        while time.perf_counter() < until:
            t0 = time.perf_counter()
            status, body = await _call(app, "GET", f"/api/v1/projects/{pid}/tasks/next", token,
                                       b"n=1")
            latency["next"].append(time.perf_counter() - t0)
            if status != 200:
                raise SystemExit(f"tasks/next answered {status}: {body[:300]!r}")
            tasks = json.loads(body)
            if not tasks:
                raise SystemExit("the pool ran out: give more --items")
            label = json.dumps({"item_id": tasks[0]["item"]["id"], "labels": ["spam"],
                                "duration_ms": 1000, "client_key": str(uuid.uuid4())}).encode()
            t0 = time.perf_counter()
            status, body = await _call(app, "POST", f"/api/v1/projects/{pid}/annotations",
                                       token, body=label)
            latency["annotate"].append(time.perf_counter() - t0)
            if status != 201:
                raise SystemExit(f"annotations answered {status}: {body[:300]!r}")
            cycles[0] += 1

    async def phase(length: float) -> None:
        until = time.perf_counter() + length
        await asyncio.gather(*(annotator(token, until) for token in tokens))

    await phase(min(2.0, seconds))  # warm-up: caches, prepared statements, pool
    for values in latency.values():
        values.clear()
    cycles[0] = 0
    cpu0, wall0 = time.process_time(), time.perf_counter()
    await phase(seconds)
    cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0

    def pct(values: list[float], q: float) -> float:
        ordered = sorted(values)
        return ordered[round(q * (len(ordered) - 1))] * 1000

    n = cycles[0]
    if n == 0:
        raise SystemExit(f"no labeling cycle finished in {seconds} s: give more --seconds")
    return {"cycles": n, "cpu_ms_per_cycle": cpu / n * 1000, "cycles_per_s": n / wall,
            "next_p50_ms": pct(latency["next"], 0.5), "next_p99_ms": pct(latency["next"], 0.99),
            "annotate_p50_ms": pct(latency["annotate"], 0.5),
            "annotate_p99_ms": pct(latency["annotate"], 0.99)}


COLUMNS = [("checkout", "checkout"), ("cycles", "cycles"), ("CPU ms/cycle", "cpu_ms_per_cycle"),
           ("cycles/s", "cycles_per_s"), ("next p50", "next_p50_ms"), ("next p99", "next_p99_ms"),
           ("annotate p50", "annotate_p50_ms"), ("annotate p99", "annotate_p99_ms")]


def table(rows: list[dict[str, Any]]) -> str:
    cells = [[str(r[key]) if isinstance(r[key], (int, str)) else f"{r[key]:.1f}"
              for _, key in COLUMNS] for r in rows]
    widths = [max(len(head), *(len(c[i]) for c in cells)) for i, (head, _) in enumerate(COLUMNS)]
    lines = ["  ".join(head.rjust(w) for (head, _), w in zip(COLUMNS, widths, strict=True)),
             "  ".join("-" * w for w in widths)]
    lines += ["  ".join(c.rjust(w) for c, w in zip(row, widths, strict=True)) for row in cells]
    return "\n".join(lines)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", help="database URL (default: SQLite in a temporary folder)")
    parser.add_argument("--seconds", type=float, default=10.0, help="measured seconds per run")
    parser.add_argument("--concurrency", type=int, default=4, help="annotators at once")
    parser.add_argument("--items", type=int, default=20_000, help="pool size")
    parser.add_argument("--repeats", type=int, default=3, help="runs per checkout")
    parser.add_argument("--compare", type=Path, help="another checkout to measure alternately")
    parser.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.seconds <= 0 or min(args.concurrency, args.items, args.repeats) < 1:
        parser.error("--seconds must be > 0; --concurrency, --items and --repeats >= 1")
    if args.compare is not None and not (args.compare / "src" / "activelabel").is_dir():
        parser.error(f"--compare {args.compare}: no src/activelabel there (give a checkout)")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.child is not None:  # one measurement, printed as JSON for the parent
        print(json.dumps(measure(args.child, args.db, args.seconds, args.concurrency,
                                 args.items)))
        return 0
    checkouts = [REPO] + ([args.compare.resolve()] if args.compare is not None else [])
    rows: list[dict[str, Any]] = []
    for _ in range(args.repeats):
        for checkout in checkouts:
            command = [sys.executable, str(Path(__file__).resolve()), "--child",
                       str(checkout / "src"), "--seconds", str(args.seconds),
                       "--concurrency", str(args.concurrency), "--items", str(args.items)]
            if args.db:
                command += ["--db", args.db]
            done = subprocess.run(command, capture_output=True, text=True, check=False)
            if done.returncode != 0:
                print(done.stdout + done.stderr, file=sys.stderr)
                return 1
            rows.append({"checkout": str(checkout), **json.loads(done.stdout.splitlines()[-1])})
    print(table(rows))
    for checkout in checkouts:
        cpu = [r["cpu_ms_per_cycle"] for r in rows if r["checkout"] == str(checkout)]
        print(f"{checkout}: median CPU {statistics.median(cpu):.2f} ms per cycle")
    return 0


if __name__ == "__main__":
    sys.exit(main())
