"""Stopping rules: when do more labels stop paying?

Each rule looks at the history of rounds (oldest first) and returns a :class:`StopDecision`
whose ``reason`` carries the numbers it decided on, so a dashboard can show it as is.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from itertools import pairwise
from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray
from sklearn.metrics import cohen_kappa_score

__all__ = [
    "KAPPA_METRIC",
    "Budget",
    "LowUncertainty",
    "RoundState",
    "StabilizingPredictions",
    "StopDecision",
    "StoppingRule",
    "TargetAccuracy",
    "check_stopping",
    "stop_set_kappa",
]


#: A round's metric: Cohen's kappa between its model's and the previous model's predictions on
#: the stop set.
KAPPA_METRIC = "stop_set_kappa"


def stop_set_kappa(previous: NDArray[Any], current: NDArray[Any]) -> float:
    """Cohen's kappa between two models' predicted labels on the same stop set."""
    return _kappa(np.asarray(previous).reshape(-1), np.asarray(current).reshape(-1))


@dataclass(frozen=True)
class RoundState:
    """What a stopping rule may know about one finished round.

    ``n_labeled``: labels the round's model was trained on. ``metrics``: holdout scores, e.g.
    ``{"accuracy": 0.91, "macro_f1": 0.88}``. ``stop_set_predictions``: (n_stop,) the model's
    predicted labels on a fixed, unlabeled stop set (the same items every round; (n_stop,
    n_labels) 0/1 for multi-label). ``pool_uncertainty``: (n_pool,) uncertainty of each
    unlabeled pool item, e.g. ``1 - max(probs)``.
    """

    n_labeled: int
    metrics: dict[str, float] = field(default_factory=dict)
    stop_set_predictions: NDArray[Any] | None = None
    pool_uncertainty: NDArray[np.floating[Any]] | None = None


@dataclass(frozen=True)
class StopDecision:
    """A rule's verdict: ``stop`` or not, the rule's ``rule`` name and a ``reason`` with numbers."""

    stop: bool
    rule: str
    reason: str


class StoppingRule:
    """Base class: ``check(history) -> StopDecision``; ``history`` is oldest round first."""

    name: str = ""

    def check(self, history: Sequence[RoundState]) -> StopDecision:
        raise NotImplementedError

    def __repr__(self) -> str:
        params = ", ".join(f"{k}={v!r}" for k, v in vars(self).items() if not k.endswith("_"))
        return f"{type(self).__name__}({params})"

    def _decide(self, stop: bool, reason: str) -> StopDecision:
        return StopDecision(stop=stop, rule=self.name, reason=reason)

    def _last(self, history: Sequence[RoundState]) -> RoundState | None:
        for state in history:
            if not isinstance(state, RoundState):
                raise TypeError(f"history must hold RoundState objects, got {type(state).__name__}")
        return history[-1] if history else None


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float | np.integer | np.floating) and not isinstance(value, bool)


class Budget(StoppingRule):
    """Stop once ``max_labels`` labels have been spent (positive integer)."""

    name = "budget"

    def __init__(self, max_labels: int) -> None:
        self.max_labels = max_labels

    def check(self, history: Sequence[RoundState]) -> StopDecision:
        if not _is_number(self.max_labels) or self.max_labels < 1:
            raise ValueError(
                f"max_labels must be a positive number of labels, got {self.max_labels!r}"
            )
        last = self._last(history)
        spent = 0 if last is None else last.n_labeled
        if spent >= self.max_labels:
            return self._decide(True, f"budget spent: {spent} of {self.max_labels} labels")
        left = self.max_labels - spent
        return self._decide(
            False, f"budget not spent: {spent} of {self.max_labels} labels ({left} left)"
        )


class TargetAccuracy(StoppingRule):
    """Stop once the last round's holdout ``metric`` is at least ``target`` (in (0, 1])."""

    name = "target_accuracy"

    def __init__(self, target: float, metric: str = "accuracy") -> None:
        self.target = target
        self.metric = metric

    def check(self, history: Sequence[RoundState]) -> StopDecision:
        if not _is_number(self.target) or not 0 < self.target <= 1:
            raise ValueError(f"target must be in (0, 1], got {self.target!r}")
        last = self._last(history)
        if last is None:
            return self._decide(
                False, f"no round evaluated yet (target {self.metric} {self.target:g})"
            )
        value = last.metrics.get(self.metric)
        if value is None or not math.isfinite(value):  # e.g. no labeled holdout item
            return self._decide(
                False, f"no holdout {self.metric} in the last round: label holdout items "
                "(imported with split \"holdout\") to measure it"
            )
        if value >= self.target:
            return self._decide(
                True, f"holdout {self.metric} {value:.3f} >= target {self.target:g}"
            )
        return self._decide(False, f"holdout {self.metric} {value:.3f} < target {self.target:g}")


def _kappa(a: NDArray[Any], b: NDArray[Any]) -> float:
    """Cohen's kappa of two prediction vectors; identical vectors give 1.0 (even constant ones,
    where kappa is 0/0)."""
    if np.array_equal(a, b):
        return 1.0
    value = float(cohen_kappa_score(a, b))
    return value if math.isfinite(value) else 0.0


def _successive_kappas(predictions: list[NDArray[Any]]) -> list[float]:
    """Kappa between each pair of successive (n_stop,) prediction vectors."""
    for older, newer in pairwise(predictions):
        if older.shape != newer.shape:
            raise ValueError(
                f"the stop set must be the same items every round; predictions of "
                f"{older.shape[0]} and {newer.shape[0]} items were given"
            )
    return [_kappa(a, b) for a, b in pairwise(predictions)]


def _compared_models(history: Sequence[RoundState]) -> int:
    """Models compared on the stop set by the kappas the last rounds recorded in a row (each
    with the model before it); when the last round recorded none, 1 if it scored the pool
    (it has a model, the first of a new run) and 0 if not (a cold start)."""
    run = 0
    for state in reversed(history):
        if not _is_number(state.metrics.get(KAPPA_METRIC)):
            break
        run += 1
    if run:
        return run + 1
    return int(bool(history) and history[-1].pool_uncertainty is not None)


class StabilizingPredictions(StoppingRule):
    """Stop when successive models agree on a fixed stop set (Bloodgood & Vijay-Shanker 2009).

    Cohen's kappa is computed between the stop-set predictions of each pair of successive
    rounds that have them; the rule stops when the last ``window`` kappas are all
    ``>= threshold`` (so it needs ``window + 1`` models). Multi-label predictions are compared
    label by label (flattened). Rounds that recorded their kappa with the model before them
    (``metrics[KAPPA_METRIC]``) need no predictions.
    """

    name = "stabilizing_predictions"

    def __init__(self, threshold: float = 0.99, window: int = 3) -> None:
        self.threshold = threshold
        self.window = window

    def check(self, history: Sequence[RoundState]) -> StopDecision:
        self._validate()
        self._last(history)
        preds = [s.stop_set_predictions for s in history if s.stop_set_predictions is not None]
        need = self.window + 1
        recorded = [s.metrics.get(KAPPA_METRIC) for s in history[-self.window:]]
        if len(preds) < need and len(recorded) == self.window and all(
                _is_number(k) for k in recorded):
            return self._verdict([float(k) for k in recorded if k is not None], need)
        if len(preds) < need:
            return self._decide(
                False, f"need stop-set predictions from {need} models to compare, have "
                       f"{max(len(preds), _compared_models(history))}")
        return self._verdict(
            _successive_kappas([np.asarray(p).reshape(-1) for p in preds[-need:]]), need)

    def _verdict(self, kappas: list[float], need: int) -> StopDecision:
        shown = ", ".join(f"{k:.3f}" for k in kappas)
        where = f"between the last {need} models on the stop set"
        if all(k >= self.threshold for k in kappas):
            return self._decide(
                True, f"predictions stable: Cohen's kappa {shown} {where} >= {self.threshold:g}"
            )
        return self._decide(
            False,
            f"predictions not yet stable: Cohen's kappa {shown} {where}; "
            f"need all >= {self.threshold:g}",
        )

    def _validate(self) -> None:
        if not _is_number(self.threshold) or not -1 <= self.threshold <= 1:
            raise ValueError(f"threshold must be a kappa in [-1, 1], got {self.threshold!r}")
        if not isinstance(self.window, int | np.integer) or self.window < 1:
            raise ValueError(f"window must be a positive integer of rounds, got {self.window!r}")


class LowUncertainty(StoppingRule):
    """Stop when the pool's uncertainty ``statistic`` ("max" or "mean") is below ``threshold``.

    An empty pool (nothing left to label) also stops.
    """

    name = "low_uncertainty"

    def __init__(self, threshold: float, statistic: Literal["max", "mean"] = "max") -> None:
        self.threshold = threshold
        self.statistic = statistic

    def check(self, history: Sequence[RoundState]) -> StopDecision:
        if not _is_number(self.threshold) or not self.threshold > 0:
            raise ValueError(f"threshold must be a positive uncertainty, got {self.threshold!r}")
        if self.statistic not in ("max", "mean"):
            raise ValueError(f"statistic must be 'max' or 'mean', got {self.statistic!r}")
        last = self._last(history)
        if last is None or last.pool_uncertainty is None:
            return self._decide(False, "no pool uncertainty recorded for the last round yet")
        u = np.asarray(last.pool_uncertainty, dtype=np.float64).reshape(-1)
        if u.shape[0] == 0:
            return self._decide(True, "pool empty: no unlabeled items left")
        value = float(u.max() if self.statistic == "max" else u.mean())
        verdict = "<" if value < self.threshold else ">="
        return self._decide(
            value < self.threshold,
            f"pool uncertainty {self.statistic} {value:.3g} {verdict} {self.threshold:g}",
        )


def check_stopping(
    rules: Iterable[StoppingRule], history: Sequence[RoundState]
) -> list[StopDecision]:
    """The decisions of ``rules`` on ``history`` that say stop (empty: keep labeling)."""
    return [d for d in (rule.check(history) for rule in rules) if d.stop]
