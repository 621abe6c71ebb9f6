"""Record the REST API's answers over one scripted labeling session, normalised, as JSON.

Used to show that a refactoring leaves the API's answers unchanged: record before, record
after, compare (``--compare before.json``). The session runs on a fresh SQLite file (or the
database of ``--db``) in process: users and a text project from ``shared/data/sms_spam.jsonl``,
items, rounds run by the worker, two annotators with overlap, a review, flags, gold, a snapshot,
a decision, a calibration, a rollback, and every reading endpoint the pages call, plus errors.
Volatile values (times, tokens, durations, file paths) are replaced by placeholders.

    python scripts/record_api.py --out before.json
    python scripts/record_api.py --out after.json --compare before.json

An older commit is recorded with this script copied into a worktree of it (it knows the layout
before the split too): ``git worktree add /tmp/old COMMIT && cp scripts/record_api.py
/tmp/old/scripts/ && cd /tmp/old && ACTIVELABEL_SHARED_DATA=<data folder> PYTHONPATH=src
python scripts/record_api.py --out before.json``.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import re
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("ACTIVELABEL_SHARED_DATA") or REPO.parent / "shared" / "data"
            ) / "sms_spam.jsonl"

_TS = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d")
_TS_ANY = re.compile(r"\d{4}-\d\d-\d\dT[0-9:.+]+")
_VOLATILE_KEYS = {"created_at", "started_at", "finished_at", "last_used_at", "revoked_at",
                  "lease_expires_at", "resolved_at", "purged_at", "heartbeat_at", "seconds",
                  "token", "prefix", "path", "worker_id", "content_hash", "training_set_hash",
                  "labels_per_hour", "median_seconds", "labeling_seconds",
                  "progress", "disk_free_bytes"}  # a job's progress is whatever its last heartbeat wrote


def _open(folder: Path, db: str | None) -> tuple[Any, Callable[..., Any], Callable[..., Any]]:
    """(storage, create_app, run_pending_jobs) from whichever layout this checkout has."""
    try:
        from activelabel.http.app import create_app
        from activelabel.runtime.settings import open_storage
        from activelabel.runtime.worker import Worker

        storage = open_storage(folder, db)
    except ImportError:  # the layout before December 2026: one service package
        service = "activelabel.service"  # spelled apart so that no rename of paths touches it
        create_app = importlib.import_module(f"{service}.app").create_app
        config = importlib.import_module(f"{service}.config")
        Worker = importlib.import_module(f"{service}.worker").Worker
        Settings, Storage = config.Settings, config.Storage

        storage = Storage(Settings.resolve(folder, db))

    def run_jobs() -> None:
        worker = Worker(storage, poll_seconds=0.01)
        while worker.run_once():
            pass

    return storage, create_app, run_jobs


def normalise(value: Any, key: str = "") -> Any:
    if key in _VOLATILE_KEYS and value is not None:
        return f"<{key}>"
    if key.endswith("_s") and isinstance(value, (int, float)):
        return "<seconds>"
    if isinstance(value, dict):
        return {k: normalise(v, k) for k, v in value.items()}
    if isinstance(value, list):
        return [normalise(v) for v in value]
    if isinstance(value, str) and _TS.match(value):
        return "<timestamp>"
    if isinstance(value, float):
        return round(value, 6)
    return value


class Recorder:
    def __init__(self, client: Any) -> None:
        self.client = client
        self.log: list[dict[str, Any]] = []

    def call(self, method: str, path: str, token: str | None = None, **kwargs: Any) -> Any:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        answer = self.client.request(method, "/api/v1" + path, headers=headers, **kwargs)
        kind = answer.headers.get("content-type", "")
        if "json" in kind and "ndjson" not in kind:
            body: Any = answer.json()
        elif "ndjson" in kind or kind.startswith("text/"):
            body = [normalise(json.loads(x)) if x.startswith("{") else _TS_ANY.sub("<ts>", x)
                    for x in answer.text.splitlines()]
        else:
            body = f"<{len(answer.content)} bytes of {kind}>"
        self.log.append({"request": f"{method} {path}", "status": answer.status_code,
                         "body": normalise(body)})
        return answer.json() if "json" in kind and "ndjson" not in kind else None


def session(rec: Recorder, storage: Any, run_jobs: Callable[[], None]) -> None:
    from activelabel.store import create_token, create_user

    with storage.sessions() as s, s.begin():
        tokens = {}
        for name, admin in (("admin", True), ("ann", False), ("bob", False), ("rev", False)):
            user = create_user(s, name, is_admin=admin)
            s.flush()
            tokens[name] = create_token(s, user.id, "record")[1]
    admin, ann, bob, rev = (tokens[n] for n in ("admin", "ann", "bob", "rev"))
    rows = [json.loads(line) for line in DATA.read_text().splitlines()[:260]]
    truth = {f"sms{i}": r["label"] for i, r in enumerate(rows)}
    items = [{"external_id": f"sms{i}", "data": {"text": r["text"], "source": "sms"},
              **({"split": "holdout"} if i >= 200 else {})} for i, r in enumerate(rows)]

    rec.call("GET", "/health")
    rec.call("GET", "/me", admin)
    project = rec.call("POST", "/projects", admin, json={
        "name": "sms", "labels": ["ham", "spam"], "guidelines": "Spam sells.",
        "settings": {"batch_size": 20, "retrain_every_labels": 20, "overlap": 2},
        "private_fields": ["source"]})
    pid = project["id"]
    for who, role in (("ann", "annotator"), ("bob", "annotator"), ("rev", "reviewer")):
        rec.call("POST", f"/projects/{pid}/members", admin, json={"username": who, "role": role})
    rec.call("POST", f"/projects/{pid}/items", admin, json=items)
    rec.call("POST", f"/projects/{pid}/items", admin, json=[{"external_id": "sms0", "data": {}},
                                                            {"data": 3}])
    rec.call("POST", f"/projects/{pid}/rounds", admin)
    run_jobs()
    holdout = rec.call("GET", f"/projects/{pid}/items?split=holdout&limit=100", admin)
    for item in holdout["items"]:
        rec.call("POST", f"/projects/{pid}/annotations", admin, json={
            "item_id": item["id"], "labels": [truth[item["external_id"]]]})
    for turn in range(3):
        for name, token in (("ann", ann), ("bob", bob)):
            tasks = rec.call("GET", f"/projects/{pid}/tasks/next?n=10", token)
            for k, task in enumerate(tasks):
                label = truth[task["item"]["external_id"]]
                if name == "bob" and k % 4 == 0:
                    label = "spam" if label == "ham" else "ham"
                rec.call("POST", f"/projects/{pid}/annotations", token, json={
                    "item_id": task["item"]["id"], "labels": [label], "duration_ms": 1500,
                    "client_key": f"{name}-{turn}-{k}"})
        run_jobs()
    first = rec.call("GET", f"/projects/{pid}/items?limit=5", admin)["items"][0]["id"]
    rec.call("POST", f"/projects/{pid}/flags", ann, json={"item_id": first, "reason": "unclear"})
    rec.call("GET", f"/projects/{pid}/flags", ann)
    queue = rec.call("GET", f"/projects/{pid}/review", rev)
    if queue:
        ann_id = queue[0]["annotations"][0]["annotation_id"]
        rec.call("POST", f"/projects/{pid}/annotations/{ann_id}/review", rev,
                 json={"accept": False, "labels": ["spam"], "reason": "looks like spam"})
    flags = rec.call("GET", f"/projects/{pid}/flags", rev)
    rec.call("POST", f"/projects/{pid}/flags/{flags[0]['id']}/resolve", rev, json={"note": "ok"})
    rec.call("POST", f"/projects/{pid}/gold", admin, json=[{"item_id": first + 1,
                                                            "labels": ["ham"]}])
    for path in ("", "/stats", "/progress", "/confidence", "/dashboard", "/members",
                 "/rounds", "/models", "/agreement", "/annotators", "/relabel", "/versions",
                 "/jobs", "/audit", "/review", "/review?reason=disagreement",
                 f"/items/{first}", f"/items/{first}/related", "/export?format=jsonl",
                 "/export?format=csv"):
        rec.call("GET", f"/projects/{pid}{path}", admin)
    rec.call("GET", f"/projects/{pid}/progress", ann)
    rec.call("GET", f"/projects/{pid}/rounds/1", admin)
    rec.call("GET", f"/projects/{pid}/rounds/2?limit=5", admin)
    rec.call("POST", f"/projects/{pid}/decisions", admin, json={"topic": "strategy",
                                                                "text": "margin", "from_round": 2})
    rec.call("GET", f"/projects/{pid}/decisions", admin)
    snap = rec.call("POST", f"/projects/{pid}/snapshots", admin, json={"note": "first"})
    rec.call("GET", f"/projects/{pid}/snapshots", admin)
    rec.call("GET", f"/projects/{pid}/snapshots/{snap['id']}/export", admin)
    rec.call("POST", f"/projects/{pid}/snapshots/{snap['id']}/restore", admin)
    cal = rec.call("POST", f"/projects/{pid}/calibrations", admin,
                   json={"name": "c1", "item_ids": [first, first + 2]})
    rec.call("GET", f"/projects/{pid}/calibrations", admin)
    rec.call("GET", f"/projects/{pid}/calibrations/{cal['id']}", admin)
    rec.call("PATCH", f"/projects/{pid}", admin, json={"labels": ["ham", "spam", "other"],
                                                        "settings": {"batch_size": 25}})
    rec.call("POST", f"/projects/{pid}/models/1/activate", admin)
    run_jobs()
    rec.call("GET", f"/projects/{pid}/rounds", admin)
    rec.call("POST", f"/projects/{pid}/items/purge", admin, json={"external_ids": ["sms199"]})
    rec.call("GET", f"/projects/{pid}/audit/export", admin)
    rec.call("GET", "/projects", ann)
    rec.call("GET", "/users", admin)
    rec.call("GET", "/tokens", ann)
    # Errors.
    rec.call("GET", f"/projects/{pid}/stats", ann)
    rec.call("GET", "/projects/9999", admin)
    rec.call("GET", f"/projects/{pid}", None)
    rec.call("POST", "/projects", admin, json={"name": "x", "labels": "nope"})
    rec.call("PATCH", f"/projects/{pid}", admin, json={"labels": ["ham"]})
    rec.call("DELETE", f"/projects/{pid}/members/admin", admin)
    rec.call("GET", f"/projects/{pid}/review?reason=nope", admin)
    rec.call("GET", "/nope", admin)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--db", default=None, help="Database URL (default: a new SQLite file)")
    parser.add_argument("--compare", type=Path, default=None,
                        help="An earlier recording: print the answers that differ")
    args = parser.parse_args()
    from fastapi.testclient import TestClient

    with tempfile.TemporaryDirectory() as folder:
        storage, create_app, run_jobs = _open(Path(folder), args.db)
        with TestClient(create_app(storage=storage), raise_server_exceptions=False) as client:
            rec = Recorder(client)
            session(rec, storage, run_jobs)
        storage.close()
    args.out.write_text(json.dumps(rec.log, indent=1, sort_keys=True) + "\n")
    print(f"{len(rec.log)} answers written to {args.out}")
    if args.compare is None:
        return 0
    before = json.loads(args.compare.read_text())
    differ = 0
    for old, new in zip(before, rec.log, strict=False):
        if old != new:
            differ += 1
            print(f"differs: {new['request']} (was {old['request']}, {old['status']} -> "
                  f"{new['status']})")
    if len(before) != len(rec.log):
        print(f"{len(before)} answers before, {len(rec.log)} now")
        differ += 1
    print("no differences" if not differ else f"{differ} answers differ")
    return 1 if differ else 0


if __name__ == "__main__":
    sys.exit(main())
