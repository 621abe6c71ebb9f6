"""Quality maths over plain arrays: agreement, consensus, annotator noise, label issues.

Everything here is pure (numpy / scikit-learn and well-kept statistics libraries, imported
inside the functions that use them, so ``import activelabel`` stays light). Labels are given
in *long* form, one entry per (item, annotator) label:

- ``items`` (n_labels,) int: the item's index, 0..n_items-1
- ``annotators`` (n_labels,) int: the annotator's index, 0..n_annotators-1
- ``labels`` (n_labels,) int: the class index, 0..n_classes-1

Agreement measures and where they come from:

- Cohen's kappa per annotator pair: :func:`sklearn.metrics.cohen_kappa_score` over the items
  both labeled.
- Fleiss' kappa (Fleiss 1971) in numpy, over the items that have the most common number of
  labels (Fleiss assumes a fixed number of raters per item); it matches statsmodels'
  ``fleiss_kappa`` to 1e-12 on the tables in tests/data/fleiss_reference.json.
- Krippendorff's alpha (nominal, missing data allowed): :func:`krippendorff.alpha`.
- Per label: the proportion of *specific agreement* (Uebersax): for label k, over all items,
  ``sum n_ik (n_ik - 1) / sum n_ik (n_i - 1)``: given that one annotator chose k, the chance
  that another annotator of the same item chose k too. It handles any number of raters.

Where a measure is undefined because there is no variation at all (every label is the same
class), perfect observed agreement is reported as 1.0; too little data gives None.
"""

from __future__ import annotations

import threading
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from itertools import combinations
from typing import Any

import numpy as np
from numpy.typing import NDArray

__all__ = [
    "DawidSkene",
    "LabelIssues",
    "MajorityVote",
    "PairKappa",
    "active_learning_scores",
    "cohen_kappa_pairs",
    "count_table",
    "find_label_issues",
    "find_missing_labels",
    "fit_temperature",
    "fleiss_kappa",
    "krippendorff_alpha",
    "multilabel_majority",
    "multilabel_out_of_sample_probs",
    "out_of_sample_probs",
    "reliability_matrix",
    "specific_agreement",
    "with_temperature",
]

IntArray = NDArray[np.intp]
FloatArray = NDArray[np.float64]
#: Smallest probability kept in the Dawid-Skene confusion matrices (as crowd-kit).
_EPS = 1e-10


def _long(items: Any, annotators: Any, labels: Any) -> tuple[IntArray, IntArray, IntArray]:
    i, a, y = (np.asarray(x, dtype=np.intp).ravel() for x in (items, annotators, labels))
    if not i.shape == a.shape == y.shape:
        raise ValueError(f"items, annotators and labels must have one entry per label; got "
                         f"{i.shape[0]}, {a.shape[0]} and {y.shape[0]}")
    if i.size and min(i.min(), a.min(), y.min()) < 0:
        raise ValueError("items, annotators and labels are 0-based indices: negatives found")
    return i, a, y


def count_table(items: Any, labels: Any, n_items: int, n_classes: int) -> NDArray[np.int64]:
    """(n_items, n_classes) how many annotators gave each class to each item."""
    i, _, y = _long(items, items, labels)
    if i.size and (i.max() >= n_items or y.max() >= n_classes):
        raise ValueError(f"indices out of range: items < {n_items} and labels < {n_classes} "
                         f"expected, got max {i.max()} and {y.max()}")
    table = np.zeros((n_items, n_classes), dtype=np.int64)
    np.add.at(table, (i, y), 1)
    return table


def reliability_matrix(items: Any, annotators: Any, labels: Any, n_items: int,
                       n_annotators: int) -> FloatArray:
    """(n_annotators, n_items) class index as float, NaN where the annotator gave no label.

    An annotator labeling an item twice keeps the last entry."""
    i, a, y = _long(items, annotators, labels)
    matrix = np.full((n_annotators, n_items), np.nan)
    matrix[a, i] = y
    return matrix


def _all_same(values: FloatArray) -> bool:
    seen = values[~np.isnan(values)]
    return seen.size > 0 and bool(np.all(seen == seen[0]))


def krippendorff_alpha(reliability: FloatArray) -> float | None:
    """Krippendorff's alpha (nominal) of a (n_annotators, n_items) matrix with NaN for missing.

    Only items with at least two labels count (pairable values). None without any such item;
    1.0 when every pairable value is the same class."""
    import krippendorff

    data = np.asarray(reliability, dtype=np.float64)
    if data.ndim != 2:
        raise ValueError(f"reliability must be (n_annotators, n_items), got shape {data.shape}")
    pairable = data[:, (~np.isnan(data)).sum(axis=0) >= 2]
    if pairable.shape[1] == 0:
        return None
    if _all_same(pairable):
        return 1.0
    return float(krippendorff.alpha(reliability_data=pairable, level_of_measurement="nominal"))


def fleiss_kappa(counts: NDArray[Any]) -> float | None:
    """Fleiss' kappa of a (n_items, n_classes) count table (:func:`count_table`).

    Fleiss assumes every item has the same number of raters: the items with the most common
    number of labels (at least 2) are used, the others left out. None without such items."""
    table = np.asarray(counts, dtype=np.int64)
    per_item = table.sum(axis=1)
    multi = per_item[per_item >= 2]
    if multi.size == 0:
        return None
    values, freq = np.unique(multi, return_counts=True)
    m = values[np.argmax(freq)]
    rows = table[per_item == m]
    if np.count_nonzero(rows.sum(axis=0)) == 1:
        return 1.0
    return _fleiss(rows)


def _fleiss(rows: NDArray[np.int64]) -> float:
    """Fleiss' kappa of a count table whose rows all sum to the same number of raters (>= 2).

    kappa = (P - Pe) / (1 - Pe): P the mean over items of the share of agreeing rater pairs,
    Pe the sum of squared class proportions (the agreement expected by chance)."""
    table = rows.astype(np.float64)
    n_raters = table.sum(axis=1).max()
    p_class = table.sum(axis=0) / table.sum()
    p_item = ((table * table).sum(axis=1) - n_raters) / (n_raters * (n_raters - 1.0))
    p_chance = (p_class * p_class).sum()
    return float((p_item.mean() - p_chance) / (1.0 - p_chance))


@dataclass(frozen=True)
class PairKappa:
    """Cohen's kappa of annotators ``a`` < ``b`` over the ``n`` items both labeled."""

    a: int
    b: int
    kappa: float | None
    n: int


def cohen_kappa_pairs(reliability: FloatArray, n_classes: int, *,
                      min_items: int = 2) -> list[PairKappa]:
    """Cohen's kappa for every pair of annotators sharing at least ``min_items`` items.

    ``reliability`` is (n_annotators, n_items) with NaN for missing (:func:`reliability_matrix`).
    A pair that always gave one and the same class (chance agreement 1) has kappa 1.0."""
    from sklearn.metrics import cohen_kappa_score

    data = np.asarray(reliability, dtype=np.float64)
    present = ~np.isnan(data)
    out: list[PairKappa] = []
    for a, b in combinations(range(data.shape[0]), 2):
        both = present[a] & present[b]
        n = int(both.sum())
        if n < min_items:
            continue
        ya, yb = data[a, both].astype(np.intp), data[b, both].astype(np.intp)
        if np.all(ya == ya[0]) and np.all(yb == ya[0]):
            kappa: float | None = 1.0
        else:
            value = float(cohen_kappa_score(ya, yb, labels=list(range(n_classes))))
            kappa = value if np.isfinite(value) else None
        out.append(PairKappa(a, b, kappa, n))
    return out


def specific_agreement(counts: NDArray[Any]) -> tuple[FloatArray, NDArray[np.int64]]:
    """Per class k the proportion of specific agreement ``sum n_ik(n_ik-1) / sum n_ik(n_i-1)``
    over items with two or more labels, and the number of those items where k was given.

    Returns ((n_classes,) agreement, NaN where k was never given; (n_classes,) item counts)."""
    table = np.asarray(counts, dtype=np.float64)
    table = table[table.sum(axis=1) >= 2]
    n_i = table.sum(axis=1, keepdims=True)
    agree = (table * (table - 1)).sum(axis=0)
    possible = (table * (n_i - 1)).sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        share = np.where(possible > 0, agree / np.where(possible > 0, possible, 1), np.nan)
    return share, (table > 0).sum(axis=0).astype(np.int64)


class MajorityVote:
    """Consensus by the most frequent class; ties (and items without labels) give -1.

    ``fit(counts)`` with a (n_items, n_classes) count table; ``labels_`` (n_items,) class index
    or -1, ``ties_`` (n_items,) bool: two or more classes share the top count."""

    def fit(self, counts: NDArray[Any]) -> MajorityVote:
        table = np.asarray(counts)
        if table.ndim != 2:
            raise ValueError(f"counts must be (n_items, n_classes), got shape {table.shape}")
        top = table.max(axis=1) if table.shape[1] else np.zeros(table.shape[0])
        n_top = (table == top[:, None]).sum(axis=1)
        self.ties_: NDArray[np.bool_] = (top > 0) & (n_top > 1)
        labels = np.argmax(table, axis=1).astype(np.intp)
        labels[(top == 0) | self.ties_] = -1
        self.labels_: IntArray = labels
        return self


class DawidSkene:
    """Dawid and Skene (1979): each annotator has a confusion matrix, learned by EM.

    The same model and updates as ``crowdkit.aggregation.DawidSkene`` (majority-vote start,
    M-step on soft counts, stop when the evidence lower bound moves less than ``tol``), over
    arrays. After ``fit``:

    - ``probs_`` (n_items, n_classes): posterior of each item's true class (uniform for items
      without labels)
    - ``labels_`` (n_items,): the most likely class, -1 for items without labels
    - ``errors_`` (n_annotators, n_classes, n_classes): ``errors_[w, true, given]``
    - ``priors_`` (n_classes,): class shares
    - ``accuracy_`` (n_annotators,): ``sum_c priors_[c] * errors_[w, c, c]``, the model's
      estimate of how often the annotator gives the true class (NaN without labels)
    """

    def __init__(self, max_iter: int = 100, tol: float = 1e-5) -> None:
        self.max_iter = max_iter
        self.tol = tol

    def fit(self, items: Any, annotators: Any, labels: Any, *, n_items: int,
            n_annotators: int, n_classes: int) -> DawidSkene:
        i, a, y = _long(items, annotators, labels)
        if n_classes < 1 or self.max_iter < 1:
            raise ValueError(f"n_classes and max_iter must be >= 1, got {n_classes} and "
                             f"{self.max_iter}")
        counts = count_table(i, y, n_items, n_classes).astype(np.float64)
        labeled = counts.sum(axis=1) > 0
        probs = np.full((n_items, n_classes), 1.0 / n_classes)
        probs[labeled] = counts[labeled] / counts[labeled].sum(axis=1, keepdims=True)
        priors = probs[labeled].mean(axis=0) if labeled.any() else probs[0]
        errors = self._m_step(i, a, y, probs, n_annotators, n_classes)
        elbo = -np.inf
        self.n_iter_ = 0
        for _ in range(self.max_iter):
            probs = self._e_step(i, a, y, priors, errors, labeled)
            priors = probs[labeled].mean(axis=0) if labeled.any() else priors
            errors = self._m_step(i, a, y, probs, n_annotators, n_classes)
            self.n_iter_ += 1
            new = self._elbo(i, a, y, probs, priors, errors, labeled) / max(i.shape[0], 1)
            if new - elbo < self.tol:
                break
            elbo = new
        self.probs_: FloatArray = probs
        self.priors_: FloatArray = priors
        self.errors_: FloatArray = errors
        self.labels_: IntArray = np.where(labeled, probs.argmax(axis=1), -1).astype(np.intp)
        has = np.bincount(a, minlength=n_annotators) > 0
        diag = np.einsum("wcc->wc", errors) @ priors
        self.accuracy_: FloatArray = np.where(has, diag, np.nan)
        return self

    @staticmethod
    def _m_step(i: IntArray, a: IntArray, y: IntArray, probs: FloatArray, n_annotators: int,
                n_classes: int) -> FloatArray:
        soft = np.zeros((n_annotators, n_classes, n_classes))  # [w, true, given]
        for c in range(n_classes):
            np.add.at(soft[:, c, :], (a, y), probs[i, c])
        given = np.zeros((n_annotators, n_classes), dtype=bool)
        given[a, y] = True
        # As crowd-kit: only (annotator, given) pairs seen carry mass; clip, then normalise.
        soft = np.where(given[:, None, :], np.maximum(soft, _EPS), 0.0)
        total = soft.sum(axis=2, keepdims=True)
        return np.divide(soft, total, out=np.full_like(soft, 1.0 / n_classes),
                         where=total > 0)

    @staticmethod
    def _e_step(i: IntArray, a: IntArray, y: IntArray, priors: FloatArray, errors: FloatArray,
                labeled: NDArray[np.bool_]) -> FloatArray:
        n_items, n_classes = labeled.shape[0], priors.shape[0]
        log = np.tile(np.log(np.maximum(priors, _EPS)), (n_items, 1))
        np.add.at(log, i, np.log(np.maximum(errors[a, :, y], _EPS)))
        log -= log.max(axis=1, keepdims=True)
        post = np.exp(log)
        post /= post.sum(axis=1, keepdims=True)
        post[~labeled] = 1.0 / n_classes
        return post

    @staticmethod
    def _elbo(i: IntArray, a: IntArray, y: IntArray, probs: FloatArray, priors: FloatArray,
              errors: FloatArray, labeled: NDArray[np.bool_]) -> float:
        log_err = np.log(np.maximum(errors[a, :, y], _EPS))  # (n_labels, n_classes)
        joint = float((probs[i] * log_err).sum())
        p = probs[labeled]
        joint += float((p * np.log(np.maximum(priors, _EPS))).sum())
        entropy = -float((p * np.log(np.maximum(p, _EPS))).sum())
        return joint + entropy


def out_of_sample_probs(X: Any, y: Any, n_classes: int, *, estimator: Any = None,
                        make: Callable[[], Any] | None = None, n_splits: int = 5,
                        random_state: int = 0) -> FloatArray:
    """(n_samples, n_classes) probabilities of each sample from a model that never saw it.

    Stratified ``n_splits``-fold cross-validation (fewer folds only when no class has
    ``n_splits`` samples) of ``estimator`` (default: logistic regression; its ``classes_``
    place its columns), or of a new model from ``make`` per fold whose ``predict_proba`` gives
    all ``n_classes`` columns (an :class:`activelabel.models.Classifier` over classes
    ``0..n_classes-1``). ``y`` holds class indices 0..n_classes-1; classes missing from ``y``
    get probability 0.

    Every class needs 2 samples, so that every fold trains on each; a rarer class than
    ``n_splits`` then sits in fewer test folds. (Folds as few as the rarest class were: with
    many classes of 2 or 3 labels each, as early in a run over 151 intents, each model trained
    on half the labels: 71% out-of-fold accuracy against 79% with 5 folds, and the label check
    put up 135 labels for 24 wrong ones, against 60 for 17, or 69 for 22 with
    :func:`fit_temperature`.)"""
    from sklearn.base import clone
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold

    target = np.asarray(y, dtype=np.intp)
    if target.shape[0] != X.shape[0]:
        raise ValueError(f"X has {X.shape[0]} rows but y has {target.shape[0]} labels")
    present = np.unique(target)
    if present.shape[0] < 2:
        raise ValueError(f"out-of-sample probabilities need labels of at least 2 classes, "
                         f"got {present.shape[0]}")
    sizes = np.bincount(target)[present]
    if sizes.min() < 2:
        raise ValueError("every labeled class needs at least 2 items for cross-validation: "
                         f"class counts are {sizes.tolist()}")
    folds = int(min(n_splits, sizes.max()))
    cv = StratifiedKFold(n_splits=folds, shuffle=True, random_state=random_state)
    out = np.zeros((target.shape[0], n_classes))
    with warnings.catch_warnings():  # "the least populated class has only 2 members": meant
        warnings.filterwarnings("ignore", message="The least populated class",
                                category=UserWarning)
        splits = list(cv.split(np.zeros((target.shape[0], 1)), target))
    for train, test in splits:
        if make is not None:
            model, columns = make(), np.arange(n_classes)
        else:
            model = (clone(estimator) if estimator is not None
                     else LogisticRegression(max_iter=1000))
        model.fit(X[train], target[train])
        if make is None:
            columns = np.asarray(model.classes_, dtype=np.intp)
        out[np.ix_(test, columns)] = np.asarray(model.predict_proba(X[test]))
    return out


def multilabel_out_of_sample_probs(X: Any, Y: Any, make: Callable[[], Any], *,
                                   n_splits: int = 5, random_state: int = 0) -> FloatArray:
    """(n_samples, n_labels) per-label probabilities of each sample from a model that never
    saw it: ``n_splits``-fold cross-validation (shuffled; fewer folds for fewer samples) of a
    new multi-label model from ``make`` per fold (an :class:`activelabel.models.Classifier`
    with ``multilabel=True`` over labels ``0..n_labels-1``), fitted on the 0/1 indicator
    ``Y`` (n_samples, n_labels)."""
    from sklearn.model_selection import KFold

    indicator = np.asarray(Y)
    if indicator.ndim != 2 or indicator.shape[0] != X.shape[0]:
        raise ValueError(f"Y must be a (n, n_labels) indicator with n = {X.shape[0]} rows, "
                         f"got shape {indicator.shape}")
    folds = int(min(n_splits, indicator.shape[0]))
    if folds < 2:
        raise ValueError(f"cross-validation needs at least 2 samples, got {folds}")
    out = np.zeros(indicator.shape, dtype=np.float64)
    cv = KFold(n_splits=folds, shuffle=True, random_state=random_state)
    for train, test in cv.split(np.zeros((indicator.shape[0], 1))):
        model = make()
        model.fit(X[train], indicator[train])
        out[test] = np.asarray(model.predict_proba(X[test]))
    return out


def find_missing_labels(Y: Any, probs: Any, sure: float = 0.9) -> tuple[IntArray, IntArray,
                                                                         FloatArray]:
    """Multi-label sets that likely leave a label out: ``(rows, labels, probabilities)`` of
    the rows of the 0/1 indicator ``Y`` where the out-of-sample ``probs``
    (:func:`multilabel_out_of_sample_probs`) give a label the set lacks at least ``sure``,
    with that label (the likeliest such) and its probability, surest first.

    Only left-out labels: a forgotten label is the common multi-label error, and "sure a
    given label does not apply" mostly names the rare labels a weak model cannot learn
    (wnut17's entity types: 119 of 410 labeled tweets). cleanlab's multi-label confident
    learning flagged 258 of 1,200 tweets there, 17 of 30 planted misses among them; this
    flags 16, 5 of them misses (benchmarks/multilabel_check.py)."""
    given = np.asarray(Y)
    p = np.asarray(probs, dtype=np.float64)
    if p.shape != given.shape or p.ndim != 2:
        raise ValueError(f"probs must have the indicator's shape {given.shape}, got {p.shape}")
    if not 0 < sure <= 1:
        raise ValueError(f"sure must be in (0, 1], got {sure}")
    left_out = np.where(given == 0, p, -1.0)
    label = left_out.argmax(axis=1) if p.shape[1] else np.zeros(p.shape[0], dtype=np.intp)
    best = left_out[np.arange(p.shape[0]), label] if p.shape[1] else np.full(p.shape[0], -1.0)
    rows = np.flatnonzero(best >= sure)
    rows = rows[np.argsort(-best[rows], kind="stable")]
    return rows.astype(np.intp), label[rows].astype(np.intp), best[rows]


#: Rows :func:`fit_temperature` needs: below, a handful of rows all predicted right would
#: drive the temperature to its bound (0.6 / 0.4 read as 0.9997 / 0.0003).
TEMPERATURE_MIN_ROWS = 50


def fit_temperature(probs: Any, labels: Any, *,
                    bounds: tuple[float, float] = (0.2, 5.0),
                    min_rows: int = TEMPERATURE_MIN_ROWS) -> float:
    """The one temperature ``T`` (within ``bounds``) that makes :func:`with_temperature`'s
    rows likeliest to give ``labels`` (n,) class indices, which may hold a few wrong labels
    (Guo et al. 2017, temperature scaling); 1.0 below ``min_rows`` rows. Out-of-fold
    probabilities of a regularised model over many classes are flat (a given label's 0.02
    beside the best class's 0.05, right label or not): scaled, they come closer to the chances
    they claim (fitted on all rows, not on the few a label check flags: a right label the model
    is sure is another still reads a low probability)."""
    from scipy.optimize import minimize_scalar

    p = _probability_rows(probs)
    given = np.asarray(labels, dtype=np.intp)
    if p.shape[0] != given.shape[0]:
        raise ValueError(f"probs must be (n, n_classes) with n = {given.shape[0]} labels, "
                         f"got shape {p.shape}")
    if not 0 < bounds[0] < bounds[1]:
        raise ValueError(f"bounds must be 0 < low < high, got {bounds}")
    if given.shape[0] < max(1, min_rows):
        return 1.0
    rows = np.arange(given.shape[0])
    return float(minimize_scalar(
        lambda t: -np.log(np.clip(with_temperature(p, t)[rows, given], _EPS, 1.0)).mean(),
        bounds=bounds, method="bounded", options={"xatol": 1e-3}).x)


def with_temperature(probs: Any, temperature: float) -> FloatArray:
    """Rows of ``probs`` raised to ``1 / temperature`` and renormalised (below 1: sharper);
    a class a row gives 0 (one its model never saw) keeps 0."""
    if not temperature > 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    p = _probability_rows(probs)
    logp = np.log(p, where=p > 0, out=np.full(p.shape, -np.inf)) / temperature
    if p.shape[0] == 0:
        return p
    z = np.exp(logp - logp.max(axis=1, keepdims=True))
    return np.asarray(z / z.sum(axis=1, keepdims=True), dtype=np.float64)


def _probability_rows(probs: Any) -> FloatArray:
    p = np.asarray(probs, dtype=np.float64)
    if p.ndim != 2 or np.any(p < 0) or not np.all(p.sum(axis=1) > 0):
        raise ValueError("probs must be (n, n_classes), non-negative, with a positive entry "
                         "in every row")
    return p


@dataclass(frozen=True)
class LabelIssues:
    """Suspected wrong labels, most suspect first: ``indices`` into the labels given and
    ``scores`` = 1 - the out-of-sample probability of the given label (higher: more suspect)."""

    indices: IntArray
    scores: FloatArray


def find_label_issues(labels: Any, probs: FloatArray) -> LabelIssues:
    """Labels that cleanlab's confident learning flags, ranked by self-confidence.

    ``labels`` (n,) class indices, ``probs`` (n, n_classes) out-of-sample probabilities
    (:func:`out_of_sample_probs`). Classes that nobody used are dropped before the call (cleanlab
    needs every column to occur). The one label of a class given once is never flagged:
    cleanlab has no threshold of that class to judge it by."""
    from cleanlab.filter import find_label_issues as cl_find

    given = np.asarray(labels, dtype=np.intp)
    p = np.asarray(probs, dtype=np.float64)
    if p.ndim != 2 or p.shape[0] != given.shape[0]:
        raise ValueError(f"probs must be (n, n_classes) with n = {given.shape[0]} labels, "
                         f"got shape {p.shape}")
    present = np.unique(given)
    if present.shape[0] < 2:
        return LabelIssues(np.empty(0, dtype=np.intp), np.empty(0))
    sub = p[:, present]
    sub = sub / np.maximum(sub.sum(axis=1, keepdims=True), _EPS)
    remap = np.searchsorted(present, given)
    # n_jobs=1: cleanlab otherwise forks a multiprocessing pool, and a fork of a threaded
    # process (the server answering other requests) can hang in the child for good. A class
    # given once has no threshold to judge it by: cleanlab warns of each such class, which a
    # many-class project has dozens of early on (a worker's log full of them, saying nothing
    # to act on); the docstring says it instead.
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="May not flag all label issues in class",
                                category=UserWarning, module="cleanlab")
        ranked = np.asarray(cl_find(remap, sub, return_indices_ranked_by="self_confidence",
                                    n_jobs=1), dtype=np.intp)
    return LabelIssues(ranked, 1.0 - sub[ranked, remap[ranked]])


#: Seed of numpy's global random state while cleanlab breaks majority-vote ties with it.
_TIE_SEED = 0
_global_random_state = threading.Lock()


def active_learning_scores(labels_multiannotator: Sequence[Sequence[float]] | FloatArray,
                           probs: FloatArray, probs_unlabeled: FloatArray | None = None,
                           ) -> tuple[FloatArray, FloatArray]:
    """cleanlab's ActiveLab scores: (scores of labeled items, scores of unlabeled items).

    ``labels_multiannotator`` (n_labeled, n_annotators) class indices with NaN where an
    annotator gave none; ``probs`` (n_labeled, n_classes); ``probs_unlabeled``
    (n_unlabeled, n_classes). Lower is more informative: relabel a labeled item whose score is
    below the best unlabeled ones, else label a new item.

    Deterministic: a majority-vote tie that the model, the class frequencies and the annotators'
    agreement all leave open, cleanlab breaks with ``np.random.choice`` (numpy's global random
    state; it takes no seed) and says so in a warning, and the pick changes the scores. The call
    runs with that state seeded (with 0), that warning (no longer true)
    dropped, and the caller's state put back after, under a lock so that two calls do not
    interleave. Other code drawing from numpy's global state in another thread meanwhile would
    draw from the seeded stream; nothing in activelabel draws from it."""
    from cleanlab.multiannotator import get_active_learning_scores

    matrix = np.asarray(labels_multiannotator, dtype=np.float64)
    p = np.asarray(probs, dtype=np.float64)
    if matrix.ndim != 2 or matrix.shape[0] != p.shape[0]:
        raise ValueError(f"labels_multiannotator must be (n, n_annotators) with n = "
                         f"{p.shape[0]} rows of probs, got shape {matrix.shape}")
    with _global_random_state, warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="breaking ties of examples .* by random",
                                category=UserWarning, module="cleanlab")
        caller_state = np.random.get_state()  # noqa: NPY002  (the state cleanlab draws from)
        np.random.seed(_TIE_SEED)  # noqa: NPY002
        try:
            labeled, unlabeled = get_active_learning_scores(matrix, p, probs_unlabeled)
        finally:
            np.random.set_state(caller_state)  # noqa: NPY002
    return np.asarray(labeled, dtype=np.float64), np.asarray(unlabeled, dtype=np.float64)


def multilabel_majority(counts: NDArray[Any], n_raters: NDArray[Any]) -> NDArray[np.bool_]:
    """Per-label majority vote of multi-label annotations: (n_items, n_labels), True where more
    than half of the item's annotators gave the label (a tie leaves the label out).

    ``counts`` (n_items, n_labels): how many annotators gave each label to each item;
    ``n_raters`` (n_items,): how many annotators labeled the item (one who gave no label at all
    counts too). An item without annotators gets no label."""
    table = np.asarray(counts)
    raters = np.asarray(n_raters)
    if table.ndim != 2 or raters.shape != (table.shape[0],):
        raise ValueError(f"counts must be (n_items, n_labels) and n_raters (n_items,); got "
                         f"shapes {table.shape} and {raters.shape}")
    if table.size and (table.min() < 0 or (table > raters[:, None]).any()):
        raise ValueError("counts must be between 0 and the item's n_raters: an annotator gives "
                         "each label at most once")
    return np.asarray(2 * table > raters[:, None], dtype=bool)
