"""Three annotators label through a real server, one of them carelessly (random labels).

Agreement, gold accuracy and Dawid-Skene must all single the careless one out, and the careless
labels must reach the review queue; a reviewer's correction then records its reason.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from pathlib import Path
from typing import Any

from activelabel.client import Client
from activelabel.runtime.settings import resolve_location
from activelabel.store import Storage, create_token, create_user
from tests.support.processes import ServerProcess, run_cli

N_POOL, N_GOLD = 30, 6


def _people(server: ServerProcess, names: list[str]) -> dict[str, str]:
    storage = Storage(resolve_location(server.data_dir, server.db))
    try:
        with storage.sessions() as session, session.begin():
            out = {}
            for name in names:
                user = create_user(session, name, is_admin=name == "lead")
                out[name] = create_token(session, user.id, "test")[1]
            return out
    finally:
        storage.close()


def _sms(shared_data: Path, n: int) -> list[dict[str, Any]]:
    rows = []
    with (shared_data / "sms_spam.jsonl").open(encoding="utf-8") as handle:
        for line in handle:
            rows.append(json.loads(line))
            if len(rows) == n:
                break
    return rows


def _label_everything(client: Client, project_id: int, answer: Any) -> int:
    done = 0
    while tasks := client.next_tasks(project_id, 5):
        for task in tasks:
            client.annotate(project_id, task["item"]["id"], answer(task))
            done += 1
    return done


def test_a_careless_annotator_is_singled_out(server: ServerProcess, shared_data: Path,
                                            connect: Callable[..., Client]) -> None:
    tokens = _people(server, ["lead", "ann_a", "ann_b", "careless", "rev"])
    lead = connect(server.url, tokens["lead"])
    project = lead.create_project("quality", ["ham", "spam"], settings={
        "overlap": 3, "gold_rate": 0.2, "gold_alert_below": 0.8, "agreement_target": 0.7,
        "retrain_every_labels": 10_000})
    pid = int(project["id"])
    rows = _sms(shared_data, N_POOL + N_GOLD)
    truth = {r["id"]: r["label"] for r in rows}
    items = [{"external_id": r["id"], "data": {"text": r["text"]}} for r in rows[:N_POOL]]
    items += [{"external_id": r["id"], "data": {"text": r["text"]}, "gold_labels": [r["label"]]}
              for r in rows[N_POOL:]]
    assert lead.add_items(pid, items)["inserted"] == N_POOL + N_GOLD
    for name in ("ann_a", "ann_b", "careless"):
        lead.add_member(pid, name, "annotator")
    lead.add_member(pid, "rev", "reviewer")

    careful = {n: connect(server.url, tokens[n]) for n in ("ann_a", "ann_b")}
    for client in careful.values():
        done = _label_everything(client, pid, lambda t: truth[t["item"]["external_id"]])
        assert done == N_POOL + N_GOLD
    sloppy = connect(server.url, tokens["careless"])
    seen_splits: set[str] = set()
    given: dict[str, str] = {}

    def random_label(task: dict[str, Any]) -> str:
        """A coin flip per item, seeded by the item (gold comes at random places in the
        queue, so a shared random stream would give different labels from run to run)."""
        ext = task["item"]["external_id"]
        seen_splits.add(task["item"]["split"])
        given[ext] = random.Random(f"careless-{ext}").choice(["ham", "spam"])
        return given[ext]

    assert _label_everything(sloppy, pid, random_label) == N_POOL + N_GOLD
    assert seen_splits == {"pool"}  # gold items never show as gold

    agreement = lead.agreement(pid)
    assert agreement["n_items"] == N_POOL + N_GOLD
    pairs = {frozenset((p["a"], p["b"])): p["kappa"] for p in agreement["cohen_kappa_pairs"]}
    good_pair = pairs[frozenset(("ann_a", "ann_b"))]
    assert good_pair == 1.0
    assert max(pairs[frozenset(("ann_a", "careless"))],
               pairs[frozenset(("ann_b", "careless"))]) < good_pair - 0.3
    assert agreement["below_target"] is True

    people = {r["username"]: r for r in lead.annotators(pid)}
    for measure in ("gold_accuracy", "agreement_with_consensus", "estimated_accuracy"):
        scores = {name: people[name][measure] for name in ("ann_a", "ann_b", "careless")}
        assert min(scores, key=scores.__getitem__) == "careless", (measure, scores)
        assert scores["careless"] < min(scores["ann_a"], scores["ann_b"]) - 0.2, measure
    assert people["careless"]["gold_alert"] is True
    assert people["ann_a"]["gold_alert"] is False

    status = run_cli("status", str(pid), data_dir=server.data_dir, db=server.db)
    assert status.returncode == 0, status.stderr
    assert "BELOW the target 0.70" in status.stdout
    assert "gold alert: careless" in status.stdout
    assert "gold alert: ann_a" not in status.stdout

    reviewer = connect(server.url, tokens["rev"])
    queue = reviewer.review_queue(pid, reason="disagreement", limit=500)
    flagged_careless = [a for e in queue for a in e["annotations"]
                        if a["annotator"] == "careless"
                        and a["labels"] != [truth[e["external_id"]]]]
    assert flagged_careless, "the careless labels reach the review queue"
    # Every item the careless annotator got wrong is in the queue, and only those.
    wrong = {ext for ext, label in given.items() if label != truth[ext]}
    assert {e["external_id"] for e in queue} == wrong
    assert len(flagged_careless) == len(wrong)
    assert all(e["consensus"] == truth[e["external_id"]] for e in queue)
    only_careless = reviewer.review_queue(pid, reason="disagreement", annotator="careless")
    assert len(only_careless) == min(len(queue), 100)
    gold_misses = reviewer.review_queue(pid, reason="gold_miss")
    assert {e["reason"] for e in gold_misses} <= {"gold_miss"}

    entry = queue[0]
    bad = next(a for a in entry["annotations"] if a["annotator"] == "careless")
    fixed = reviewer.review(pid, bad["annotation_id"], accept=False,
                            labels=[truth[entry["external_id"]]], reason="random label")
    assert fixed["reason"] == "random label"
    after = reviewer.review_queue(pid, reason="disagreement", limit=500)
    assert entry["item_id"] not in {e["item_id"] for e in after}
