"""Drift statistics: PSI, the two-sample test, projections, the report and staleness."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from activelabel.drift import drift_report, project_rows, psi, stale_reasons

samples = arrays(np.float64, st.integers(5, 200),
                 elements=st.floats(-1e3, 1e3, allow_nan=False, allow_infinity=False))


@given(samples, samples)
@settings(max_examples=60, deadline=None)
def test_psi_is_finite_and_never_negative(a: np.ndarray, b: np.ndarray) -> None:
    value = psi(a, b)
    assert np.isfinite(value)
    assert value >= 0


@given(samples)
@settings(max_examples=40, deadline=None)
def test_a_sample_against_itself_has_no_drift(a: np.ndarray) -> None:
    assert psi(a, a) == pytest.approx(0.0, abs=1e-12)


def test_psi_grows_with_the_shift_and_reads_as_documented() -> None:
    rng = np.random.default_rng(0)
    ref = rng.normal(size=20_000)
    same, small, large = (rng.normal(loc, size=20_000) for loc in (0.0, 0.3, 1.5))
    assert psi(ref, same) < 0.01
    assert 0.05 < psi(ref, small) < 0.25
    assert psi(ref, large) > 1.0
    with pytest.raises(ValueError, match="non-empty"):
        psi(ref, np.array([]))


@pytest.mark.slow
def test_same_distribution_is_rarely_called_a_shift() -> None:
    rng = np.random.default_rng(1)
    shifted = 0
    for _ in range(40):
        X_ref, X_new = rng.normal(size=(400, 20)), rng.normal(size=(300, 20))
        report = drift_report(confidence_reference=rng.beta(5, 2, 400),
                              confidence_new=rng.beta(5, 2, 300),
                              features_reference=X_ref, features_new=X_new)
        shifted += report.shifted
    assert shifted <= 2


def test_a_planted_shift_is_found_in_confidence_and_in_feature_space() -> None:
    rng = np.random.default_rng(2)
    X_ref = rng.normal(size=(500, 30))
    X_new = rng.normal(size=(200, 30))
    X_new[:, :3] += 3.0  # the new items sit elsewhere
    report = drift_report(confidence_reference=rng.beta(8, 2, 500),
                          confidence_new=rng.beta(2, 2, 200),
                          features_reference=X_ref, features_new=X_new)
    assert report.shifted
    assert report.confidence_psi is not None
    assert report.confidence_psi > 0.25
    assert report.embedding_psi is not None
    assert report.embedding_psi > 0.25
    assert report.embedding_p is not None
    assert report.embedding_p < 1e-6
    assert len(report.reasons) == 3  # confidence, a direction, the classifier
    assert report.as_dict()["n_new"] == 200


def test_sparse_features_project_like_dense_ones() -> None:
    rng = np.random.default_rng(3)
    dense = rng.random((50, 12)) * (rng.random((50, 12)) > 0.6)
    a_dense, b_dense = project_rows(dense[:30], dense[30:])
    a_sparse, b_sparse = project_rows(sp.csr_matrix(dense[:30]), sp.csr_matrix(dense[30:]))
    assert np.allclose(np.abs(a_dense), np.abs(a_sparse), atol=1e-8)
    assert np.allclose(np.abs(b_dense), np.abs(b_sparse), atol=1e-8)
    assert np.allclose(a_dense.mean(axis=0), 0.0, atol=1e-9)


def test_report_arguments_are_checked() -> None:
    with pytest.raises(ValueError, match="psi_alert"):
        drift_report(psi_alert=0)
    with pytest.raises(ValueError, match="p_alert"):
        drift_report(p_alert=1.5)
    empty = drift_report()
    assert not empty.shifted
    assert empty.confidence_psi is None


def test_staleness_by_labels_and_by_age() -> None:
    assert stale_reasons(labels_since=10, seconds_since=60, new_items=0,
                         max_labels=500, max_days=7) == []
    [by_labels] = stale_reasons(labels_since=600, seconds_since=60, new_items=0,
                                max_labels=500, max_days=7)
    assert "600 labels" in by_labels
    [by_age] = stale_reasons(labels_since=0, seconds_since=8 * 86400, new_items=40,
                             max_labels=500, max_days=7)
    assert "8.0 days old" in by_age
    # old but nothing new since: nothing to learn, not stale
    assert stale_reasons(labels_since=0, seconds_since=30 * 86400, new_items=0,
                         max_labels=500, max_days=7) == []
    assert stale_reasons(labels_since=10**6, seconds_since=10**9, new_items=5,
                         max_labels=None, max_days=None) == []


def test_new_classes_among_many_are_found_by_the_classifier_test() -> None:
    """A shift spread over many directions (new classes among many, as in clinc150): each
    principal direction barely moves, a classifier over every feature tells them apart."""
    rng = np.random.default_rng(4)
    centres = rng.normal(size=(100, 300))

    def sample(classes: np.ndarray, n: int) -> np.ndarray:
        return centres[rng.choice(classes, n)] + rng.normal(scale=1.5, size=(n, 300))

    old, new = np.arange(50), np.arange(50, 100)
    ref, same, shifted = sample(old, 800), sample(old, 400), sample(new, 400)
    moved = drift_report(features_reference=ref, features_new=shifted)
    assert moved.shifted
    assert moved.domain_auc is not None
    assert moved.domain_auc > 0.8
    assert any("classifier" in r for r in moved.reasons)
    alike = drift_report(features_reference=ref, features_new=same)
    assert not alike.shifted
    assert alike.domain_auc is not None
    assert alike.domain_auc < 0.6


def test_one_feature_column_leaves_the_confidence_view_only() -> None:
    rng = np.random.default_rng(5)
    report = drift_report(confidence_reference=rng.beta(5, 2, 300),
                          confidence_new=rng.beta(5, 2, 200),
                          features_reference=rng.normal(size=(300, 1)),
                          features_new=rng.normal(size=(200, 1)))
    assert report.confidence_psi is not None
    assert report.embedding_psi is None
    assert report.domain_auc is None
