"""An upload sorted by label, ten annotators labeling faster than rounds finish: the first 200
hand-outs cover every class about as the pool does, and every task says what ranked it."""

from __future__ import annotations

import io
import json
from collections import Counter
from pathlib import Path

import pytest
from scipy.stats import chisquare

from activelabel.labeling.imports import enqueue_import, save_upload
from activelabel.labeling.rounds import after_annotation
from activelabel.labeling.tasks import lease_tasks
from activelabel.runtime.settings import Storage
from activelabel.store import add_member, annotate, create_user, get_project, list_rounds
from tests.support.projects import new_project, run_job

N_PER_CLASS, ANNOTATORS, FIRST = 300, 10, 200


def _sorted_upload(shared_data: Path) -> tuple[bytes, dict[str, str]]:
    """ag_news rows, N_PER_CLASS a class, sorted by label; the truth by external id."""
    per_class: dict[str, list[dict[str, str]]] = {}
    with (shared_data / "ag_news_test.jsonl").open() as handle:
        for line in handle:
            row = json.loads(line)
            kept = per_class.setdefault(row["label"], [])
            if len(kept) < N_PER_CLASS:
                kept.append(row)
    rows = [r for label in sorted(per_class) for r in per_class[label]]
    lines = [json.dumps({"external_id": r["id"], "text": r["text"]}) for r in rows]
    return "\n".join(lines).encode(), {r["id"]: r["label"] for r in rows}


@pytest.mark.slow  # rounds on TF-IDF features while 200 tasks go out: about 30 s of CPU
def test_a_sorted_upload_is_never_handed_out_in_file_order(engine_storage: Storage,
                                                           shared_data: Path) -> None:
    content, truth = _sorted_upload(shared_data)
    classes = sorted(set(truth.values()))
    seeded = new_project(engine_storage, labels=classes, settings={
        "batch_size": 20, "retrain_every_labels": 30, "audit_share": 0.05})
    pid = seeded.project_id
    path = save_upload(engine_storage, pid, "sorted.jsonl", io.BytesIO(content))
    with engine_storage.sessions() as session, session.begin():
        job_id = enqueue_import(session, pid, path, requested_by=None).id
        people = [create_user(session, f"ann{i}_{pid}").id for i in range(ANNOTATORS)]
        for uid in people:
            add_member(session, pid, uid, "annotator")
    run_job(engine_storage, job_id)  # the cold-start round stays queued: tasks go out first
    handed: list[tuple[str, str]] = []  # (external id, ranked_by) of each first hand-out
    seen: set[str] = set()
    rounds_run = 0
    step = 0
    while len(handed) < FIRST:
        uid = people[step % ANNOTATORS]
        step += 1
        with engine_storage.sessions() as session, session.begin():
            project = get_project(session, pid)
            views = lease_tasks(session, engine_storage.arrays, project, "owner", uid, 3)
            for view in views:
                assert view.why is not None
                assert view.why.ranked_by in ("strategy", "model_score", "random", "audit")
                assert "queue order" not in view.why.detail
                if view.external_id not in seen:
                    seen.add(view.external_id)
                    handed.append((view.external_id, view.why.ranked_by))
            view = views[0]
            annotate(session, pid, uid, view.item_id, [truth[view.external_id]],
                     require_lease=True)
            after_annotation(session, pid)
        # Rounds finish slower than labels come: one pending round every 40 hand-outs.
        if step % 40 == 0:
            with engine_storage.read_sessions() as session:
                jobs = [r.job_id for r in list_rounds(session, pid)
                        if r.status == "queued" and r.job_id is not None]
            if jobs:
                run_job(engine_storage, jobs[0])
                rounds_run += 1
    first = Counter(truth[e] for e, _ in handed[:FIRST])
    assert set(first) == set(classes)  # every class, not the first class's rows
    expected = [FIRST / len(classes)] * len(classes)
    assert chisquare([first[c] for c in classes], expected).pvalue > 0.001, first
    assert all(0.1 <= first[c] / FIRST <= 0.4 for c in classes), first
    assert rounds_run >= 2
    kinds = Counter(kind for _, kind in handed)
    assert min(kinds["random"], kinds["strategy"], kinds["model_score"]) > 0, kinds
