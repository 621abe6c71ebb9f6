"""The model plugin contract (core): a classifier named by import path or by an
``activelabel.models`` entry point, checked when named, used through the same adapter as the
built-in models (docs/models.md)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sklearn.calibration import CalibratedClassifierCV
from sklearn.neighbors import KNeighborsClassifier

from activelabel.models import (
    ENTRY_POINT_GROUP,
    BootstrapCommittee,
    check_plugin,
    make_model,
    plugin_estimator,
    plugin_names,
)
from tests.support import plugin_models

CENTROID = "tests.support.plugin_models:CentroidClassifier"


def _blobs(n_per_class: int, labels: list[Any], seed: int = 0) -> tuple[np.ndarray, list[Any]]:
    rng = np.random.default_rng(seed)
    X = np.vstack([rng.normal(4.0 * i, 1.0, size=(n_per_class, 5)) for i in range(len(labels))])
    return X, [lab for lab in labels for _ in range(n_per_class)]


def test_an_import_path_gives_a_classifier_aligned_to_the_label_set() -> None:
    X, y = _blobs(20, ["a", "b"])
    model = make_model(CENTROID, classes=["a", "b", "c"], random_state=0)
    model.fit(X, y)
    probs = model.predict_proba(X)
    assert probs.shape == (40, 3)
    assert np.allclose(probs.sum(axis=1), 1.0)
    assert np.all(probs[:, 2] == 0.0)  # no label yet: its column is kept at 0
    assert (model.predict(X) == np.asarray(y)).mean() > 0.95
    assert isinstance(model.models_[0], plugin_models.CentroidClassifier)
    assert model.calibrate is False  # no get_params: cannot be cloned for calibration


def test_a_factory_with_parameters_and_get_params_is_calibrated_like_a_built_in() -> None:
    X, y = _blobs(30, ["x", "y"])
    model = make_model("tests.support.plugin_models:make_knn", classes=["x", "y"],
                       n_neighbors=5, random_state=0).fit(X, y)
    assert model.calibrate == "auto"
    inner = model.models_[0]
    est = inner.estimator if isinstance(inner, CalibratedClassifierCV) else inner
    assert isinstance(est, KNeighborsClassifier)
    assert est.n_neighbors == 5


def test_a_committee_of_a_plugin_copies_it_per_member() -> None:
    X, y = _blobs(15, [0, 1, 2])
    base = make_model(CENTROID, classes=[0, 1, 2]).estimator
    committee = BootstrapCommittee(base, n_members=3, classes=[0, 1, 2], random_state=1)
    probs = committee.fit(X, y).predict_proba(X)
    assert probs.shape == (3, 45, 3)
    members = [m.models_[0] for m in committee.members_]
    assert len({id(m) for m in members}) == 3
    assert base not in members


@pytest.mark.parametrize(("path", "message"), [
    ("nosuchpackage.mod:Model", "module 'nosuchpackage.mod' cannot be imported"),
    ("tests.support.plugin_models:Missing", "has no 'Missing'"),
    ("tests.support.plugin_models:NOT_CALLABLE", "names a int, not a class or a function"),
    ("tests.support.plugin_models:NoProba", "has no predict_proba"),
    ("tests.support.plugin_models:", "not of the form module.path:factory"),
    ("os.path:join", "calling it with no arguments failed"),
])
def test_a_bad_plugin_is_refused_with_what_is_wrong(path: str, message: str) -> None:
    with pytest.raises(ValueError, match="model") as info:
        check_plugin(path)
    assert message in str(info.value)


def test_a_plugin_that_forgets_classes_or_answers_the_wrong_shape_fails_clearly() -> None:
    X, y = _blobs(10, ["a", "b"])
    with pytest.raises(TypeError, match="did not set classes_"):
        make_model("tests.support.plugin_models:NoClasses", classes=["a", "b"]).fit(X, y)
    model = make_model("tests.support.plugin_models:WrongShape", classes=["a", "b"]).fit(X, y)
    with pytest.raises(ValueError, match=r"gave shape \(20, 3\) for 20 rows and 2 classes"):
        model.predict_proba(X)


def test_an_entry_point_names_a_model(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """An installed package offering a model under the group: found by its name."""
    dist = tmp_path / "teamlib-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: teamlib\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text(
        f"[{ENTRY_POINT_GROUP}]\nteam_centroid = {CENTROID}\nteam_broken = nosuch.mod:X\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    assert {"team_centroid", "team_broken"} <= set(plugin_names())
    assert isinstance(plugin_estimator("team_centroid"), plugin_models.CentroidClassifier)
    X, y = _blobs(10, ["a", "b"])
    assert make_model("team_centroid", classes=["a", "b"]).fit(X, y).predict_proba(X).shape \
        == (20, 2)
    with pytest.raises(ValueError, match=r"'team_broken' \(nosuch.mod:X\) cannot be loaded"):
        check_plugin("team_broken")
    with pytest.raises(ValueError, match="no installed package offers the model 'nobody'"):
        check_plugin("nobody")


def test_a_simulation_compares_strategies_with_a_plugin_model() -> None:
    from activelabel.datasets import load_builtin
    from activelabel.simulation import simulate

    before = len(plugin_models.FITTED)
    result = simulate(load_builtin("wine"), strategies=["random", "margin"], seed_size=10,
                      batch_size=10, budget=30, repeats=1, model=CENTROID)
    assert len(plugin_models.FITTED) > before  # the plugin was trained, not a built-in
    assert result.curves["margin"][-1].accuracy > 0.6
    with pytest.raises(ValueError, match=r"an activelabel\.models entry point or an import path"):
        simulate(load_builtin("wine"), strategies=["random"], seed_size=10, batch_size=10,
                 budget=30, repeats=1, model="nope")
