from __future__ import annotations

import math
import pickle
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given
from hypothesis import strategies as st
from sklearn.calibration import CalibratedClassifierCV
from sklearn.datasets import load_digits
from sklearn.ensemble import RandomForestClassifier
from sklearn.exceptions import NotFittedError
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.naive_bayes import GaussianNB, MultinomialNB
from sklearn.svm import LinearSVC

from activelabel.models import (
    CALIBRATION_MIN_LABELS,
    DEFAULT_C,
    FEW_LABELS_C,
    MODEL_NAMES,
    PSEUDO_FULL_UNTIL,
    PSEUDO_LABEL_POOL,
    PSEUDO_NONE_FROM,
    BootstrapCommittee,
    Classifier,
    LabelLogistic,
    NaiveBayes,
    c_for_labels,
    make_model,
    pseudo_label_fade,
    pseudo_label_rows,
    pseudo_label_share,
)


@pytest.fixture(scope="module")
def digits() -> tuple[np.ndarray, np.ndarray]:
    X, y = load_digits(return_X_y=True)
    return X, y


def _blobs(n_per_class: int, labels: list[object], seed: int = 0) -> tuple[np.ndarray, list[Any]]:
    """Well separated Gaussian blobs, one per label, 5 features."""
    rng = np.random.default_rng(seed)
    X = np.vstack([rng.normal(4.0 * i, 1.0, size=(n_per_class, 5)) for i in range(len(labels))])
    y = [lab for lab in labels for _ in range(n_per_class)]
    return X, y


# ---- label set alignment ---------------------------------------------------------------------


def test_absent_classes_get_zero_columns_and_rows_sum_to_one() -> None:
    X, y = _blobs(10, ["ham", "spam"])
    clf = Classifier(classes=["eggs", "ham", "spam"]).fit(X, y)
    probs = clf.predict_proba(X)
    assert probs.shape == (20, 3)
    assert probs.dtype == np.float64
    np.testing.assert_array_equal(probs[:, 0], 0.0)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0)
    assert clf.classes_ == ["eggs", "ham", "spam"]
    assert list(clf.predict(X[:1])) == ["ham"]
    assert list(clf.predict(X[-1:])) == ["spam"]


def test_classes_default_to_sorted_labels_seen() -> None:
    X, y = _blobs(8, [7, 3, 5])
    clf = Classifier().fit(X, y)
    assert clf.classes_ == [3, 5, 7]
    pred = clf.predict(X)
    assert pred.dtype.kind == "i"
    assert (pred == np.asarray(y)).mean() > 0.9


def test_integer_labels_with_gaps_align_to_given_order() -> None:
    X, y = _blobs(8, [10, 30])
    clf = Classifier(classes=[30, 20, 10]).fit(X, y)
    probs = clf.predict_proba(X)
    np.testing.assert_array_equal(probs[:, 1], 0.0)
    assert probs[0, 2] > 0.5  # first row is a 10
    assert probs[-1, 0] > 0.5  # last row is a 30


def test_one_class_seed_predicts_that_class_with_probability_one() -> None:
    X, _ = _blobs(4, ["a"])
    clf = Classifier(classes=["a", "b", "c"]).fit(X, ["b"] * 4)
    probs = clf.predict_proba(np.zeros((3, 5)))
    np.testing.assert_array_equal(probs, [[0.0, 1.0, 0.0]] * 3)
    assert list(clf.predict(np.zeros((2, 5)))) == ["b", "b"]


def test_one_class_with_forced_calibration_is_an_error() -> None:
    X, _ = _blobs(4, ["a"])
    with pytest.raises(ValueError, match="at least 2 classes"):
        Classifier(classes=["a", "b"], calibrate=True).fit(X, ["a"] * 4)


def test_unknown_label_names_label_and_known_set() -> None:
    X, _ = _blobs(2, ["a", "b"])
    with pytest.raises(ValueError, match=r"\['zebra'\].*\['a', 'b'\]"):
        Classifier(classes=["a", "b"]).fit(X, ["a", "b", "zebra", "a"])


@pytest.mark.parametrize(
    ("X", "y", "match"),
    [
        (np.zeros((3, 2)), ["a", "b"], "3 rows but y has 2"),
        (np.zeros((0, 2)), [], "0 labeled"),
        (np.zeros(3), ["a", "b", "a"], "shape"),
    ],
)
def test_bad_fit_inputs_are_rejected(X: np.ndarray, y: list[Any], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        Classifier().fit(X, y)


def test_duplicate_classes_are_rejected() -> None:
    with pytest.raises(ValueError, match="distinct"):
        Classifier(classes=["a", "a"]).fit(np.zeros((2, 2)), ["a", "a"])


def test_predict_before_fit_raises_not_fitted() -> None:
    with pytest.raises(NotFittedError):
        Classifier().predict_proba(np.zeros((1, 2)))


def test_sparse_tfidf_input() -> None:
    texts = ["cheap pills buy now", "win money now", "meeting at noon", "lunch at noon today"] * 5
    y = ["spam", "spam", "ham", "ham"] * 5
    X = TfidfVectorizer(dtype=np.float32).fit_transform(texts)
    assert sp.issparse(X)
    clf = Classifier(classes=["ham", "spam", "other"]).fit(X, y)
    probs = clf.predict_proba(X[:4])
    assert probs.shape == (4, 3)
    assert list(clf.predict(X[:4])) == ["spam", "spam", "ham", "ham"]


def test_learns_digits(digits: tuple[np.ndarray, np.ndarray]) -> None:
    X, y = digits
    X = X / 16.0  # pixel scale, as ImageFeaturizer gives
    clf = Classifier(classes=list(range(10)), random_state=0).fit(X[:300], y[:300])
    assert (clf.predict(X[1000:]) == y[1000:]).mean() > 0.85


def test_numpy_labels_become_plain_python_classes() -> None:
    X, y = _blobs(4, ["b", "a"])
    clf = Classifier().fit(X, np.asarray(y))
    assert clf.classes_ == ["a", "b"]
    assert all(type(c) is str for c in clf.classes_)


def test_column_vector_labels_are_rejected_with_a_hint() -> None:
    X, _ = _blobs(2, ["a", "b"])
    with pytest.raises(ValueError, match="flat sequence"):
        Classifier(classes=[0, 1]).fit(X, np.array([[0], [1], [0], [1]]))


def test_fitted_classifier_pickles() -> None:
    X, y = _blobs(10, ["a", "b"])
    clf = make_model("naive_bayes", classes=["a", "b", "c"]).fit(np.abs(X), y)
    again = pickle.loads(pickle.dumps(clf))
    np.testing.assert_array_equal(again.predict_proba(np.abs(X)), clf.predict_proba(np.abs(X)))


# ---- calibration -----------------------------------------------------------------------------


def _forest() -> RandomForestClassifier:
    return RandomForestClassifier(n_estimators=10, random_state=0)


def _two_blobs(n_per_class: int, separation: float, seed: int = 0) -> tuple[np.ndarray, list[Any]]:
    rng = np.random.default_rng(seed)
    X = np.vstack([rng.normal(separation * i, 1.0, size=(n_per_class, 5)) for i in range(2)])
    return X, ["a"] * n_per_class + ["b"] * n_per_class


def test_auto_calibrates_an_underconfident_model() -> None:
    X, y = _two_blobs(CALIBRATION_MIN_LABELS // 2, separation=4.0)
    weak = LogisticRegression(C=1e-4)  # so regularised its probabilities stay near 0.5
    raw = Classifier(weak, calibrate=False).fit(X, y).predict_proba(X)
    clf = Classifier(weak, calibrate="auto").fit(X, y)
    assert clf.calibrated_
    assert isinstance(clf.models_[0], CalibratedClassifierCV)
    assert clf.predict_proba(X).max(axis=1).mean() > raw.max(axis=1).mean() + 0.2


def test_auto_calibrates_an_overconfident_forest() -> None:
    X, y = _two_blobs(CALIBRATION_MIN_LABELS // 2, separation=0.7)  # overlapping classes
    clf = Classifier(_forest(), calibrate="auto").fit(X, y)
    assert clf.calibrated_
    np.testing.assert_allclose(clf.predict_proba(X).sum(axis=1), 1.0)


def test_auto_keeps_a_model_that_calibration_would_not_improve() -> None:
    X, y = _two_blobs(CALIBRATION_MIN_LABELS // 2, separation=4.0)
    for estimator in (LogisticRegression(), _forest()):
        clf = Classifier(estimator, calibrate="auto").fit(X, y)
        assert not clf.calibrated_
        assert type(clf.models_[0]) is type(estimator)


def test_auto_skips_calibration_with_few_labels() -> None:
    X, y = _two_blobs(5, separation=0.7)  # 10 labels < CALIBRATION_MIN_LABELS
    assert not Classifier(_forest(), calibrate="auto").fit(X, y).calibrated_
    X2, y2 = _two_blobs(20, separation=0.7)
    y2[-18:] = ["a"] * 18  # 40 labels, but only 2 of class b
    assert not Classifier(_forest(), calibrate="auto").fit(X2, y2).calibrated_


def test_calibrate_false_never_and_true_always() -> None:
    X, y = _blobs(30, ["a", "b"])
    assert not Classifier(_forest(), calibrate=False).fit(X, y).calibrated_
    forced = Classifier(LogisticRegression(), calibrate=True).fit(X, y)
    assert forced.calibrated_
    assert isinstance(forced.models_[0], CalibratedClassifierCV)


def test_forced_calibration_with_too_few_per_class_says_how_many() -> None:
    X, y = _blobs(5, ["a", "b"])
    y[-4:] = ["a"] * 4  # class b has 1 label
    with pytest.raises(ValueError, match="smallest class has 1"):
        Classifier(calibrate=True).fit(X, y)


def test_bad_calibrate_value() -> None:
    with pytest.raises(ValueError, match="calibrate"):
        Classifier(calibrate="yes").fit(np.zeros((2, 2)), ["a", "b"])  # type: ignore[arg-type]


def test_estimator_without_predict_proba_needs_calibration() -> None:
    X, y = _blobs(5, ["a", "b"])
    with pytest.raises(TypeError, match="calibrate=True"):
        Classifier(LinearSVC(), calibrate=False).fit(X, y)
    clf = Classifier(LinearSVC(), calibrate=True).fit(X, y)
    np.testing.assert_allclose(clf.predict_proba(X).sum(axis=1), 1.0)


# ---- multi-label -----------------------------------------------------------------------------


def _multilabel_data() -> tuple[np.ndarray, list[list[str]]]:
    """'news' on every item, 'sport' on the first blob, 'politics' on the second."""
    X, y = _blobs(10, ["sport", "politics"])
    return X, [["news", lab] for lab in y]


def test_multilabel_independent_probabilities_and_constant_columns() -> None:
    X, Y = _multilabel_data()
    clf = Classifier(classes=["news", "sport", "politics", "weather"], multilabel=True).fit(X, Y)
    probs = clf.predict_proba(X)
    assert probs.shape == (20, 4)
    np.testing.assert_array_equal(probs[:, 0], 1.0)  # always present
    np.testing.assert_array_equal(probs[:, 3], 0.0)  # never present
    assert (probs[:10, 1] > 0.5).all()
    assert (probs[10:, 2] > 0.5).all()
    assert clf.predict(X[:1]) == [["news", "sport"]]
    assert clf.predict(X[-1:]) == [["news", "politics"]]


def test_multilabel_constant_column_survives_forced_calibration() -> None:
    X, Y = _multilabel_data()
    clf = Classifier(multilabel=True, calibrate=True).fit(X, Y)
    assert clf.classes_ == ["news", "politics", "sport"]
    np.testing.assert_array_equal(clf.predict_proba(X)[:, 0], 1.0)


def test_multilabel_indicator_input() -> None:
    X, _ = _blobs(10, ["a", "b"])
    indicator = np.zeros((20, 3), dtype=int)
    indicator[:10, 0] = 1
    indicator[10:, 1] = 1
    clf = Classifier(multilabel=True).fit(X, indicator)
    assert clf.classes_ == [0, 1, 2]
    probs = clf.predict_proba(X)
    np.testing.assert_array_equal(probs[:, 2], 0.0)
    assert clf.predict(X[:1]) == [[0]]
    with pytest.raises(ValueError, match="3 columns but classes names 2"):
        Classifier(multilabel=True, classes=["x", "y"]).fit(X, indicator)


def test_multilabel_rejects_plain_labels_and_unknown_labels() -> None:
    X, _ = _blobs(2, ["a", "b"])
    with pytest.raises(ValueError, match="row 0 is 'a'"):
        Classifier(multilabel=True).fit(X, ["a", "b", "a", "b"])
    with pytest.raises(ValueError, match="not in the label set"):
        Classifier(multilabel=True, classes=["a"]).fit(X, [["a"], ["b"], [], ["a"]])
    with pytest.raises(ValueError, match="names no label at all"):
        Classifier(multilabel=True).fit(X, [[], [], [], []])


def test_multilabel_sparse_input() -> None:
    X, Y = _multilabel_data()
    clf = Classifier(multilabel=True).fit(sp.csr_matrix(np.abs(X)), Y)
    assert clf.predict_proba(sp.csr_matrix(np.abs(X))).shape == (20, 3)


# ---- make_model ------------------------------------------------------------------------------


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_make_model_every_name_fits_and_aligns(name: str) -> None:
    X, y = _blobs(6, ["a", "b", "c"])
    params: dict[str, Any] = {"n_estimators": 10} if name == "random_forest" else {}
    clf = make_model(name, classes=["a", "b", "c", "d"], random_state=0, **params)
    probs = clf.fit(np.abs(X), y).predict_proba(np.abs(X))
    assert probs.shape == (18, 4)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0)
    np.testing.assert_array_equal(probs[:, 3], 0.0)
    assert (clf.predict(np.abs(X)) == np.asarray(y)).mean() > 0.6


def test_make_model_default_is_logistic_regression_and_unknown_lists_names() -> None:
    assert isinstance(make_model().estimator, LogisticRegression)
    with pytest.raises(ValueError, match="logistic_regression, random_forest, naive_bayes, sgd"):
        make_model("svm")


def test_make_model_is_deterministic_under_random_state() -> None:
    X, y = _blobs(20, ["a", "b"])
    a = make_model("sgd", random_state=3).fit(X, y).predict_proba(X)
    b = make_model("sgd", random_state=3).fit(X, y).predict_proba(X)
    np.testing.assert_array_equal(a, b)


def test_naive_bayes_picks_multinomial_for_nonnegative_features() -> None:
    X, y = _blobs(5, ["a", "b"])
    assert isinstance(NaiveBayes().fit(np.abs(X), y).estimator_, MultinomialNB)
    assert isinstance(NaiveBayes().fit(sp.csr_matrix(np.abs(X)), y).estimator_, MultinomialNB)
    assert isinstance(NaiveBayes().fit(X - 10.0, y).estimator_, GaussianNB)


# ---- committee -------------------------------------------------------------------------------


def test_committee_shape_and_absent_class_columns() -> None:
    X, y = _blobs(10, ["a", "b"])
    committee = BootstrapCommittee(n_members=4, classes=["a", "b", "c"], random_state=0)
    probs = committee.fit(X, y).predict_proba(X[:7])
    assert probs.shape == (4, 7, 3)
    np.testing.assert_array_equal(probs[..., 2], 0.0)
    np.testing.assert_allclose(probs.sum(axis=-1), 1.0)
    assert list(committee.predict(X[:1])) == ["a"]


def test_committee_is_deterministic_under_random_state() -> None:
    X, y = _blobs(10, ["a", "b"], seed=1)
    first = BootstrapCommittee(random_state=7).fit(X, y).predict_proba(X)
    again = BootstrapCommittee(random_state=7).fit(X, y).predict_proba(X)
    other = BootstrapCommittee(random_state=8).fit(X, y).predict_proba(X)
    np.testing.assert_array_equal(first, again)
    assert not np.array_equal(first, other)


def test_committee_members_differ() -> None:
    X, y = _blobs(10, ["a", "b"], seed=2)
    probs = BootstrapCommittee(n_members=3, random_state=0).fit(X, y).predict_proba(X)
    assert not np.allclose(probs[0], probs[1])


def test_committee_members_see_two_classes_even_when_one_is_rare() -> None:
    X, y = _blobs(15, ["a", "b"])
    y = ["a"] * 29 + ["b"]  # a bootstrap of 30 misses the one 'b' ~36% of the time
    committee = BootstrapCommittee(n_members=10, random_state=0).fit(X, y)
    assert all(m.present_.shape[0] == 2 for m in committee.members_)


def test_committee_from_one_class_and_bad_size() -> None:
    X, _ = _blobs(5, ["a"])
    probs = (
        BootstrapCommittee(classes=["a", "b"], random_state=0).fit(X, ["a"] * 5).predict_proba(X)
    )
    np.testing.assert_array_equal(probs[..., 0], 1.0)
    with pytest.raises(ValueError, match="at least 2 members"):
        BootstrapCommittee(n_members=1).fit(X, ["a"] * 5)


def test_committee_accepts_classifier_and_sparse_input() -> None:
    X, y = _blobs(10, ["a", "b"])
    base = make_model("naive_bayes")
    probs = (
        BootstrapCommittee(base, n_members=3, random_state=0)
        .fit(sp.csr_matrix(np.abs(X)), y)
        .predict_proba(sp.csr_matrix(np.abs(X)))
    )
    assert probs.shape == (3, 20, 2)


# ---- the default model -----------------------------------------------------------------------


def _many_class_text(n_classes: int, n_per_class: int, seed: int) -> tuple[sp.csr_matrix, list[int]]:
    """Sparse L2-normalised bag-of-words: each class has 5 cue words among 2,000 shared ones."""
    rng = np.random.default_rng(seed)
    n_vocab = 2000
    rows, cols, y = [], [], []
    for c in range(n_classes):
        cues = np.arange(5 * c, 5 * c + 5)
        for _ in range(n_per_class):
            words = np.concatenate([rng.choice(cues, 2), rng.integers(5 * n_classes, n_vocab, 6)])
            rows.extend([len(y)] * words.shape[0])
            cols.extend(words.tolist())
            y.append(c)
    X = sp.csr_matrix((np.ones(len(rows)), (rows, cols)), shape=(len(y), n_vocab))
    X.sum_duplicates()
    norms = np.sqrt(np.asarray(X.multiply(X).sum(axis=1)).ravel())
    return sp.csr_matrix(sp.diags(1.0 / norms) @ X), y


@pytest.mark.slow
def test_default_model_beats_the_old_default_with_many_classes_and_few_labels() -> None:
    X, y = _many_class_text(100, 3, seed=0)
    X_test, y_test = _many_class_text(100, 10, seed=1)
    classes = list(range(100))
    new = make_model(classes=classes, random_state=0).fit(X, y)
    old = make_model(classes=classes, random_state=0, C=1.0, fit_intercept=True,
                     class_weight=None, calibrate="auto").fit(X, y)
    acc_new = float((new.predict(X_test) == np.asarray(y_test)).mean())
    acc_old = float((old.predict(X_test) == np.asarray(y_test)).mean())
    assert acc_new > acc_old + 0.08, (acc_new, acc_old)  # measured 0.79 against 0.67


def test_default_model_probabilities_are_valid_and_never_calibrated() -> None:
    X, y = _many_class_text(20, 4, seed=2)
    clf = make_model(classes=list(range(25)), random_state=0).fit(X, y)
    probs = clf.predict_proba(X)
    assert probs.shape == (80, 25)
    assert np.isfinite(probs).all()
    assert (probs >= 0).all()
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-9)
    np.testing.assert_array_equal(probs[:, 20:], 0.0)
    assert not clf.calibrated_  # the same kind of probabilities at 4 labels a class as at 1


def test_default_model_is_deterministic_under_random_state() -> None:
    X, y = _many_class_text(30, 3, seed=3)
    a = make_model(classes=list(range(30)), random_state=5).fit(X, y).predict_proba(X)
    b = make_model(classes=list(range(30)), random_state=5).fit(X, y).predict_proba(X)
    np.testing.assert_array_equal(a, b)


def test_label_logistic_fits_used_columns_only_and_matches_logistic_regression() -> None:
    from activelabel.models import LabelLogistic

    X, y = _many_class_text(10, 5, seed=4)
    X = sp.hstack([X, sp.csr_matrix((X.shape[0], 500))]).tocsr()  # columns no row uses
    params: dict[str, Any] = {"C": 30.0, "fit_intercept": False, "max_iter": 1000}
    ours = LabelLogistic(**params).fit(X, y)
    plain = LogisticRegression(**params).fit(X, y)
    assert ours.coef_.shape == plain.coef_.shape
    np.testing.assert_array_equal(ours.coef_[:, -500:], 0.0)
    np.testing.assert_allclose(ours.predict_proba(X), plain.predict_proba(X), atol=1e-4)


def test_default_model_fits_labels_whose_texts_share_no_feature() -> None:
    """Labeled rows with no non-zero feature (texts with no word of the vocabulary) train a
    model that answers with the class prior instead of failing the round."""
    X = sp.csr_matrix((4, 6), dtype=np.float64)
    model = make_model("logistic_regression", classes=["a", "b"])
    model.fit(X, ["a", "a", "b", "a"])
    probs = model.predict_proba(sp.random(3, 6, density=0.5, format="csr", random_state=0))
    assert probs.shape == (3, 2)
    assert np.allclose(probs.sum(axis=1), 1.0)


def test_default_model_fits_one_label_a_class_without_warnings() -> None:
    """Many classes with a label or two each is how a many-class project starts: the model
    fits it quietly (scikit-learn would warn that ``y`` may be a regression target, once per
    round, into the server's log and ``simulate``'s output)."""
    import warnings

    X, y = _many_class_text(40, 1, seed=6)  # scikit-learn warns from 21 labels on
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        make_model(classes=list(range(40)), random_state=0).fit(X, y)


def test_naive_bayes_on_default_text_features_stays_multinomial_and_sparse(
        shared_data: Path) -> None:
    """The LSA beside the TF-IDF is split by sign, so text features stay non-negative: naive
    Bayes keeps its multinomial event model and never densifies the (wide) TF-IDF."""
    import json

    from activelabel.features import TextFeaturizer

    rows = [json.loads(line) for line in
            (shared_data / "ag_news_test.jsonl").read_text().splitlines()[:400]]
    fs = TextFeaturizer(n_components=20).fit_transform(rows)
    assert fs.X.shape[1] > 40  # the TF-IDF and the 2 x 20 LSA columns
    y = np.array([r["label"] for r in rows])
    nb = NaiveBayes().fit(fs.X[:300], y[:300])
    assert isinstance(nb.estimator_, MultinomialNB)
    assert np.mean(nb.predict(fs.X[300:]) == y[300:]) > 0.6  # 4 classes, chance 0.25


# ---- self-training (pseudo_labels) -----------------------------------------------------------


def _few_labels_and_a_pool(seed: int = 0) -> tuple[np.ndarray, list[Any], np.ndarray]:
    """Three blobs: 2 labels each, 300 unlabeled rows each."""
    X, y = _blobs(302, ["a", "b", "c"], seed=seed)
    labeled = np.r_[0, 1, 302, 303, 604, 605]
    pool = np.setdiff1d(np.arange(len(y)), labeled)
    return X[labeled], [y[i] for i in labeled], X[pool]


def test_self_training_learns_the_surest_pool_rows_of_each_class_as_that_class() -> None:
    X, y, pool = _few_labels_and_a_pool()
    classes = ["a", "b", "c"]
    clf = make_model(classes=classes, pseudo_labels=2, random_state=0)
    clf.fit(X, y, unlabeled=pool)
    assert clf.n_pseudo_ == 3 * 4  # ceil(2 * 6 labels / 3 classes) a class
    plain = make_model(classes=classes, pseudo_labels=0, random_state=0).fit(X, y)
    probs = plain.predict_proba(pool)
    surest = [np.flatnonzero(probs.argmax(axis=1) == j) for j in range(3)]
    surest = [rows[np.argsort(-probs[rows, j], kind="stable")[:4]] for j, rows in enumerate(surest)]
    take = np.sort(np.concatenate(surest))
    by_hand = make_model(classes=classes, pseudo_labels=0, random_state=0).fit(
        np.vstack([X, pool[take]]), y + [classes[j] for j in probs[take].argmax(axis=1)])
    assert np.allclose(clf.predict_proba(pool), by_hand.predict_proba(pool))
    assert not np.allclose(clf.predict_proba(pool), plain.predict_proba(pool))


def test_self_training_is_off_at_zero_without_unlabeled_rows_and_for_multilabel() -> None:
    X, y, pool = _few_labels_and_a_pool()
    plain = make_model(classes=["a", "b", "c"], pseudo_labels=0, random_state=0).fit(X, y)
    at_zero = make_model(classes=["a", "b", "c"], pseudo_labels=0, random_state=0)
    at_zero.fit(X, y, unlabeled=pool)
    assert at_zero.n_pseudo_ == 0
    assert np.array_equal(at_zero.predict_proba(pool), plain.predict_proba(pool))
    without = make_model(classes=["a", "b", "c"], random_state=0).fit(X, y)
    assert without.n_pseudo_ == 0
    assert np.array_equal(without.predict_proba(pool), plain.predict_proba(pool))
    empty = make_model(classes=["a", "b", "c"], random_state=0).fit(X, y, unlabeled=pool[:0])
    assert empty.n_pseudo_ == 0
    multi = make_model(classes=["a", "b", "c"], multilabel=True, pseudo_labels=1)
    multi.fit(X, [[label] for label in y], unlabeled=pool)
    assert multi.n_pseudo_ == 0


def test_self_training_changes_the_model_and_is_the_default_of_logistic_regression() -> None:
    X, y, pool = _few_labels_and_a_pool()
    default = make_model(classes=["a", "b", "c"], random_state=0)
    assert default.pseudo_labels == 1.0
    assert make_model("naive_bayes").pseudo_labels == 0.0
    default.fit(X, y, unlabeled=pool)
    assert default.n_pseudo_ == 3 * 2
    plain = make_model(classes=["a", "b", "c"], pseudo_labels=0, random_state=0).fit(X, y)
    assert not np.allclose(default.predict_proba(pool), plain.predict_proba(pool))
    # surer of the pool after learning its surest rows (the blobs are well apart)
    assert default.predict_proba(pool).max(axis=1).mean() > plain.predict_proba(
        pool).max(axis=1).mean()


def test_self_training_on_sparse_rows_only_from_classes_present() -> None:
    texts = ["good great fine", "great good", "bad awful", "awful bad poor"]
    pool_texts = ["good fine great nice", "bad poor awful", "great", "poor", "fine nice"] * 4
    vec = TfidfVectorizer().fit(texts + pool_texts)
    clf = make_model(classes=["pos", "neg", "other"], pseudo_labels=1, random_state=0)
    clf.fit(vec.transform(texts), ["pos", "pos", "neg", "neg"], unlabeled=vec.transform(pool_texts))
    assert clf.n_pseudo_ == 2 * 2  # ceil(4 / 3) for each of the two classes labeled


@pytest.mark.parametrize("value", [-1, 10.5, True, "1", None])
def test_bad_pseudo_label_shares_are_refused(value: Any) -> None:
    if value is None:  # None asks for the model's default
        assert make_model(pseudo_labels=None).pseudo_labels == 1.0
        return
    with pytest.raises(ValueError, match="pseudo_labels must be a number from 0"):
        make_model(pseudo_labels=value)


def test_unlabeled_rows_of_other_features_are_refused() -> None:
    X, y, pool = _few_labels_and_a_pool()
    clf = make_model(classes=["a", "b", "c"])
    with pytest.raises(ValueError, match=r"unlabeled \(dense, 4 features\) must be rows of X's "
                       r"features \(dense, 5\)"):
        clf.fit(X, y, unlabeled=pool[:, :4])
    with pytest.raises(ValueError, match=r"unlabeled \(sparse, 5 features\)"):
        clf.fit(X, y, unlabeled=sp.csr_matrix(pool))


def test_a_calibrated_fit_learns_from_the_labels_alone() -> None:
    """A calibrator fitted on the model's own guesses would make it over-confident."""
    X, y = _blobs(30, ["a", "b"], seed=1)
    pool, _ = _blobs(200, ["a", "b"], seed=2)
    forced = make_model("random_forest", classes=["a", "b"], calibrate=True, pseudo_labels=1,
                        random_state=0, n_estimators=10)
    forced.fit(X, y, unlabeled=pool)
    assert forced.calibrated_
    assert forced.n_pseudo_ == 0
    plain = make_model("random_forest", classes=["a", "b"], calibrate=False, pseudo_labels=1,
                       random_state=0, n_estimators=10)
    plain.fit(X, y, unlabeled=pool)
    assert plain.n_pseudo_ == 60
    assert not plain.calibrated_


def test_pseudo_label_rows_keep_small_pools_and_sample_large_ones() -> None:
    small = np.arange(0, 2 * PSEUDO_LABEL_POOL, 2)[:PSEUDO_LABEL_POOL]
    assert pseudo_label_rows(small, 0) is small
    large = np.arange(3 * PSEUDO_LABEL_POOL) * 3
    picked = pseudo_label_rows(large, 7)
    assert picked.shape == (PSEUDO_LABEL_POOL,)
    assert np.all(np.diff(picked) > 0)
    assert np.isin(picked, large).all()
    assert np.array_equal(picked, pseudo_label_rows(large, 7))
    assert not np.array_equal(picked, pseudo_label_rows(large, 8))


@given(st.floats(0, 10), st.integers(0, 2_000))
def test_the_pseudo_label_share_is_full_while_labels_are_few_and_fades_to_none(
        share: float, n: int) -> None:
    got = pseudo_label_share(share, n)
    assert 0.0 <= got <= share
    if n <= PSEUDO_FULL_UNTIL:
        assert got == share
    if n >= PSEUDO_NONE_FROM:
        assert got == 0.0
    assert pseudo_label_share(share, n + 1) <= got  # never grows with the labels


@given(st.integers(0, 2_000))
def test_the_default_c_is_stronger_while_labels_are_few_and_follows_the_fade(n: int) -> None:
    c = c_for_labels(n)
    assert FEW_LABELS_C <= c <= DEFAULT_C
    if n <= PSEUDO_FULL_UNTIL:
        assert c == FEW_LABELS_C
    if n >= PSEUDO_NONE_FROM:
        assert c == DEFAULT_C
    assert c_for_labels(n + 1) >= c  # never falls with the labels
    assert math.isclose(c, DEFAULT_C - (DEFAULT_C - FEW_LABELS_C) * pseudo_label_fade(n))


def test_the_default_model_is_regularised_for_its_labels_not_its_pseudo_labels(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """``C="auto"`` is resolved from the number of labels, in the fit on the labels and in the
    refit with pseudo-labels (which doubles the rows but adds no label); fitted alone, a
    ``LabelLogistic`` reads its rows as the labels."""
    seen: list[tuple[int, float]] = []
    fit = LogisticRegression.fit

    def spy(self: Any, X: Any, y: Any, sample_weight: Any = None) -> Any:
        seen.append((X.shape[0], self.C))
        return fit(self, X, y, sample_weight=sample_weight)

    monkeypatch.setattr(LogisticRegression, "fit", spy)
    X, y = _blobs(225, ["a", "b"], seed=5)  # 450 labels: C halfway from 10 to 30
    pool, _ = _blobs(300, ["a", "b"], seed=6)
    clf = make_model(classes=["a", "b"], random_state=0).fit(X, y, unlabeled=pool)
    assert clf.n_pseudo_ > 0
    assert [c for _, c in seen] == [c_for_labels(450)] * 2 == [20.0] * 2
    assert seen[1][0] == 450 + clf.n_pseudo_
    seen.clear()
    LabelLogistic(C="auto").fit(X[::3], y[::3])  # 150 rows of both classes
    assert seen == [(150, FEW_LABELS_C)]
    seen.clear()
    make_model(classes=["a", "b"], C=3.0).fit(X, y)  # a C given is kept
    assert [c for _, c in seen] == [3.0]
    with pytest.raises(ValueError, match="C"):
        LabelLogistic(C="many").fit(X, y)


def test_with_many_labels_the_model_learns_from_the_labels_alone() -> None:
    X, y = _blobs(400, ["a", "b"], seed=3)
    pool, _ = _blobs(300, ["a", "b"], seed=4)
    half = PSEUDO_FULL_UNTIL + (PSEUDO_NONE_FROM - PSEUDO_FULL_UNTIL) // 2
    fading = make_model(classes=["a", "b"], random_state=0)
    fading.fit(np.vstack([X[:half // 2], X[400:400 + half - half // 2]]),
               y[:half // 2] + y[400:400 + half - half // 2], unlabeled=pool)
    assert fading.n_pseudo_ == math.ceil(0.5 * 2 * math.ceil(half / 2))  # the surest half
    many = make_model(classes=["a", "b"], random_state=0)
    many.fit(X, y, unlabeled=pool)
    assert len(y) >= PSEUDO_NONE_FROM
    assert many.n_pseudo_ == 0


def test_the_fade_is_linear_in_the_pseudo_labels_however_many_classes() -> None:
    """With 150 classes a class's share rounds up to one row: the fade keeps the surest
    share of all the rows taken, so it does not wait until the last label."""
    rng = np.random.default_rng(0)
    classes = list(range(150))
    centres = rng.normal(0, 10, size=(150, 8))
    n = PSEUDO_FULL_UNTIL + 9 * (PSEUDO_NONE_FROM - PSEUDO_FULL_UNTIL) // 10  # fade 0.1
    y = [i % 150 for i in range(n)]
    X = centres[y] + rng.normal(size=(n, 8))
    pool = centres[np.arange(3000) % 150] + rng.normal(size=(3000, 8))
    clf = make_model(classes=classes, random_state=0, C=1.0).fit(X, y, unlabeled=pool)
    full = 150 * math.ceil(n / 150)
    assert clf.n_pseudo_ == math.ceil(pseudo_label_fade(n) * full)
    assert clf.n_pseudo_ < full // 5


def test_the_setting_says_the_fade_and_the_defaults_the_models_use() -> None:
    """The settings declaration does not import the models (scikit-learn loads late), so its
    words are checked against the constants here."""
    from activelabel.store.settings import ProjectSettings

    said = str(ProjectSettings.model_fields["pseudo_labels"].description)
    assert f"up to {PSEUDO_FULL_UNTIL} labels, fading to none at {PSEUDO_NONE_FROM}" in said
    assert make_model("logistic_regression").pseudo_labels == 1.0
    assert "1 for logistic_regression, off for the others" in said
    assert all(make_model(name).pseudo_labels == 0 for name in MODEL_NAMES
               if name != "logistic_regression")
