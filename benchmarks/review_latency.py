"""How long a reviewer waits for the review queue while annotators keep labeling.

A text project of clinc150's training texts (151 intents; ``--items`` of them) gets
``--labels`` true labels through the REST API (an in-process app, SQLite in a fresh folder),
then the review queue (``GET .../review?limit=100``) is read ``--repeats`` times, each time
after one more label, as a reviewer's reloads are while a team labels. The table gives the
seconds of each read: where the label check runs on the request, every read after a new label
trains the project's model five times over; where a worker runs it (a ``label_check`` job),
the read only asks for one. The seconds of that job, run here by a worker (none runs during
the reads), are given beside, with how long a round asked for (``POST .../rounds``) once the
check is under way waited for the worker (a worker runs one job at a time), and those of the
review page's poll of the check (``GET .../label-check``, every 3 s while a check is on its
way): once after each new label, before the queue is read, and three times after the check.

The same script runs against an earlier checkout (``PYTHONPATH=<its src>``), so before and
after are measured in one session:

    python benchmarks/review_latency.py --labels 2000 --repeats 3
    PYTHONPATH=/tmp/before/src python benchmarks/review_latency.py --labels 2000 --repeats 3
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

SHARED = Path(os.environ.get(
    "ACTIVELABEL_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))


def load_rows(n: int) -> list[dict[str, Any]]:
    rows = []
    with (SHARED / "clinc150.jsonl").open(encoding="utf-8") as handle:
        for line in handle:
            row = json.loads(line)
            if row["split"] == "train":
                rows.append(row)
            if len(rows) == n:
                break
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--items", type=int, default=15_000)
    parser.add_argument("--labels", type=int, default=2_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    from fastapi.testclient import TestClient

    from activelabel.http.app import create_app
    from activelabel.http.config import ServerSettings
    from activelabel.runtime.settings import open_storage
    from activelabel.store import create_token, create_user

    rows = load_rows(args.items)
    intents = sorted({r["label"] for r in rows})
    rng = np.random.default_rng(args.seed)
    order = rng.permutation(len(rows))
    with tempfile.TemporaryDirectory() as folder:
        storage = open_storage(folder)
        with storage.sessions() as session, session.begin():
            user = create_user(session, "bench", is_admin=True)
            _, token = create_token(session, user.id, "bench")
        headers = {"Authorization": f"Bearer {token}"}
        app = create_app(storage=storage, settings=ServerSettings())
        with TestClient(app) as client:
            def call(method: str, path: str, **kw: Any) -> Any:
                answer = client.request(method, "/api/v1" + path, headers=headers, **kw)
                assert answer.status_code < 300, answer.text
                return answer.json()

            pid = call("POST", "/projects", json={
                "name": "review latency", "labels": intents,
                "settings": {"free_labeling": True, "audit_share": 0.0,
                             "retrain_every_labels": 10**9}})["id"]
            for start in range(0, len(rows), 2000):
                call("POST", f"/projects/{pid}/items", json=[
                    {"external_id": r["id"], "data": {"text": r["text"]}}
                    for r in rows[start:start + 2000]])
            ids: dict[str, int] = {}
            after = None
            while True:
                page = call("GET", f"/projects/{pid}/items",
                            params={"limit": 1000, **({} if after is None else {"after": after})})
                ids.update({i["external_id"]: i["id"] for i in page["items"]})
                if (after := page["next_after"]) is None:
                    break

            def label(k: int) -> None:
                r = rows[int(order[k])]
                call("POST", f"/projects/{pid}/annotations",
                     json={"item_id": ids[r["id"]], "labels": [r["label"]]})

            for k in range(args.labels):
                label(k)
            reads, checks, waits, polls, stale_polls = [], [], [], [], []
            for rep in range(args.repeats):
                label(args.labels + rep)  # a label since the last read
                start = time.perf_counter()
                call("GET", f"/projects/{pid}/label-check")  # the labels changed since
                stale_polls.append(time.perf_counter() - start)
                start = time.perf_counter()
                call("GET", f"/projects/{pid}/review", params={"limit": 100})
                reads.append(time.perf_counter() - start)
                try:  # a worker's label check, where the queue asks for one
                    from activelabel.labeling.quality import LABEL_CHECK
                except ImportError:
                    continue
                check = _claim(storage, LABEL_CHECK)
                if check is not None:
                    checks.append(_check_with_a_round(storage, check, call, pid, waits))
                for _ in range(3):  # the review page's poll of the check (every 3 s)
                    start = time.perf_counter()
                    call("GET", f"/projects/{pid}/label-check")
                    polls.append(time.perf_counter() - start)
        storage.close()

    def fmt(xs: list[float]) -> str:
        return "-" if not xs else f"{statistics.median(xs):.2f} ({min(xs):.2f}-{max(xs):.2f})"

    print("| items | labels | review read after a new label, s (median, range) | "
          "label check job, s | a round asked during the check waits, s | "
          "the page's poll of the check, s: labels changed / checked |")
    print("|---:|---:|---|---|---|---|")
    print(f"| {len(rows):,} | {args.labels:,} | {fmt(reads)} | {fmt(checks)} | {fmt(waits)} | "
          f"{fmt(stale_polls)} / {fmt(polls)} |")


def _claim(storage: Any, kind: str) -> Any:
    """The oldest queued job of ``kind``, claimed for the benchmark's worker (None: none)."""
    from activelabel.store import claim_job

    with storage.sessions() as session, session.begin():
        job = claim_job(session, [kind], "bench")
        if job is not None:
            session.expunge(job)
    return job


def _check_with_a_round(storage: Any, check: Any, call: Any, pid: int,
                        waits: list[float]) -> float:
    """Run the claimed label check as a worker does, ask for a round once it has begun its
    model fits (its progress says so, or 0.5 s in), and run the round when the worker is
    free; the check's seconds (those of any round run inside it left out), and the round's
    wait for a worker (from its job's creation to its start) appended to ``waits``."""
    from activelabel.runtime.worker import Worker
    from activelabel.store.models import Job

    worker = Worker(storage, worker_id="bench")
    thread = threading.Thread(target=worker._run, args=(check,))
    start = time.perf_counter()
    thread.start()
    while thread.is_alive() and time.perf_counter() - start < 0.5:
        with storage.read_sessions() as session:
            if ((session.get(Job, check.id).progress or {}).get("fits") or 0) >= 1:
                break
        time.sleep(0.02)
    round_job = call("POST", f"/projects/{pid}/rounds", json={})["job_id"]
    thread.join()
    while worker.run_once():  # the round, where the check did not run it
        pass
    with storage.read_sessions() as session:
        done, queued = session.get(Job, check.id), session.get(Job, round_job)
        waits.append((queued.started_at - queued.created_at).total_seconds())
        took = (done.finished_at - done.started_at).total_seconds()
        return took - float((done.result or {}).get("yielded_s") or 0.0)


if __name__ == "__main__":
    main()
