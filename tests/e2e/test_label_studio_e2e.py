"""Label Studio against ``activelabel serve``: a Label Studio export uploaded as a project,
then the ML backend protocol driven with the requests Label Studio sends (health, setup,
predict, webhook; shapes recorded from Label Studio's ML API connector and the
``label-studio-ml`` server), and the project exported back in Label Studio's format."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from activelabel.client import Client
from tests.support.processes import (
    ROUND_TIMEOUT,
    SEED,
    ServerProcess,
    done_rounds,
    make_token,
    task_external_id,
    task_item_id,
    wait_until,
)

N_TASKS = 200
LABEL_CONFIG = ('<View><Text name="text" value="$text"/><Choices name="label" toName="text" '
                'choice="single"><Choice value="ham"/><Choice value="spam"/></Choices></View>')


def _label_studio_export(shared_data: Path, path: Path) -> dict[str, str]:
    """The first SMS rows as a Label Studio export (task ids 1001...); task id -> label."""
    tasks, oracle = [], {}
    with (shared_data / "sms_spam.jsonl").open() as src:
        for n, line in enumerate(src):
            if n == N_TASKS:
                break
            row = json.loads(line)
            task_id = 1001 + n
            oracle[str(task_id)] = row["label"]
            tasks.append({"id": task_id, "data": {"text": row["text"]}, "annotations": [],
                          "predictions": [], "meta": {}, "inner_id": n + 1, "project": 12,
                          "created_at": "2026-01-01T00:00:00.000000Z"})
    path.write_text(json.dumps(tasks))
    return oracle


def _ls_task(task_id: int, text: str) -> dict[str, Any]:
    """A task as Label Studio serializes it for /predict and webhooks."""
    return {"id": task_id, "data": {"text": text}, "meta": {}, "annotations": [],
            "predictions": [], "drafts": [], "is_labeled": False, "overlap": 1,
            "inner_id": task_id - 1000, "total_annotations": 0, "cancelled_annotations": 0,
            "total_predictions": 0, "comment_count": 0, "unresolved_comment_count": 0,
            "last_comment_updated_at": None, "project": 12, "updated_by": None,
            "file_upload": 3, "comment_authors": [],
            "created_at": "2026-01-01T00:00:00.000000Z",
            "updated_at": "2026-01-01T00:00:00.000000Z"}


def test_label_studio_project_uses_activelabel_as_its_backend(
        server: ServerProcess, shared_data: Path, tmp_path: Path,
        connect: Callable[..., Client]) -> None:
    token = make_token(server.data_dir, server.db, "lead", admin=True)
    client = connect(server.url, token)
    export = tmp_path / "project-12-at-2026-01-01.json"
    oracle = _label_studio_export(shared_data, export)
    project = client.create_project("sms from label studio", ["ham", "spam"], settings={
        "featurizer": "text", "batch_size": SEED, "retrain_every_labels": 10_000,
        "audit_share": 0.0})
    pid = int(project["id"])
    job = client.upload(pid, export)
    assert client.wait_for_job(pid, job, timeout=60)["result"]["inserted"] == N_TASKS

    wait_until(lambda: done_rounds(client, pid), ROUND_TIMEOUT, what="cold-start round")
    for task in client.next_tasks(pid, n=SEED):
        client.annotate(pid, task_item_id(task), [oracle[task_external_id(task)]])
    client.wait_for_round(pid, client.start_round(pid), timeout=ROUND_TIMEOUT)
    version = client.models(pid)[0]["version"]

    basic = base64.b64encode(f"lead:{token}".encode()).decode()
    backend = httpx.Client(base_url=f"{server.url}/api/v1/projects/{pid}/ls-ml/",
                           headers={"Authorization": f"Basic {basic}"}, timeout=30)
    with backend:
        assert backend.get("health").json()["status"] == "UP"
        assert backend.post("setup", json={
            "project": "12.1767225600", "schema": LABEL_CONFIG,
            "hostname": "http://localhost:8080", "access_token": "ls-access-token",
            "model_version": None, "extra_params": None}).json() == {
            "model_version": f"activelabel-v{version}"}

        texts = {}
        with (shared_data / "sms_spam.jsonl").open() as src:
            for n, line in enumerate(src):
                if n == N_TASKS:
                    break
                texts[1001 + n] = json.loads(line)["text"]
        ids = list(texts)[:50]
        tasks = [_ls_task(i, texts[i]) for i in ids]
        tasks.append(_ls_task(5000, "WINNER!! Claim your free prize now, call 09061701461"))
        answer = backend.post("predict", json={
            "tasks": tasks, "model_version": f"activelabel-v{version}",
            "project": "12.1767225600", "label_config": LABEL_CONFIG,
            "params": {"login": None, "password": None, "context": None}})
        assert answer.status_code == 200, answer.text
        results = answer.json()["results"]
        assert len(results) == len(tasks)
        right = sum(r["result"][0]["value"]["choices"] == [oracle[str(i)]]
                    for r, i in zip(results, ids, strict=False))
        assert right >= 40, right  # the model trained on the seed batch
        assert all(0.5 <= r["score"] <= 1.0 for r in results)
        assert results[-1]["result"][0]["value"]["choices"] == ["spam"]

        labeled = ids[-1]
        hook = backend.post("webhook", json={
            "action": "ANNOTATION_CREATED",
            "project": {"id": 12, "title": "sms", "label_config": LABEL_CONFIG},
            "task": _ls_task(labeled, texts[labeled]),
            "annotation": {"id": 901, "completed_by": {"id": 3, "email": "rita@example.org",
                                                       "first_name": "", "last_name": ""},
                           "result": [{"id": "r1", "from_name": "label", "to_name": "text",
                                       "type": "choices", "origin": "manual",
                                       "value": {"choices": [oracle[str(labeled)]]}}],
                           "was_cancelled": False, "ground_truth": False,
                           "created_at": "2026-01-05T10:00:00.000000Z",
                           "updated_at": "2026-01-05T10:00:00.000000Z",
                           "lead_time": 3.1, "task": labeled, "project": 12}})
        assert hook.status_code == 201, hook.text
        item_id = hook.json()["result"]["item_id"]

    item = client.item(pid, item_id)
    assert item["external_id"] == str(labeled)
    assert [(r["labels"], r["duration_ms"]) for r in item["current"]] == [
        ([oracle[str(labeled)]], 3100)]
    path = client.export(pid, tmp_path / "back.json", format="labelstudio")
    tasks_back = json.loads(path.read_text())
    assert len(tasks_back) == SEED + 1
    by_id = {t["meta"]["external_id"]: t for t in tasks_back}
    assert by_id[str(labeled)]["annotations"][0]["created_username"] == "ls.rita@example.org"
    assert all(t["predictions"][0]["model_version"] == f"activelabel-v{version}"
               for t in tasks_back)
