"""Audit estimates: the Wilson interval covers the true accuracy in most repeats; the random
curve and the labels random sampling needs."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.linear_model import LogisticRegression

from activelabel.estimates import (
    accuracy_estimate,
    audit_curve_counts,
    curve_bounds,
    curve_counts,
    curve_draws,
    f1_estimate,
    label_set_counts,
    labels_needed,
    micro_f1,
    random_labels,
    random_sampling_curve,
    target_status,
    wilson_interval,
)
from activelabel.spans import entity_scores


@settings(max_examples=15, deadline=None)
@given(p=st.floats(0.02, 0.98), n=st.integers(30, 400), seed=st.integers(0, 2**32 - 1))
def test_the_interval_covers_the_true_pool_accuracy_in_most_repeats(p: float, n: int,
                                                                    seed: int) -> None:
    """A pool whose model is right on a share ``p`` of items; ``n`` uniform audit draws, 300
    times: the 95% interval holds the pool's accuracy in about 95% of them (at least 88%)."""
    rng = np.random.default_rng(seed)
    pool = rng.random(20_000) < p
    truth = float(pool.mean())
    covered = 0
    for _ in range(300):
        draws = pool[rng.integers(0, pool.shape[0], n)]
        est = accuracy_estimate(draws)
        covered += est.low <= truth <= est.high
    assert covered / 300 >= 0.88


def _sentence_counts(rng: np.random.Generator, n: int, recall: float,
                     precision: float) -> np.ndarray[Any, Any]:
    """(n, 3) per-sentence entity counts (found right, true, predicted) of a tagger that finds
    each entity with ``recall`` and adds a false one with probability ``1 - precision``;
    most sentences name nobody, as tweets do."""
    true = rng.poisson(0.6, n)
    hit = rng.binomial(true, recall)
    false = rng.binomial(hit + 1, 1 - precision)
    return np.stack([hit, true, hit + false], axis=1)


@settings(max_examples=6, deadline=None)
@given(recall=st.floats(0.2, 0.95), precision=st.floats(0.3, 0.95), n=st.integers(60, 300),
       seed=st.integers(0, 2**32 - 1))
def test_the_f1_interval_covers_the_pool_f1_in_most_repeats(recall: float, precision: float,
                                                            n: int, seed: int) -> None:
    """Entity F1 is a ratio of sums over sentences: ``n`` uniform audit sentences, 100 times,
    and the bootstrap's 95% interval holds the pool's micro F1 in most of them."""
    rng = np.random.default_rng(seed)
    pool = _sentence_counts(rng, 20_000, recall, precision)
    truth = micro_f1(*pool.sum(axis=0))
    covered = 0
    for i in range(100):
        est = f1_estimate(pool[rng.integers(0, pool.shape[0], n)], seed=i)
        covered += est.low <= truth <= est.high
    assert covered >= 85


@settings(max_examples=40, deadline=None)
@given(n=st.integers(0, 60), seed=st.integers(0, 2**32 - 1))
def test_the_f1_estimate_is_micro_f1_inside_its_interval(n: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    counts = _sentence_counts(rng, n, 0.7, 0.8)
    est = f1_estimate(counts, min_entities=1)
    assert est.n == n
    if counts[:, 1].sum() == 0:
        assert est.accuracy is None
        assert (est.low, est.high) == (0.0, 1.0)
        return
    assert est.accuracy is not None
    assert 0.0 <= est.low <= est.accuracy <= est.high <= 1.0
    assert est.accuracy == pytest.approx(micro_f1(*counts.sum(axis=0)))
    assert f1_estimate(counts, min_entities=1) == est  # seeded: same labels, same interval


def test_no_f1_is_given_from_a_handful_of_entities() -> None:
    """Three right sentences would bootstrap to [1, 1]: below 20 true entities the estimate
    says nothing rather than something sure."""
    three = [[1, 1, 1]] * 3
    assert f1_estimate(three).accuracy is None
    assert (f1_estimate(three).low, f1_estimate(three).high) == (0.0, 1.0)
    assert f1_estimate([[0, 0, 0]] * 50).accuracy is None  # no entity anywhere
    enough = [[1, 1, 1]] * 19 + [[0, 1, 1]]
    est = f1_estimate(enough)
    assert est.accuracy == pytest.approx(micro_f1(19, 20, 20))
    assert est.low < est.accuracy  # one miss in twenty: the interval is not a point


def test_micro_f1_is_entity_scores_f1() -> None:
    from activelabel.labeling.span_rounds import entity_counts

    person = {"start": 0, "end": 3, "label": "person"}
    place = {"start": 7, "end": 12, "label": "location"}
    other = {"start": 7, "end": 12, "label": "person"}
    for true, pred in ([[person, place], [], [place]], [[person, other], [place], [place]]), \
            ([[]], [[]]), ([[person]], [[]]), ([[]], [[place]]):
        counts = np.asarray([entity_counts(t, p) for t, p in zip(true, pred, strict=True)])
        assert micro_f1(*counts.sum(axis=0)) == pytest.approx(entity_scores(true, pred)["f1"])
    with pytest.raises(ValueError, match="confidence"):
        f1_estimate([[1, 1, 1]], confidence=1.5)


@given(k=st.integers(0, 500), extra=st.integers(0, 500))
def test_the_interval_holds_the_estimate_and_stays_in_0_1(k: int, extra: int) -> None:
    n = k + extra
    low, high = wilson_interval(k, n)
    assert 0.0 <= low <= high <= 1.0
    if n:
        assert low <= k / n <= high
    assert wilson_interval(0, 0) == (0.0, 1.0)


def test_bad_counts_are_refused() -> None:
    with pytest.raises(ValueError, match="successes"):
        wilson_interval(5, 3)
    with pytest.raises(ValueError, match="confidence"):
        wilson_interval(1, 3, confidence=1.0)
    assert accuracy_estimate([]).accuracy is None


def test_random_curve_rises_and_labels_needed_reads_it() -> None:
    rng = np.random.default_rng(0)
    X = rng.normal(size=(600, 5))
    y = (X[:, 0] + 0.5 * X[:, 1] > 0).astype(int).tolist()
    counts = curve_counts(len(y), held_out=200)
    assert counts == [10, 20, 40, 80, 160, 320, 400]
    curve = random_sampling_curve(X, y, counts, lambda: LogisticRegression())
    assert [m for m, _ in curve] == counts
    assert curve[-1][1] > 0.9
    assert curve[-1][1] >= curve[0][1]
    needed, extrapolated = labels_needed(curve, curve[2][1]) or (0, True)
    assert needed <= 40
    assert not extrapolated
    beyond = labels_needed([(10, 0.6), (20, 0.7), (40, 0.775)], 0.85)
    assert beyond is not None
    assert beyond[1]
    assert beyond[0] > 40
    assert labels_needed([], 0.5) is None
    assert labels_needed([(10, 0.5)], 0.9) is None


def test_labels_needed_is_not_read_far_beyond_the_curve() -> None:
    """A power law through a short, low curve (a many-class project's first audit labels)
    would name any number; past MAX_EXTRAPOLATION times the curve's last labels it names
    none."""
    from activelabel.estimates import MAX_EXTRAPOLATION

    short = [(10, 0.05), (20, 0.1)]
    assert labels_needed(short, 0.75) is None  # the fit says 969,158-like figures
    near = labels_needed(short, 0.15)
    assert near is not None
    assert near[1]
    assert 20 < near[0] <= MAX_EXTRAPOLATION * 20
    # the bound sits where the fit crosses it: just under it a count, just over it none
    err = np.log([0.95, 0.9])
    slope = (err[1] - err[0]) / (np.log(20) - np.log(10))
    at_reach = 1 - np.exp(err[1] + slope * (np.log(MAX_EXTRAPOLATION * 20) - np.log(20)))
    assert labels_needed(short, at_reach - 1e-6) is not None
    assert labels_needed(short, at_reach + 1e-6) is None
    assert labels_needed(short, 0.75, reach=1e9) is not None  # a caller may read farther


def test_a_one_class_prefix_predicts_that_class() -> None:
    X = np.zeros((6, 2))
    assert random_sampling_curve(X, ["a", "a", "b", "a", "b", "a"], [2], LogisticRegression) == [
        (2, 0.5)]


def test_a_multilabel_random_curve_scores_label_f1() -> None:
    """Label sets, most of them empty: a model that gives no label is scored 0, not the
    share of empty sets it matches (the payoff's measure, micro F1 over the labels)."""
    X = np.zeros((12, 2))
    y: list[list[str]] = [[] for _ in range(12)]
    y[5], y[9] = ["a"], ["a", "b"]
    assert random_sampling_curve(X, y, [4], LogisticRegression) == [(4, 0.0)]

    class Given:  # gives "a" to every item
        def fit(self, X: Any, y: Any) -> Given:
            return self

        def predict(self, X: Any) -> list[list[str]]:
            return [["a"]] * len(X)

    # after 2: 10 items given "a", 2 of them hold it, 3 true labels -> 2 * 2 / (3 + 10)
    y[0] = ["b"]
    assert random_sampling_curve(X, y, [2], Given) == [(2, pytest.approx(4 / 13))]
    assert label_set_counts([["a"], []], [["a", "b"], ["c"]]).tolist() == [[1, 2, 1],
                                                                           [0, 1, 0]]


def test_the_random_curve_hands_each_fit_the_unlabeled_rows_it_is_given() -> None:
    """The audit curve's models self-train as the round's model does (like for like)."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(120, 3))
    y = (X[:, 0] > 0).astype(int).tolist()
    pool = rng.normal(size=(50, 3))
    seen: list[int | None] = []

    class Spy(LogisticRegression):  # type: ignore[misc]
        def fit(self, X: Any, y: Any, unlabeled: Any = None) -> Spy:
            seen.append(None if unlabeled is None else unlabeled.shape[0])
            return super().fit(X, y)  # type: ignore[no-any-return]

    random_sampling_curve(X, y, [10, 20], Spy, unlabeled=pool)
    random_sampling_curve(X, y, [10], Spy)
    assert seen == [50, 50, None]


@given(st.lists(st.floats(0.0, 0.99), min_size=2, max_size=6),
       st.floats(0.0, 0.999), st.floats(0.0, 0.999))
def test_labels_needed_never_falls_as_the_accuracy_rises(
        accuracies: list[float], a: float, b: float) -> None:
    """The count grows with the accuracy asked (so the interval's ends bracket the count),
    an extrapolation is never below the curve's last labels, and a nearly flat fit does not
    overflow (it is beyond reach)."""
    curve = [(10 * 2 ** i, acc) for i, acc in enumerate(accuracies)]
    low, high = sorted((a, b))
    at_low, at_high = labels_needed(curve, low), labels_needed(curve, high)
    if at_low is not None and at_high is not None:
        assert at_high[0] >= at_low[0] - 1e-9
    if at_low is None and low > max(accuracies):
        assert at_high is None  # beyond the curve's reach stays beyond it
    for found in (at_low, at_high):
        if found is not None and found[1]:
            assert curve[-1][0] <= found[0] <= 4 * curve[-1][0]


def test_labels_needed_of_a_nearly_flat_curve_is_beyond_reach() -> None:
    assert labels_needed([(10, 0.5), (20, 0.5000001)], 0.99) is None  # overflowed before


def test_an_extrapolated_count_is_given_only_when_the_interval_is_within_reach() -> None:
    """A served ag_news run: 33 audit labels, 93.9% (80.4-98.3%), a curve to 23 labels. The
    fit read "about 64" random labels (26 to more than the curve tells): a figure the curve
    does not back, beside 603 labels spent. Past the curve a count needs both ends."""
    curve = [(10, 0.33), (20, 0.63), (23, 0.8)]
    assert labels_needed(curve, 0.939) is not None  # the fit names a count...
    assert labels_needed(curve, 0.983) is None  # ...its high end none
    assert random_labels(curve, 0.939, 0.804, 0.983) is None
    bounded = random_labels(curve, 0.85, 0.7, 0.9)
    assert bounded is not None
    (needed, extrapolated), ends = bounded
    assert extrapolated
    assert ends[0] is not None
    assert ends[1] is not None
    assert ends[0] <= needed <= ends[1]
    # read on the curve, the count stands with an open high end: it is measured there
    inside = random_labels(curve, 0.7, 0.5, 0.983)
    assert inside is not None
    assert inside[0][1] is False
    assert inside[1][1] is None
    assert random_labels([], 0.9, 0.8, 0.95) is None


def test_the_range_holds_the_curves_own_error() -> None:
    """A served SMS run: 23 audit labels, the model 100% (85.7-100%), a curve of two points
    scored on 13 and 10 draws, all right. Read on the points alone the range was "10 to 10":
    ten random labels surely enough. Ten draws all right allow 72% too: the high end is open."""
    curve = [(10, 1.0), (13, 1.0)]
    assert curve_draws(curve) == 23
    assert random_labels(curve, 1.0, 0.857, 1.0) == ((10.0, False), [10.0, 10.0])
    read = random_labels(curve, 1.0, 0.857, 1.0, draws=23)
    assert read is not None
    assert read[0] == (10.0, False)
    assert read[1] == [10.0, None]
    worse, better = curve_bounds(curve, 23)
    assert [m for m, _ in worse] == [10, 13]
    assert worse[0][1] == pytest.approx(wilson_interval(13, 13)[0])
    assert worse[1][1] == pytest.approx(wilson_interval(10, 10)[0])
    assert better == [(10, 1.0), (13, 1.0)]


@pytest.mark.parametrize("n", [*range(20, 120), 399, 400, 401, 1000, 5003, 20_002, 29_999])
def test_curve_draws_finds_the_draws_a_curve_was_traced_from(n: int) -> None:
    """The fewest draws whose curve ends where it does: n, or one fewer where n - 1 draws end
    at the same count (never more draws than there were)."""
    curve = [(m, 0.5) for m in audit_curve_counts(n)]
    found = curve_draws(curve)
    assert found is not None
    assert found in (n, n - 1)
    assert audit_curve_counts(found) == audit_curve_counts(n)
    assert curve_draws([]) is None
    assert curve_draws([(7, 0.5)]) is None  # no count of draws ends a curve at 7


@settings(max_examples=80, deadline=None)
@given(points=st.lists(st.floats(0.0, 1.0), min_size=1, max_size=6),
       acc=st.floats(0.0, 1.0), width=st.floats(0.0, 0.4), extra=st.integers(0, 200))
def test_the_curves_error_only_widens_the_range(points: list[float], acc: float, width: float,
                                                extra: int) -> None:
    """Read with the curve's own intervals, the range holds the range read on its points."""
    counts = [10 * 2**i for i in range(len(points))]
    curve = list(zip(counts, points, strict=True))
    draws = counts[-1] + 10 + extra
    low, high = max(acc - width, 0.0), min(acc + width, 1.0)
    plain = random_labels(curve, acc, low, high)
    wide = random_labels(curve, acc, low, high, draws=draws)
    if plain is None or wide is None:
        return  # an extrapolated count needs its high end: either may leave the count out
    assert wide[0] == plain[0]
    (plain_low, plain_high), (wide_low, wide_high) = plain[1], wide[1]
    if plain_low is not None:
        assert wide_low is not None
        assert wide_low <= plain_low + 1e-9
    if wide_high is not None:
        assert plain_high is not None
        assert wide_high >= plain_high - 1e-9


@settings(max_examples=60, deadline=None)
@given(acc=st.floats(0.0, 1.0), width=st.floats(0.0, 0.5), target=st.floats(0.0, 1.0))
def test_the_target_is_reached_only_when_the_interval_says_so(acc: float, width: float,
                                                              target: float) -> None:
    low, high = max(acc - width, 0.0), min(acc + width, 1.0)
    status = target_status(acc, low, high, target)
    assert (status == "reached") == (low >= target)
    assert status.startswith("reached") == (acc >= target)
    assert (status == "below") == (high < target)
