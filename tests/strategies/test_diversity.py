from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

import activelabel
from activelabel.strategies import (
    DensityWeighted,
    KCenterGreedy,
    KMeansSampling,
    TypiClust,
    cold_start,
)
from activelabel.strategies.diversity import pool_density


def blobs(n_blobs: int = 6, per_blob: int = 50, dim: int = 5, seed: int = 0):
    rng = np.random.default_rng(seed)
    centers = rng.normal(scale=50.0, size=(n_blobs, dim))
    which = np.repeat(np.arange(n_blobs), per_blob)
    X = centers[which] + rng.normal(size=(len(which), dim))
    return X.astype(np.float32), which


def brute_force_k_center(X, labeled, k):
    d = np.linalg.norm(X[:, None] - labeled[None], axis=2).min(axis=1)
    picked = []
    for _ in range(k):
        i = int(np.argmax(d))
        picked.append(i)
        d = np.minimum(d, np.linalg.norm(X - X[i], axis=1))
    return picked


@settings(max_examples=40, deadline=None)
@given(arrays(np.float64, (40, 3), elements=st.floats(-10, 10)), st.integers(1, 12))
def test_k_center_matches_the_textbook_greedy(X, k) -> None:
    X = X + np.random.default_rng(0).uniform(0, 0.1, size=X.shape)  # no exact distance ties
    # A different shift per labeled point: with one shift, rows 0-2 would all lie exactly that
    # far from their own copy, a tie that rounding breaks either way.
    labeled = X[:3] + np.array([[0.5], [0.6], [0.7]])
    got = KCenterGreedy().query(k, embeddings=X, labeled_embeddings=labeled)
    assert got.indices.tolist() == brute_force_k_center(X, labeled, k)
    assert np.all(np.diff(got.scores) <= 1e-6)  # each pick is no farther than the one before


def test_k_center_covers_every_blob_not_yet_labeled() -> None:
    X, which = blobs()
    labeled = X[which == 0][:3]
    idx = activelabel.select("kcenter", 5, embeddings=X, labeled_embeddings=labeled)
    assert sorted(which[idx].tolist()) == [1, 2, 3, 4, 5]


def test_k_center_without_labels_starts_from_a_seeded_random_item() -> None:
    X, which = blobs()
    a = activelabel.select("kcenter", 6, embeddings=X, random_state=1)
    assert sorted(which[a].tolist()) == [0, 1, 2, 3, 4, 5]
    assert not np.array_equal(a, activelabel.select("kcenter", 6, embeddings=X, random_state=2))


def test_k_center_with_duplicates_still_returns_distinct_items() -> None:
    X = np.zeros((20, 2), dtype=np.float32)
    X[10:] = 1.0
    idx = activelabel.select("kcenter", 20, embeddings=X, random_state=0)
    assert sorted(idx.tolist()) == list(range(20))


def test_kmeans_picks_one_typical_item_per_blob() -> None:
    X, which = blobs()
    sel = KMeansSampling().query(6, embeddings=X, random_state=0)
    assert sorted(which[sel.indices].tolist()) == [0, 1, 2, 3, 4, 5]
    # each pick sits near its blob's centre, not on its edge
    for i in sel.indices:
        members = X[which == which[i]]
        dist = np.linalg.norm(members - members.mean(axis=0), axis=1)
        assert np.linalg.norm(X[i] - members.mean(axis=0)) <= np.quantile(dist, 0.25)


def test_kmeans_puts_already_labeled_regions_last() -> None:
    X, which = blobs()
    labeled = X[which == 3][:5]
    idx = activelabel.select("kmeans", 6, embeddings=X, labeled_embeddings=labeled, random_state=0)
    assert which[idx[-1]] == 3


def test_kmeans_fits_on_a_sample_of_a_large_pool() -> None:
    X, which = blobs(n_blobs=4, per_blob=3000)
    sel = KMeansSampling(max_fit_rows=500).query(4, embeddings=X, random_state=0)
    assert sorted(which[sel.indices].tolist()) == [0, 1, 2, 3]


def test_kmeans_on_a_pool_of_duplicates_tops_up_to_k() -> None:
    X = np.repeat(np.eye(3, dtype=np.float32), 10, axis=0)
    idx = activelabel.select("kmeans", 5, embeddings=X, random_state=0)
    assert len(set(idx.tolist())) == 5


def test_typiclust_picks_one_typical_item_per_blob_largest_first() -> None:
    rng = np.random.default_rng(1)
    sizes = [120, 90, 60, 40, 25]
    centers = rng.normal(scale=50.0, size=(len(sizes), 5))
    which = np.repeat(np.arange(len(sizes)), sizes)
    X = (centers[which] + rng.normal(size=(which.shape[0], 5))).astype(np.float32)
    sel = TypiClust().query(5, embeddings=X, random_state=0)
    assert which[sel.indices].tolist() == [0, 1, 2, 3, 4]  # biggest cluster first
    for i in sel.indices:  # the typical item: in the dense middle, not on the edge
        members = X[which == which[i]]
        dist = np.linalg.norm(members - members.mean(axis=0), axis=1)
        assert np.linalg.norm(X[i] - members.mean(axis=0)) <= np.quantile(dist, 0.25)


def test_typiclust_covers_the_blobs_no_label_covers() -> None:
    """Blobs that hold labels come after every blob that holds none: with many classes and a
    label or two each, the next labels go where the pool has no example yet."""
    X, which = blobs(n_blobs=8, per_blob=60)
    rng = np.random.default_rng(2)
    labeled = np.concatenate([X[rng.choice(np.flatnonzero(which == b), 12, replace=False)]
                              for b in (0, 1, 2)])
    idx = activelabel.select("typiclust", 5, embeddings=X, labeled_embeddings=labeled,
                             random_state=0)
    assert set(which[idx].tolist()) <= {3, 4, 5, 6, 7}
    assert len(idx) == len(set(idx.tolist())) == 5


def test_typiclust_once_every_cluster_is_covered_takes_the_least_covered() -> None:
    X, which = blobs(n_blobs=3, per_blob=80)
    labeled = np.concatenate([X[which == 0][:1], X[which == 1][:6], X[which == 2][:6]])
    sel = TypiClust(max_clusters=3).query(1, embeddings=X, labeled_embeddings=labeled,
                                          random_state=0)
    assert which[sel.indices[0]] == 0  # 80 items for 1 label, against 80 for 6


def test_typiclust_samples_the_members_of_a_large_cluster(monkeypatch) -> None:
    from activelabel.strategies import diversity

    seen: list[int] = []
    typicality = diversity._typicality

    def counted(X, knn):
        seen.append(X.shape[0])
        return typicality(X, knn)

    monkeypatch.setattr(diversity, "_typicality", counted)
    X, which = blobs(n_blobs=3, per_blob=3000)
    sel = TypiClust(max_cluster_rows=50).query(3, embeddings=X, random_state=0)
    assert sorted(which[sel.indices].tolist()) == [0, 1, 2]
    assert seen == [50, 50, 50]  # never a 3,000 x 3,000 block


def test_typiclust_fits_on_a_sample_not_a_copy_of_the_pool(monkeypatch) -> None:
    from activelabel.strategies import diversity

    fitted: list[int] = []
    fit = diversity.fit_centroids

    def counted(X, n_clusters, rng, **kw):
        fitted.append(X.shape[0])
        return fit(X, n_clusters, rng, **kw)

    monkeypatch.setattr(diversity, "fit_centroids", counted)
    X, _ = blobs(n_blobs=4, per_blob=1000)
    TypiClust(max_fit_rows=500).query(4, embeddings=X, labeled_embeddings=X[:30],
                                      random_state=0)
    assert fitted == [530]  # 500 pool rows and the 30 labeled, not the 4,000 of the pool


@pytest.mark.parametrize("params", [{"max_clusters": 0}, {"knn": 0}, {"max_cluster_rows": 1}])
def test_typiclust_rejects_bad_parameters(params) -> None:
    X, _ = blobs()
    with pytest.raises(ValueError, match="typiclust needs"):
        TypiClust(**params).query(3, embeddings=X)


def test_cold_start_is_representative_not_the_first_rows() -> None:
    X, which = blobs(n_blobs=5, per_blob=40)
    seed = cold_start(X, 5, random_state=0)
    assert sorted(which[seed].tolist()) == [0, 1, 2, 3, 4]


@settings(max_examples=30, deadline=None)
@given(arrays(np.float64, (25, 4), elements=st.floats(-5, 5)))
def test_pool_density_equals_the_mean_pairwise_cosine(X) -> None:
    norms = np.linalg.norm(X, axis=1, keepdims=True)
    norms[norms == 0] = 1.0
    U = X / norms
    expected = (1 + (U @ U.T).mean(axis=1)) / 2
    assert np.allclose(pool_density(X), np.clip(expected, 0, 1), atol=1e-9)


def test_density_prefers_the_uncertain_item_in_the_crowd_over_the_outlier() -> None:
    rng = np.random.default_rng(0)
    X = np.vstack([rng.normal([5, 5], 0.3, size=(50, 2)), [[-5.0, 0.5]]])
    probs = np.tile([0.9, 0.1], (51, 1))
    probs[10] = [0.55, 0.45]  # uncertain, inside the crowd
    probs[50] = [0.5, 0.5]  # more uncertain, but an outlier
    assert activelabel.select("margin", 1, probs=probs).tolist() == [50]
    assert activelabel.select("density", 1, probs=probs, embeddings=X).tolist() == [10]


def test_density_beta_zero_is_plain_uncertainty() -> None:
    rng = np.random.default_rng(0)
    probs = rng.dirichlet(np.ones(3), size=100)
    X = rng.normal(size=(100, 4))
    a = DensityWeighted("entropy", beta=0.0).query(10, probs=probs, embeddings=X).indices
    assert a.tolist() == activelabel.select("entropy", 10, probs=probs).tolist()
    with pytest.raises(ValueError, match="beta"):
        DensityWeighted(beta=-1).query(1, probs=probs, embeddings=X)
