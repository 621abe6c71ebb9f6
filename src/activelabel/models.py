"""The model adapter: a scikit-learn classifier whose probabilities align to a fixed label set.

Active learning starts from a handful of labels, so the adapter must cope with what a plain
estimator does not: a seed that holds only one class, classes that no label has reached yet
(their probability columns are kept, at 0), multi-label tasks, and calibration that is applied
only when there are enough labels for it to help. ``X`` is a dense array or a scipy sparse
matrix (e.g. TF-IDF) of shape (n_samples, n_features) throughout.
"""

from __future__ import annotations

import copy
import importlib
import math
import numbers
import re
import warnings
from collections import Counter
from collections.abc import Callable, Hashable, Sequence
from importlib import metadata
from typing import Any, Literal

import numpy as np
import scipy.sparse as sp
from numpy.typing import ArrayLike, NDArray
from sklearn.base import BaseEstimator, ClassifierMixin, clone
from sklearn.calibration import CalibratedClassifierCV
from sklearn.ensemble import RandomForestClassifier
from sklearn.exceptions import NotFittedError
from sklearn.linear_model import LogisticRegression, SGDClassifier
from sklearn.model_selection import StratifiedKFold
from sklearn.naive_bayes import GaussianNB, MultinomialNB
from sklearn.utils._param_validation import StrOptions

from .samples import sorted_sample

__all__ = [
    "CALIBRATION_CV_FOLDS",
    "CALIBRATION_MIN_LABELS",
    "CALIBRATION_MIN_PER_CLASS",
    "DEFAULT_C",
    "ENTRY_POINT_GROUP",
    "FEW_LABELS_C",
    "MODEL_NAMES",
    "BootstrapCommittee",
    "Classifier",
    "LabelLogistic",
    "NaiveBayes",
    "c_for_labels",
    "check_plugin",
    "is_import_path",
    "is_valid_import_path",
    "make_model",
    "plugin_estimator",
    "plugin_names",
]

#: Folds of the cross-validation that fits the sigmoid calibration map.
CALIBRATION_CV_FOLDS = 3
#: Calibration (auto or forced) needs this many labels in every class present: one per fold.
CALIBRATION_MIN_PER_CLASS = 3
#: ``calibrate="auto"`` also waits for this many labels in all; below it the sigmoid fit is noise.
CALIBRATION_MIN_LABELS = 30

#: Inverse L2 strength of the default model once its labels are many (``C="auto"``: from
#: :data:`PSEUDO_NONE_FROM` labels). With balanced class weights and no intercept, accuracy at
#: 30 to 3,000 random labels varies by under 0.02 between C=10 and C=100 on sms_spam,
#: ag_news, clinc150 and digits; C=1 (the scikit-learn default) under-fits many-class TF-IDF
#: (clinc150, 1,000 labels: 0.09 against 0.65); C=10 costs clinc150 0.004 from 1,100 random
#: labels on (docs/benchmarks.md, "Stronger regularisation while the labels are few").
DEFAULT_C = 30.0
#: ``C="auto"`` while the labels are few (up to :data:`PSEUDO_FULL_UNTIL`, rising linearly to
#: :data:`DEFAULT_C` at :data:`PSEUDO_NONE_FROM`, the span where the model also learns its own
#: pseudo-labels): with 300 labels or fewer it lifts `auto` at 180 labels on the skewed and the
#: overlapping sets (wnut17_type +0.014, ag_news without Sports +0.003) and leaves the
#: many-class ones level (same section).
FEW_LABELS_C = 10.0

#: Bootstrap draws tried per committee member to see at least two classes.
_MAX_BOOTSTRAP_RETRIES = 20

Calibrate = bool | Literal["auto"]
FloatArray = NDArray[np.float64]
IntArray = NDArray[np.intp]


class NaiveBayes(ClassifierMixin, BaseEstimator):  # type: ignore[misc]
    """Naive Bayes that picks its event model from the data at fit time.

    ``MultinomialNB(alpha)`` when every feature value is non-negative (counts, TF-IDF, pixels),
    else ``GaussianNB(var_smoothing)`` (sparse input is then densified, so keep it small).
    """

    def __init__(self, alpha: float = 1.0, var_smoothing: float = 1e-9) -> None:
        self.alpha = alpha
        self.var_smoothing = var_smoothing

    def fit(self, X: Any, y: ArrayLike) -> NaiveBayes:
        if _min_value(X) >= 0:
            self.estimator_: Any = MultinomialNB(alpha=self.alpha)
        else:
            self.estimator_ = GaussianNB(var_smoothing=self.var_smoothing)
            X = X.toarray() if sp.issparse(X) else X
        self.estimator_.fit(X, y)
        self.classes_ = self.estimator_.classes_
        return self

    def predict_proba(self, X: Any) -> FloatArray:
        if isinstance(self.estimator_, GaussianNB) and sp.issparse(X):
            X = X.toarray()
        return np.asarray(self.estimator_.predict_proba(X), dtype=np.float64)

    def predict(self, X: Any) -> NDArray[Any]:
        return np.asarray(self.classes_[np.argmax(self.predict_proba(X), axis=1)])


class LabelLogistic(LogisticRegression):  # type: ignore[misc]
    """Logistic regression fitted on the feature columns the labeled rows use.

    A column that is zero in every training row has no gradient and gets weight 0, so fitting
    on the non-zero columns of a sparse ``X`` (a few thousand of a 50,000-term TF-IDF
    vocabulary) gives the same model, faster; ``coef_`` is scattered back to the full width.
    Parameters of :class:`~sklearn.linear_model.LogisticRegression`, except that
    ``fit_intercept`` may also be ``"auto"``: none for sparse ``X`` (L2-normalised TF-IDF rows;
    an intercept learns the labeled set's class mix, which active learning skews), one for
    dense ``X`` (features need not be centred); and ``C`` may be ``"auto"``:
    :func:`c_for_labels` of the labels (a :class:`Classifier` passes their number; fitted
    alone, the rows of ``X``).
    """

    _parameter_constraints: dict[str, Any] = {  # noqa: RUF012
        **LogisticRegression._parameter_constraints,
        "fit_intercept": ["boolean", StrOptions({"auto"})],
        "C": [*LogisticRegression._parameter_constraints["C"], StrOptions({"auto"})],
    }

    def fit(self, X: Any, y: ArrayLike, sample_weight: ArrayLike | None = None) -> LabelLogistic:
        params = self.get_params(deep=False)
        if params["fit_intercept"] == "auto":
            params["fit_intercept"] = not sp.issparse(X)
        if params["C"] == "auto":  # fitted alone: its rows are the labels (see c_for_labels)
            params["C"] = c_for_labels(int(X.shape[0]))
        inner = LogisticRegression(**params)
        cols = np.unique(sp.csr_matrix(X).indices) if sp.issparse(X) else None
        with warnings.catch_warnings():
            # many classes with a few labels each is the usual start of a many-class project,
            # not a regression target in disguise
            warnings.filterwarnings("ignore", message="The number of unique classes is greater",
                                    category=UserWarning)
            if cols is not None and cols.size:
                X = sp.csr_matrix(X)
                inner.fit(X[:, cols], y, sample_weight=sample_weight)
                coef = np.zeros((inner.coef_.shape[0], X.shape[1]), dtype=inner.coef_.dtype)
                coef[:, cols] = inner.coef_
            else:
                inner.fit(X, y, sample_weight=sample_weight)
                coef = inner.coef_
        self.classes_ = inner.classes_
        self.coef_ = coef
        self.intercept_ = inner.intercept_
        self.n_iter_ = inner.n_iter_
        self.n_features_in_ = int(X.shape[1])
        return self


def _min_value(X: Any) -> float:
    """Smallest feature value (implicit zeros of a sparse matrix count as 0)."""
    if sp.issparse(X):
        return float(min(X.tocsr().data.min(initial=0.0), 0.0))
    return float(np.min(X)) if np.size(X) else 0.0


# ---- labels ----------------------------------------------------------------------------------


def _sorted_labels(labels: set[Hashable]) -> list[Hashable]:
    """Sorted labels; mixed types (e.g. 1 and "1") sort by type name, then value."""
    try:
        return sorted(labels)  # type: ignore[type-var]
    except TypeError:
        return sorted(labels, key=lambda v: (type(v).__name__, repr(v)))


def _check_classes(classes: Sequence[Hashable]) -> list[Hashable]:
    out = [c.item() if isinstance(c, np.generic) else c for c in classes]
    if not out:
        raise ValueError("classes must name at least one label, got an empty list")
    dupes = [c for c, n in Counter(out).items() if n > 1]
    if dupes:
        raise ValueError(f"classes must be distinct; repeated: {dupes!r}")
    return out


def _encode(y: Sequence[Hashable], classes: list[Hashable]) -> IntArray:
    """Map labels to column indices of ``classes``; unknown labels raise naming both sets."""
    index = {c: i for i, c in enumerate(classes)}
    codes = np.empty(len(y), dtype=np.intp)
    unknown: set[Hashable] = set()
    for row, label in enumerate(y):
        try:
            code = index.get(label)
        except TypeError:
            raise ValueError(
                f"label {row} is a {type(label).__name__}, not a hashable label (str or int); "
                "pass y as a flat sequence of labels"
            ) from None
        if code is None:
            unknown.add(label)
        else:
            codes[row] = code
    if unknown:
        raise ValueError(
            f"labels {_sorted_labels(unknown)!r} are not in the label set {classes!r}; "
            "add them to classes=... or fix the labels"
        )
    return codes


def _label_array(classes: list[Hashable]) -> NDArray[Any]:
    """Class labels as an array that indexes cleanly: native dtype if uniform, else object."""
    if len({type(c) for c in classes}) == 1:
        return np.asarray(classes)
    arr = np.empty(len(classes), dtype=object)
    arr[:] = classes
    return arr


def _as_rows(X: Any) -> Any:
    if sp.issparse(X):
        return X.tocsr()
    arr = np.asarray(X)
    if arr.ndim != 2:
        raise ValueError(f"X must have shape (n_samples, n_features), got shape {arr.shape}")
    return arr


def _n_rows(X: Any) -> int:
    return int(X.shape[0])


def _check_rows(X: Any, n_labels: int) -> None:
    if _n_rows(X) != n_labels:
        raise ValueError(
            f"X has {_n_rows(X)} rows but y has {n_labels} labels; pass one label per row"
        )
    if n_labels == 0:
        raise ValueError("cannot fit on 0 labeled examples; label at least one item first")


def _seeded(estimator: Any, random_state: int | None) -> Any:
    """An unfitted copy of ``estimator`` seeded with ``random_state`` when it takes one; a
    plugin without scikit-learn's ``get_params`` is copied as it is."""
    if not hasattr(estimator, "get_params"):
        return copy.deepcopy(estimator)
    est = clone(estimator)
    if random_state is not None and "random_state" in est.get_params(deep=False):
        est.set_params(random_state=random_state)
    return est


# ---- single-label / multi-label adapter ------------------------------------------------------


class Classifier:
    """Adapter around a scikit-learn classifier whose probabilities align to a fixed label set.

    Parameters
    ----------
    estimator:
        Unfitted scikit-learn classifier with ``predict_proba`` (or ``decision_function`` when
        calibrated); default ``LogisticRegression(max_iter=1000)`` (lbfgs, works on sparse TF-IDF).
    classes:
        The full label set (any hashable labels). ``predict_proba`` columns follow this order
        even when some classes have no label yet: their columns are 0 and rows still sum to 1.
        ``None``: the sorted distinct labels seen in ``fit``.
    calibrate:
        ``"auto"``: once every present class has ``>= CALIBRATION_MIN_PER_CLASS`` labels and
        there are ``>= CALIBRATION_MIN_LABELS`` in all, fit ``CalibratedClassifierCV(
        method="sigmoid", cv=CALIBRATION_CV_FOLDS)`` and keep it only if it lowers the log
        loss on its own held-out folds; otherwise refit the plain estimator. No model family is
        assumed calibrated: logistic regression with the default ``C=1`` on L2-normalised
        TF-IDF is strongly under-confident (AG News, 2,000 labels: ECE 0.39 raw, 0.09 with
        sigmoid calibration), while on digit pixels it is already calibrated and a sigmoid
        per class makes it worse (500 labels: ECE 0.02 raw, 0.21 calibrated). The check costs
        ``CALIBRATION_CV_FOLDS`` extra fits. ``True`` always calibrates (needs
        ``CALIBRATION_MIN_PER_CLASS`` labels per class, else ``ValueError``); ``False`` never.
    multilabel:
        One binary model per label (one-vs-rest). ``y`` is a sequence of label lists or an
        (n, n_classes) 0/1 indicator; ``predict_proba`` gives independent per-label
        probabilities; a label always (never) present in training gets a constant 1 (0) column.
    random_state:
        Seed passed to estimators that take one.
    pseudo_labels:
        Self-training, single-label only: when ``fit`` is given ``unlabeled`` rows, the model
        fitted on the labels predicts them, takes for each class the rows it is surest are
        of that class (``ceil(pseudo_labels * n_labels / n_classes)`` a class at most; from
        300 labels on only the surest share of them, fading linearly to none at 600:
        :func:`pseudo_label_fade`), and is fitted again, uncalibrated, on the labels and those
        rows with their predicted class. A fit calibrated on the labels stays as it is.
        ``0``: off.
        Pseudo-labels are never labels: nothing outside the model sees them.

    With a single class among the labels no model is trained: that class is predicted with
    probability 1, so a loop can start from a one-class seed.

    Fitted attributes: ``classes_`` (list), ``models_`` (one fitted model per binary problem in
    multi-label mode, else a single entry; ``None`` where the prediction is constant),
    ``present_`` (column indices of classes seen in training), ``calibrated_`` (bool),
    ``n_pseudo_`` (rows the last fit learned with a predicted class; 0 without).
    """

    def __init__(
        self,
        estimator: Any = None,
        *,
        classes: Sequence[Hashable] | None = None,
        calibrate: Calibrate = "auto",
        multilabel: bool = False,
        random_state: int | None = None,
        pseudo_labels: float = 0.0,
    ) -> None:
        self.estimator = estimator
        self.classes = classes
        self.calibrate = calibrate
        self.multilabel = multilabel
        self.random_state = random_state
        self.pseudo_labels = pseudo_labels

    def __repr__(self) -> str:
        params = ", ".join(f"{k}={v!r}" for k, v in vars(self).items() if not k.endswith("_"))
        return f"{type(self).__name__}({params})"

    # ---- fit ----------------------------------------------------------------------------

    def fit(self, X: Any, y: Any, unlabeled: Any = None) -> Classifier:
        """Fit on ``X`` (n, n_features) and ``y``: n labels, or n label lists / an (n, C) 0/1
        indicator when ``multilabel``. ``unlabeled``: rows of the same features without a
        label, for ``pseudo_labels`` (ignored when it is 0 or the model is multi-label).
        Returns ``self``."""
        if self.calibrate not in (True, False, "auto"):
            raise ValueError(f"calibrate must be True, False or 'auto', got {self.calibrate!r}")
        check_pseudo_labels(self.pseudo_labels)
        X = _as_rows(X)
        self.n_pseudo_ = 0
        if self.multilabel:
            return self._fit_multilabel(X, y)
        labels = list(y)
        _check_rows(X, len(labels))
        self.classes_ = self._resolve_classes(labels)
        codes = _encode(labels, self.classes_)
        model, self.calibrated_ = self._fit_codes(X, codes, constant_ok=False)
        self.models_: list[Any] = [model]
        self.present_: IntArray = np.unique(codes)
        if model is not None and self.pseudo_labels > 0 and unlabeled is not None:
            self._self_train(X, codes, _as_rows(unlabeled))
        return self

    def _self_train(self, X: Any, codes: IntArray, unlabeled: Any) -> None:
        """Fit again on the labels and, for each class, the unlabeled rows the model is surest
        are of it (their predicted class as the label). A calibrated fit is kept as it is:
        a calibrator fitted on the model's own guesses would make it over-confident."""
        fade = pseudo_label_fade(codes.shape[0])
        if _n_rows(unlabeled) == 0 or fade == 0 or self.calibrated_:
            return
        if unlabeled.shape[1] != X.shape[1] or sp.issparse(unlabeled) != sp.issparse(X):
            raise ValueError(f"unlabeled ({'sparse' if sp.issparse(unlabeled) else 'dense'}, "
                             f"{unlabeled.shape[1]} features) must be rows of X's features "
                             f"({'sparse' if sp.issparse(X) else 'dense'}, {X.shape[1]})")
        probs = self.predict_proba(unlabeled)
        predicted, sure = probs.argmax(axis=1), probs.max(axis=1)
        per_class = self._pseudo_label_counts(codes, predicted)
        taken = []
        for code in self.present_:
            rows = np.flatnonzero(predicted == code)
            taken.append(rows[np.argsort(-sure[rows], kind="stable")[:per_class[code]]])
        take = np.concatenate(taken)
        keep = math.ceil(fade * take.shape[0])  # fading: the surest of them, however many classes
        take = np.sort(take[np.argsort(-sure[take], kind="stable")[:keep]])
        if take.shape[0] == 0:
            return
        both = (sp.vstack([X, unlabeled[take]], format="csr") if sp.issparse(X)
                else np.vstack([X, np.asarray(unlabeled[take])]))
        model, _ = self._fit_codes(both, np.concatenate([codes, predicted[take]]),
                                   constant_ok=False, calibrate=False,
                                   n_labels=codes.shape[0])
        self.models_ = [model]
        self.n_pseudo_ = int(take.shape[0])

    def _pseudo_label_counts(self, codes: IntArray, predicted: IntArray) -> IntArray:
        """How many unlabeled rows each class (by code) may take before the fade: the share of
        the labels, split equally over the classes. Equal, not by the class mix: measured
        against the pool's predicted mix and the labels' (docs/benchmarks.md, "Self-training
        by the class mix"), each helped the skewed set and cost the others."""
        per_class = math.ceil(self.pseudo_labels * codes.shape[0] / len(self.classes_))
        return np.full(len(self.classes_), per_class, dtype=np.intp)

    def _resolve_classes(self, labels: list[Hashable]) -> list[Hashable]:
        if self.classes is not None:
            return _check_classes(self.classes)
        try:
            return _check_classes(_sorted_labels(set(labels)))
        except TypeError as exc:
            raise ValueError(f"labels must be hashable (str or int): {exc}") from exc

    def _fit_codes(self, X: Any, codes: IntArray, *, constant_ok: bool,
                   calibrate: bool = True, n_labels: int | None = None) -> tuple[Any, bool]:
        """Fit one estimator on integer codes; ``(None, False)`` when one class is present.

        ``constant_ok``: a single class is expected (a multi-label column) even when
        ``calibrate=True``. ``calibrate=False``: the plain estimator, whatever the setting.
        ``n_labels``: the labels among the rows (the rest pseudo-labels; default all), which
        a ``C="auto"`` logistic regression is regularised for."""
        counts = np.bincount(codes)
        counts = counts[counts > 0]
        if counts.shape[0] < 2:
            if self.calibrate is True and not constant_ok:
                raise ValueError(
                    "calibrate=True needs at least 2 classes among the labels, got 1; "
                    "use calibrate='auto' to calibrate once more classes are labeled"
                )
            return None, False
        base = self.estimator if self.estimator is not None else _default_estimator()
        estimator = _seeded(base, self.random_state)
        if isinstance(estimator, LabelLogistic) and estimator.C == "auto":
            estimator.set_params(C=c_for_labels(codes.shape[0] if n_labels is None else n_labels))
        mode = self._calibration_mode(estimator, counts) if calibrate else "off"
        if mode == "off":
            if not hasattr(estimator, "predict_proba"):
                raise TypeError(
                    f"{type(estimator).__name__} has no predict_proba; pass calibrate=True (needs "
                    f">= {CALIBRATION_MIN_PER_CLASS} labels per class) or another estimator"
                )
            estimator.fit(X, codes)  # a plugin's fit may return None instead of self
            _check_fitted(estimator)
            return estimator, False
        folds = StratifiedKFold(n_splits=CALIBRATION_CV_FOLDS)
        calibrated = CalibratedClassifierCV(estimator, method="sigmoid", cv=folds).fit(X, codes)
        if mode == "on" or not hasattr(estimator, "predict_proba"):
            return calibrated, True
        if _calibration_helps(calibrated, X, codes, folds):
            return calibrated, True
        estimator.fit(X, codes)
        return estimator, False

    def _calibration_mode(self, estimator: Any, counts: NDArray[np.intp]) -> str:
        """Return "on" (calibrate), "off" (do not) or "check" (calibrate if it lowers log loss)."""
        enough_per_class = int(counts.min()) >= CALIBRATION_MIN_PER_CLASS
        if self.calibrate is True:
            if not enough_per_class:
                raise ValueError(
                    f"calibrate=True needs >= {CALIBRATION_MIN_PER_CLASS} labels in every class "
                    f"present (one per cross-validation fold); the smallest class has "
                    f"{int(counts.min())}. Label more items or pass calibrate='auto'"
                )
            return "on"
        if self.calibrate is False or isinstance(estimator, CalibratedClassifierCV):
            return "off"
        if enough_per_class and int(counts.sum()) >= CALIBRATION_MIN_LABELS:
            return "check"
        return "off"

    def _fit_multilabel(self, X: Any, y: Any) -> Classifier:
        indicator = self._multilabel_indicator(y)
        _check_rows(X, indicator.shape[0])
        models: list[Any] = []
        calibrated: list[bool] = []
        for j in range(indicator.shape[1]):
            model, cal = self._fit_codes(X, indicator[:, j].astype(np.intp), constant_ok=True)
            models.append(model)
            calibrated.append(cal)
        self.models_ = models
        self.calibrated_ = any(calibrated)
        self.present_ = np.flatnonzero(indicator.any(axis=0))
        self.constant_: FloatArray = indicator.mean(axis=0)
        return self

    def _multilabel_indicator(self, y: Any) -> NDArray[np.int8]:
        """(n, n_classes) 0/1 matrix from label lists or an indicator; sets ``classes_``."""
        if sp.issparse(y) or (isinstance(y, np.ndarray) and y.ndim == 2):
            Y = np.asarray(y.toarray() if sp.issparse(y) else y)
            return self._check_indicator(Y)
        rows = list(y)
        for i, row in enumerate(rows):
            if isinstance(row, str | bytes) or not hasattr(row, "__iter__"):
                raise ValueError(
                    f"multilabel y must be a sequence of label lists; row {i} is {row!r}. "
                    "Wrap single labels in a list, e.g. [['sports'], ['sports', 'politics']]"
                )
        seen: set[Hashable] = set().union(*map(set, rows)) if rows else set()
        if self.classes is None and not seen:
            raise ValueError(
                f"multilabel y ({len(rows)} rows) names no label at all; pass classes=[...] "
                "to fix the label set"
            )
        chosen = self.classes if self.classes is not None else _sorted_labels(seen)
        self.classes_ = _check_classes(chosen)
        Y = np.zeros((len(rows), len(self.classes_)), dtype=np.int8)
        for i, row in enumerate(rows):
            Y[i, _encode(list(row), self.classes_)] = 1
        return Y

    def _check_indicator(self, Y: NDArray[Any]) -> NDArray[np.int8]:
        if not np.isin(Y, (0, 1)).all():
            raise ValueError("a multilabel indicator y must hold only 0 and 1")
        n_cols = Y.shape[1]
        if self.classes is None:
            self.classes_ = list(range(n_cols))
        else:
            self.classes_ = _check_classes(self.classes)
            if len(self.classes_) != n_cols:
                raise ValueError(
                    f"indicator y has {n_cols} columns but classes names "
                    f"{len(self.classes_)} labels; pass one column per class"
                )
        return Y.astype(np.int8)

    # ---- predict ------------------------------------------------------------------------

    def predict_proba(self, X: Any) -> FloatArray:
        """Probabilities (n, n_classes) float64, columns in ``classes_`` order.

        Single-label rows sum to 1; multi-label columns are independent per-label probabilities.
        """
        if not hasattr(self, "models_"):
            raise NotFittedError("this Classifier is not fitted yet; call fit(X, y) first")
        X = _as_rows(X)
        n = _n_rows(X)
        if self.multilabel:
            out = np.empty((n, len(self.classes_)), dtype=np.float64)
            for j, model in enumerate(self.models_):
                out[:, j] = (
                    self.constant_[j] if model is None else _aligned_proba(model, X, 2)[:, 1]
                )
            return out
        model = self.models_[0]
        if model is None:
            out = np.zeros((n, len(self.classes_)), dtype=np.float64)
            out[:, self.present_[0]] = 1.0
            return out
        return _aligned_proba(model, X, len(self.classes_))

    def predict(self, X: Any) -> Any:
        """Labels (n,) array (single-label), or a list of n label lists (multi-label: the
        labels with probability above 0.5)."""
        probs = self.predict_proba(X)
        if self.multilabel:
            return [[self.classes_[j] for j in np.flatnonzero(row > 0.5)] for row in probs]
        return _label_array(self.classes_)[np.argmax(probs, axis=1)]


def _check_fitted(model: Any) -> None:
    """A fitted estimator names its classes (``classes_``), as scikit-learn's do."""
    if getattr(model, "classes_", None) is None:
        raise TypeError(f"{type(model).__name__}.fit did not set classes_; a model must keep "
                        "the classes it was fitted on in classes_ (as scikit-learn's do)")


def _aligned_proba(model: Any, X: Any, n_classes: int) -> FloatArray:
    """``model.predict_proba`` scattered into ``n_classes`` columns by its integer ``classes_``."""
    proba = np.asarray(model.predict_proba(X), dtype=np.float64)
    expected = (_n_rows(X), len(model.classes_))
    if proba.shape != expected:
        raise ValueError(f"{type(model).__name__}.predict_proba gave shape {proba.shape} for "
                         f"{expected[0]} rows and {expected[1]} classes; it must return one "
                         "column per entry of classes_, one row per row of X")
    if not np.isfinite(proba).all():
        raise ValueError(f"{type(model).__name__}.predict_proba gave NaN or infinite values")
    out = np.zeros((proba.shape[0], n_classes), dtype=np.float64)
    out[:, np.asarray(model.classes_, dtype=np.intp)] = proba
    return out


def _calibration_helps(
    calibrated: CalibratedClassifierCV, X: Any, codes: IntArray, folds: StratifiedKFold
) -> bool:
    """Whether sigmoid calibration lowers the log loss on the cross-validation folds.

    Each fold's model predicts its held-out rows raw and through its calibrator (fit on those
    rows: two parameters per class, a small optimistic bias toward calibrating).
    """
    classes = np.asarray(calibrated.classes_)
    raw_loss = cal_loss = 0.0
    splits = folds.split(np.zeros((codes.shape[0], 1)), codes)
    for (_, held), member in zip(splits, calibrated.calibrated_classifiers_, strict=True):
        truth = np.searchsorted(classes, codes[held])
        model = member.estimator
        raw = np.zeros((held.shape[0], classes.shape[0]), dtype=np.float64)
        raw[:, np.searchsorted(classes, model.classes_)] = model.predict_proba(X[held])
        raw_loss += _log_loss_sum(raw, truth)
        cal_loss += _log_loss_sum(np.asarray(member.predict_proba(X[held])), truth)
    return cal_loss < raw_loss


def _log_loss_sum(probs: FloatArray, truth: IntArray) -> float:
    picked = probs[np.arange(truth.shape[0]), truth]
    return float(-np.log(np.clip(picked, 1e-15, 1.0)).sum())


#: Parameters of the default model (``make_model("logistic_regression")``): no intercept on
#: sparse features (see :class:`LabelLogistic`), classes weighted by their inverse frequency
#: among the labels. Measured (random labels, TF-IDF, ``benchmarks/label_efficiency.py``):
#: dropping the intercept lifts clinc150 at 300 labels from 0.26 to 0.37 and ag_news at 100
#: from 0.60 to 0.65; the class weights lift sms_spam at 300 from 0.93 to 0.95.
DEFAULT_LOGISTIC = {"C": "auto", "fit_intercept": "auto", "class_weight": "balanced",
                    "max_iter": 1000}


def _default_estimator() -> LogisticRegression:
    return LabelLogistic(**DEFAULT_LOGISTIC)


# ---- factory ---------------------------------------------------------------------------------


def _logistic_regression(random_state: int | None, params: dict[str, Any]) -> Any:
    return LabelLogistic(**{**DEFAULT_LOGISTIC, "random_state": random_state, **params})


def _random_forest(random_state: int | None, params: dict[str, Any]) -> Any:
    return RandomForestClassifier(
        **{"n_estimators": 200, "n_jobs": 1, "random_state": random_state, **params}
    )


def _naive_bayes(random_state: int | None, params: dict[str, Any]) -> Any:
    return NaiveBayes(**params)


def _sgd(random_state: int | None, params: dict[str, Any]) -> Any:
    return SGDClassifier(
        **{
            "loss": "log_loss",
            "max_iter": 1000,
            "tol": 1e-4,
            "random_state": random_state,
            **params,
        }
    )


#: Calibration each named model gets unless ``calibrate`` is given: the default logistic
#: regression is never calibrated, so its probabilities keep one character from the first
#: label on (``"auto"`` switches a sigmoid on once every class has 3 labels).
_DEFAULT_CALIBRATION: dict[str, Calibrate] = {"logistic_regression": False}

#: Pseudo-labels per label each named model learns from when its fit is given unlabeled rows
#: (:class:`Classifier`'s ``pseudo_labels``); measured for the default logistic regression
#: (docs/benchmarks.md, "Self-training"), off for the others.
_DEFAULT_PSEUDO_LABELS: dict[str, float] = {"logistic_regression": 1.0}
#: Most unlabeled rows a round hands the model to pseudo-label (a seeded sample beyond it):
#: the surest rows of a class are among the surest of a large random sample, at a bounded cost.
PSEUDO_LABEL_POOL = 20_000
#: Largest ``pseudo_labels`` accepted.
MAX_PSEUDO_LABELS = 10.0
#: Self-training pays while the labels are few and costs once they are many (measured:
#: docs/benchmarks.md, "Self-training"): the full share up to this many labels, ...
PSEUDO_FULL_UNTIL = 300
#: ... fading linearly to none at this many (the model then learns from the labels alone).
PSEUDO_NONE_FROM = 600


def pseudo_label_fade(n_labels: int) -> float:
    """Share of its pseudo-labels a fit on ``n_labels`` labels keeps: 1 up to
    :data:`PSEUDO_FULL_UNTIL` labels, fading linearly to 0 at :data:`PSEUDO_NONE_FROM`."""
    if n_labels <= PSEUDO_FULL_UNTIL:
        return 1.0
    return max(0.0, (PSEUDO_NONE_FROM - n_labels) / (PSEUDO_NONE_FROM - PSEUDO_FULL_UNTIL))


def c_for_labels(n_labels: int) -> float:
    """The default model's ``C`` for ``n_labels`` labels: :data:`FEW_LABELS_C` while they are
    few, rising with the pseudo-labels' fade to :data:`DEFAULT_C`."""
    return FEW_LABELS_C + (DEFAULT_C - FEW_LABELS_C) * (1.0 - pseudo_label_fade(n_labels))


def pseudo_label_share(pseudo_labels: float, n_labels: int) -> float:
    """Pseudo-labels per label a fit on ``n_labels`` labels learns (0: none)."""
    return float(pseudo_labels) * pseudo_label_fade(n_labels)


def check_pseudo_labels(value: Any) -> float:
    """``value`` as a pseudo-label share, or ValueError saying what is accepted."""
    number = float(value) if isinstance(value, numbers.Real) and not isinstance(
        value, bool | np.bool_) else math.nan
    if not 0 <= number <= MAX_PSEUDO_LABELS:
        raise ValueError(f"pseudo_labels must be a number from 0 (off) to {MAX_PSEUDO_LABELS:g} "
                         f"(pseudo-labels per label), got {value!r}")
    return number


def pseudo_label_rows(rows: NDArray[np.intp], random_state: int | None) -> NDArray[np.intp]:
    """The unlabeled ``rows`` to hand a fit: all, or a seeded sample of
    :data:`PSEUDO_LABEL_POOL` of them (sorted)."""
    return sorted_sample(rows, PSEUDO_LABEL_POOL, np.random.default_rng(random_state))


_FACTORIES = {
    "logistic_regression": _logistic_regression,
    "random_forest": _random_forest,
    "naive_bayes": _naive_bayes,
    "sgd": _sgd,
}
#: Names accepted by :func:`make_model`.
MODEL_NAMES: tuple[str, ...] = tuple(_FACTORIES)


def make_model(
    name: str = "logistic_regression",
    *,
    classes: Sequence[Hashable] | None = None,
    random_state: int | None = None,
    calibrate: Calibrate | None = None,
    multilabel: bool = False,
    pseudo_labels: float | None = None,
    **params: Any,
) -> Classifier:
    """A :class:`Classifier` around a named estimator; ``params`` go to the estimator.

    ``calibrate=None``: the model's own default (``False`` for logistic regression, ``"auto"``
    for the others). Names: ``"logistic_regression"`` (:class:`LabelLogistic`: lbfgs,
    ``C="auto"`` (:func:`c_for_labels`), no intercept on sparse features, balanced class weights, uncalibrated; pass ``C=1.0,
    fit_intercept=True, class_weight=None, calibrate="auto"`` for the scikit-learn defaults), ``"random_forest"`` (200 trees),
    ``"naive_bayes"`` (:class:`NaiveBayes`: multinomial for non-negative features, else
    Gaussian), ``"sgd"`` (``SGDClassifier(loss="log_loss")``). ``pseudo_labels=None``: the
    model's own default (1 for logistic regression, 0 for the others; see :class:`Classifier`).
    """
    factory = _FACTORIES.get(name)
    if factory is not None:
        estimator = factory(random_state, dict(params))
    elif is_import_path(name) or name in plugin_names():
        estimator = plugin_estimator(name, **params)
    else:
        raise ValueError(f"unknown model {name!r}; choose one of {', '.join(MODEL_NAMES)}, an "
                         f"{ENTRY_POINT_GROUP!r} entry point or an import path module:factory")
    if calibrate is None:  # calibration clones the estimator: scikit-learn's get_params
        calibrate = _DEFAULT_CALIBRATION.get(name, "auto") if hasattr(
            estimator, "get_params") else False
    if pseudo_labels is None:
        pseudo_labels = _DEFAULT_PSEUDO_LABELS.get(name, 0.0)
    return Classifier(
        estimator,
        classes=classes,
        calibrate=calibrate,
        multilabel=multilabel,
        random_state=random_state,
        pseudo_labels=check_pseudo_labels(pseudo_labels),
    )


# ---- plugins ---------------------------------------------------------------------------------

#: Entry-point group under which an installed package offers models by name, e.g. in its
#: pyproject.toml: ``[project.entry-points."activelabel.models"] my_model = "mypkg.mod:factory"``.
ENTRY_POINT_GROUP = "activelabel.models"
_IMPORT_PATH = re.compile(r"^[A-Za-z_]\w*(\.[A-Za-z_]\w*)*:[A-Za-z_]\w*(\.[A-Za-z_]\w*)*$")


def is_import_path(name: str) -> bool:
    """Whether a model name is an import path (``module:attribute``) rather than a name."""
    return ":" in name


def is_valid_import_path(name: str) -> bool:
    """Whether ``name`` has the form ``module.path:attribute`` (nothing imported)."""
    return bool(_IMPORT_PATH.match(name))


def plugin_names() -> list[str]:
    """Names of the models installed packages offer under :data:`ENTRY_POINT_GROUP`, sorted."""
    return sorted({ep.name for ep in metadata.entry_points(group=ENTRY_POINT_GROUP)})


def _load_plugin(name: str) -> Callable[..., Any]:
    """The factory (or class) behind an entry point name or an import path; ValueError says
    what failed and how to fix it."""
    if not is_import_path(name):
        found = [ep for ep in metadata.entry_points(group=ENTRY_POINT_GROUP) if ep.name == name]
        if not found:
            raise ValueError(f"no installed package offers the model {name!r} (entry points of "
                             f"{ENTRY_POINT_GROUP!r}: {', '.join(plugin_names()) or 'none'})")
        try:
            return found[0].load()
        except Exception as exc:
            raise ValueError(f"the model {name!r} ({found[0].value}) cannot be loaded: "
                             f"{type(exc).__name__}: {exc}") from exc
    if not _IMPORT_PATH.match(name):
        raise ValueError(f"model import path {name!r} is not of the form module.path:factory "
                         "(e.g. mypkg.models:make_classifier)")
    module_name, _, attr = name.partition(":")
    try:
        target: Any = importlib.import_module(module_name)
    except Exception as exc:
        raise ValueError(f"model import path {name!r}: module {module_name!r} cannot be "
                         f"imported ({type(exc).__name__}: {exc}); install it where the server "
                         "and its workers run") from exc
    for part in attr.split("."):
        if not hasattr(target, part):
            raise ValueError(f"model import path {name!r}: {module_name} has no {attr!r}")
        target = getattr(target, part)
    if not callable(target):
        raise ValueError(f"model import path {name!r} names a {type(target).__name__}, not a "
                         "class or a function that returns a classifier")
    return target


def plugin_estimator(name: str, **params: Any) -> Any:
    """A new, unfitted classifier from a plugin model: the entry point or import path ``name``
    called with ``params``. It must have ``fit(X, y)`` and ``predict_proba(X)`` (and set
    ``classes_`` in ``fit``); ValueError otherwise, naming what is missing."""
    factory = _load_plugin(name)
    try:
        estimator = factory(**params)
    except Exception as exc:
        raise ValueError(f"model {name!r}: calling it with {params or 'no arguments'} failed "
                         f"({type(exc).__name__}: {exc})") from exc
    missing = [m for m in ("fit", "predict_proba") if not callable(getattr(estimator, m, None))]
    if missing:
        raise ValueError(f"model {name!r} gave a {type(estimator).__name__}, which has no "
                         f"{' or '.join(missing)}: a model needs fit(X, y) and "
                         "predict_proba(X), as scikit-learn classifiers have")
    return estimator


def check_plugin(name: str) -> None:
    """Raise ValueError unless ``name`` gives a classifier (see :func:`plugin_estimator`)."""
    plugin_estimator(name)


# ---- committee -------------------------------------------------------------------------------


class BootstrapCommittee:
    """A query-by-committee ensemble: each member is fit on a bootstrap sample of the labels.

    ``estimator`` is an unfitted scikit-learn classifier (default logistic regression; members
    are not calibrated, since disagreement needs no calibration and each check costs extra fits)
    or a :class:`Classifier` whose estimator and ``calibrate`` setting are reused. Each bootstrap sample is
    redrawn (up to 20 times, then one row of another class is swapped in) until it holds at
    least two classes whenever the labels do. Deterministic for a given ``random_state``.

    Fitted attributes: ``classes_``, ``members_`` (``n_members`` fitted :class:`Classifier`).
    """

    def __init__(
        self,
        estimator: Any = None,
        *,
        n_members: int = 5,
        classes: Sequence[Hashable] | None = None,
        random_state: int | None = None,
    ) -> None:
        self.estimator = estimator
        self.n_members = n_members
        self.classes = classes
        self.random_state = random_state

    def fit(self, X: Any, y: Sequence[Hashable]) -> BootstrapCommittee:
        """Fit ``n_members`` classifiers on bootstrap samples of ``X`` (n, d) and ``y`` (n,)."""
        if isinstance(self.n_members, bool) or not isinstance(self.n_members, int | np.integer):
            raise TypeError(f"n_members must be an integer, got {self.n_members!r}")
        if self.n_members < 2:
            raise ValueError(
                f"a committee needs at least 2 members, got n_members={self.n_members}"
            )
        X = _as_rows(X)
        labels = list(y)
        _check_rows(X, len(labels))
        self.classes_ = Classifier(classes=self.classes)._resolve_classes(labels)
        codes = _encode(labels, self.classes_)
        rng = np.random.default_rng(self.random_state)
        self.members_: list[Classifier] = []
        for _ in range(int(self.n_members)):
            rows = _bootstrap_rows(codes, rng)
            member = self._member(int(rng.integers(2**31 - 1)))
            self.members_.append(member.fit(X[rows], codes[rows]))
        return self

    def _member(self, seed: int) -> Classifier:
        base: Any = self.estimator
        calibrate: Calibrate = False
        if isinstance(base, Classifier):
            base, calibrate = base.estimator, base.calibrate
        return Classifier(
            base, classes=list(range(len(self.classes_))), calibrate=calibrate, random_state=seed
        )

    def predict_proba(self, X: Any) -> NDArray[np.float64]:
        """Members' probabilities stacked: (n_members, n, n_classes), columns in ``classes_``."""
        if not hasattr(self, "members_"):
            raise NotFittedError("this BootstrapCommittee is not fitted yet; call fit(X, y) first")
        return np.stack([m.predict_proba(X) for m in self.members_])

    def predict(self, X: Any) -> NDArray[Any]:
        """Consensus labels (n,): the argmax of the members' mean probability."""
        mean = self.predict_proba(X).mean(axis=0)
        labels: NDArray[Any] = _label_array(self.classes_)[np.argmax(mean, axis=1)]
        return labels


def _bootstrap_rows(codes: IntArray, rng: np.random.Generator) -> IntArray:
    """n row indices drawn with replacement, holding >= 2 classes whenever ``codes`` does."""
    n = codes.shape[0]
    rows: IntArray = np.asarray(rng.integers(0, n, size=n), dtype=np.intp)
    if np.unique(codes).shape[0] < 2:
        return rows
    for _ in range(_MAX_BOOTSTRAP_RETRIES):
        if np.unique(codes[rows]).shape[0] >= 2:
            return rows
        rows = np.asarray(rng.integers(0, n, size=n), dtype=np.intp)
    if np.unique(codes[rows]).shape[0] < 2:
        others = np.flatnonzero(codes != codes[rows[0]])
        rows[0] = others[int(rng.integers(others.shape[0]))]
    return rows
