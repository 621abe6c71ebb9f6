"""Tool formats and the Label Studio ML backend: how long they take and what they hold.

1. Reading a Label Studio JSON export of ``--tasks`` tasks (one annotation and one prediction
   each) as canonical rows, with the reader that parses one task at a time and with the whole
   file parsed first (``json.load``), each in a child process: seconds and peak RSS.
2. The ML backend's ``POST /predict`` on a real SMS project (``--items`` items, a model
   trained by a round on ``--labels`` labels), in process: latency of a page of tasks that
   are items (stored probabilities) and of tasks that are not (the loaded model runs on
   them), and of the first such call (the model is loaded then).

    python benchmarks/formats.py                    # 200,000 tasks; 2,000 items, 100 tasks a call
    python benchmarks/formats.py --tasks 20000 --items 500 --repeats 5
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import random
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

_REPO = Path(__file__).resolve().parents[1]
#: Where sms_spam.jsonl is looked for: ACTIVELABEL_SHARED_DATA, then shared/data beside the
#: repository (as the tests do).
SMS_CANDIDATES = [Path(p) / "sms_spam.jsonl" for p in (
    os.environ.get("ACTIVELABEL_SHARED_DATA") or "", _REPO.parent / "shared" / "data",
    "/work/shared/data") if str(p)]
WORDS = ("free", "call", "now", "prize", "meet", "later", "home", "text", "win", "ok", "love")


def write_export(path: Path, n: int, seed: int = 0) -> None:
    """``n`` Label Studio tasks with one choices annotation and one prediction each."""
    rng = random.Random(seed)
    with path.open("w") as out:
        out.write("[")
        for i in range(n):
            label = rng.choice(["ham", "spam"])
            task = {"id": i + 1, "data": {"text": " ".join(rng.choices(WORDS, k=12))},
                    "annotations": [{"id": i + 1, "completed_by": 1 + i % 7,
                                     "result": [{"from_name": "label", "to_name": "text",
                                                 "type": "choices",
                                                 "value": {"choices": [label]}}],
                                     "was_cancelled": False,
                                     "created_at": "2026-01-01T00:00:00.000000Z",
                                     "lead_time": 2.5}],
                    "predictions": [{"model_version": "v1", "score": rng.random(),
                                     "result": [{"from_name": "label", "to_name": "text",
                                                 "type": "choices",
                                                 "value": {"choices": [label]}}]}],
                    "meta": {}, "project": 1, "inner_id": i + 1}
            out.write(("," if i else "") + json.dumps(task))
        out.write("]")


def read_child(path: Path, how: str) -> dict[str, Any]:
    from activelabel.labeling.formats.labelstudio import read_labelstudio, task_to_row

    start = time.perf_counter()
    n = bad = 0
    if how == "streamed":
        for _, row, error in read_labelstudio(path):
            n += row is not None
            bad += error is not None
    else:
        with path.open() as handle:
            for task in json.load(handle):
                task_to_row(task)
                n += 1
    return {"how": how, "rows": n, "errors": bad, "seconds": time.perf_counter() - start,
            "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def run_read(path: Path, how: str) -> dict[str, Any]:
    done = subprocess.run([sys.executable, __file__, "--child-read", str(path), "--how", how],
                          capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"reading ({how}) failed:\n{done.stderr}")
    figures: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return figures


def _sms(n: int) -> list[dict[str, Any]]:
    found = [p for p in SMS_CANDIDATES if p.exists()]
    if not found:
        raise SystemExit("sms_spam.jsonl not found: set ACTIVELABEL_SHARED_DATA to its folder")
    with found[0].open() as src:
        return [json.loads(line) for _, line in zip(range(n), src, strict=False)]


def predict_latency(items: int, labels: int, per_call: int, repeats: int) -> dict[str, Any]:
    """Latency of POST /predict (ms) for known and unknown tasks on a trained SMS project."""
    from fastapi.testclient import TestClient

    from activelabel.http.app import create_app
    from activelabel.labeling.remote_model import ModelHosts
    from activelabel.labeling.rounds import request_round, run_round
    from activelabel.runtime.settings import open_storage
    from activelabel.store import (
        add_items,
        annotate,
        create_project,
        create_token,
        create_user,
        item_ids_for_rows,
    )
    from activelabel.store.models import Job

    rows = _sms(items + per_call)
    folder = Path(tempfile.mkdtemp(prefix="al-bench-formats-"))
    storage = open_storage(folder)
    with storage.sessions() as session, session.begin():
        user = create_user(session, "lead", is_admin=True)
        session.flush()
        _, token = create_token(session, user.id, "bench")
        project = create_project(session, "sms", "classification", ["ham", "spam"],
                                 settings={"featurizer": "text", "batch_size": 20},
                                 created_by=user.id)
        pid = project.id
        add_items(session, pid, [{"external_id": f"s{i}", "data": {"text": r["text"]}}
                                 for i, r in enumerate(rows[:items])])
        ids = item_ids_for_rows(session, pid, range(labels))
        for item_id, row in zip(ids, rows[:labels], strict=True):
            annotate(session, pid, user.id, item_id, [row["label"]])
        rnd, _ = request_round(session, pid, requested_by=user.id, reason="bench")
        job_id = rnd.job_id
    with storage.sessions() as session:
        job = session.get(Job, job_id)
    run_round(storage, job, progress=lambda _: None, model_hosts=ModelHosts())
    auth = {"Authorization": "Basic " + base64.b64encode(f"lead:{token}".encode()).decode()}
    known = [{"id": 10_000 + i, "data": {"text": rows[i]["text"]},
              "meta": {"external_id": f"s{i}"}} for i in range(labels, labels + per_call)]
    unknown = [{"id": 20_000 + i, "data": {"text": r["text"] + " (new)"}, "meta": {}}
               for i, r in enumerate(rows[items:items + per_call])]
    out: dict[str, Any] = {"items": items, "labels": labels, "tasks_per_call": per_call}
    with TestClient(create_app(storage=storage)) as client:
        url = f"/api/v1/projects/{pid}/ls-ml/predict"

        def call(tasks: list[dict[str, Any]]) -> float:
            start = time.perf_counter()
            answer = client.post(url, json={"tasks": tasks}, headers=auth)
            elapsed = (time.perf_counter() - start) * 1000
            assert answer.status_code == 200, answer.text
            assert len(answer.json()["results"]) == len(tasks)
            return elapsed

        out["first_unknown_ms"] = call(unknown)  # loads the model
        for name, tasks in (("known", known), ("unknown", unknown)):
            times = sorted(call(tasks) for _ in range(repeats))
            out[f"{name}_p50_ms"] = statistics.median(times)
            out[f"{name}_max_ms"] = times[-1]
    storage.close()
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=200_000)
    parser.add_argument("--items", type=int, default=2000)
    parser.add_argument("--labels", type=int, default=100)
    parser.add_argument("--per-call", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--out", type=Path, help="also write the figures as JSON here")
    parser.add_argument("--child-read", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--how", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child_read:
        print(json.dumps(read_child(args.child_read, args.how)))
        return 0
    with tempfile.TemporaryDirectory(prefix="al-bench-ls-") as folder:
        path = Path(folder) / "export.json"
        write_export(path, args.tasks)
        size_mb = path.stat().st_size / 1e6
        reads = [run_read(path, how) for how in ("streamed", "json.load")]
    print(f"Label Studio export: {args.tasks:,} tasks, {size_mb:.0f} MB")
    print(f"{'reader':<10} {'rows':>9} {'seconds':>8} {'tasks/s':>9} {'peak RSS MB':>12}")
    for r in reads:
        print(f"{r['how']:<10} {r['rows']:>9,} {r['seconds']:>8.1f} "
              f"{r['rows'] / r['seconds']:>9,.0f} {r['peak_rss_mb']:>12.0f}")
    latency = predict_latency(args.items, args.labels, args.per_call, args.repeats)
    print(f"\nPOST /predict, {latency['tasks_per_call']} tasks a call, {latency['items']:,} items, "
          f"model from {latency['labels']} labels ({args.repeats} calls each)")
    print(f"{'tasks':<32} {'p50 ms':>8} {'max ms':>8}")
    print(f"{'items (stored probabilities)':<32} {latency['known_p50_ms']:>8.1f} "
          f"{latency['known_max_ms']:>8.1f}")
    print(f"{'not items (the model runs)':<32} {latency['unknown_p50_ms']:>8.1f} "
          f"{latency['unknown_max_ms']:>8.1f}")
    print(f"{'first call (loads the model)':<32} {latency['first_unknown_ms']:>8.1f}"
          "  (and the app's first request)")
    if args.out:
        args.out.write_text(json.dumps({"tasks": args.tasks, "size_mb": size_mb,
                                        "reads": reads, "predict": latency}, indent=2))
    return 0 if all(r["rows"] == args.tasks for r in reads) else 1


if __name__ == "__main__":
    sys.exit(main())
