"""One consensus everywhere: a project's export, snapshot, training set, related examples,
label counts, review queue and the payoff's audit answers all follow its ``consensus`` setting (SQLite and PostgreSQL)."""

from __future__ import annotations

import hashlib
import uuid
from typing import Any

import pytest
from sqlalchemy import select, update

from activelabel.labeling.consensus import (
    DAWID_SKENE,
    MAJORITY,
    SPAN_VOTE,
    consensus_method,
    item_majority,
)
from activelabel.labeling.export import export_rows
from activelabel.labeling.insights import label_counts, labeled_rows
from activelabel.labeling.payoff import _audit_answers
from activelabel.labeling.review import entry_consensus, review_queue
from activelabel.labeling.rounds import request_round
from activelabel.labeling.snapshots import read_snapshot, take_snapshot
from activelabel.runtime.settings import Storage
from activelabel.store import annotate, create_user, get_project, item_ids_for_rows
from activelabel.store.models import Item, ModelVersion, utcnow
from tests.support.projects import new_project, run_job, text_rows

N = 40
#: Items 0-7: two careless annotators agree on the wrong label and outvote the reliable one.
OUTVOTED = range(8)
TRUTH = ["a" if i % 2 == 0 else "b" for i in range(N)]
FLIP = {"a": "b", "b": "a"}


def _crowd() -> dict[int, list[str]]:
    """Row -> the labels of (reliable, careless, careless). Outside OUTVOTED each careless
    annotator is wrong on every third item (not the same ones), so the two look unreliable."""
    out = {}
    for i, truth in enumerate(TRUTH):
        if i in OUTVOTED:
            out[i] = [truth, FLIP[truth], FLIP[truth]]
        else:
            out[i] = [truth, FLIP[truth] if i % 3 == 0 else truth,
                      FLIP[truth] if i % 3 == 1 else truth]
    return out


def _labeled_project(storage: Storage, method: str) -> tuple[int, dict[int, int]]:
    """A text project with the crowd's labels; (project id, row -> item id)."""
    seeded = new_project(storage, labels=["a", "b"], rows=text_rows(N),
                         settings={"consensus": method, "batch_size": 5})
    crowd = _crowd()
    with storage.sessions() as session, session.begin():
        people = [create_user(session, f"crowd_{uuid.uuid4().hex[:8]}").id for _ in range(3)]
        ids = item_ids_for_rows(session, seeded.project_id, list(range(N)))
        for row, item_id in enumerate(ids):
            for person, label in zip(people, crowd[row], strict=True):
                annotate(session, seeded.project_id, person, item_id, [label])
    return seeded.project_id, dict(enumerate(ids))


def _training_hash(labels: dict[int, Any]) -> str:
    """What a round records as ``training_set_hash``: item id and label, in row order."""
    digest = hashlib.sha256()
    for item_id in sorted(labels):  # item ids follow rows here (one import)
        digest.update(f"{item_id}:{labels[item_id]!r};".encode())
    return digest.hexdigest()


@pytest.mark.parametrize("method", ["majority", "dawid_skene"])
def test_every_reader_of_the_labels_follows_the_consensus_setting(
        engine_storage: Storage, method: str) -> None:
    pid, item_of = _labeled_project(engine_storage, method)
    majority = {item_of[r]: item_majority([[x] for x in given], False)
                for r, given in _crowd().items()}
    truth = {item_of[r]: TRUTH[r] for r in range(N)}
    expected = truth if method == "dawid_skene" else majority
    assert all(majority[item_of[r]] != TRUTH[r] for r in OUTVOTED)  # the two methods differ

    external = {f"t{r}": item_of[r] for r in range(N)}
    exported = {external[row["external_id"]]: row["labels"]
                for row in export_rows(engine_storage, pid)}
    assert exported == expected

    with engine_storage.sessions() as session, session.begin():
        project = get_project(session, pid)
        snapshot = take_snapshot(session, engine_storage, project, created_by=None)
        header, lines = read_snapshot(snapshot)
        related = {info["item_id"]: info["label"]
                   for info in labeled_rows(session, project).values()}
        counts = label_counts(session, project)
        queue, ctx = review_queue(session, engine_storage, project, reason="disagreement",
                                  limit=500)
        in_review = {e.item_id: entry_consensus(ctx, e.item_id) for e in queue}
    assert header["consensus_method"] == method
    assert {line["item_id"]: line["consensus"] for line in lines} == expected
    assert related == expected
    assert counts == {"a": list(expected.values()).count("a"),
                      "b": list(expected.values()).count("b")}
    assert set(in_review) >= {item_of[r] for r in OUTVOTED}
    assert in_review == {i: expected[i] for i in in_review}

    with engine_storage.sessions() as session, session.begin():
        rnd, _ = request_round(session, pid, requested_by=None, reason="manual")
        job_id = rnd.job_id
    assert job_id is not None
    result = run_job(engine_storage, job_id)
    assert result["metrics"]["n_train"] == N
    with engine_storage.read_sessions() as session:
        trained = session.execute(select(ModelVersion.training_set_hash).where(
            ModelVersion.project_id == pid)).scalar_one()
    assert trained == _training_hash(expected)

    # The payoff scores the model on audit draws against the same consensus.
    with engine_storage.sessions() as session, session.begin():
        session.execute(update(Item).where(Item.project_id == pid).values(
            audit_drawn_at=utcnow()))
    with engine_storage.read_sessions() as session:
        audited = _audit_answers(session, get_project(session, pid))
    row_of = {item_id: row for row, item_id in item_of.items()}
    assert audited == {row_of[i]: v for i, v in expected.items()}


def test_a_multilabel_project_takes_the_per_label_majority_everywhere(
        engine_storage: Storage) -> None:
    seeded = new_project(engine_storage, task="multilabel", labels=["x", "y", "z"],
                         rows=text_rows(3), settings={"consensus": "dawid_skene"})
    given = {0: [["x", "y"], ["x"], ["x", "z"]],  # x by all three; y and z by one
             1: [["x", "y"], ["y", "z"], ["x", "z"]],  # each label by two of three
             2: [["y"], []]}  # y by one of two: not more than half
    expected = {0: ["x"], 1: ["x", "y", "z"], 2: []}
    with engine_storage.sessions() as session, session.begin():
        people = [create_user(session, f"ml_{uuid.uuid4().hex[:8]}").id for _ in range(3)]
        ids = item_ids_for_rows(session, seeded.project_id, [0, 1, 2])
        for row, item_id in enumerate(ids):
            for person, labels in zip(people, given[row], strict=False):
                annotate(session, seeded.project_id, person, item_id, labels)
    rows = {int(row["external_id"][1:]): row["labels"]
            for row in export_rows(engine_storage, seeded.project_id)}
    assert rows == expected
    with engine_storage.sessions() as session, session.begin():
        project = get_project(session, seeded.project_id)
        header, lines = read_snapshot(take_snapshot(session, engine_storage, project,
                                                    created_by=None))
        row_of = dict(session.execute(select(Item.id, Item.row).where(
            Item.project_id == seeded.project_id)).all())
        queue, ctx = review_queue(session, engine_storage, project, limit=500)
        in_review = {row_of[e.item_id]: entry_consensus(ctx, e.item_id) for e in queue}
    assert header["consensus_method"] == "majority"  # Dawid-Skene is for single labels
    assert {row_of[line["item_id"]]: line["consensus"] for line in lines} == expected
    assert in_review == expected  # every item is disputed; the review shows the same consensus


def test_the_consensus_setting_is_a_single_label_projects() -> None:
    """Dawid-Skene is a single-label project's choice; a span project votes on spans (it took
    the setting: the payoff then kept tied spans and snapshots named Dawid-Skene)."""
    chosen = {"consensus": DAWID_SKENE}
    assert consensus_method("classification", chosen) == DAWID_SKENE
    assert consensus_method("multilabel", chosen) == MAJORITY
    assert consensus_method("spans", chosen) == SPAN_VOTE
    assert consensus_method("spans", {}) == SPAN_VOTE
    assert consensus_method("classification", {}) == MAJORITY
