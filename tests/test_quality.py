"""Quality maths: agreement measures by hand and against the reference libraries, consensus,
Dawid-Skene recovering planted annotator noise, cleanlab finding planted label flips."""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from activelabel.quality import (
    DawidSkene,
    MajorityVote,
    active_learning_scores,
    cohen_kappa_pairs,
    count_table,
    find_label_issues,
    find_missing_labels,
    fit_temperature,
    fleiss_kappa,
    krippendorff_alpha,
    multilabel_out_of_sample_probs,
    out_of_sample_probs,
    reliability_matrix,
    specific_agreement,
    with_temperature,
)
from tests.support.crowd import planted_crowd

CROWD_KIT_REFERENCE = Path(__file__).parent / "data" / "dawid_skene_crowd_kit.json"

# Three items, two raters: agree on 0, agree on 1, split.
SMALL = reliability_matrix([0, 0, 1, 1, 2, 2], [0, 1, 0, 1, 0, 1], [0, 0, 1, 1, 0, 1], 3, 2)

# Fleiss (1971) as on Wikipedia: 10 subjects, 14 raters, 5 categories; kappa 0.210.
WIKI_FLEISS = np.array([
    [0, 0, 0, 0, 14], [0, 2, 6, 4, 2], [0, 0, 3, 5, 6], [0, 3, 9, 2, 0], [2, 2, 8, 1, 1],
    [7, 7, 0, 0, 0], [3, 2, 6, 3, 0], [2, 5, 3, 2, 2], [6, 5, 2, 1, 0], [0, 2, 2, 3, 7]])


def _pairs_table(yy: int, yn: int, ny: int, nn: int) -> np.ndarray:
    """Two raters' labels (1 = yes) from a 2x2 agreement table, as a reliability matrix."""
    a = [1] * yy + [1] * yn + [0] * ny + [0] * nn
    b = [1] * yy + [0] * yn + [1] * ny + [0] * nn
    return np.array([a, b], dtype=float)


def test_cohen_kappa_matches_a_hand_computed_table() -> None:
    # po = 35/50 = 0.7; pe = 0.5*0.6 + 0.5*0.4 = 0.5; kappa = 0.2 / 0.5 = 0.4
    (pair,) = cohen_kappa_pairs(_pairs_table(20, 5, 10, 15), 2)
    assert (pair.a, pair.b, pair.n) == (0, 1, 50)
    assert pair.kappa == pytest.approx(0.4)


def test_cohen_kappa_pairs_use_only_shared_items_and_match_sklearn() -> None:
    from sklearn.metrics import cohen_kappa_score

    rng = np.random.default_rng(3)
    data = rng.integers(0, 3, size=(3, 40)).astype(float)
    data[2, :10] = np.nan
    pairs = {(p.a, p.b): p for p in cohen_kappa_pairs(data, 3)}
    assert set(pairs) == {(0, 1), (0, 2), (1, 2)}
    assert pairs[(0, 2)].n == 30
    expected = cohen_kappa_score(data[1, 10:], data[2, 10:])
    assert pairs[(1, 2)].kappa == pytest.approx(expected)


def test_fleiss_kappa_by_hand_and_the_published_example() -> None:
    # P_i = [1, 1, 0] -> 2/3; p_j = [1/2, 1/2] -> Pe = 1/2; kappa = (2/3 - 1/2) / (1/2) = 1/3
    assert fleiss_kappa(np.array([[2, 0], [0, 2], [1, 1]])) == pytest.approx(1 / 3)
    assert fleiss_kappa(WIKI_FLEISS) == pytest.approx(0.2099, abs=1e-4)


def test_fleiss_kappa_keeps_items_with_the_most_common_number_of_raters() -> None:
    table = np.vstack([WIKI_FLEISS, [[1, 0, 0, 0, 0], [0, 3, 0, 0, 0]]])
    assert fleiss_kappa(table) == fleiss_kappa(WIKI_FLEISS)
    assert fleiss_kappa(np.array([[1, 0], [0, 1]])) is None


FLEISS_REFERENCE = json.loads(
    (Path(__file__).parent / "data" / "fleiss_reference.json").read_text())


@pytest.mark.parametrize("case", FLEISS_REFERENCE["cases"], ids=lambda c: c["name"])
def test_fleiss_kappa_matches_statsmodels(case: dict[str, Any]) -> None:
    """Values recorded from statsmodels by scripts/fleiss_reference.py (statsmodels is not a
    dependency); null where statsmodels divides 0 by 0, which we report as 1.0."""
    got = fleiss_kappa(np.array(case["table"]))
    expected = 1.0 if case["kappa"] is None else case["kappa"]
    assert got is not None
    assert abs(got - expected) <= 1e-12, (got, expected)


def test_krippendorff_alpha_by_hand_and_against_the_library() -> None:
    import krippendorff

    # Coincidences o00 = 2, o11 = 2, o01 = o10 = 1; n = 6; Do = 2/6, De = 2*3*3/30 = 0.6
    assert krippendorff_alpha(SMALL) == pytest.approx(4 / 9)
    # Krippendorff's own example with missing data (nominal alpha 0.743).
    nan = np.nan
    data = np.array([
        [1, 2, 3, 3, 2, 1, 4, 1, 2, nan, nan, nan],
        [1, 2, 3, 3, 2, 2, 4, 1, 2, 5, nan, 3],
        [nan, 3, 3, 3, 2, 3, 4, 2, 2, 5, 1, nan],
        [1, 2, 3, 3, 2, 4, 4, 1, 2, 5, 1, nan]])
    assert krippendorff_alpha(data) == pytest.approx(0.743, abs=1e-3)
    assert krippendorff_alpha(data) == pytest.approx(
        krippendorff.alpha(reliability_data=data, level_of_measurement="nominal"))
    assert krippendorff_alpha(np.array([[0.0, nan], [nan, 1.0]])) is None


def test_specific_agreement_by_hand() -> None:
    # class 0: agree 2*1 = 2, possible 2*1 + 1*1 = 3 -> 2/3 (same for class 1); class 2 unused
    share, n = specific_agreement(np.array([[2, 0, 0], [0, 2, 0], [1, 1, 0], [1, 0, 0]]))
    assert share[:2] == pytest.approx([2 / 3, 2 / 3])
    assert np.isnan(share[2])
    assert n.tolist() == [2, 2, 0]


def test_majority_vote_marks_ties_and_empty_items() -> None:
    vote = MajorityVote().fit(np.array([[2, 1], [1, 1], [0, 0], [0, 3]]))
    assert vote.labels_.tolist() == [0, -1, -1, 1]
    assert vote.ties_.tolist() == [False, True, False, False]


@st.composite
def _agreeing(draw: st.DrawFn) -> tuple[np.ndarray, int]:
    n_items = draw(st.integers(2, 20))
    n_raters = draw(st.integers(2, 5))
    truth = np.array(draw(st.lists(st.integers(0, 3), min_size=n_items, max_size=n_items)))
    return np.tile(truth, (n_raters, 1)).astype(float), 4


@settings(max_examples=30, deadline=None)
@given(_agreeing())
def test_perfect_agreement_scores_one_everywhere(case: tuple[np.ndarray, int]) -> None:
    data, k = case
    items = np.tile(np.arange(data.shape[1]), data.shape[0])
    counts = count_table(items, data.ravel().astype(int), data.shape[1], k)
    assert krippendorff_alpha(data) == pytest.approx(1.0)
    assert fleiss_kappa(counts) == pytest.approx(1.0)
    assert all(p.kappa == pytest.approx(1.0) for p in cohen_kappa_pairs(data, k))


@settings(max_examples=30, deadline=None)
@given(st.integers(0, 10_000))
def test_measures_ignore_the_order_of_items_and_the_names_of_classes(seed: int) -> None:
    rng = np.random.default_rng(seed)
    data = rng.integers(0, 3, size=(3, 15)).astype(float)
    data[rng.random(data.shape) < 0.2] = np.nan
    order = rng.permutation(data.shape[1])
    rename = rng.permutation(3).astype(float)
    renamed = np.where(np.isnan(data), np.nan, rename[np.nan_to_num(data).astype(int)])
    for other in (data[:, order], renamed):
        a, b = krippendorff_alpha(data), krippendorff_alpha(other)
        assert (a is None and b is None) or a == pytest.approx(b)
        first = [p.kappa for p in cohen_kappa_pairs(data, 3)]
        second = [p.kappa for p in cohen_kappa_pairs(other, 3)]
        assert first == pytest.approx(second, nan_ok=True)


def test_dawid_skene_recovers_a_planted_noisy_annotator() -> None:
    truth, items, workers, labels = planted_crowd()
    ds = DawidSkene().fit(items, workers, labels, n_items=300, n_annotators=5, n_classes=3)
    acc = ds.accuracy_
    assert int(np.argmin(acc)) == 4
    assert acc[4] < min(acc[:4]) - 0.3
    assert acc[4] == pytest.approx(0.35, abs=0.08)
    assert acc[:4] == pytest.approx([0.9, 0.88, 0.92, 0.9], abs=0.06)
    assert (ds.labels_ == truth).mean() > 0.97
    assert ds.probs_.sum(axis=1) == pytest.approx(np.ones(300))


def test_dawid_skene_agrees_with_crowd_kit() -> None:
    """Step for step the same EM as crowd-kit, whose answer on this crowd is saved in
    tests/data (crowd-kit pulls transformers and takes ~20 s to import, so it is no dependency
    of activelabel; scripts/crowd_kit_reference.py made the file and says how to remake it)."""
    _, items, workers, labels = planted_crowd(seed=1, n_items=120,
                                              accuracy=(0.8, 0.7, 0.6, 0.5))
    keep = np.random.default_rng(1).random(items.shape[0]) < 0.7  # missing labels too
    items, workers, labels = items[keep], workers[keep], labels[keep]
    ref = json.loads(CROWD_KIT_REFERENCE.read_text())
    assert [items.tolist(), workers.tolist(), labels.tolist()] == [
        ref["items"], ref["workers"], ref["labels"]], \
        "not the crowd crowd-kit was run on: rerun scripts/crowd_kit_reference.py"
    # A fixed number of iterations: the two stopping rules differ in when they fire.
    assert (ref["n_iter"], ref["tol"]) == (8, "-inf")
    ours = DawidSkene(max_iter=8, tol=-np.inf).fit(items, workers, labels, n_items=120,
                                                    n_annotators=4, n_classes=3)
    seen = np.unique(items)
    assert seen.tolist() == ref["tasks"]
    assert ours.labels_[seen].tolist() == ref["task_labels"]
    assert ours.probs_[seen] == pytest.approx(np.array(ref["task_probs"]), abs=1e-9)
    for w in range(4):
        ref_err = np.array(ref["errors"][w])  # [given, true]
        np.testing.assert_allclose(ours.errors_[w].T, ref_err, atol=1e-9)


def test_dawid_skene_leaves_unlabeled_items_unknown() -> None:
    ds = DawidSkene().fit([0, 0, 1], [0, 1, 0], [1, 1, 0], n_items=3, n_annotators=3,
                          n_classes=2)
    assert ds.labels_.tolist() == [1, 0, -1]
    assert np.isnan(ds.accuracy_[2])


def _sms(shared_data: Path, n: int) -> tuple[list[str], np.ndarray]:
    texts, labels = [], []
    with open(shared_data / "sms_spam.jsonl", encoding="utf-8") as handle:
        for line in handle:
            row = json.loads(line)
            texts.append(row["text"])
            labels.append(1 if row["label"] == "spam" else 0)
            if len(texts) == n:
                break
    return texts, np.array(labels)


def test_cleanlab_finds_planted_label_flips_in_sms_spam(shared_data: Path) -> None:
    from sklearn.feature_extraction.text import TfidfVectorizer

    texts, y = _sms(shared_data, 1500)
    rng = np.random.default_rng(0)
    flipped = rng.choice(len(y), size=60, replace=False)
    noisy = y.copy()
    noisy[flipped] = 1 - noisy[flipped]
    X = TfidfVectorizer(sublinear_tf=True, min_df=2).fit_transform(texts)
    probs = out_of_sample_probs(X, noisy, 2, random_state=0)
    issues = find_label_issues(noisy, probs)
    found = set(issues.indices.tolist())
    recall = len(found & set(flipped.tolist())) / len(flipped)
    precision = len(found & set(flipped.tolist())) / max(len(found), 1)
    print(f"cleanlab on sms_spam[:1500] with 60 flips: recall {recall:.2f}, "
          f"precision {precision:.2f}, {len(found)} flagged")
    assert recall >= 0.7
    assert np.all(np.diff(issues.scores) <= 1e-12)  # ranked most suspect first


def test_a_class_given_once_is_quiet_and_never_flagged() -> None:
    """Early in a many-class run dozens of classes have one label each: cleanlab warned of
    every one (the worker's log full of warnings nothing could be done about; pytest reads a
    warning as an error here). The check runs quietly, the class given once is never
    flagged, and the other classes are checked as before."""
    rng = np.random.default_rng(0)
    labels = np.concatenate([rng.integers(0, 3, 300), [3]])
    probs = rng.dirichlet(np.ones(4), 301) * 0.2
    probs[np.arange(300), labels[:300]] += 1.0
    probs[5, :] = [0.0, 1.0, 0.0, 0.0]  # a label 0 the probabilities say is a 1
    probs[300, :] = [1.0, 0.0, 0.0, 0.0]  # the one 3, which the probabilities say is a 0
    probs /= probs.sum(axis=1, keepdims=True)
    found = set(find_label_issues(labels, probs).indices.tolist())
    assert 300 not in found
    assert 5 in found


def test_out_of_sample_probs_refuse_a_single_class() -> None:
    with pytest.raises(ValueError, match="at least 2 classes"):
        out_of_sample_probs(np.zeros((4, 2)), [1, 1, 1, 1], 3)


def test_out_of_fold_models_train_on_four_fifths_when_some_classes_have_two_labels() -> None:
    """Many classes of 2 labels beside larger ones (early in a run over many intents): five
    folds still, so each model trains on about 4/5 of the labels (folds as few as the rarest
    class trained each on half), and every fold's model sees every class."""
    seen: list[tuple[int, set[int]]] = []

    class Recorder:
        def fit(self, X: Any, y: Any) -> Recorder:
            seen.append((len(y), set(np.asarray(y).tolist())))
            return self

        def predict_proba(self, X: Any) -> Any:
            return np.full((X.shape[0], 12), 1 / 12)

    y = np.array([c for c in range(10) for _ in range(2)] + [10] * 20 + [11] * 20)
    probs = out_of_sample_probs(np.zeros((y.shape[0], 3)), y, 12, make=Recorder)
    assert probs.shape == (60, 12)
    assert len(seen) == 5
    assert all(n >= 0.75 * 60 for n, _ in seen)
    assert all(classes == set(range(12)) for _, classes in seen)
    with pytest.raises(ValueError, match="at least 2 items"):
        out_of_sample_probs(np.zeros((41, 3)), np.r_[y[:40], 12], 13, make=Recorder)


def test_fit_temperature_undoes_a_known_temperature() -> None:
    """Labels drawn from softmax(logits), probabilities softmax(logits * t): the fit finds t."""
    rng = np.random.default_rng(0)
    logits = rng.normal(0, 2, size=(3000, 8))
    true = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    labels = np.array([rng.choice(8, p=row) for row in true])
    for t in (0.4, 1.0, 2.5):
        given = np.exp(logits * t) / np.exp(logits * t).sum(axis=1, keepdims=True)
        assert fit_temperature(given, labels) == pytest.approx(t, rel=0.1)
        scaled = with_temperature(given, fit_temperature(given, labels))
        assert np.allclose(scaled, true, atol=0.05)
    assert fit_temperature(np.zeros((0, 3)) + 1, np.zeros(0, dtype=int)) == 1.0


def test_a_few_rows_all_right_leave_the_temperature_alone() -> None:
    """Ten rows the model gets right: the likeliest temperature is the sharpest allowed, which
    would read 0.6 / 0.4 as sure; below the rows needed the fit keeps 1, and above them the
    bound keeps a 0.6 / 0.4 row from reading more than 0.9 sure."""
    few = np.array([[0.6, 0.4], [0.45, 0.55]] * 5)
    right = np.array([0, 1] * 5)
    assert fit_temperature(few, right) == 1.0
    many = np.tile(few, (10, 1))
    t = fit_temperature(many, np.tile(right, 10))
    assert t == pytest.approx(0.2, abs=0.01)
    assert with_temperature(many, t)[0, 0] < 0.9


@settings(max_examples=50, deadline=None)
@given(st.lists(st.lists(st.floats(0, 1), min_size=3, max_size=3).filter(lambda r: sum(r) > 0),
                min_size=1, max_size=20), st.floats(0.05, 20))
def test_with_temperature_keeps_rows_order_and_zeros(rows: list[list[float]], t: float) -> None:
    p = np.asarray(rows) / np.asarray(rows).sum(axis=1, keepdims=True)
    out = with_temperature(p, t)
    assert np.allclose(out.sum(axis=1), 1.0)
    assert np.all(out[p == 0] == 0)
    for a, b in zip(p, out, strict=True):  # each row's order of classes stays
        assert np.all(np.diff(b[np.argsort(a, kind="stable")]) >= -1e-12)


def test_temperature_refuses_what_is_not_probabilities() -> None:
    with pytest.raises(ValueError, match="temperature must be > 0"):
        with_temperature(np.array([[0.5, 0.5]]), 0.0)
    with pytest.raises(ValueError, match="non-negative"):
        with_temperature(np.array([[0.0, 0.0]]), 1.0)
    with pytest.raises(ValueError, match="n = 2 labels"):
        fit_temperature(np.array([[0.5, 0.5]]), [0, 1])


def test_active_learning_scores_rank_a_contested_item_lowest() -> None:
    nan = np.nan
    labels = np.array([[0, 0, 0], [1, 1, 1], [0, 1, nan], [1, nan, nan]])
    probs = np.array([[0.9, 0.1], [0.1, 0.9], [0.5, 0.5], [0.2, 0.8]])
    unlabeled = np.array([[0.95, 0.05], [0.6, 0.4]])
    scored, new = active_learning_scores(labels, probs, unlabeled)
    assert scored.shape == (4,)
    assert new.shape == (2,)
    assert int(np.argmin(scored)) == 2
    assert new[1] < new[0]


def test_active_learning_scores_break_a_tie_the_same_way_every_time() -> None:
    """Item 1 is a tie that cleanlab breaks at random (equal probabilities, class counts and
    annotator agreement), and the pick moves every score: seeded inside, whatever the caller's
    numpy global state, and that state is left as it was."""
    labels = np.array([[0, 0], [0, 1], [1, 1]], dtype=float)
    probs = np.array([[0.95, 0.05], [0.5, 0.5], [0.05, 0.95]])
    unlabeled = np.array([[0.97, 0.03], [0.9, 0.1]])
    answers = []
    for seed in range(8):
        np.random.seed(seed)  # noqa: NPY002  (the global state is what this test is about)
        expected_next = np.random.random()  # noqa: NPY002
        np.random.seed(seed)  # noqa: NPY002
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            answers.append(active_learning_scores(labels, probs, unlabeled))
        assert np.random.random() == expected_next  # noqa: NPY002  (the caller's stream goes on)
    for scored, new in answers[1:]:
        np.testing.assert_array_equal(scored, answers[0][0])
        np.testing.assert_array_equal(new, answers[0][1])


def test_label_issues_never_fork_a_process_pool(monkeypatch: pytest.MonkeyPatch) -> None:
    """The server calls this from a request thread: cleanlab's default multiprocessing pool
    forks the threaded server process, and such a fork can hang for good (a review page that
    never loaded). The work stays in the calling process."""
    import multiprocessing

    def no_pool(*args: object, **kwargs: object) -> None:
        raise AssertionError("find_label_issues forked a multiprocessing pool")

    monkeypatch.setattr(multiprocessing, "Pool", no_pool)
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 3, 300)
    probs = rng.dirichlet(np.ones(3), 300)
    probs[np.arange(300), labels] += 1.0
    probs /= probs.sum(axis=1, keepdims=True)
    find_label_issues(labels, probs)


def test_missing_labels_are_found_out_of_fold() -> None:
    """Three labels, each a threshold on a feature; the first left out of 15 sets that hold
    it (a forgotten label): a model that never saw a set is sure of the label it lacks."""
    from functools import partial

    from activelabel.models import make_model

    rng = np.random.default_rng(0)
    X = rng.normal(size=(400, 5))
    Y = np.stack([X[:, 0] > 0.3, X[:, 1] > 0.5, X[:, 2] > 1.0], axis=1).astype(np.int8)
    missed = rng.choice(np.flatnonzero(Y[:, 0] == 1), 15, replace=False)
    noisy = Y.copy()
    noisy[missed, 0] = 0
    make = partial(make_model, "logistic_regression", classes=[0, 1, 2], multilabel=True,
                   calibrate=False)
    probs = multilabel_out_of_sample_probs(X, noisy, make)
    assert probs.shape == (400, 3)
    rows, labels, sure = find_missing_labels(noisy, probs)
    assert len(set(rows.tolist()) & set(missed.tolist())) >= 8
    assert len(set(rows.tolist()) - set(missed.tolist())) <= 3
    assert set(labels[np.isin(rows, missed)].tolist()) == {0}
    assert np.all(sure >= 0.9)
    assert np.all(np.diff(sure) <= 0)
    assert np.all(noisy[rows, labels] == 0)  # a label the set lacks


def test_find_missing_labels_checks_its_input() -> None:
    Y = np.array([[1, 0], [0, 0]])
    rows, labels, sure = find_missing_labels(Y, np.array([[0.99, 0.95], [0.2, 0.1]]))
    assert rows.tolist() == [0]
    assert labels.tolist() == [1]
    assert sure.tolist() == [0.95]
    assert find_missing_labels(Y, np.array([[1.0, 1.0], [1.0, 1.0]]), sure=1.0)[0].tolist() == [
        0, 1]
    with pytest.raises(ValueError, match="shape"):
        find_missing_labels(Y, np.zeros((2, 3)))
    with pytest.raises(ValueError, match="sure"):
        find_missing_labels(Y, np.zeros((2, 2)), sure=0)
    with pytest.raises(ValueError, match="indicator"):
        multilabel_out_of_sample_probs(np.zeros((3, 2)), np.zeros((2, 2)), lambda: None)
