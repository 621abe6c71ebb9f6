"""The whole loop over HTTP against ``activelabel serve`` run as a real process with its worker.

Import a file, label the cold-start seed batch, run a round, get tasks from the new ranking,
export. Both on SQLite and on PostgreSQL (a fresh schema each; fixtures in conftest.py).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from activelabel.client import Client
from tests.support.processes import (
    ROUND_TIMEOUT,
    SEED,
    ServerProcess,
    done_rounds,
    import_sms,
    make_token,
    task_external_id,
    task_item_id,
    wait_until,
)


@pytest.mark.parametrize("featurizer_params", [{}, {"char_ngrams": None}],
                         ids=["default-features", "words-only"])
def test_whole_loop_over_http(server: ServerProcess, shared_data: Path, tmp_path: Path,
                              connect: Callable[..., Client],
                              featurizer_params: dict[str, Any]) -> None:
    token = make_token(server.data_dir, server.db, "lead", admin=True)
    client = connect(server.url, token)
    assert client.health()
    project_id, oracle = import_sms(client, shared_data, tmp_path, 300,
                                    {"featurizer_params": featurizer_params})

    # Cold start: the import queued a round that picks a diverse seed batch.
    seed_round = wait_until(lambda: done_rounds(client, project_id), ROUND_TIMEOUT,
                            what="cold-start round")[-1]
    seed = client.next_tasks(project_id, n=SEED)
    assert len(seed) == SEED
    assert {t["why"]["round"] for t in seed} == {seed_round["number"]}
    for task in seed:
        client.annotate(project_id, task_item_id(task), [oracle[task_external_id(task)]],
                        duration_ms=1200)

    # A round on the seed labels ranks the pool; the next tasks come from it.
    requested = client.start_round(project_id)
    finished = client.wait_for_round(project_id, requested, timeout=ROUND_TIMEOUT)
    assert finished["number"] > seed_round["number"]
    assert finished["n_labels_used"] == SEED
    assert set(finished["timings"]) >= {"train_s", "score_s", "select_s"}
    following = client.next_tasks(project_id, n=10)
    assert len(following) == 10
    assert {t["why"]["round"] for t in following} == {finished["number"]}
    assert all(t["why"]["score"] is not None for t in following)
    assert not {task_item_id(t) for t in following} & {task_item_id(t) for t in seed}

    # The export holds exactly the labels given, with where each item came from.
    path = client.export(project_id, tmp_path / "labels.jsonl")
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    assert {r["external_id"] for r in rows} == {task_external_id(t) for t in seed}
    for row in rows:
        assert row["labels"] == oracle[row["external_id"]]
        assert row["round"] == seed_round["number"]
        assert row["strategy"]
        assert row["annotations"][0]["annotator"] == "lead"
        assert row["annotations"][0]["duration_ms"] == 1200


def test_labels_of_one_class_first_do_not_hand_out_the_file_in_order(
        server: ServerProcess, shared_data: Path, tmp_path: Path,
        connect: Callable[..., Client]) -> None:
    """A project's first labels are all one class (an import that carries 20 ham labels) and
    its pool is sorted ham first, as an upload sorted by label is. The model knows one class
    and scores every item alike; the tasks after its round are drawn over the pool, not its
    first rows (before, ties went to the lower row: 50 hand-outs of 50 ham)."""
    import httpx

    token = make_token(server.data_dir, server.db, "lead", admin=True)
    client = connect(server.url, token)
    rows = [json.loads(line) for line in
            (shared_data / "sms_spam.jsonl").read_text().splitlines()[:1500]]
    ham = [r for r in rows if r["label"] == "ham"]
    spam = [r for r in rows if r["label"] == "spam"]
    oracle = {f"m{i}": r["label"] for i, r in enumerate(ham[20:] + spam)}
    pool = tmp_path / "sorted.jsonl"
    pool.write_text("".join(json.dumps({"id": f"m{i}", "text": r["text"]}) + "\n"
                            for i, r in enumerate(ham[20:] + spam)))
    labeled = tmp_path / "labeled.jsonl"
    labeled.write_text("".join(json.dumps({"id": f"l{i}", "text": r["text"], "label": "ham"})
                               + "\n" for i, r in enumerate(ham[:20])))
    pid = int(client.create_project("sorted sms", ["ham", "spam"], settings={
        "featurizer": "text", "batch_size": 20, "retrain_every_labels": 10_000,
        "audit_share": 0.0})["id"])
    client.wait_for_job(pid, client.upload(pid, pool), timeout=60)
    with labeled.open("rb") as stream:
        asked = httpx.post(f"{server.url}/api/v1/projects/{pid}/imports",
                           headers={"Authorization": f"Bearer {token}"},
                           files={"file": ("labeled.jsonl", stream)},
                           data={"mapping": json.dumps({"columns": {"label": "label"}})})
    assert asked.status_code == 202, asked.text
    done = client.wait_for_job(pid, asked.json()["job_id"], timeout=60)
    assert done["result"]["labels"] == 20
    wait_until(lambda: any(r["n_labels_used"] == 20 for r in done_rounds(client, pid)),
               ROUND_TIMEOUT, what="the round on the imported labels")
    tasks = client.next_tasks(pid, n=50)
    assert len(tasks) == 50
    got = [oracle[task_external_id(t)] for t in tasks]
    assert got.count("spam") >= 3, got  # the pool holds 13% spam, all of it at the end
