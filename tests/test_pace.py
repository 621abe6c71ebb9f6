"""Pace, cadence, prefetch, strategy schedule and the learning-curve forecast (core maths)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from activelabel.pace import (
    EARLY_STRATEGY,
    MATURE_STRATEGY,
    counts_items,
    forecast_labels,
    plan_cadence,
    prefetch_for,
    round_seconds,
    schedule_strategy,
    team_pace,
)


def test_pace_of_steady_annotators_is_their_rate():
    now = 10_000.0
    # annotator 1: one label every 6 s for 10 min (10/min); annotator 2: every 3 s (20/min)
    t1 = now - np.arange(0, 600, 6.0)
    t2 = now - np.arange(0, 600, 3.0)
    pace = team_pace(np.concatenate([t1, t2]), [1] * t1.size + [2] * t2.size, now,
                     window_s=600)
    assert pace.active_annotators == 2
    assert pace.per_annotator[1] == pytest.approx(10, rel=0.05)
    assert pace.per_annotator[2] == pytest.approx(20, rel=0.05)
    assert pace.labels_per_minute == pytest.approx(30, rel=0.05)


def test_idle_annotators_and_old_labels_do_not_count():
    now = 5_000.0
    t = [now - 400, now - 390, now - 2_000, now - 10]
    pace = team_pace(t, [1, 1, 2, 3], now, window_s=900, idle_s=300)
    assert set(pace.per_annotator) == {3}  # 1 stopped 390 s ago, 2's label is too old
    assert pace.per_annotator[3] == pytest.approx(1.0)  # one label over the minimum span


def test_pace_refuses_mismatched_arrays():
    with pytest.raises(ValueError, match="differ in length"):
        team_pace([1.0, 2.0], [1], 3.0)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.floats(0, 3_000), st.integers(0, 5)), max_size=200),
       st.floats(1, 3_600))
def test_pace_is_bounded_by_labels_over_the_minimum_span(labels, window):
    now = 3_000.0
    t = [x for x, _ in labels]
    who = [w for _, w in labels]
    pace = team_pace(t, who, now, window_s=window, min_span_s=60.0)
    in_window = sum(1 for x in t if x >= now - window)
    assert 0 <= pace.labels_per_minute <= in_window * 60.0 / min(60.0, window) + 1e-9
    assert pace.active_annotators == len(pace.per_annotator) <= len(set(who))


def test_round_seconds_is_a_high_quantile_of_the_last_rounds():
    assert round_seconds([]) is None
    assert round_seconds([100, 10, 10, 10, 10, 10]) == pytest.approx(10)  # only the last 5
    assert round_seconds([10, 20, 30, 40, 50]) == pytest.approx(40)


def test_cadence_without_pace_keeps_the_default():
    c = plan_cadence(None, 30.0, max_model_lag=200, default_batch=50)
    assert (c.batch_size, c.retrain_after) == (50, 50)


@settings(max_examples=200, deadline=None)
@given(st.floats(0.1, 600), st.floats(1, 3_600), st.integers(1, 10_000),
       st.floats(1, 4))
def test_cadence_keeps_the_queue_and_the_lag(pace, seconds, lag, margin):
    c = plan_cadence(pace, seconds, max_model_lag=lag, margin=margin, min_batch=10,
                     max_batch=5_000)
    assert 10 <= c.batch_size <= 5_000
    assert 1 <= c.retrain_after <= min(lag, c.batch_size)
    during = pace * seconds / 60.0
    if margin * during <= 5_000 and c.batch_size > 1:
        # the ranked remainder at the trigger lasts while the next round runs
        assert c.batch_size - c.retrain_after >= min(during, c.batch_size - 1) - 1e-9


def test_cadence_batch_grows_with_pace():
    slow = plan_cadence(10, 60, max_model_lag=10_000)
    fast = plan_cadence(60, 60, max_model_lag=10_000)
    assert slow.batch_size == 20
    assert fast.batch_size == 120
    assert fast.retrain_after == 60
    assert "60.0 labels/min" in fast.reason


def test_with_overlap_the_pace_counts_items_too():
    """Two annotators label the same 50 items (overlap 2): 100 labels, 50 items. Batches and
    the trigger count items, so the plan counts the 50, not the 100 (before, with an overlap
    of 2 each round came after twice the labels planned, the model twice as far behind)."""
    now = 10_000.0
    t = np.concatenate([now - np.arange(0, 600, 12.0)] * 2)
    items = np.concatenate([np.arange(50)] * 2)
    pace = team_pace(t, [1] * 50 + [2] * 50, now, items=items, window_s=600)
    assert pace.labels_per_minute == pytest.approx(10, rel=0.05)
    assert pace.labels_per_item == pytest.approx(2.0)
    assert pace.items_per_minute == pytest.approx(5, rel=0.05)
    assert team_pace(t, [1] * 100, now, window_s=600).labels_per_item == 1.0  # items unknown
    one = plan_cadence(60, 60, max_model_lag=10_000)
    two = plan_cadence(60, 60, max_model_lag=10_000, labels_per_item=2.0)
    assert (one.batch_size, one.retrain_after) == (120, 60)
    assert (two.batch_size, two.retrain_after) == (60, 30)
    assert "30 items at 2.0 labels an item" in two.reason
    assert two.reason.endswith("next round after 30 items")
    with pytest.raises(ValueError, match="labels_per_item"):
        plan_cadence(60, 60, max_model_lag=100, labels_per_item=0.5)
    # a relabel now and then is not overlap: the plan, the forecast, the dashboard and the
    # CLI (through the outlook's "counts") all read this one rule
    assert (counts_items(1.0), counts_items(1.04), counts_items(1.2)) == (False, False, True)
    assert plan_cadence(60, 60, max_model_lag=10_000, labels_per_item=1.04).reason.endswith(
        "labels")
    with pytest.raises(ValueError, match="differ in length"):
        team_pace([1.0, 2.0], [1, 1], 3.0, items=[1])


@given(st.one_of(st.none(), st.floats(0, 1_000)))
def test_prefetch_is_bounded(rate):
    n = prefetch_for(rate, lo=3, hi=30)
    assert 3 <= n <= 30


def test_prefetch_follows_own_pace():
    assert prefetch_for(2.0) < prefetch_for(12.0) < prefetch_for(100.0)


def test_schedule_starts_representative_and_moves_to_hybrid():
    name, why = schedule_strategy([1, 4], [None])
    assert name == EARLY_STRATEGY == "typiclust"
    assert "5 labels for 2 classes" in why
    assert "average: 6" in why
    name, why = schedule_strategy([3, 4], [0.6, 0.7])  # the count alone decides by default
    assert name == MATURE_STRATEGY
    assert "7 labels for 2 classes" in why
    assert schedule_strategy([1, 1], [], previous=MATURE_STRATEGY)[0] == MATURE_STRATEGY


def test_schedule_with_a_stability_check_waits_for_the_holdout():
    check = {"stable_within": 0.02, "min_per_class": 5}
    assert schedule_strategy([6, 7], [0.6, 0.7], **check)[0] == EARLY_STRATEGY  # still moving
    name, why = schedule_strategy([6, 7], [0.70, 0.71], **check)
    assert name == MATURE_STRATEGY
    assert "moved 0.010" in why
    assert schedule_strategy([6, 7], [], **check)[0] == EARLY_STRATEGY
    assert schedule_strategy([10, 12], [], **check)[0] == MATURE_STRATEGY  # no holdout: more


def test_schedule_with_many_classes_counts_labels_not_the_rarest_class():
    # 151 classes, 141 of them with 4 labels and 10 still without one
    counts = [4] * 141 + [0] * 10
    name, why = schedule_strategy(counts, [0.50, 0.51])
    assert name == MATURE_STRATEGY
    assert "564 labels for 151 classes" in why
    # 2 labels a class on average: 302 of the 453 needed
    name, why = schedule_strategy([2] * 151, [0.50, 0.51])
    assert name == EARLY_STRATEGY
    assert "302 labels for 151 classes" in why
    assert "453" in why
    assert schedule_strategy([3] * 151, [0.50, 0.51])[0] == MATURE_STRATEGY
    assert schedule_strategy([4] * 151, [], min_per_class=5)[0] == EARLY_STRATEGY


def test_schedule_with_a_class_rare_in_the_pool():
    # a 1% class that representative sampling never reaches does not hold the switch back
    assert schedule_strategy([300, 2], [0.95, 0.95])[0] == MATURE_STRATEGY
    assert schedule_strategy([300, 0], [], previous=EARLY_STRATEGY)[0] == MATURE_STRATEGY
    # with the stability check, the holdout accuracy must also be stable
    assert schedule_strategy([300, 2], [0.90, 0.95], stable_within=0.02)[0] == EARLY_STRATEGY


def test_schedule_without_classes_stays_representative():
    assert schedule_strategy([], [0.5, 0.5])[0] == EARLY_STRATEGY


def test_schedule_refuses_a_count_below_one():
    with pytest.raises(ValueError, match="min_per_class must be >= 1"):
        schedule_strategy([0, 0], [], min_per_class=0)


@given(st.lists(st.integers(0, 40), min_size=1, max_size=30), st.data(),
       st.lists(st.one_of(st.none(), st.floats(0, 1)), max_size=4))
def test_schedule_more_labels_never_turn_mature_back(counts, data, accuracies):
    more = [c + data.draw(st.integers(0, 40)) for c in counts]
    if schedule_strategy(counts, accuracies)[0] == MATURE_STRATEGY:
        assert schedule_strategy(more, accuracies)[0] == MATURE_STRATEGY


def _law(n, a=0.9, b=2.0, c=0.5):
    return a - b * np.power(n, -c)


def test_forecast_recovers_a_noiseless_curve():
    n = np.array([50, 100, 200, 400, 800])
    f = forecast_labels(n, _law(n), 0.85)
    truth = (2.0 / 0.05) ** 2  # 1,600
    assert f.labels == pytest.approx(truth, rel=0.02)
    assert f.low is not None
    assert f.high is not None
    assert f.low <= f.labels <= f.high


def test_forecast_interval_covers_the_truth_under_noise():
    rng = np.random.default_rng(0)
    n = np.array([50, 100, 150, 200, 300, 400, 600])
    truth = (2.0 / 0.05) ** 2
    covered = 0
    for _ in range(20):
        y = _law(n) + rng.normal(0, 0.005, n.shape)
        f = forecast_labels(n, y, 0.85, n_boot=100, random_state=int(rng.integers(1000)))
        covered += f.low is not None and f.low <= truth <= (f.high or math.inf)
    assert covered >= 12  # a 90% interval: 14 of 20 here


def test_forecast_interval_covers_a_round_reaching_the_target_under_autocorrelated_noise():
    """A known power law plus AR(1) noise (lag-1 correlation 0.3: successive rounds share most
    of their labels and the holdout): fitted on 10 rounds of 20 labels, the 90% interval covers
    the labels of the first later round whose accuracy reaches the target in nearly 90 of 100
    runs (85; refits under independent noise around the one curve covered 72)."""
    rounds = np.arange(20, 4001, 20, dtype=float)
    rho, sigma, target = 0.3, 0.01, 0.8  # the law itself reaches 0.8 at 400 labels
    covered = 0
    for seed in range(100):
        rng = np.random.default_rng(1000 + seed)
        noise = np.empty(rounds.shape)
        noise[0] = rng.normal()
        for j in range(1, rounds.shape[0]):
            noise[j] = rho * noise[j - 1] + math.sqrt(1 - rho**2) * rng.normal()
        acc = _law(rounds) + sigma * noise
        seen = 10
        later = np.flatnonzero(acc[seen:] >= target)
        if acc[:seen].max() >= target or later.size == 0:
            continue
        truth = rounds[seen + later[0]]
        f = forecast_labels(rounds[:seen], acc[:seen], target)
        covered += f.low is not None and f.low <= truth <= (f.high or math.inf)
    assert covered >= 80


def test_forecast_says_why_not():
    assert "not enough rounds" in forecast_labels([10, 20], [0.5, 0.6], 0.9).reason
    unreachable = forecast_labels([50, 100, 200, 400, 800], _law(np.array(
        [50, 100, 200, 400, 800]), a=0.7), 0.9)
    assert unreachable.labels is None
    assert "levels off" in unreachable.reason
    done = forecast_labels([50, 100], [0.5, 0.95], 0.9)
    assert done.reached
    assert done.labels == 100


def test_forecast_refuses_a_bad_target():
    with pytest.raises(ValueError, match="target"):
        forecast_labels([1, 2, 3, 4], [0.1, 0.2, 0.3, 0.4], 1.5)


@pytest.mark.slow
def test_forecast_covers_the_labels_a_simulation_needed(shared_data: Path) -> None:
    """Simulate random sampling on ag_news (the default model, on the text features without
    sentence vectors: embedding 7,600 texts took most of the test's 270 s, and the forecast
    reads only the curve); fit on the first 8 points of each repeat and forecast the labels to
    an accuracy halfway to where the run ended; the interval covers the labels the run needed
    (first point of the 3-point running mean at the target) in most repeats (all 4 here)."""
    from collections import defaultdict

    from activelabel.datasets import load_file
    from activelabel.simulation import SimulationStep, simulate

    curves: dict[int, list[tuple[int, float]]] = defaultdict(list)

    def keep(step: SimulationStep) -> None:
        curves[step.repeat].append((step.n_labeled, step.accuracy))

    simulate(load_file(shared_data / "ag_news_test.jsonl"), strategies=["random"], seed_size=20,
             batch_size=20, budget=300, repeats=4, random_state=0,
             featurizer_params={"sentence_weight": None}, on_step=keep)
    k, covered, tried = 8, 0, 0
    for points in curves.values():
        n = np.asarray([p[0] for p in points], dtype=float)
        acc = np.asarray([p[1] for p in points])
        smooth = np.convolve(acc, np.ones(3) / 3, mode="same")
        smooth[[0, -1]] = acc[[0, -1]]
        target = float(smooth[k - 1] + 0.5 * (smooth[-1] - smooth[k - 1]))
        needed = n[int(np.argmax(smooth >= target))]
        f = forecast_labels(n[:k], acc[:k], target)
        if f.reached:
            continue
        tried += 1
        covered += f.low is not None and f.low <= needed <= (f.high or math.inf)
    assert tried >= 3
    assert covered >= tried / 2


def test_a_rerank_resumes_the_schedule_and_maps_an_older_early_strategy() -> None:
    from activelabel.pace import EARLY_STRATEGY, MATURE_STRATEGY, resumed_strategy

    assert resumed_strategy(MATURE_STRATEGY) == "cluster_margin"
    assert resumed_strategy(EARLY_STRATEGY) == "typiclust"
    assert resumed_strategy("kmeans") == "typiclust"  # the schedule of before 2026-12-05
    assert resumed_strategy(None) == "typiclust"  # no round decided yet
