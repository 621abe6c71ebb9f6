"""The team's pace, rounds sized and timed to it, the strategy schedule and the forecast.

Plain numbers and arrays in, plain numbers out (no I/O):

- :func:`team_pace`: labels per minute of the annotators active lately, from label timestamps.
- :func:`round_seconds`: the expected duration of the next round from the last ones.
- :func:`plan_cadence`: the batch size and the labels that trigger the next round, so that the
  ranked batch lasts until the next model is ready and the model is never more than
  ``max_model_lag`` labels behind.
- :func:`prefetch_for`: tasks an annotator's page keeps ahead, from their own pace.
- :func:`schedule_strategy`: representative while the model is immature, hybrid uncertainty
  once it matures (labels per class on average, holdout accuracy stable between rounds).
- :func:`forecast_labels`: labels to reach a target accuracy from an inverse power law
  ``acc = a - b * n^-c`` fitted on (labels, accuracy) points, with a parametric bootstrap
  under autocorrelated noise.
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
    "resumed_strategy",
    "round_seconds",
    "schedule_strategy",
    "team_pace",
]

#: Strategy of ``strategy: auto`` while the model is immature: the typical item of each cluster no
#: label covers (TypiClust). k-means sampling was the early strategy before; with batches of 10
#: it took the same central items round after round (clinc150, 300 labels: 0.24 accuracy
#: against random sampling's 0.46; docs/benchmarks.md, "A new user's first run").
EARLY_STRATEGY = "typiclust"
#: Strategy of ``strategy: auto`` once the model is mature (hybrid uncertainty).
MATURE_STRATEGY = "cluster_margin"
#: Labels a class on average at which ``strategy: auto`` turns to :data:`MATURE_STRATEGY`.
#: Measured on clinc150 (151 classes, docs/benchmarks.md): TypiClust leads cluster-margin up to
#: about 5 labels a class; switching at 3 kept its lead and lost nothing after the switch,
#: switching at 5 fell 0.01 behind from 900 labels on.
MATURE_PER_CLASS = 3


# ---- pace ------------------------------------------------------------------------------------

#: Labels an item above which the team's work is counted in items (overlap): below it, a
#: relabel now and then, the labels and the items are the same count to a reader.
OVERLAP_FROM = 1.05


def counts_items(labels_per_item: float) -> bool:
    """Whether batches, the trigger, the model's lag and the forecast are said in labeled
    items rather than labels: with overlap, an item takes more than one label."""
    return labels_per_item > OVERLAP_FROM


@dataclass(frozen=True)
class Pace:
    """Labels per minute of the team (sum over active annotators) and of each of them, and
    the labels an item takes (above 1 with overlap: every item handed to two annotators
    takes two labels, so the team gets through half as many items as it gives labels)."""

    labels_per_minute: float
    active_annotators: int
    per_annotator: dict[int, float] = field(default_factory=dict)
    window_s: float = 0.0
    labels_per_item: float = 1.0

    @property
    def items_per_minute(self) -> float:
        """Items the team labels a minute: what a batch and a forecast are counted in."""
        return self.labels_per_minute / self.labels_per_item


def team_pace(timestamps: ArrayLike, annotators: ArrayLike, now: float, *,
              items: ArrayLike | None = None, window_s: float = 900.0, idle_s: float = 300.0,
              min_span_s: float = 60.0) -> Pace:
    """Pace from label times (seconds) and who gave each label (and, with ``items``, which
    item each labels).

    An annotator is active when their last label is at most ``idle_s`` old; their pace is their
    labels within the last ``window_s`` over the time since the first of them (at least
    ``min_span_s``, so a burst of two labels is not read as hundreds a minute). Labels in the
    future of ``now`` count as given now. ``labels_per_item`` is the window's labels over the
    items they label (1 without ``items``).
    """
    t = np.asarray(timestamps, dtype=np.float64).reshape(-1)
    who = np.asarray(annotators).reshape(-1)
    if t.shape != who.shape:
        raise ValueError(f"timestamps and annotators differ in length: {t.shape[0]} and "
                         f"{who.shape[0]}")
    what = None if items is None else np.asarray(items).reshape(-1)
    if what is not None and what.shape != t.shape:
        raise ValueError(f"timestamps and items differ in length: {t.shape[0]} and "
                         f"{what.shape[0]}")
    if not (window_s > 0 and idle_s > 0 and min_span_s > 0):
        raise ValueError("window_s, idle_s and min_span_s must be positive")
    t = np.minimum(t, now)
    keep = np.isfinite(t) & (t >= now - window_s)
    t, who = t[keep], who[keep]
    per_item = 1.0
    if what is not None and t.shape[0]:
        per_item = max(t.shape[0] / np.unique(what[keep]).shape[0], 1.0)
    per: dict[int, float] = {}
    for person in np.unique(who):
        mine = t[who == person]
        if now - mine.max() > idle_s:
            continue
        span = min(max(now - mine.min(), min_span_s), window_s)
        per[int(person)] = 60.0 * mine.shape[0] / span
    return Pace(float(sum(per.values())), len(per), per, float(window_s), float(per_item))


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
    """A round's batch size and the labeled items since it that queue the next one, with why."""

    batch_size: int
    retrain_after: int
    labels_per_round: float  # the items the team labels while one round runs
    reason: str


def plan_cadence(labels_per_minute: float | None, seconds_per_round: float | None, *,
                 max_model_lag: int, default_batch: int = 50, margin: float = 2.0,
                 min_batch: int = 10, max_batch: int = 5000,
                 labels_per_item: float = 1.0) -> Cadence:
    """Batch and trigger (in items) from the pace and the round duration.

    While a round runs the team labels ``during = pace * duration / labels_per_item`` items
    (with overlap an item takes several labels). The batch is ``margin * during`` (bounded by
    ``min_batch`` and ``max_batch``); the next round is queued once the ranked remainder of
    the batch falls to ``during`` (what the team labels before the next model is ready), or
    once the model is ``max_model_lag`` labeled items behind, whichever comes first. Without
    a measured pace or a finished round: ``default_batch``.
    """
    if max_model_lag < 1 or min_batch < 1 or max_batch < min_batch or margin < 1:
        raise ValueError("need max_model_lag >= 1, 1 <= min_batch <= max_batch, margin >= 1")
    if not labels_per_minute or seconds_per_round is None or labels_per_minute <= 0:
        batch = int(min(max(default_batch, min_batch), max_batch))
        trigger = max(1, min(batch, max_model_lag))
        return Cadence(batch, trigger, 0.0, "no measured pace or round yet: the default batch")
    if not (math.isfinite(labels_per_item) and labels_per_item >= 1):
        raise ValueError(f"labels_per_item must be at least 1, got {labels_per_item}")
    labels = labels_per_minute * seconds_per_round / 60.0
    during = labels / labels_per_item
    batch = int(min(max(math.ceil(margin * during), min_batch), max_batch))
    remainder_rule = max(1, batch - math.ceil(during))
    trigger = max(1, min(remainder_rule, max_model_lag))
    why = (f"{labels_per_minute:.1f} labels/min x {seconds_per_round:.0f} s a round = "
           f"{labels:.0f} labels while a round runs")
    unit = "labels"
    if counts_items(labels_per_item):  # overlap: the batch and the trigger count items
        why += f", {during:.0f} items at {labels_per_item:.1f} labels an item"
        unit = "items"
    why += f"; batch {margin:g}x that"
    if batch in (min_batch, max_batch) and batch != math.ceil(margin * during):
        why += f", bounded to {batch}"
    why += (f"; next round after {trigger} {unit}" +
            (f" (max model lag {max_model_lag})" if trigger == max_model_lag else ""))
    return Cadence(batch, trigger, float(during), why)


def prefetch_for(labels_per_minute: float | None, *, lead_s: float = 60.0, lo: int = 3,
                 hi: int = 30, default: int = 10) -> int:
    """Tasks an annotator's page keeps ahead: what they label in ``lead_s`` (bounded)."""
    if not labels_per_minute or labels_per_minute <= 0 or not math.isfinite(labels_per_minute):
        return default
    return int(min(max(math.ceil(labels_per_minute * lead_s / 60.0), lo), hi))


# ---- strategy schedule -----------------------------------------------------------------------


def resumed_strategy(previous: str | None) -> str:
    """The schedule's strategy for a re-rank, which trains nothing to decide anew: the last
    round's choice when it is :data:`MATURE_STRATEGY`, else :data:`EARLY_STRATEGY` (none yet,
    or an older schedule's early strategy such as ``kmeans``)."""
    return MATURE_STRATEGY if previous == MATURE_STRATEGY else EARLY_STRATEGY


def schedule_strategy(labels_per_class: Sequence[int], accuracies: Sequence[float | None], *,
                      previous: str | None = None, min_per_class: int = MATURE_PER_CLASS,
                      stable_within: float | None = None) -> tuple[str, str]:
    """(strategy, reason) for ``strategy: auto``.

    Mature once the labels reach ``min_per_class`` per class on average (``min_per_class`` x
    the classes in all, however they are spread over the classes). The count is the labels',
    not the rarest class's: with many classes, or one class rare in the pool, the rarest class
    reaches ``min_per_class`` late or never while representative sampling has long stopped
    helping. With ``stable_within``, the holdout accuracy of the last two rounds must also have
    moved by at most that much (without holdout accuracies: twice the labels); measured, that
    check held the switch back hundreds of labels past where uncertainty sampling pulls ahead
    (docs/benchmarks.md), so it is off by default. A schedule that reached
    :data:`MATURE_STRATEGY` keeps it, so more labels never turn it back.
    """
    if min_per_class < 1:
        raise ValueError(f"min_per_class must be >= 1, got {min_per_class}")
    if previous == MATURE_STRATEGY:
        return MATURE_STRATEGY, "the model matured in an earlier round"
    counts = [int(c) for c in labels_per_class]
    n_classes = max(len(counts), 1)
    total = sum(counts)
    needed = min_per_class * n_classes
    enough = (f"{total} labels for {n_classes} classes (>= {min_per_class} a class on "
              "average)")
    if total < needed:
        return EARLY_STRATEGY, (f"immature: {total} labels for {n_classes} classes (< "
                                f"{min_per_class} a class on average: {needed})")
    if stable_within is None:
        return MATURE_STRATEGY, f"mature: {enough}"
    acc = [float(a) for a in accuracies if a is not None and math.isfinite(a)]
    if len(acc) >= 2:
        moved = abs(acc[-1] - acc[-2])
        if moved <= stable_within:
            return MATURE_STRATEGY, (f"mature: {enough} and holdout accuracy moved "
                                     f"{moved:.3f} (<= {stable_within:g}) between the last "
                                     "rounds")
        return EARLY_STRATEGY, (f"immature: holdout accuracy still moves ({moved:.3f} > "
                                f"{stable_within:g} between the last rounds)")
    if not acc and total >= 2 * needed:
        return MATURE_STRATEGY, (f"mature: {total} labels for {n_classes} classes (>= "
                                 f"{2 * min_per_class} a class on average; no holdout "
                                 "accuracy to check)")
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


#: Exponents ``c`` the fit tries (for each, ``a`` and ``b`` are linear least squares).
EXPONENTS = np.geomspace(0.05, 3.0, 120)


def _fits(n: np.ndarray, Y: np.ndarray) -> np.ndarray:
    """(rows, 3) least-squares (a, b, c) of ``a - b * n^-c`` for each row of ``Y`` (rows, m),
    with 0 <= a <= 1 and b >= 0: for each exponent of :data:`EXPONENTS` the linear fit in
    (a, b), then the exponent with the least squared error."""
    x = np.power(n[None, :], -EXPONENTS[:, None])  # (C, m)
    xm = x.mean(axis=1, keepdims=True)
    xc = x - xm
    ym = Y.mean(axis=1, keepdims=True)  # (R, 1)
    sxx = np.sum(xc**2, axis=1)  # (C,)
    sxy = (Y - ym) @ xc.T  # (R, C)
    b = np.maximum(-sxy / np.where(sxx > 0, sxx, 1.0), 0.0)  # y = a - b x
    a = ym + b * xm[:, 0][None, :]
    over = a > 1.0  # a capped at 1: b from the fit with a fixed
    if over.any():
        bb = np.maximum(((1.0 - Y) @ x.T) / np.sum(x**2, axis=1)[None, :], 0.0)
        a, b = np.where(over, 1.0, a), np.where(over, bb, b)
    a = np.clip(a, 0.0, 1.0)
    # sum over points of (y - a + b x)^2, expanded: no (R, C, m) temporary
    syx = Y @ x.T
    sse = (np.sum(Y**2, axis=1)[:, None] - 2 * a * Y.sum(axis=1)[:, None] + 2 * b * syx
           + n.shape[0] * a**2 - 2 * a * b * x.sum(axis=1)[None, :]
           + b**2 * np.sum(x**2, axis=1)[None, :])
    best = np.argmin(sse, axis=1)
    rows = np.arange(Y.shape[0])
    return np.stack([a[rows, best], b[rows, best], EXPONENTS[best]], axis=1)


def _needed_all(params: np.ndarray, target: float, cap: float) -> np.ndarray:
    """Labels at which each fitted curve reaches ``target``; inf when never (or beyond
    ``cap``)."""
    a, b, c = params[:, 0], params[:, 1], params[:, 2]
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        n = np.where(b > 0, np.power(b / (a - target), 1.0 / c), 1.0)
    return np.where((a > target) & np.isfinite(n) & (n <= cap), n, np.inf)


#: Least lag-1 autocorrelation assumed of a learning curve's noise around the power law.
#: Successive points share most of their labels and the same holdout, so their errors are
#: correlated, and the residuals of a fit on a few points understate that. Chosen on random
#: sampling runs (benchmarks/forecast_coverage.py, docs/benchmarks.md): the 90% interval
#: covered 87% of the labels needed with 0, 91% with 0.3, 93% with 0.5 (and was a third wider).
AUTOCORRELATION_FLOOR = 0.3
#: Largest autocorrelation used (beyond it the noise is a drift the points cannot tell apart).
AUTOCORRELATION_CAP = 0.9


def _ar1_noise(rng: np.random.Generator, rho: float, sigma: float,
               shape: tuple[int, int]) -> np.ndarray:
    """(rows, m) stationary AR(1) noise: standard deviation ``sigma``, lag-1 correlation
    ``rho`` along each row."""
    e = rng.normal(0.0, 1.0, size=shape)
    out = np.empty(shape)
    out[:, 0] = e[:, 0]
    keep = math.sqrt(1.0 - rho**2)
    for j in range(1, shape[1]):
        out[:, j] = rho * out[:, j - 1] + keep * e[:, j]
    return sigma * out


def _noise_model(n: np.ndarray, residuals: np.ndarray,
                 params: tuple[float, float, float]) -> tuple[float, float]:
    """(rho, sigma) of AR(1) noise around the fitted curve.

    ``rho`` is the residuals' lag-1 autocorrelation, at least :data:`AUTOCORRELATION_FLOOR`
    and at most :data:`AUTOCORRELATION_CAP`. ``sigma`` is the residuals' sum of squares over
    its expectation per unit variance, ``trace((I - H) R)`` (``H`` the hat matrix of the
    curve linearized at the fit, ``R`` the AR(1) correlations): the fit absorbs much of slowly
    varying noise, so its residuals understate it; with independent noise this is the usual
    sum of squares over the points less the three parameters.
    """
    m = n.shape[0]
    rss = float(np.sum(residuals**2))
    lag1 = float(np.sum(residuals[1:] * residuals[:-1])) / rss if rss > 0 else 0.0
    rho = min(max(lag1, AUTOCORRELATION_FLOOR), AUTOCORRELATION_CAP)
    _, b, c = params
    power = np.power(n, -c)
    jac = np.stack([np.ones(m), -power, b * power * np.log(n)], axis=1)
    hat = jac @ np.linalg.pinv(jac)
    idx = np.arange(m)
    corr = rho ** np.abs(idx[:, None] - idx[None, :]).astype(np.float64)
    expected = float(np.trace((np.eye(m) - hat) @ corr))
    sigma = math.sqrt(rss / max(expected, 1e-9)) if rss > 0 else 0.0
    return rho, max(sigma, 1e-4)


#: Future rounds followed for a round's accuracy to reach the target by its noise.
FUTURE_ROUNDS = 500


def _first_rounds_at(params: np.ndarray, last_noise: np.ndarray, rho: float, sigma: float,
                     target: float, *, start: float, step: float, cap: float,
                     rng: np.random.Generator) -> np.ndarray:
    """Labels of the first future round whose accuracy (each curve of ``params`` plus its
    AR(1) noise, continued from ``last_noise``) reaches ``target``; inf when none of the next
    :data:`FUTURE_ROUNDS` rounds of ``step`` labels (up to ``cap``) does.

    The target counts as reached when a round's holdout accuracy reaches it, so a curve
    levelling off just below the target still gets there by its noise, and earlier than the
    curve itself when it rises slowly near the target."""
    first = np.full(params.shape[0], np.inf)
    if not step > 0:
        return first
    keep = math.sqrt(1.0 - rho**2)
    noise = last_noise.copy()
    a, b, c = params[:, 0], params[:, 1], params[:, 2]
    for k in range(1, FUTURE_ROUNDS + 1):
        labels = start + k * step
        if labels > cap:
            break
        noise = rho * noise + keep * rng.normal(0.0, sigma, size=noise.shape)
        hit = np.isinf(first) & (a - b * labels ** -c + noise >= target)
        first[hit] = labels
        if not np.isinf(first).any():
            break
    return first


def forecast_labels(n_labels: Sequence[float], accuracy: Sequence[float], target: float, *,
                    min_points: int = 4, n_boot: int = 200, level: float = 0.9,
                    cap_factor: float = 100.0, random_state: int = 0,
                    measure: str = "accuracy") -> Forecast:
    """Labels (total) to reach ``target`` accuracy: the inverse power law fitted on the
    points, and a ``level`` interval for the labels at which a round's accuracy first reaches
    the target: refits on the fitted curve plus autocorrelated (AR(1)) noise of the
    residuals' spread (:func:`_noise_model`), each followed over the next rounds with that
    noise continued (:func:`_first_rounds_at`). A learning curve's points are not independent
    draws around the law, and its rounds reach a target by their noise as well as by the
    curve; leaving both out made the interval too narrow. A forecast beyond ``cap_factor``
    times the labels seen counts as out of reach. ``measure``: what the points score, as
    the reasons name it (a multi-label project's "label F1")."""
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
                        f"with a holdout {measure})")
    n = np.asarray([p[0] for p in pts])
    y = np.asarray([p[1] for p in pts])
    fit = _fits(n, y[None, :])[0]
    params = (float(fit[0]), float(fit[1]), float(fit[2]))
    cap = cap_factor * float(n.max())
    point = float(_needed_all(fit[None, :], target, cap)[0])
    fitted = _curve(n, *params)
    rho, sigma = _noise_model(n, y - fitted, params)
    rng = np.random.default_rng(random_state)
    noise = _ar1_noise(rng, rho, sigma, (n_boot, n.shape[0]))
    refits = _fits(n, fitted[None, :] + noise)
    step = float(n[-1] - n[-2]) if n.shape[0] > 1 else float(n[-1])
    draws = np.minimum(_needed_all(refits, target, cap),
                       _first_rounds_at(refits, noise[:, -1], rho, sigma, target,
                                        start=float(n[-1]), step=step, cap=cap, rng=rng))
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
