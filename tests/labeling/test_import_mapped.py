"""Mapped imports: existing labels with provenance, predictions and vectors go in with their
items, every value checked per row, nothing half-imported, a resumed import counts exactly."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sqlalchemy import select

import activelabel.labeling.imports as imports_module
from activelabel.labeling.consensus import project_consensus
from activelabel.labeling.featurize import ensure_features
from activelabel.labeling.imports import enqueue_import, preview_import, save_upload
from activelabel.labeling.vectors import import_vector_file, load_vectors
from activelabel.runtime.settings import Storage
from activelabel.store import InvalidInput, count_items, current_labels, get_project
from activelabel.store.models import (
    Annotation,
    Item,
    Job,
    Prediction,
    Round,
    RoundSelection,
    User,
)
from tests.support.projects import label_rows, new_project, run_job

MAPPING = {"columns": {"id": "external_id", "text": "content", "label": "label",
                       "who": "annotator", "when": "label_time", "pred": "prediction",
                       "p": "prediction_score", "vec": "vector", "note": "private"}}


def _row(i: int, **changes: Any) -> dict[str, Any]:
    row = {"id": f"m{i}", "text": f"text {i}", "label": "spam" if i % 2 else "ham",
           "who": f"ann{i % 2}", "when": f"2024-03-0{1 + i % 9}T10:00:00Z",
           "pred": "spam", "p": 0.8, "vec": [float(i), 1.0, 2.0], "note": f"n{i}"}
    row.update(changes)
    return row


def _import(storage: Storage, project_id: int, rows: list[Any],
            mapping: dict[str, Any] | None = MAPPING) -> dict[str, Any]:
    text = "\n".join(r if isinstance(r, str) else json.dumps(r) for r in rows)
    path = save_upload(storage, project_id, "rows.jsonl", io.BytesIO(text.encode()))
    with storage.sessions() as session, session.begin():
        job_id = enqueue_import(session, project_id, path, requested_by=None,
                                mapping=mapping).id
    return {**run_job(storage, job_id), "_job_id": job_id}


def test_existing_labels_predictions_and_vectors_go_in_with_their_items(
        engine_storage: Storage) -> None:
    seeded = new_project(engine_storage, labels=["ham", "spam"])
    with engine_storage.sessions() as session, session.begin():
        session.add(User(username="ann0"))  # a user of that name: the label is theirs
    result = _import(engine_storage, seeded.project_id, [_row(i) for i in range(4)])
    assert (result["inserted"], result["labels"], result["predictions"], result["vectors"]) == (
        4, 4, 4, 4)
    pid = seeded.project_id
    with engine_storage.read_sessions() as session:
        items = {i.external_id: i for i in session.execute(
            select(Item).where(Item.project_id == pid)).scalars()}
        assert items["m1"].data == {"text": "text 1"}  # the answer is not in the payload
        assert items["m1"].private == {"note": "n1"}
        assert items["m1"].n_labels == 1
        revisions = session.execute(
            select(Annotation, User.username).join(User, User.id == Annotation.annotator_id)
            .where(Annotation.project_id == pid).order_by(Annotation.item_id)).all()
        assert {a.kind for a, _ in revisions} == {"imported"}
        assert {a.source_job_id for a, _ in revisions} == {result["_job_id"]}
        by_item = {a.item_id: (a, name) for a, name in revisions}
        m1, name1 = by_item[items["m1"].id]
        assert (m1.labels, m1.source_annotator, name1) == (["spam"], "ann1", "imported:ann1")
        assert m1.created_at.isoformat() == "2024-03-02T10:00:00+00:00"
        assert by_item[items["m0"].id][1] == "ann0"  # an existing user's own label
        disabled = session.execute(select(User.disabled, User.password_hash).where(
            User.username == "imported:ann1")).one()
        assert tuple(disabled) == (True, None)  # cannot log in
        predictions = session.execute(select(Prediction).where(
            Prediction.project_id == pid)).scalars().all()
        assert sorted((p.labels[0], p.score) for p in predictions) == [("spam", 0.8)] * 4
        # Training, consensus and agreement read them like any current label.
        current = current_labels(session, pid)
        assert len(current) == 4
        consensus = project_consensus(get_project(session, pid), current)
        assert consensus.of(items["m1"].id) == "spam"
    vectors = load_vectors(engine_storage, pid, 4)
    assert vectors is not None
    assert vectors.missing == 0
    assert vectors.vectors[items["m3"].row].tolist() == [3.0, 1.0, 2.0]


def _revisions(storage: Storage, pid: int) -> list[tuple[str, str, list[Any], str]]:
    """(external id, account, labels, kind) of every revision of the project, in order."""
    with storage.read_sessions() as session:
        return [(str(e), str(u), list(labels), str(kind)) for e, u, labels, kind in
                session.execute(select(Item.external_id, User.username, Annotation.labels,
                                       Annotation.kind)
                                .join(Item, Item.id == Annotation.item_id)
                                .join(User, User.id == Annotation.annotator_id)
                                .where(Annotation.project_id == pid)
                                .order_by(Annotation.id))]


#: The file's answers and the rest kept private: the content is the text, as under MAPPING.
PRIVATE = {"columns": {**MAPPING["columns"], **dict.fromkeys(
    ("label", "who", "when", "pred", "p", "vec"), "private")}}


def test_a_file_imported_again_brings_its_labels_to_the_items_already_in(
        engine_storage: Storage) -> None:
    """Items first imported with no mapping (their answers kept private, the annotator and
    time columns shown): the same file again with a mapping adds the labels to those items
    (it reported 4 duplicates and added none), the item's content still the row's under
    the new mapping; a third time adds nothing, and a person's own label is never
    superseded."""
    seeded = new_project(engine_storage, labels=["ham", "spam"])
    pid = seeded.project_id
    with engine_storage.read_sessions() as session:
        owner = session.get(User, seeded.owner_id)
        assert owner is not None
        owner_name = owner.username
    rows = [_row(i) for i in range(4)]
    rows[0]["who"] = owner_name  # the file names the owner for m0, which the owner labels
    first = _import(engine_storage, pid, rows, mapping=None)
    assert (first["inserted"], first["labels"]) == (4, 0)
    assert first["held_private"] == {"label": "label", "pred": "prediction", "vec": "vector"}
    with engine_storage.read_sessions() as session:
        shown = session.execute(select(Item.data).where(Item.project_id == pid)).scalars()
        assert {"text", "who", "when"} <= set(next(iter(shown)))  # content then, not now
    with engine_storage.sessions() as session, session.begin():  # a user of the file's name
        if session.execute(select(User.id).where(User.username == "ann0")).first() is None:
            session.add(User(username="ann0"))
    label_rows(engine_storage, seeded, [0], ["spam"])  # m0 (row 0), in the app
    again = _import(engine_storage, pid, rows)
    assert (again["inserted"], again["duplicates"], again["labels"], again["labels_skipped"],
            again["predictions"], again["vectors"]) == (0, 4, 3, 1, 0, 0)
    assert again["labels_skipped_why"] == {imports_module.SKIP_LABELED: 1}
    assert again["cold_start_round_id"] is not None  # a round trains on them
    before = _revisions(engine_storage, pid)
    assert sorted(r[:3] for r in before if r[3] == "imported") == [
        ("m1", "imported:ann1", ["spam"]), ("m2", "ann0", ["ham"]),
        ("m3", "imported:ann1", ["spam"])]
    with engine_storage.read_sessions() as session:
        assert sum(i.n_labels for i in session.execute(
            select(Item).where(Item.project_id == pid)).scalars()) == 4
        m0 = session.execute(select(Item.id).where(Item.project_id == pid,
                                                   Item.external_id == "m0")).scalar_one()
        mine = [c for c in current_labels(session, pid) if c.item_id == m0]
        assert [(c.annotator_id, c.labels) for c in mine] == [(seeded.owner_id, ["spam"])]
    third = _import(engine_storage, pid, rows)
    assert (third["labels"], third["labels_skipped"]) == (0, 4)
    assert third["labels_skipped_why"] == {imports_module.SKIP_LABELED: 4}
    assert _revisions(engine_storage, pid) == before  # nothing doubled, nothing superseded


def test_one_row_per_item_and_annotator_keeps_every_annotators_label(
        engine_storage: Storage) -> None:
    """A long file (one row per label): the item goes in once, each annotator's label on it;
    the same annotator twice keeps the first row's."""
    seeded = new_project(engine_storage, labels=["ham", "spam"])
    pid = seeded.project_id
    rows = [_row(1, who="ann1", label="spam"), _row(1, who="ann2", label="ham"),
            _row(1, who="ann1", label="ham"), _row(2, who="ann2")]
    result = _import(engine_storage, pid, rows)
    assert (result["inserted"], result["duplicates"], result["labels"],
            result["labels_skipped"]) == (2, 2, 3, 1)
    assert sorted(r[:3] for r in _revisions(engine_storage, pid)) == [
        ("m1", "imported:ann1", ["spam"]), ("m1", "imported:ann2", ["ham"]),
        ("m2", "imported:ann2", ["ham"])]
    with engine_storage.read_sessions() as session:
        counts = {i.external_id: i.n_labels for i in session.execute(
            select(Item).where(Item.project_id == pid)).scalars()}
    assert counts == {"m1": 2, "m2": 1}


def test_items_purged_gold_audit_or_of_other_content_take_no_label_from_a_file(
        engine_storage: Storage) -> None:
    """A file's labels go to known items only where they are the same item and its labels
    are the team's to add: not a purged item, a gold item (its checks count answers given in
    the app), an audit draw (some draws labeled from a file would bias the estimate), nor
    an item whose external id a row of other content shares (1..n ids of two files)."""
    from activelabel.labeling.governance import purge

    seeded = new_project(engine_storage, labels=["ham", "spam"])
    pid = seeded.project_id
    _import(engine_storage, pid, [_row(i) for i in range(5)], mapping=PRIVATE)
    with engine_storage.sessions() as session, session.begin():
        items = {i.external_id: i for i in session.execute(
            select(Item).where(Item.project_id == pid)).scalars()}
        purge(session, engine_storage, pid, item_ids=[items["m1"].id], external_ids=[],
              actor_id=seeded.owner_id)
        items["m2"].split, items["m2"].gold_labels = "gold", ["ham"]
        items["m3"].audit_drawn_at = items["m3"].created_at  # drawn to measure the model
    other = _row(4, text="another file's row 4")  # an id of another file, not this item
    result = _import(engine_storage, pid, [_row(0), _row(1), _row(2), _row(3), other])
    assert (result["labels"], result["labels_skipped"]) == (1, 4)
    assert result["labels_skipped_why"] == {
        imports_module.SKIP_PURGED: 1, imports_module.SKIP_GOLD: 1,
        imports_module.SKIP_AUDIT: 1, imports_module.SKIP_OTHER_CONTENT: 1}
    assert result["labels_skipped_reasons"][imports_module.SKIP_OTHER_CONTENT] == (
        "the row holds other content than the item of its external id")
    assert [r[0] for r in _revisions(engine_storage, pid)] == ["m0"]


def test_a_persons_label_committed_meanwhile_is_left_as_it_is(engine_storage: Storage) -> None:
    """The file's label meets a chain its annotator started after the import read the
    items (a person labeling at that moment): nothing is inserted for it, the rest go in,
    and nothing fails."""
    from activelabel.store.imported import ImportedLabel, add_labels_to_known_items

    seeded = new_project(engine_storage, labels=["ham", "spam"])
    pid = seeded.project_id
    _import(engine_storage, pid, [_row(0), _row(1)], mapping=PRIVATE)
    label_rows(engine_storage, seeded, [0], ["spam"])  # the owner's label of row 0
    with engine_storage.sessions() as session, session.begin():
        owner = session.get(User, seeded.owner_id)
        assert owner is not None
        ids = {r: i for r, i in session.execute(select(Item.row, Item.id).where(
            Item.project_id == pid))}
        added = add_labels_to_known_items(session, pid, None, [
            ImportedLabel(ids[0], ["ham"], owner.username, None),
            ImportedLabel(ids[1], ["ham"], owner.username, None)])
    assert added == 1
    with engine_storage.read_sessions() as session:
        mine = {c.item_id: c.labels for c in current_labels(session, pid)}
        counts = {i: n for i, n in session.execute(select(Item.id, Item.n_labels).where(
            Item.project_id == pid))}
    assert mine == {ids[0]: ["spam"], ids[1]: ["ham"]}
    assert counts == {ids[0]: 1, ids[1]: 1}


def test_a_column_the_mapping_leaves_out_takes_one_role_for_every_row(
        engine_storage: Storage) -> None:
    """``--map label=label`` names the label only: the text column is content on every row,
    also where a text is a label's name (clinc150's "maybe", "yes": each such row was read
    as an answer, kept private, and rejected as a row with no payload)."""
    seeded = new_project(engine_storage, labels=["ham", "spam"])
    rows = [{"id": "t1", "text": "free money", "label": "spam"},
            {"id": "t2", "text": "ham", "label": "ham"}]
    result = _import(engine_storage, seeded.project_id, rows,
                     mapping={"columns": {"label": "label"}})
    assert (result["inserted"], result["rejected_count"], result["labels"]) == (2, 0, 2)
    with engine_storage.read_sessions() as session:
        data = {i.external_id: i.data for i in session.execute(
            select(Item).where(Item.project_id == seeded.project_id)).scalars()}
        saved = get_project(session, seeded.project_id).import_mapping
    assert data == {"t1": {"text": "free money"}, "t2": {"text": "ham"}}
    assert saved == {"columns": {"label": "label"}}  # the owner's choice, kept as given


def test_a_person_correcting_an_imported_label_appends_a_revision(
        engine_storage: Storage) -> None:
    seeded = new_project(engine_storage, labels=["ham", "spam"])
    _import(engine_storage, seeded.project_id, [_row(1)])
    label_rows(engine_storage, seeded, [0], ["ham"])  # the owner's own label beside it
    with engine_storage.read_sessions() as session:
        current = current_labels(session, seeded.project_id)
        rows = session.execute(select(Annotation.kind).where(
            Annotation.project_id == seeded.project_id).order_by(Annotation.id)).scalars()
        assert list(rows) == ["imported", "label"]
        assert sorted(c.labels[0] for c in current) == ["ham", "spam"]


def test_every_mapped_value_is_checked_per_row_and_bad_rows_leave_nothing(
        engine_storage: Storage) -> None:
    seeded = new_project(engine_storage, labels=["ham", "spam"])
    rows: list[Any] = [
        _row(0),
        _row(1, label="eggs"),                  # unknown label
        _row(2, vec=[1.0, 2.0]),                # wrong length
        _row(3, vec=[1.0, float("nan"), 2.0]),  # NaN (json writes NaN)
        _row(4, p=1.5),                         # score outside [0, 1]
        _row(5, when="last tuesday"),           # bad time
        _row(6, pred="maybe"),                  # unknown predicted label
        "{broken",
        _row(8),
    ]
    result = _import(engine_storage, seeded.project_id, rows)
    reasons = {r["line"]: r["reason"] for r in result["rejected"]}
    assert sorted(reasons) == [2, 3, 4, 5, 6, 7, 8]
    assert "unknown labels ['eggs']" in reasons[2]
    assert "has 2 values, the project's vectors have 3" in reasons[3]
    assert "NaN" in reasons[4]
    assert "outside [0, 1]" in reasons[5]
    assert "ISO-8601" in reasons[6]
    assert "prediction: unknown labels ['maybe']" in reasons[7]
    assert (result["inserted"], result["labels"], result["predictions"], result["vectors"]) == (
        2, 2, 2, 2)
    with engine_storage.read_sessions() as session:
        stored = set(session.execute(select(Item.external_id).where(
            Item.project_id == seeded.project_id)).scalars())
        assert stored == {"m0", "m8"}
        n_predictions = session.execute(select(Prediction.item_id).where(
            Prediction.project_id == seeded.project_id)).scalars().all()
        assert len(n_predictions) == 2


def test_gold_rejected_by_the_store_drops_the_rows_labels_too(engine_storage: Storage) -> None:
    seeded = new_project(engine_storage, labels=["ham", "spam"])
    mapping = {"columns": {**MAPPING["columns"], "gold": "gold"}}
    result = _import(engine_storage, seeded.project_id,
                     [_row(0, gold="nope"), _row(1, gold="spam")], mapping)
    assert result["inserted"] == 1
    assert result["labels"] == 1
    assert [r["line"] for r in result["rejected"]] == [1]


def test_a_resumed_mapped_import_counts_exactly(engine_storage: Storage,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(imports_module, "BATCH_ROWS", 4)
    monkeypatch.setattr(imports_module, "PROGRESS_SECONDS", 0.0)
    seeded = new_project(engine_storage, labels=["ham", "spam"])
    rows = [_row(i) for i in range(14)]
    rows[5] = _row(5, label="eggs")
    path = save_upload(engine_storage, seeded.project_id, "rows.jsonl",
                       io.BytesIO("\n".join(json.dumps(r) for r in rows).encode()))
    with engine_storage.sessions() as session, session.begin():
        job_id = enqueue_import(session, seeded.project_id, path, requested_by=None,
                                mapping=MAPPING).id

    class Killed(BaseException):
        pass

    def kill_after_two(values: dict[str, Any]) -> None:
        if values["inserted"] >= 7:
            raise Killed

    with engine_storage.sessions() as session:
        job = session.get(Job, job_id)
    with pytest.raises(Killed):
        imports_module.run_import(engine_storage, job, progress=kill_after_two)
    result = run_job(engine_storage, job_id)
    assert (result["inserted"], result["labels"], result["predictions"], result["vectors"],
            result["rejected_count"], result["rows_seen"]) == (13, 13, 13, 13, 1, 14)
    with engine_storage.read_sessions() as session:
        assert count_items(session, seeded.project_id) == 13
        n = session.execute(select(Annotation.id).where(
            Annotation.project_id == seeded.project_id)).scalars().all()
        assert len(n) == 13
    vectors = load_vectors(engine_storage, seeded.project_id, 13)
    assert vectors is not None
    assert vectors.missing == 0


def test_the_preview_proposes_and_the_mapping_is_kept_for_the_next_upload(
        engine_storage: Storage, shared_data: Path) -> None:
    seeded = new_project(engine_storage, labels=["ham", "spam"])
    content = (shared_data / "sms_spam.jsonl").read_bytes()
    path = save_upload(engine_storage, seeded.project_id, "sms.jsonl", io.BytesIO(content))
    with engine_storage.read_sessions() as session:
        preview = preview_import(session, seeded.project_id, path)
    roles = {p["column"]: p["role"] for p in preview["proposal"]}
    assert roles == {"id": "external_id", "text": "content", "label": "label"}
    assert len(preview["rows"]) == 20
    # An import with no mapping never shows the answer: it stays private.
    with engine_storage.sessions() as session, session.begin():
        job_id = enqueue_import(session, seeded.project_id, path, requested_by=None).id
    result = run_job(engine_storage, job_id)
    assert result["labels"] == 0
    with engine_storage.read_sessions() as session:
        item = session.execute(select(Item).where(Item.project_id == seeded.project_id)
                               .limit(1)).scalar_one()
        assert set(item.data) == {"text"}
        assert set(item.private or {}) == {"label"}
    # A mapping given is kept: the next preview starts from it.
    with engine_storage.sessions() as session, session.begin():
        enqueue_import(session, seeded.project_id, path, requested_by=None,
                       mapping={"columns": {"label": "label"}})
    with engine_storage.read_sessions() as session:
        again = preview_import(session, seeded.project_id, path)
    saved = {p["column"]: p["reason"] for p in again["proposal"]}
    assert "saved mapping" in saved["label"]
    with engine_storage.sessions() as session, session.begin(), pytest.raises(
            InvalidInput, match="not one of"):
        enqueue_import(session, seeded.project_id, path, requested_by=None,
                       mapping={"columns": {"label": "shown"}})


def test_a_vector_file_aligned_by_external_id(engine_storage: Storage, tmp_path: Path) -> None:
    seeded = new_project(engine_storage, labels=["ham", "spam"],
                         rows=[{"external_id": f"v{i}", "data": {"text": f"t{i}"}}
                               for i in range(5)])
    pid = seeded.project_id
    array = np.arange(12, dtype=np.float32).reshape(3, 4)
    np.save(tmp_path / "v.npy", array)
    (tmp_path / "ids.txt").write_text("v4\nv0\nv2\n")
    done = import_vector_file(engine_storage, pid, tmp_path / "v.npy", tmp_path / "ids.txt")
    assert done == {"stored": 3, "dim": 4, "items_without_vector": 2}
    stored = load_vectors(engine_storage, pid, 5)
    assert stored is not None
    assert stored.present.tolist() == [True, False, True, False, True]
    assert stored.vectors[4].tolist() == array[0].tolist()
    bad = array.copy()
    bad[1, 2] = np.nan
    np.save(tmp_path / "bad.npy", bad)
    (tmp_path / "ids2.txt").write_text("v1\nv3\nnope\n")
    with pytest.raises(InvalidInput) as caught:
        import_vector_file(engine_storage, pid, tmp_path / "bad.npy", tmp_path / "ids2.txt")
    assert "NaN" in str(caught.value)
    assert "'nope' is no item" in str(caught.value)
    assert load_vectors(engine_storage, pid, 5).present.tolist() == [  # type: ignore[union-attr]
        True, False, True, False, True]  # nothing written
    np.save(tmp_path / "short.npy", np.ones((1, 3), np.float32))
    (tmp_path / "one.txt").write_text("v1\n")
    with pytest.raises(InvalidInput, match="have 3 values, the project's have 4"):
        import_vector_file(engine_storage, pid, tmp_path / "short.npy", tmp_path / "one.txt")
    (tmp_path / "junk.npy").write_bytes(b"not an array")  # numpy would advise unpickling
    with pytest.raises(InvalidInput, match=r"not a numeric \.npy array: save the vectors") as bad:
        import_vector_file(engine_storage, pid, tmp_path / "junk.npy", tmp_path / "one.txt")
    assert "pickle" not in str(bad.value)


def test_a_round_trains_and_selects_on_the_projects_own_vectors(engine_storage: Storage) -> None:
    seeded = new_project(engine_storage, labels=["ham", "spam"],
                         settings={"featurizer": "vectors", "batch_size": 3})
    rng = np.random.default_rng(0)
    rows = [_row(i, vec=rng.normal(size=3).round(4).tolist(),
                 label=None if i >= 8 else ("spam" if i % 2 else "ham"))
            for i in range(30)]
    result = _import(engine_storage, seeded.project_id, rows)
    assert (result["labels"], result["vectors"]) == (8, 30)
    round_id = result["cold_start_round_id"]  # a round that trains on the imported labels
    assert round_id is not None
    with engine_storage.read_sessions() as session:
        job_id = session.get(Round, round_id).job_id  # type: ignore[union-attr]
    run_job(engine_storage, job_id)
    with engine_storage.read_sessions() as session:
        done = session.get(Round, round_id)
        assert done is not None
        assert (done.status, done.n_labels_used) == ("done", 8)

    feats = ensure_features(engine_storage, seeded.project_id)
    stored = load_vectors(engine_storage, seeded.project_id, 30)
    assert stored is not None
    assert np.allclose(feats.embeddings, stored.vectors)


def test_the_vectors_featurizer_names_items_without_a_vector(engine_storage: Storage) -> None:
    seeded = new_project(engine_storage, labels=["ham", "spam"],
                         settings={"featurizer": "vectors"})
    rows = [_row(i) for i in range(3)]
    rows[1].pop("vec")
    _import(engine_storage, seeded.project_id, rows)
    with pytest.raises(ValueError, match="1 of 3 items have no vector"):
        ensure_features(engine_storage, seeded.project_id)


def test_a_cold_start_reads_imported_scores_as_priors(engine_storage: Storage) -> None:
    seeded = new_project(engine_storage, labels=["ham", "spam"], settings={"batch_size": 3})
    mapping = {"columns": {"id": "external_id", "text": "content", "pred": "prediction",
                           "p": "prediction_score"}}
    words = ["alpha", "beta", "gamma", "delta", "omega", "sigma"]
    rows = [{"id": f"c{i}", "text": f"{words[i % 6]} {words[(i * 5) % 6]} {i}", "pred": "ham",
             "p": 0.55 if i % 3 == 0 else 0.99} for i in range(40)]
    result = _import(engine_storage, seeded.project_id, rows, mapping)
    round_id = result["cold_start_round_id"]
    with engine_storage.read_sessions() as session:
        job_id = session.get(Round, round_id).job_id  # type: ignore[union-attr]
    run_job(engine_storage, job_id)
    with engine_storage.read_sessions() as session:
        picked = session.execute(select(Item.external_id, RoundSelection.strategy)
                                 .join(RoundSelection, RoundSelection.item_id == Item.id)
                                 .where(RoundSelection.round_id == round_id)).all()
    assert len(picked) == 3
    assert {s for _, s in picked} == {"cold_start_priors"}
    # From the 4 x 3 least sure: 14 items have 0.55, the others 0.99.
    assert {e for e, _ in picked} <= {f"c{i}" for i in range(40) if i % 3 == 0}


def test_a_purge_removes_the_private_fields_and_the_vector_too(engine_storage: Storage) -> None:
    from activelabel.labeling.governance import purge

    seeded = new_project(engine_storage, labels=["ham", "spam"])
    _import(engine_storage, seeded.project_id, [_row(0), _row(1)])
    with engine_storage.sessions() as session, session.begin():
        item = session.execute(select(Item).where(
            Item.project_id == seeded.project_id, Item.external_id == "m1")).scalar_one()
        assert item.private == {"note": "n1"}
        purge(session, engine_storage, seeded.project_id, item_ids=[item.id], external_ids=[],
              actor_id=seeded.owner_id)
    vectors = load_vectors(engine_storage, seeded.project_id, 2)
    assert vectors is not None
    assert vectors.vectors[item.row].tolist() == [0.0, 0.0, 0.0]
    assert vectors.vectors[1 - item.row].tolist() != [0.0, 0.0, 0.0]
    with engine_storage.read_sessions() as session:
        purged = session.get(Item, item.id)
        assert purged is not None
        assert (purged.data, purged.private) == ({}, None)


def test_imported_labels_count_in_agreement_beside_people(engine_storage: Storage) -> None:
    from activelabel.labeling.quality import agreement_report, label_table

    seeded = new_project(engine_storage, labels=["ham", "spam"])
    rows = [_row(i, who="vendor") for i in range(10)]  # a labeling vendor's answers
    _import(engine_storage, seeded.project_id, rows)
    people = ["spam" if i % 2 else "ham" for i in range(10)]
    people[0] = "spam"  # one disagreement
    label_rows(engine_storage, seeded, list(range(10)), people)
    with engine_storage.read_sessions() as session:
        project = get_project(session, seeded.project_id)
        report = agreement_report(label_table(session, project), project)
    assert (report["n_items"], report["n_annotators"]) == (10, 2)
    pair = report["cohen_kappa_pairs"][0]
    assert "imported:vendor" in (pair["a"], pair["b"])
    assert pair["n"] == 10
    assert pair["kappa"] < 1.0  # the one disagreement counts


def test_a_csv_label_cell_is_the_projects_label_value(engine_storage: Storage) -> None:
    seeded = new_project(engine_storage, labels=[0, 1, 2])
    text = "id,text,label\nn1,one,1\nn2,two,2\nn3,three,7\n"
    path = save_upload(engine_storage, seeded.project_id, "rows.csv", io.BytesIO(text.encode()))
    with engine_storage.sessions() as session, session.begin():
        job_id = enqueue_import(session, seeded.project_id, path, requested_by=None,
                                mapping={"columns": {"label": "label"}}).id
    result = run_job(engine_storage, job_id)
    assert (result["inserted"], result["labels"]) == (2, 2)
    assert [r["line"] for r in result["rejected"]] == [4]
    with engine_storage.read_sessions() as session:
        assert sorted(c.labels[0] for c in current_labels(session, seeded.project_id)) == [1, 2]
