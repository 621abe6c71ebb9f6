"""A database made by a release, for the test that later versions migrate it forward intact.

Run with that release's source on the path, in a worktree of it (this script uses the layout of
0.1.0, commit 389168e: one ``activelabel.service`` package)::

    git worktree add /tmp/rel 389168e && cd /tmp/rel
    PYTHONPATH=src python /path/to/scripts/make_release_fixture.py /path/to/tests/data \
        /path/to/shared/data/sms_spam.jsonl

It writes ``release-0.1.0.db`` (a project of 80 SMS messages, a cold-start round, 20 labels from
the queue, a labeled holdout, a trained round, and settings that release accepted and later ones
refuse: a lease of 10^9 s) and ``release-0.1.0.json`` (the project's export as that release
wrote it). Its old layout is imported by name on purpose.
"""
import json
import shutil
import sys
import tempfile
from pathlib import Path

from activelabel.service.app import create_app  # type: ignore[import-not-found]
from activelabel.service.config import Settings, Storage  # type: ignore[import-not-found]
from activelabel.service.worker import Worker  # type: ignore[import-not-found]
from fastapi.testclient import TestClient

from activelabel.store import create_token, create_user

out = Path(sys.argv[1])
folder = Path(tempfile.mkdtemp())
storage = Storage(Settings.resolve(folder))
with storage.sessions() as s, s.begin():
    admin = create_user(s, "admin", "admin-password", is_admin=True)
    ann = create_user(s, "ann", "ann-password-1")
    s.flush()
    ta = create_token(s, admin.id, "t")[1]
    tn = create_token(s, ann.id, "t")[1]
rows = [json.loads(line) for line in Path(sys.argv[2] if len(sys.argv) > 2 else "../shared/data/sms_spam.jsonl").read_text().splitlines()[:80]]


def H(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}



with TestClient(create_app(storage=storage)) as c:
    pid = c.post("/api/v1/projects", headers=H(ta), json={"name": "sms", "labels": ["ham", "spam"],
        "settings": {"batch_size": 10, "retrain_every_labels": 1000, "lease_seconds": 10**9}}).json()["id"]
    c.post(f"/api/v1/projects/{pid}/members", headers=H(ta), json={"username": "ann", "role": "annotator"})
    c.post(f"/api/v1/projects/{pid}/items", headers=H(ta), json=[
        {"external_id": f"s{i}", "data": {"text": r["text"]}, **({"split": "holdout"} if i >= 60 else {})} for i, r in enumerate(rows)])
    c.post(f"/api/v1/projects/{pid}/rounds", headers=H(ta))
    w = Worker(storage, poll_seconds=0.01)
    while w.run_once():
        pass
    for t in c.get(f"/api/v1/projects/{pid}/tasks/next?n=20", headers=H(tn)).json():
        i = int(t["item"]["external_id"][1:])
        c.post(f"/api/v1/projects/{pid}/annotations", headers=H(tn), json={"item_id": t["item"]["id"], "labels": [rows[i]["label"]], "duration_ms": 900})
    for i in range(60, 80):
        item = c.get(f"/api/v1/projects/{pid}/items?split=holdout&limit=100", headers=H(ta)).json()["items"][i - 60]
        c.post(f"/api/v1/projects/{pid}/annotations", headers=H(ta), json={"item_id": item["id"], "labels": [rows[int(item["external_id"][1:])]["label"]]})
    c.post(f"/api/v1/projects/{pid}/rounds", headers=H(ta))
    while w.run_once():
        pass
    export = c.get(f"/api/v1/projects/{pid}/export?format=jsonl", headers=H(ta)).text
storage.close()
shutil.copy(folder / "activelabel.db", out / "release-0.1.0.db")
facts = {"source": "389168e", "project_id": pid, "export": [json.loads(line) for line in export.splitlines()]}
(out / "release-0.1.0.json").write_text(json.dumps(facts, indent=1, sort_keys=True) + "\n")
print("ok", len(facts["export"]))
