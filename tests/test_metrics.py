from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from activelabel.metrics import (
    accuracy,
    area_under_learning_curve,
    evaluate,
    evaluate_multilabel,
    expected_calibration_error,
    labels_saved,
    labels_to_target,
    macro_f1,
)

# ---- accuracy, macro-F1 ----------------------------------------------------------------------


def test_accuracy_and_macro_f1() -> None:
    y_true = ["a", "a", "b", "b"]
    y_pred = ["a", "b", "b", "b"]
    assert accuracy(y_true, y_pred) == 0.75
    # F1(a) = 2/3, F1(b) = 0.8
    assert macro_f1(y_true, y_pred) == pytest.approx((2 / 3 + 0.8) / 2)


def test_macro_f1_counts_only_classes_present_and_zero_for_undefined() -> None:
    # class 2 is predicted but never true: F1 0; a class absent from both is not averaged in
    assert macro_f1([0, 0, 1], [0, 0, 2]) == pytest.approx((1.0 + 0.0 + 0.0) / 3)


@pytest.mark.parametrize("fn", [accuracy, macro_f1])
def test_label_metrics_reject_mismatched_or_empty(fn: object) -> None:
    with pytest.raises(ValueError, match="same length"):
        fn([0, 1], [0])  # type: ignore[operator]
    with pytest.raises(ValueError, match="0 predictions"):
        fn([], [])  # type: ignore[operator]


# ---- ECE -------------------------------------------------------------------------------------


def test_ece_known_value() -> None:
    probs = np.array([[0.9, 0.1], [0.9, 0.1], [0.6, 0.4], [0.4, 0.6]])
    y = np.array([0, 1, 0, 1])
    # bin (0.8667, 0.9333]: conf 0.9, acc 0.5; bin (0.5333, 0.6]: conf 0.6, acc 1.0
    expected = 0.5 * abs(0.5 - 0.9) + 0.5 * abs(1.0 - 0.6)
    assert expected_calibration_error(probs, y) == pytest.approx(expected)


def test_ece_confident_and_wrong_is_one() -> None:
    assert expected_calibration_error([[1.0, 0.0], [0.0, 1.0]], [1, 0]) == pytest.approx(1.0)


@pytest.mark.parametrize(
    ("probs", "y", "match"),
    [
        (np.full(4, 0.5), [0, 1, 0, 1], "shape"),
        (np.full((4, 2), 0.5), [0, 1, 0], "one entry per probs row"),
        (np.full((2, 2), 0.5), [0, 2], r"indices must be in \[0, 1\]"),
        (np.full((2, 2), 0.5), ["a", "b"], "column indices"),
        (np.array([[2.0, -1.0]]), [0], "probabilities in"),
        (np.zeros((0, 2)), [], "0 rows"),
    ],
)
def test_ece_validates_inputs(probs: np.ndarray, y: list[Any], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        expected_calibration_error(probs, y)


def test_ece_rejects_bad_bins() -> None:
    with pytest.raises(ValueError, match="n_bins"):
        expected_calibration_error([[0.5, 0.5]], [0], n_bins=0)


@st.composite
def _probs_and_targets(draw: st.DrawFn) -> tuple[np.ndarray, np.ndarray]:
    n = draw(st.integers(1, 40))
    c = draw(st.integers(2, 5))
    raw = draw(hnp.arrays(np.float64, (n, c), elements=st.floats(0.0, 1.0)))
    raw = raw + 1e-9
    probs = raw / raw.sum(axis=1, keepdims=True)
    y = draw(hnp.arrays(np.int64, (n,), elements=st.integers(0, c - 1)))
    return probs, y


@given(_probs_and_targets(), st.integers(1, 30))
def test_ece_is_within_unit_interval(data: tuple[np.ndarray, np.ndarray], n_bins: int) -> None:
    probs, y = data
    assert 0.0 <= expected_calibration_error(probs, y, n_bins=n_bins) <= 1.0


_calibrated_group = st.integers(1, 12).flatmap(
    lambda size: st.tuples(st.just(size), st.integers((size + 1) // 2, size))
)


@given(st.lists(_calibrated_group, min_size=1, max_size=8), st.integers(1, 20))
def test_ece_is_zero_when_confidence_matches_accuracy(
    groups: list[tuple[int, int]], n_bins: int
) -> None:
    """A group of `size` items predicted with confidence correct/size (>= 0.5), `correct` right."""
    rows: list[list[float]] = []
    targets: list[int] = []
    for size, correct in groups:
        conf = correct / size
        rows += [[conf, 1.0 - conf]] * size
        # the prediction is column 0 (ties go to the lower column): `correct` rows are 0
        targets += [0] * correct + [1] * (size - correct)
    ece = expected_calibration_error(np.array(rows), np.array(targets), n_bins)
    assert ece == pytest.approx(0.0, abs=1e-12)


# ---- evaluate --------------------------------------------------------------------------------


def test_evaluate_keys_and_values() -> None:
    probs = np.array([[0.8, 0.2, 0.0], [0.3, 0.7, 0.0], [0.1, 0.2, 0.7], [0.6, 0.4, 0.0]])
    y = np.array([0, 1, 2, 1])
    scores = evaluate(probs, y)
    assert set(scores) == {"accuracy", "macro_f1", "ece"}
    assert scores["accuracy"] == 0.75
    assert scores["macro_f1"] == pytest.approx(macro_f1(y, [0, 1, 2, 0]))
    assert scores["ece"] == pytest.approx(expected_calibration_error(probs, y))


def test_evaluate_multilabel() -> None:
    probs = np.array([[0.9, 0.8, 0.1], [0.2, 0.9, 0.1], [0.6, 0.3, 0.1]])
    Y = np.array([[1, 1, 0], [0, 1, 0], [0, 0, 0]])
    scores = evaluate_multilabel(probs, Y)
    assert scores["accuracy"] == pytest.approx(2 / 3)  # row 2 predicts label 0 wrongly
    # label 0: tp 1 fp 1 -> F1 2/3; label 1: F1 1; label 2 never true nor predicted: left out
    assert scores["macro_f1"] == pytest.approx((2 / 3 + 1.0) / 2)
    # micro over the (item, label) pairs: 3 found of 3 true, 4 given
    assert scores["label_f1"] == pytest.approx(2 * 3 / (3 + 4))
    flat = probs.reshape(-1)
    binary = np.column_stack([1 - flat, flat])
    assert scores["ece"] == pytest.approx(expected_calibration_error(binary, Y.reshape(-1)))


def test_label_f1_does_not_reward_a_model_that_gives_no_label() -> None:
    """Most items without a label: giving none is right on the subset accuracy's count."""
    Y = np.zeros((10, 3), dtype=int)
    Y[:3, 0] = 1
    scores = evaluate_multilabel(np.full((10, 3), 0.1), Y)
    assert scores["accuracy"] == pytest.approx(0.7)
    assert scores["label_f1"] == 0.0
    assert evaluate_multilabel(np.full((2, 3), 0.1), np.zeros((2, 3), int))["label_f1"] == 0.0


def test_evaluate_multilabel_validates_shape() -> None:
    with pytest.raises(ValueError, match="0/1 indicator"):
        evaluate_multilabel(np.zeros((2, 3)), np.zeros((2, 2)))
    with pytest.raises(ValueError, match="0/1 indicator"):
        evaluate_multilabel(np.zeros((1, 2)), np.array([[2, 0]]))


# ---- learning curves -------------------------------------------------------------------------


def test_aulc_known_value() -> None:
    # trapezoids: 10 * (0.5 + 0.7) / 2 + 20 * (0.7 + 0.9) / 2 = 6 + 16 = 22, over a span of 30
    assert area_under_learning_curve([10, 20, 40], [0.5, 0.7, 0.9]) == pytest.approx(22 / 30)


def test_aulc_single_point_and_bad_input() -> None:
    assert area_under_learning_curve([50], [0.8]) == 0.8
    with pytest.raises(ValueError, match=r"strictly increasing; point 2 \(15\) follows 20"):
        area_under_learning_curve([10, 20, 15], [0.1, 0.2, 0.3])
    with pytest.raises(ValueError, match="same length"):
        area_under_learning_curve([10, 20], [0.1])
    with pytest.raises(ValueError, match="at least one point"):
        area_under_learning_curve([], [])


_curves = st.integers(1, 20).flatmap(
    lambda m: st.tuples(
        st.lists(st.integers(1, 10_000), min_size=m, max_size=m, unique=True).map(sorted),
        st.lists(st.floats(0.0, 1.0), min_size=m, max_size=m),
    )
)


@given(_curves.map(lambda c: c[0]), st.floats(0.0, 1.0))
def test_aulc_of_constant_curve_is_the_constant(n_labeled: list[int], value: float) -> None:
    assert area_under_learning_curve(n_labeled, [value] * len(n_labeled)) == pytest.approx(value)


@given(_curves)
def test_aulc_lies_between_min_and_max_score(curve: tuple[list[int], list[float]]) -> None:
    n_labeled, scores = curve
    aulc = area_under_learning_curve(n_labeled, scores)
    assert min(scores) - 1e-12 <= aulc <= max(scores) + 1e-12


def test_labels_to_target_first_reach() -> None:
    n, s = [10, 20, 30, 40], [0.5, 0.8, 0.7, 0.9]
    assert labels_to_target(n, s, 0.75) == 20  # a later dip does not matter
    assert labels_to_target(n, s, 0.9) == 40
    assert labels_to_target(n, s, 0.95) is None
    assert labels_to_target(n, s, 0.1) == 10


@settings(max_examples=200)
@given(_curves, st.floats(0.0, 1.0), st.floats(0.0, 1.0))
def test_labels_to_target_is_monotone_in_target(
    curve: tuple[list[int], list[float]], t1: float, t2: float
) -> None:
    low, high = sorted((t1, t2))
    n_low = labels_to_target(*curve, low)
    n_high = labels_to_target(*curve, high)
    if n_high is not None:
        assert n_low is not None
        assert n_low <= n_high


def test_labels_saved() -> None:
    assert labels_saved(60, 100) == pytest.approx(0.4)
    assert labels_saved(150, 100) == pytest.approx(-0.5)
    assert labels_saved(None, 100) is None
    assert labels_saved(60, None) is None
    with pytest.raises(ValueError, match="n_baseline"):
        labels_saved(10, 0)
