"""A plugin model (a team's own classifier, named by import path) driving real rounds through
the worker's job runner, on SQLite and PostgreSQL: trained on the consensus labels, evaluated
on the holdout, scoring the pool for the strategy and the annotators' suggestions."""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

import numpy as np

from activelabel.labeling.rounds import request_round
from activelabel.labeling.tasks import lease_tasks
from activelabel.runtime.server import run_job_inline
from activelabel.store import Storage, get_project, get_round, round_selections
from activelabel.store.models import Item, ModelVersion, Round
from tests.support import plugin_models
from tests.support.projects import digit_rows, label_rows, new_project

Arrays = tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]]
N, HOLDOUT, BATCH = 300, 60, 20
CENTROID = "tests.support.plugin_models:CentroidClassifier"


def run_round(storage: Storage, project_id: int) -> Round:
    """Queue a round and run its job as a worker would; the round, finished."""
    with storage.sessions() as session, session.begin():
        rnd, _ = request_round(session, project_id, requested_by=None, reason="manual")
        job_id, round_id = rnd.job_id, rnd.id
    assert job_id is not None
    run_job_inline(storage, job_id, timeout=60)
    with storage.read_sessions() as session:
        done = get_round(session, project_id, round_id)
        session.expunge(done)
        return done


def _selected_rows(storage: Storage, round_id: int) -> list[int]:
    with storage.read_sessions() as session:
        return [int(session.get(Item, s.item_id).row)  # type: ignore[union-attr]
                for s in round_selections(session, round_id)]


def test_a_plugin_model_drives_rounds_like_a_built_in_one(engine_storage: Storage,
                                                          digits: Arrays) -> None:
    images, target = digits
    seeded = new_project(engine_storage, rows=digit_rows(images, N, HOLDOUT), settings={
        "featurizer": "image", "featurizer_params": {"field": "image"}, "batch_size": BATCH,
        "strategy": "margin", "model": CENTROID, "audit_share": 0.0,
        # the smallest margins come first: every suggestion shown, however unsure
        "suggestion_min_confidence": 0})
    seed = run_round(engine_storage, seeded.project_id)
    assert seed.status == "done", seed.error
    seed_rows = _selected_rows(engine_storage, seed.id)
    holdout = list(range(N - HOLDOUT, N))
    label_rows(engine_storage, seeded, seed_rows + holdout,
               [str(int(target[r])) for r in seed_rows + holdout])
    fitted_before = len(plugin_models.FITTED)

    trained = run_round(engine_storage, seeded.project_id)

    assert trained.status == "done", trained.error
    assert plugin_models.FITTED[fitted_before:] == [BATCH]  # trained on the seed's labels
    metrics = trained.metrics or {}
    assert metrics["n_train"] == BATCH
    assert metrics["n_holdout"] == HOLDOUT
    assert metrics["accuracy"] > 0.6  # nearest class mean on 20 digits
    picked = _selected_rows(engine_storage, trained.id)
    assert len(picked) == BATCH
    assert not set(picked) & set(seed_rows)
    probs = engine_storage.arrays.load(seeded.project_id, "probs")
    assert probs is not None
    assert probs.shape == (N, 10)
    with engine_storage.read_sessions() as session:
        version = session.get(ModelVersion, trained.model_version_id)
        assert version is not None
        assert version.is_active
        with open(Path(str(version.artifact_path)), "rb") as handle:
            artifact = pickle.load(handle)
        selections = round_selections(session, trained.id)
    assert isinstance(artifact["model"].models_[0], plugin_models.CentroidClassifier)
    margins = np.sort(probs[picked], axis=1)
    margins = margins[:, -1] - margins[:, -2]
    assert [s.strategy for s in selections] == ["margin"] * BATCH
    assert np.allclose(sorted(margins), margins, atol=1e-6)  # smallest margins first
    with engine_storage.sessions() as session, session.begin():
        project = get_project(session, seeded.project_id)
        tasks = lease_tasks(session, engine_storage.arrays, project, "owner",
                            seeded.owner_id, 3)
    row = picked[0]
    assert tasks[0].suggestion is not None
    assert tasks[0].suggestion.label == str(int(np.argmax(probs[row])))
    assert abs(tasks[0].suggestion.confidence - float(probs[row].max())) < 1e-6


def test_a_plugin_that_breaks_the_contract_fails_its_round_with_the_reason(
        engine_storage: Storage, digits: Arrays) -> None:
    images, target = digits
    seeded = new_project(engine_storage, rows=digit_rows(images, 80, 0), settings={
        "featurizer": "image", "featurizer_params": {"field": "image"}, "batch_size": 10,
        "model": "tests.support.plugin_models:NoClasses"})
    label_rows(engine_storage, seeded, list(range(20)), [str(int(target[r])) for r in range(20)])
    failed = run_round(engine_storage, seeded.project_id)
    assert failed.status == "failed"
    assert "NoClasses.fit did not set classes_" in str(failed.error)
