"""The one rule for a capped, seeded, sorted sample of rows (drift, self-training, k-means)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from activelabel.samples import sorted_sample


@settings(max_examples=200, deadline=None)
@given(n=st.integers(0, 300), size=st.integers(0, 300), seed=st.integers(0, 2**32 - 1))
def test_a_sample_is_sorted_distinct_and_capped(n: int, size: int, seed: int) -> None:
    rows = np.sort(np.random.default_rng(seed).choice(10 * n + 1, size=n, replace=False))
    out = sorted_sample(rows, size, np.random.default_rng(seed))
    assert out.shape[0] == min(n, size)
    assert np.all(np.diff(out) > 0)  # sorted, no row twice
    assert np.isin(out, rows).all()
    if n <= size:
        assert out is rows  # whole: no copy of a large index


@settings(max_examples=200, deadline=None)
@given(n=st.integers(0, 300), size=st.integers(0, 300), seed=st.integers(0, 2**32 - 1))
def test_rows_sample_as_their_positions_do(n: int, size: int, seed: int) -> None:
    rows = np.sort(np.random.default_rng(seed + 1).choice(5 * n + 1, size=n, replace=False))
    positions = sorted_sample(n, size, np.random.default_rng(seed))
    assert positions.dtype == np.intp
    np.testing.assert_array_equal(sorted_sample(rows, size, np.random.default_rng(seed)),
                                  rows[positions])


def test_the_generator_is_drawn_only_when_a_sample_is_taken() -> None:
    # the callers' later draws (k-means seeds, the other side of a drift sample) must not
    # move when their rows fit under the cap
    a, b = np.random.default_rng(7), np.random.default_rng(7)
    np.testing.assert_array_equal(sorted_sample(10, 10, a), np.arange(10))
    assert a.integers(1 << 30) == b.integers(1 << 30)
    sorted_sample(11, 10, a)
    assert a.integers(1 << 30) != np.random.default_rng(7).integers(1 << 30)


def test_it_is_the_draw_the_callers_made_before() -> None:
    # drift, self-training and k-means samples drawn before this helper stay the same
    rows = np.arange(0, 90_000, 3)
    before = np.sort(np.random.default_rng(3).choice(rows, 20_000, replace=False))
    np.testing.assert_array_equal(sorted_sample(rows, 20_000, np.random.default_rng(3)), before)
    before_n = np.sort(np.random.default_rng(3).choice(50_000, size=20_000, replace=False))
    np.testing.assert_array_equal(sorted_sample(50_000, 20_000, np.random.default_rng(3)),
                                  before_n)


@pytest.mark.parametrize(("rows", "size", "message"), [
    (5, -1, "size must be 0 or more"),
    (-2, 3, "rows must be 0 or more"),
])
def test_bad_arguments_say_what_is_wrong(rows: int, size: int, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        sorted_sample(rows, size, np.random.default_rng(0))
