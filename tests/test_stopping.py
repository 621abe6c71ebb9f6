from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
import pytest

from activelabel.stopping import (
    Budget,
    LowUncertainty,
    RoundState,
    StabilizingPredictions,
    StopDecision,
    TargetAccuracy,
    check_stopping,
)


def test_round_state_is_frozen_with_empty_metrics_by_default() -> None:
    a, b = RoundState(n_labeled=10), RoundState(n_labeled=20)
    assert a.metrics == {}
    assert a.metrics is not b.metrics
    assert a.stop_set_predictions is None
    assert a.pool_uncertainty is None
    with pytest.raises(dataclasses.FrozenInstanceError):
        a.n_labeled = 5  # type: ignore[misc]


# ---- budget ----------------------------------------------------------------------------------


def test_budget() -> None:
    rule = Budget(300)
    assert rule.check([RoundState(100), RoundState(300)]) == StopDecision(
        True, "budget", "budget spent: 300 of 300 labels"
    )
    keep = rule.check([RoundState(120)])
    assert not keep.stop
    assert keep.reason == "budget not spent: 120 of 300 labels (180 left)"
    assert not rule.check([]).stop


@pytest.mark.parametrize("bad", [-5, 0, "many"])
def test_budget_rejects_bad_budget_when_checked(bad: object) -> None:
    rule = Budget(bad)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="max_labels must be a positive number"):
        rule.check([RoundState(1)])


# ---- target accuracy -------------------------------------------------------------------------


def test_target_accuracy() -> None:
    rule = TargetAccuracy(0.95)
    hit = rule.check([RoundState(50, {"accuracy": 0.9}), RoundState(80, {"accuracy": 0.953})])
    assert hit.stop
    assert hit.reason == "holdout accuracy 0.953 >= target 0.95"
    assert hit.rule == "target_accuracy"
    miss = rule.check([RoundState(80, {"accuracy": 0.9})])
    assert not miss.stop
    assert miss.reason == "holdout accuracy 0.900 < target 0.95"


def test_target_accuracy_other_metric_and_missing_metric() -> None:
    rule = TargetAccuracy(0.8, metric="macro_f1")
    assert rule.check([RoundState(10, {"macro_f1": 0.8})]).stop
    missing = rule.check([RoundState(10, {"accuracy": 0.99})])
    assert not missing.stop
    assert "no holdout macro_f1" in missing.reason
    assert 'label holdout items (imported with split "holdout")' in missing.reason
    assert not rule.check([]).stop


@pytest.mark.parametrize("bad", [0.0, -0.1, 1.5])
def test_target_accuracy_rejects_target_outside_unit_interval(bad: float) -> None:
    with pytest.raises(ValueError, match=r"target must be in \(0, 1\]"):
        TargetAccuracy(bad).check([RoundState(1, {"accuracy": 0.5})])


# ---- stabilizing predictions -----------------------------------------------------------------


def _rounds(predictions: list[np.ndarray]) -> list[RoundState]:
    return [RoundState(10 * (i + 1), stop_set_predictions=p) for i, p in enumerate(predictions)]


def _flip(base: np.ndarray, n: int) -> np.ndarray:
    out = base.copy()
    out[:n] = 1 - out[:n]
    return out


def test_stabilizing_predictions_stops_when_last_window_kappas_reach_threshold() -> None:
    base = np.tile([0, 1], 500)
    history = _rounds([_flip(base, 300), _flip(base, 2), _flip(base, 1), base, base])
    decision = StabilizingPredictions(threshold=0.99, window=3).check(history)
    assert decision.stop
    assert decision.reason == (
        "predictions stable: Cohen's kappa 0.998, 0.998, 1.000 between the last 4 models on "
        "the stop set >= 0.99"
    )


def test_stabilizing_predictions_keeps_going_when_one_kappa_is_low() -> None:
    base = np.tile([0, 1], 500)
    history = _rounds([base, _flip(base, 100), _flip(base, 100), _flip(base, 100)])
    decision = StabilizingPredictions(threshold=0.99, window=3).check(history)
    assert not decision.stop
    assert decision.reason.startswith("predictions not yet stable: Cohen's kappa 0.800, 1.000")
    assert "need all >= 0.99" in decision.reason


def test_stabilizing_predictions_needs_window_plus_one_models() -> None:
    base = np.tile([0, 1], 50)
    history = _rounds([base, base, base])
    history.insert(1, RoundState(15))  # a round without stop-set predictions is skipped
    decision = StabilizingPredictions(window=3).check(history)
    assert not decision.stop
    assert decision.reason.endswith("from 4 models to compare, have 3")
    assert StabilizingPredictions(window=2).check(history).stop


def test_stabilizing_predictions_constant_predictions() -> None:
    same = np.zeros(50, dtype=int)
    assert StabilizingPredictions(window=1).check(_rounds([same, same])).stop  # kappa 1.0
    other = np.ones(50, dtype=int)
    decision = StabilizingPredictions(window=1).check(_rounds([same, other]))
    assert not decision.stop
    assert "kappa 0.000" in decision.reason


def test_stabilizing_predictions_string_and_multilabel_predictions() -> None:
    labels = np.array(["a", "b", "c"] * 20)
    assert StabilizingPredictions(window=2).check(_rounds([labels] * 3)).stop
    Y = np.tile([[1, 0], [0, 1]], (30, 1))
    changed = Y.copy()
    changed[:10] = 1 - changed[:10]
    assert not StabilizingPredictions(window=1).check(_rounds([Y, changed])).stop


def test_stabilizing_predictions_rejects_a_changing_stop_set() -> None:
    with pytest.raises(ValueError, match=r"same items every round.*100 and 90"):
        StabilizingPredictions(window=1).check(_rounds([np.zeros(100), np.zeros(90)]))


@pytest.mark.parametrize(
    ("params", "match"), [({"window": 0}, "window"), ({"threshold": 2}, "kappa")]
)
def test_stabilizing_predictions_rejects_bad_parameters(params: dict[str, Any], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        StabilizingPredictions(**params).check([])


# ---- low uncertainty -------------------------------------------------------------------------


def test_low_uncertainty_max_and_mean() -> None:
    u = np.array([0.01, 0.02, 0.08])
    history = [RoundState(10, pool_uncertainty=np.array([0.5])), RoundState(20, pool_uncertainty=u)]
    stop = LowUncertainty(0.1).check(history)
    assert stop.stop
    assert stop.reason == "pool uncertainty max 0.08 < 0.1"
    assert not LowUncertainty(0.05).check(history).stop
    mean = LowUncertainty(0.05, statistic="mean").check(history)
    assert mean.stop
    assert mean.reason == "pool uncertainty mean 0.0367 < 0.05"


def test_low_uncertainty_without_data_and_with_empty_pool() -> None:
    assert not LowUncertainty(0.1).check([RoundState(10)]).stop
    assert not LowUncertainty(0.1).check([]).stop
    empty = LowUncertainty(0.1).check([RoundState(10, pool_uncertainty=np.empty(0))])
    assert empty.stop
    assert "pool empty" in empty.reason


@pytest.mark.parametrize(
    ("params", "match"),
    [({"threshold": 0}, "positive"), ({"threshold": 0.1, "statistic": "p90"}, "max")],
)
def test_low_uncertainty_rejects_bad_parameters(params: dict[str, Any], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        LowUncertainty(**params).check([])


# ---- check_stopping --------------------------------------------------------------------------


def test_check_stopping_returns_only_decisions_that_stop() -> None:
    history = [RoundState(300, {"accuracy": 0.9}, pool_uncertainty=np.array([0.05]))]
    rules = [Budget(300), TargetAccuracy(0.95), LowUncertainty(0.1)]
    decisions = check_stopping(rules, history)
    assert [d.rule for d in decisions] == ["budget", "low_uncertainty"]
    assert all(d.stop for d in decisions)
    assert check_stopping([TargetAccuracy(0.95)], history) == []


def test_history_must_hold_round_states() -> None:
    with pytest.raises(TypeError, match="RoundState"):
        Budget(10).check([{"n_labeled": 10}])  # type: ignore[list-item]


def test_stabilizing_predictions_reads_recorded_kappas() -> None:
    from activelabel.stopping import KAPPA_METRIC

    rule = StabilizingPredictions(threshold=0.9, window=2)
    steady = [RoundState(10), RoundState(20, {KAPPA_METRIC: 0.95}),
              RoundState(30, {KAPPA_METRIC: 0.97})]
    assert rule.check(steady).stop
    moving = [*steady[:2], RoundState(30, {KAPPA_METRIC: 0.5})]
    decision = rule.check(moving)
    assert not decision.stop
    assert "0.950, 0.500" in decision.reason
    assert not rule.check(steady[1:2]).stop  # one kappa is not enough


def test_stabilizing_predictions_counts_the_models_its_recorded_kappas_compared() -> None:
    """A project's rounds record each kappa with the model before and store no predictions:
    short of the window, the verdict counts the models those kappas compared, not 0."""
    from activelabel.stopping import KAPPA_METRIC

    rule = StabilizingPredictions(window=3)
    # the cold start, then the first model (it scored the pool: a round records its pool
    # uncertainty only with a model)
    cold, first = RoundState(0), RoundState(20, pool_uncertainty=np.array([0.4, 0.2]))
    history = [cold, RoundState(20), RoundState(40, {KAPPA_METRIC: 0.8}),
               RoundState(60, {KAPPA_METRIC: 0.9})]
    assert rule.check(history).reason.endswith("from 4 models to compare, have 3")
    assert rule.check(history[:3]).reason.endswith("from 4 models to compare, have 2")
    assert rule.check([cold, first]).reason.endswith("from 4 models to compare, have 1")
    assert rule.check([cold]).reason.endswith("from 4 models to compare, have 0")
    # a round without a kappa (the model before it another kind) starts the count again
    broken = [*history, RoundState(80), RoundState(100, {KAPPA_METRIC: 0.99})]
    assert rule.check(broken).reason.endswith("from 4 models to compare, have 2")
