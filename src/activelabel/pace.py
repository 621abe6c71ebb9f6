"""The team's pace, rounds sized and timed to it, the strategy schedule and the forecast.

Plain numbers and arrays in, plain numbers out (no I/O):

- :func:`team_pace`: labels per minute of the annotators active lately, from label timestamps.
- :func:`round_seconds`: the expected duration of the next round from the last ones.
- :func:`plan_cadence`: the batch size and the labels that trigger the next round, so that the
  ranked batch lasts until the next model is ready and the model is never more than
  ``max_model_lag`` labels behind.
- :func:`prefetch_for`: tasks an annotator's page keeps ahead, from their own pace.
- :func:`schedule_strategy`: representative while the model is immature, hybrid uncertainty
  once it matures (labels per class, holdout accuracy stable between rounds).
- :func:`forecast_labels`: labels to reach a target accuracy from an inverse power law
  ``acc = a - b * n^-c`` fitted on (labels, accuracy) points, with a parametric bootstrap.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

__all__ = [
    "EARLY_STRATEGY",
    "MATURE_STRATEGY",
    "Cadence",
    "Forecast",
    "Pace",
    "forecast_labels",
    "plan_cadence",
    "prefetch_for",
    "round_seconds",
    "schedule_strategy",
    "team_pace",
]

#: Strategy of ``strategy: auto`` while the model is immature (representative, diverse).
EARLY_STRATEGY = "kmeans"
#: Strategy of ``strategy: auto`` once the model is mature (hybrid uncertainty).
MATURE_STRATEGY = "cluster_margin"


# ---- pace ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Pace:
    """Labels per minute of the team (sum over active annotators) and of each of them."""

    labels_per_minute: float
    active_annotators: int
    per_annotator: dict[int, float] = field(default_factory=dict)
    window_s: float = 0.0


def team_pace(timestamps: ArrayLike, annotators: ArrayLike, now: float, *,
              window_s: float = 900.0, idle_s: float = 300.0, min_span_s: float = 60.0) -> Pace:
    """Pace from label times (seconds) and who gave each label.

    An annotator is active when their last label is at most ``idle_s`` old; their pace is their
    labels within the last ``window_s`` over the time since the first of them (at least
    ``min_span_s``, so a burst of two labels is not read as hundreds a minute). Labels in the
    future of ``now`` count as given now.
    """
    t = np.asarray(timestamps, dtype=np.float64).reshape(-1)
    who = np.asarray(annotators).reshape(-1)
    if t.shape != who.shape:
        raise ValueError(f"timestamps and annotators differ in length: {t.shape[0]} and "
                         f"{who.shape[0]}")
    if not (window_s > 0 and idle_s > 0 and min_span_s > 0):
        raise ValueError("window_s, idle_s and min_span_s must be positive")
    t = np.minimum(t, now)
    keep = np.isfinite(t) & (t >= now - window_s)
    t, who = t[keep], who[keep]
    per: dict[int, float] = {}
    for person in np.unique(who):
        mine = t[who == person]
        if now - mine.max() > idle_s:
            continue
        span = min(max(now - mine.min(), min_span_s), window_s)
        per[int(person)] = 60.0 * mine.shape[0] / span
    return Pace(float(sum(per.values())), len(per), per, float(window_s))


def round_seconds(durations: Sequence[float], *, last: int = 5) -> float | None:
    """Expected duration of the next round: the 75th percentile of the last ``last`` finished
    rounds' durations (None without any)."""
    d = np.asarray([x for x in durations if x is not None and math.isfinite(x) and x >= 0],
                   dtype=np.float64)[-last:]
    if d.shape[0] == 0:
        return None
    return float(np.percentile(d, 75))


@dataclass(frozen=True)
class Cadence:
    """A round's batch size and the labels since it that queue the next one, with why."""

    batch_size: int
    retrain_after: int
    labels_per_round: float  # the team's labels while one round runs
    reason: str


def plan_cadence(labels_per_minute: float | None, seconds_per_round: float | None, *,
                 max_model_lag: int, default_batch: int = 50, margin: float = 2.0,
                 min_batch: int = 10, max_batch: int = 5000) -> Cadence:
    """Batch and trigger from the pace and the round duration.

    While a round runs the team labels ``during = pace * duration``. The batch is ``margin *
    during`` (bounded by ``min_batch`` and ``max_batch``); the next round is queued once the
    ranked remainder of the batch falls to ``during`` (what the team labels before the next
    model is ready), or once the model is ``max_model_lag`` labels behind, whichever comes
    first. Without a measured pace or a finished round: ``default_batch``.
    """
    if max_model_lag < 1 or min_batch < 1 or max_batch < min_batch or margin < 1:
        raise ValueError("need max_model_lag >= 1, 1 <= min_batch <= max_batch, margin >= 1")
    if not labels_per_minute or seconds_per_round is None or labels_per_minute <= 0:
        batch = int(min(max(default_batch, min_batch), max_batch))
        trigger = max(1, min(batch, max_model_lag))
        return Cadence(batch, trigger, 0.0, "no measured pace or round yet: the default batch")
    during = labels_per_minute * seconds_per_round / 60.0
    batch = int(min(max(math.ceil(margin * during), min_batch), max_batch))
    remainder_rule = max(1, batch - math.ceil(during))
    trigger = max(1, min(remainder_rule, max_model_lag))
    why = (f"{labels_per_minute:.1f} labels/min x {seconds_per_round:.0f} s a round = "
           f"{during:.0f} labels while a round runs; batch {margin:g}x that")
    if batch in (min_batch, max_batch) and batch != math.ceil(margin * during):
        why += f", bounded to {batch}"
    why += (f"; next round after {trigger} labels" +
            (f" (max model lag {max_model_lag})" if trigger == max_model_lag else ""))
    return Cadence(batch, trigger, float(during), why)


def prefetch_for(labels_per_minute: float | None, *, lead_s: float = 60.0, lo: int = 3,
                 hi: int = 30, default: int = 10) -> int:
    """Tasks an annotator's page keeps ahead: what they label in ``lead_s`` (bounded)."""
    if not labels_per_minute or labels_per_minute <= 0 or not math.isfinite(labels_per_minute):
        return default
    return int(min(max(math.ceil(labels_per_minute * lead_s / 60.0), lo), hi))


# ---- strategy schedule -----------------------------------------------------------------------


def schedule_strategy(labels_per_class: Sequence[int], accuracies: Sequence[float | None], *,
                      previous: str | None = None, min_per_class: int = 5,
                      stable_within: float = 0.02) -> tuple[str, str]:
    """(strategy, reason) for ``strategy: auto``.

    Mature once every class has ``min_per_class`` labels and the holdout accuracy of the last
    two rounds moved by at most ``stable_within`` (without holdout accuracies: twice
    ``min_per_class`` labels per class). A schedule that reached :data:`MATURE_STRATEGY` keeps
    it.
    """
    if previous == MATURE_STRATEGY:
        return MATURE_STRATEGY, "the model matured in an earlier round"
    counts = [int(c) for c in labels_per_class]
    fewest = min(counts) if counts else 0
    if fewest < min_per_class:
        return EARLY_STRATEGY, (f"immature: the rarest class has {fewest} labels "
                                f"(< {min_per_class})")
    acc = [float(a) for a in accuracies if a is not None and math.isfinite(a)]
    if len(acc) >= 2:
        moved = abs(acc[-1] - acc[-2])
        if moved <= stable_within:
            return MATURE_STRATEGY, (f"mature: every class has >= {min_per_class} labels and "
                                     f"holdout accuracy moved {moved:.3f} (<= "
                                     f"{stable_within:g}) between the last rounds")
        return EARLY_STRATEGY, (f"immature: holdout accuracy still moves ({moved:.3f} > "
                                f"{stable_within:g} between the last rounds)")
    if not acc and fewest >= 2 * min_per_class:
        return MATURE_STRATEGY, (f"mature: every class has >= {2 * min_per_class} labels "
                                 "(no holdout accuracy to check)")
    return EARLY_STRATEGY, "immature: fewer than two rounds with a holdout accuracy"


# ---- forecast --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Forecast:
    """Labels (in total) at which the fitted curve reaches ``target``, with an interval.

    ``labels`` is None when there is no forecast (``reason`` says why); ``high`` is None when
    the target is out of reach in more than a tenth of the bootstrap fits. ``params`` are the
    fitted (a, b, c).
    """

    target: float
    labels: int | None
    low: int | None
    high: int | None
    reason: str
    params: tuple[float, float, float] | None = None
    reached: bool = False


def _curve(n: Any, a: float, b: float, c: float) -> Any:
    return a - b * np.power(n, -c)


def _fit(n: np.ndarray, y: np.ndarray) -> tuple[float, float, float] | None:
    from scipy.optimize import curve_fit

    b0 = max(float(y.max() - y.min()), 0.05) * float(n.min()) ** 0.5
    try:
        params, _ = curve_fit(_curve, n, y, p0=(min(float(y.max()) + 0.05, 1.0), b0, 0.5),
                              bounds=([0.0, 0.0, 0.05], [1.0, np.inf, 3.0]), maxfev=5000)
    except (RuntimeError, ValueError):
        return None
    a, b, c = (float(p) for p in params)
    return (a, b, c) if all(math.isfinite(p) for p in (a, b, c)) else None


def _needed(params: tuple[float, float, float], target: float, cap: float) -> float:
    a, b, c = params
    if a <= target:
        return math.inf
    n = (b / (a - target)) ** (1.0 / c) if b > 0 else 1.0
    return n if n <= cap else math.inf


def forecast_labels(n_labels: Sequence[float], accuracy: Sequence[float], target: float, *,
                    min_points: int = 4, n_boot: int = 200, level: float = 0.9,
                    cap_factor: float = 100.0, random_state: int = 0) -> Forecast:
    """Labels (total) to reach ``target`` accuracy: the inverse power law fitted on the
    points, and a ``level`` interval from refits on the fitted curve plus normal noise of the
    residuals' spread (their sum of squares over the points less the three parameters). A forecast beyond
    ``cap_factor`` times the labels seen counts as out of reach."""
    if not 0 < target <= 1:
        raise ValueError(f"target must be in (0, 1], got {target!r}")
    pts = sorted({float(n): float(a) for n, a in zip(n_labels, accuracy, strict=True)
                  if n is not None and a is not None and math.isfinite(float(a))
                  and float(n) > 0}.items())
    if pts and pts[-1][1] >= target:
        n_last = int(pts[-1][0])
        return Forecast(target, n_last, n_last, n_last, "target reached", reached=True)
    if len(pts) < min_points:
        return Forecast(target, None, None, None,
                        f"not enough rounds to forecast yet ({len(pts)} of {min_points} "
                        "with a holdout accuracy)")
    n = np.asarray([p[0] for p in pts])
    y = np.asarray([p[1] for p in pts])
    params = _fit(n, y)
    if params is None:
        return Forecast(target, None, None, None, "the learning curve could not be fitted")
    cap = cap_factor * float(n.max())
    point = _needed(params, target, cap)
    fitted = _curve(n, *params)
    dof = max(n.shape[0] - 3, 1)
    sigma = max(math.sqrt(float(np.sum((y - fitted) ** 2)) / dof), 1e-4)
    rng = np.random.default_rng(random_state)
    draws = []
    for _ in range(n_boot):
        refit = _fit(n, fitted + rng.normal(0.0, sigma, size=n.shape[0]))
        draws.append(math.inf if refit is None else _needed(refit, target, cap))
    d = np.minimum(np.asarray(draws), 2.0 * cap)  # out of reach: beyond the cap
    tail = (1.0 - level) / 2.0
    lo_q, hi_q = (float(q) for q in np.quantile(d, [tail, 1.0 - tail]))
    low = None if lo_q > cap else max(math.ceil(lo_q), int(n.max()))
    high = None if hi_q > cap else max(math.ceil(hi_q), int(n.max()))
    if not math.isfinite(point):
        return Forecast(target, None, low, None,
                        f"the fitted curve levels off at {params[0]:.3f}, below the target "
                        f"{target:g}", params)
    labels = max(math.ceil(point), int(n.max()))
    low = labels if low is None else min(low, labels)
    high = None if high is None else max(high, labels)
    return Forecast(target, labels, low, high, "inverse power law fit", params)
