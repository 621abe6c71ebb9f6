"""Per-label majority of multi-label annotations (core maths), checked against the definition."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from activelabel.quality import multilabel_majority

N_LABELS = 5
#: Items, each a list of annotations, each annotation a set of label indices (maybe empty).
crowds = st.lists(st.lists(st.frozensets(st.integers(0, N_LABELS - 1)), max_size=7),
                  min_size=1, max_size=20)


def _counts(crowd: list[list[frozenset[int]]]) -> tuple[np.ndarray, np.ndarray]:
    counts = np.zeros((len(crowd), N_LABELS), dtype=np.int64)
    for i, marks in enumerate(crowd):
        for labels in marks:
            counts[i, sorted(labels)] += 1
    return counts, np.asarray([len(given) for given in crowd], dtype=np.int64)


@settings(max_examples=200, deadline=None)
@given(crowds)
def test_a_label_is_kept_when_more_than_half_of_the_annotators_gave_it(
        crowd: list[list[frozenset[int]]]) -> None:
    counts, raters = _counts(crowd)
    found = multilabel_majority(counts, raters)
    for i, marks in enumerate(crowd):
        tally = Counter(x for labels in marks for x in labels)
        expected = {x for x, c in tally.items() if c > len(marks) / 2}
        assert set(np.flatnonzero(found[i]).tolist()) == expected


@settings(max_examples=100, deadline=None)
@given(crowds, st.permutations(range(N_LABELS)))
def test_the_vote_does_not_depend_on_the_order_of_labels(
        crowd: list[list[frozenset[int]]], order: list[int]) -> None:
    counts, raters = _counts(crowd)
    assert np.array_equal(multilabel_majority(counts[:, order], raters),
                          multilabel_majority(counts, raters)[:, order])


@settings(max_examples=100, deadline=None)
@given(crowds)
def test_a_label_everyone_gave_is_kept_and_exactly_half_is_not_a_majority(
        crowd: list[list[frozenset[int]]]) -> None:
    counts, raters = _counts(crowd)
    doubled = multilabel_majority(np.vstack([counts, counts]),
                                  np.concatenate([raters, 2 * raters]))
    assert not doubled[len(crowd):].any()  # each label given by at most half of them
    everyone = multilabel_majority(np.full_like(counts, 1) * raters[:, None], raters)
    assert np.array_equal(everyone, np.broadcast_to((raters > 0)[:, None], counts.shape))


def test_bad_shapes_and_counts_are_refused_with_the_shapes() -> None:
    with pytest.raises(ValueError, match=r"shapes \(3,\) and \(3,\)"):
        multilabel_majority(np.zeros(3), np.zeros(3))
    with pytest.raises(ValueError, match="at most once"):
        multilabel_majority(np.asarray([[3, 0]]), np.asarray([2]))
