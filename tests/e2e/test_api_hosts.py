"""Several API hosts: two ``serve --workers 0`` processes on two ports against one PostgreSQL
database and one data folder, a worker of its own apart, annotators split between the two
servers while rounds run: no item handed to two people at once, every acknowledged label
stored once (docs/deployment.md)."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from activelabel.client import Client
from tests.support.processes import (
    ROUND_TIMEOUT,
    ServerProcess,
    child_env,
    import_sms,
    make_token,
    task_external_id,
    task_item_id,
    wait_until,
)

ANNOTATORS = 8
LABELS_EACH = 25


@pytest.fixture
def backend() -> str:
    return "postgresql"  # several hosts share a PostgreSQL server (SQLite is one machine's)


def _annotate(url: str, token: str, project_id: int, oracle: dict[str, str],
              held: dict[int, str], lock: threading.Lock, acked: list[tuple[int, str, int]],
              errors: list[str], name: str) -> None:
    with Client(url, token) as client:
        done = 0
        while done < LABELS_EACH:
            tasks = client.next_tasks(project_id, n=1)
            if not tasks:
                continue
            item_id = task_item_id(tasks[0])
            with lock:
                if item_id in held:
                    errors.append(f"item {item_id} handed to {name} while {held[item_id]} "
                                  "holds it")
                held[item_id] = name
            stored = client.annotate(project_id, item_id, oracle[task_external_id(tasks[0])])
            with lock:
                held.pop(item_id, None)
                acked.append((item_id, name, int(stored["id"])))
            done += 1


def test_two_api_hosts_and_a_worker_apart_share_one_queue(db_url: str, tmp_path: Path,
                                                          shared_data: Path) -> None:
    data = tmp_path / "shared-data"  # on real hosts: the same network folder on each
    data.mkdir()
    hosts = [ServerProcess(data, db_url, workers=0, processes=1) for _ in range(2)]
    hosts[1].log = data / "server-2.log"
    with (data / "worker.log").open("ab") as log:
        worker = subprocess.Popen(
            [sys.executable, "-m", "activelabel", "worker", "--data-dir", str(data),
             "--db", db_url], env=child_env(), stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True)
    try:
        for host in hosts:
            host.start()
        assert hosts[0].port != hosts[1].port
        admin = make_token(data, db_url, "lead", admin=True)
        with Client(hosts[0].url, admin) as lead:
            # (no sentence vectors: what is tested is the queue the hosts share, and
            # embedding 1,500 texts in the worker took most of the test's time)
            project_id, oracle = import_sms(lead, shared_data, tmp_path, 1500, settings={
                "batch_size": 40, "retrain_every_labels": 60,
                "featurizer_params": {"sentence_weight": None}})
            wait_until(lambda: [r for r in lead.rounds(project_id) if r["status"] == "done"],
                       ROUND_TIMEOUT, what="cold-start round by the worker apart")
            names = [f"ann{i}" for i in range(ANNOTATORS)]
            tokens = {name: make_token(data, db_url, name) for name in names}
            for name in names:
                lead.add_member(project_id, name, "annotator")
        held: dict[int, str] = {}
        acked: list[tuple[int, str, int]] = []
        errors: list[str] = []
        lock = threading.Lock()
        threads = [threading.Thread(target=_annotate, args=(
            hosts[i % 2].url, tokens[name], project_id, oracle, held, lock, acked, errors,
            name)) for i, name in enumerate(names)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=300)
        assert not errors, errors[:5]
        assert len(acked) == ANNOTATORS * LABELS_EACH
        # labels went through both hosts; rounds ran in the worker apart meanwhile
        with Client(hosts[1].url, admin) as other:
            def all_done() -> list[dict[str, Any]] | None:
                found: list[dict[str, Any]] = other.rounds(project_id)
                return found if all(r["status"] == "done" for r in found) else None

            rounds = wait_until(all_done, ROUND_TIMEOUT, what="the rounds the labels queued")
            # the cold start, then what the labels queued (one round at a time, every 60 labels)
            assert len(rounds) >= 2, rounds
            export = other.export(project_id, tmp_path / "export.jsonl")
        exported: Counter[tuple[str, str]] = Counter()
        for row in Path(export).read_text().splitlines():
            item: dict[str, Any] = json.loads(row)
            for annotation in item.get("annotations") or []:
                exported[(item["external_id"], str(annotation["annotator"]))] += 1
        ids_seen = Counter(item_id for item_id, _, _ in acked)
        assert max(ids_seen.values()) == 1  # overlap 1: no item labeled twice
        assert sum(exported.values()) == len(acked)
        assert all(count == 1 for count in exported.values())
    finally:
        for host in hosts:
            host.stop()
        worker.terminate()
        worker.wait(timeout=30)
