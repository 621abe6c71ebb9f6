"""The oracle simulation: curve shape, shared seed point, determinism, and that active learning pays."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from sklearn.datasets import make_blobs

from activelabel.datasets import Dataset, load_builtin
from activelabel.models import MODEL_NAMES
from activelabel.simulation import SimulationStep, curve_grid, simulate

REQUIRED_POINT_KEYS = {"n_labeled", "accuracy", "accuracy_std", "macro_f1", "ece"}
#: The loop is under test, not the model: skip the calibration check (several extra fits a round).
FAST_MODEL = {"calibrate": False}


def blobs(n: int = 240, n_classes: int = 3, seed: int = 0) -> Dataset:
    X, y = make_blobs(
        n_samples=n, centers=n_classes, n_features=5, cluster_std=3.0, random_state=seed
    )
    classes = tuple(f"c{i}" for i in range(n_classes))
    return Dataset("blobs", "numeric", np.asarray(y, dtype=np.intp), classes, X=np.asarray(X))


def run(ds: Dataset, **overrides: Any) -> Any:
    params: dict[str, Any] = {
        "strategies": ["random", "margin"],
        "seed_size": 10,
        "batch_size": 10,
        "budget": 40,
        "repeats": 2,
        "test_size": 0.3,
        "random_state": 0,
        "model_params": FAST_MODEL,
    }
    params.update(overrides)
    return simulate(ds, **params)


@pytest.fixture(scope="module")
def wine() -> Dataset:
    return load_builtin("wine")


@pytest.fixture(scope="module")
def wine_result(wine: Dataset) -> Any:
    return run(wine, strategies=["random", "margin", "kcenter"], batch_size=7, budget=38)


def test_result_has_the_required_json_shape(wine_result: Any) -> None:
    doc = json.loads(json.dumps(wine_result.to_dict()))
    assert doc["dataset"] == "wine"
    assert doc["config"] == {
        "strategies": ["random", "margin", "kcenter"], "seed_size": 10, "batch_size": 7,
        "budget": 38, "repeats": 2, "test_size": 0.3, "random_state": 0,
        "model": "logistic_regression", "model_params": {"calibrate": False},
        "featurizer": "auto",
    }  # fmt: skip
    assert set(doc["curves"]) == {"random", "margin", "kcenter"}
    for points in doc["curves"].values():
        for p in points:
            assert set(p) == REQUIRED_POINT_KEYS
            assert isinstance(p["n_labeled"], int)
            assert 0.0 <= p["accuracy"] <= 1.0
    assert 0.5 < doc["full_data_accuracy"] <= 1.0
    for entry in doc["labels_to_target"].values():
        assert set(entry) == {"target", "n_labeled"}
        assert entry["target"] == pytest.approx(0.95 * doc["full_data_accuracy"])
        assert entry["n_labeled"] is None or isinstance(entry["n_labeled"], int)


def test_curves_start_at_seed_and_end_at_budget_with_clipped_last_batch(wine_result: Any) -> None:
    for points in wine_result.curves.values():
        assert [p.n_labeled for p in points] == [10, 17, 24, 31, 38]


def test_every_strategy_starts_from_the_same_seed_point(wine_result: Any) -> None:
    firsts = {
        (p[0].accuracy, p[0].accuracy_std, p[0].macro_f1) for p in wine_result.curves.values()
    }
    assert len(firsts) == 1


def test_later_points_differ_between_strategies(wine_result: Any) -> None:
    curves = wine_result.curves
    assert [p.accuracy for p in curves["random"]] != [p.accuracy for p in curves["margin"]]


def test_labels_to_target_is_the_first_point_reaching_the_target(wine_result: Any) -> None:
    target = wine_result.target
    for name, points in wine_result.curves.items():
        reached = [p.n_labeled for p in points if p.accuracy >= target]
        assert wine_result.labels_to_target[name] == (reached[0] if reached else None)
        assert len(wine_result.labels_to_target_per_repeat[name]) == 2


@pytest.mark.slow
def test_deterministic_under_random_state(wine: Dataset) -> None:
    a = run(wine, random_state=3).to_dict()
    b = run(wine, random_state=3).to_dict()
    c = run(wine, random_state=4).to_dict()
    for doc in (a, b, c):
        doc.pop("seconds")
    assert a == b
    assert a["curves"] != c["curves"]


@pytest.mark.slow
def test_strategy_results_do_not_depend_on_the_other_strategies(wine: Dataset) -> None:
    alone = run(wine, strategies=["random"])
    together = run(wine, strategies=["margin", "random"])
    assert alone.curves["random"] == together.curves["random"]


def test_pool_exhaustion_stops_early() -> None:
    ds = blobs(n=40)
    result = run(ds, seed_size=5, batch_size=10, budget=500, repeats=1, test_size=0.25)
    assert [p.n_labeled for p in result.curves["margin"]] == [5, 15, 25, 30]


@pytest.mark.slow
def test_committee_strategies_run() -> None:
    result = run(blobs(), strategies=["vote_entropy", "bald"], repeats=1)
    for points in result.curves.values():
        assert points[-1].n_labeled == 40


def test_on_step_counts_every_point() -> None:
    steps: list[SimulationStep] = []
    run(blobs(), budget=30, on_step=steps.append)
    assert len(steps) == 2 * 2 * 3  # repeats x strategies x points
    assert [s.done for s in steps] == list(range(1, 13))
    assert {s.total for s in steps} == {12}
    assert steps[0].strategy == "random"
    assert steps[0].n_labeled == 10


def test_labels_saved_vs_random_only_with_random() -> None:
    assert run(blobs(), strategies=["margin"], repeats=1).labels_saved_vs_random == {}


@pytest.mark.slow
def test_margin_beats_random_on_digits() -> None:
    ds = load_builtin("digits")
    result = simulate(
        ds, strategies=["random", "margin"], seed_size=30, batch_size=30, budget=240,
        repeats=3, test_size=0.3, random_state=0, model_params=FAST_MODEL,
    )  # fmt: skip
    rand, marg = result.curves["random"], result.curves["margin"]
    assert result.area_under_curve["margin"] > result.area_under_curve["random"]
    # at the end of the budget the gap is larger than the spread between repeats
    assert marg[-1].accuracy - rand[-1].accuracy > max(rand[-1].accuracy_std, marg[-1].accuracy_std)


# ---- validation ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (
            {"strategies": ["margin", "smart"]},
            r"unknown strategy 'smart'; choose from: random, .*margin",
        ),
        ({"strategies": []}, "no strategies given"),
        ({"seed_size": 0}, "seed size must be at least 1, got 0"),
        ({"batch_size": 0}, "batch size must be at least 1, got 0"),
        ({"budget": 5}, r"budget must be at least 10, got 5 \(the budget counts the seed labels\)"),
        ({"repeats": 0}, "repeats must be at least 1, got 0"),
        ({"test_size": 1.0}, "test size must be a fraction strictly between 0 and 1, got 1.0"),
        ({"test_size": 0.0}, "test size must be a fraction strictly between 0 and 1"),
        (
            {"seed_size": 200, "budget": 300},
            r"only 168 training rows \(240 rows, test size 0.3\) for a seed of 200",
        ),
        ({"model": "svm"}, "unknown model 'svm'"),
    ],
)
def test_bad_parameters(overrides: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message) as info:
        run(blobs(), **overrides)
    assert "\n" not in str(info.value)


def test_single_class_dataset_is_rejected() -> None:
    ds = Dataset("one", "numeric", np.zeros(50, dtype=np.intp), ("a", "b"), X=np.ones((50, 2)))
    with pytest.raises(ValueError, match=r"single class \('a' in all 50 rows\)"):
        run(ds)


@given(
    seed=st.integers(1, 50), batch=st.integers(1, 30), extra=st.integers(0, 200),
    n_train=st.integers(1, 300),
)  # fmt: skip
def test_curve_grid(seed: int, batch: int, extra: int, n_train: int) -> None:
    budget = seed + extra
    grid = curve_grid(seed, batch, budget, n_train)
    cap = min(budget, n_train)
    assert grid[0] == min(seed, cap)
    assert grid[-1] == cap
    steps = np.diff(grid)
    assert (steps >= 1).all()
    assert (steps <= batch).all()
    assert (steps[:-1] == batch).all()


def test_default_model_runs_and_config_has_no_model_params() -> None:
    result = simulate(
        blobs(), strategies=["margin"], seed_size=10, batch_size=10, budget=20, repeats=1
    )
    assert "model_params" not in result.config
    assert [p.n_labeled for p in result.curves["margin"]] == [10, 20]


def test_model_params_reach_the_model_and_the_config() -> None:
    ds = blobs()
    plain = run(ds, strategies=["margin"], repeats=1)
    small = run(ds, strategies=["margin"], repeats=1, model_params={"C": 1e-4})
    assert plain.config["model_params"] == {"calibrate": False}
    assert small.config["model_params"] == {"C": 1e-4}
    assert plain.curves["margin"] != small.curves["margin"]


@pytest.mark.parametrize("model", MODEL_NAMES)
def test_every_model_passes_the_check_and_runs(model: str) -> None:
    params = {"n_estimators": 5} if model == "random_forest" else {}
    result = run(blobs(60), strategies=["margin"], budget=20, repeats=1, model=model,
                 model_params=params)
    assert result.config["model"] == model


def test_featurizer_and_its_parameters_reach_the_features_and_the_config() -> None:
    digits = load_builtin("digits")
    params: dict[str, Any] = {"strategies": ["random"], "budget": 20, "repeats": 1}
    pixels = run(digits, **params)
    scaled = run(digits, featurizer="numeric", **params)
    assert pixels.config["featurizer"] == "auto"
    assert "featurizer_params" not in pixels.config
    assert scaled.config["featurizer"] == "numeric"
    assert pixels.curves["random"] != scaled.curves["random"]  # standardized, not [0, 1] pixels
    ds = blobs()
    picked = run(ds, featurizer="numeric", featurizer_params={"fields": [0, 1]}, **params)
    assert picked.config["featurizer_params"] == {"fields": [0, 1]}


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"featurizer": "text"}, "the text featurizer does not fit numeric data"),
        ({"featurizer": "words"}, "unknown featurizer 'words'"),
        ({"featurizer": "numeric", "featurizer_params": {"colour": 1}},
         "bad featurizer parameters for numeric"),
        ({"model": "svm"}, "unknown model 'svm'"),
        ({"model_params": {"C": -1}}, "bad parameters for model 'logistic_regression'"),
        ({"model_params": {"depth": 3}}, "bad parameters for model 'logistic_regression'"),
    ],
)
def test_bad_featurizer_or_model_is_refused_before_any_work(
    overrides: dict[str, Any], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        run(blobs(), **overrides)


def test_each_fit_self_trains_on_the_unlabeled_pool_unless_turned_off(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The simulation trains as a project's round does: the default model learns
    pseudo-labels from the pool items not labeled yet; ``pseudo_labels`` 0 hands it none."""
    from activelabel import models

    seen: list[tuple[int, int | None]] = []
    fit = models.Classifier.fit

    def spy(self: Any, X: Any, y: Any, unlabeled: Any = None) -> Any:
        seen.append((X.shape[0], None if unlabeled is None else unlabeled.shape[0]))
        return fit(self, X, y, unlabeled=unlabeled)

    monkeypatch.setattr(models.Classifier, "fit", spy)
    ds = blobs(200)
    run(ds, strategies=["random"], repeats=1, model_params={})
    pool = 140  # 200 rows, 30% tested
    loop = [s for s in seen if s[0] < pool]  # the full-data fit aside
    assert [n for n, _ in loop] == [10, 20, 30, 40]
    assert all(u == pool - n for n, u in loop)
    seen.clear()
    run(ds, strategies=["random"], repeats=1, model_params={"pseudo_labels": 0})
    assert {u for _, u in seen} == {None}
