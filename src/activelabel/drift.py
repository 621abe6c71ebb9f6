"""Drift and staleness: has the data moved away from what the model learned on?

Two views of a shift between a reference sample (the training data, or the pool the model
last ranked) and new items:

- the model's confidence (its highest class probability) on each side;
- the features projected on the first principal directions of both samples together (a
  truncated SVD, so sparse TF-IDF works as well as dense embeddings).

A third view reads every feature at once: a classifier trained to tell new items from the
reference (the classifier two-sample test, :func:`domain_auc`); an out-of-fold AUC of
``DOMAIN_AUC_ALERT`` or more with p < ``p_alert`` is a shift. It finds what the first
directions miss, such as new classes among many (a shift spread over many directions).

The first two are measured by the population stability index (PSI, bins at the reference's deciles;
under 0.1 little change, 0.1-0.25 some, above 0.25 a major shift) and by the two-sample
Kolmogorov-Smirnov test (for the projections, the smallest p-value times the number of
directions, Bonferroni). A shift is reported when a PSI reaches ``psi_alert`` and its test's
p-value is under ``p_alert``: the PSI says the change is large, the test that it is not noise.

Arrays in, numbers out; samples above ``MAX_SAMPLE`` rows are subsampled (seeded), and the
projection runs by row chunks, so memory stays linear in the sample.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

from .samples import sorted_sample

__all__ = [
    "MAX_SAMPLE",
    "DriftReport",
    "answer_confidence",
    "domain_auc",
    "drift_report",
    "ks_pvalue",
    "max_confidence",
    "project_rows",
    "psi",
    "stale_reasons",
]

#: Rows of each side used for the statistics (a seeded subsample above it).
MAX_SAMPLE = 20_000
#: AUC of the classifier two-sample test from which new items count as shifted.
DOMAIN_AUC_ALERT = 0.7
#: Rows a side the classifier two-sample test reads (a seeded subsample above it).
DOMAIN_ROWS = 5_000
#: Principal directions of the reference the features are projected on.
DIRECTIONS = 5
_BINS = 10
_EPS = 1e-4
_CHUNK = 10_000


def psi(reference: NDArray[Any], current: NDArray[Any], bins: int = _BINS) -> float:
    """Population stability index of ``current`` against ``reference`` (1-d samples).

    Bins are the reference's quantiles (ties merged); empty bins count ``1e-4`` of a sample,
    so the index stays finite. 0 when the two samples fall alike in the bins."""
    ref = np.asarray(reference, dtype=np.float64).ravel()
    cur = np.asarray(current, dtype=np.float64).ravel()
    if ref.size == 0 or cur.size == 0:
        raise ValueError("psi needs two non-empty samples")
    edges = np.unique(np.quantile(ref, np.linspace(0, 1, bins + 1)[1:-1]))
    expected = np.bincount(np.searchsorted(edges, ref, side="right"),
                           minlength=edges.size + 1) / ref.size
    actual = np.bincount(np.searchsorted(edges, cur, side="right"),
                         minlength=edges.size + 1) / cur.size
    expected, actual = np.maximum(expected, _EPS), np.maximum(actual, _EPS)
    return float(np.sum((actual - expected) * np.log(actual / expected)))


def ks_pvalue(reference: NDArray[Any], current: NDArray[Any]) -> float:
    """p-value of the two-sample Kolmogorov-Smirnov test (same distribution?)."""
    from scipy.stats import ks_2samp

    return float(ks_2samp(np.ravel(reference), np.ravel(current)).pvalue)


def project_rows(reference: Any, current: Any, *, directions: int = DIRECTIONS,
                 seed: int = 0) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Both feature matrices (dense or scipy sparse, same columns) projected on the first
    ``directions`` principal directions of the two together, centred on the reference's mean.

    The directions come from both samples: fitted on the reference alone, in a space with
    more columns than rows (TF-IDF) they would follow the reference's own items, on which its
    rows project far more than any other item, and every comparison would look like a shift."""
    import scipy.sparse as sp
    from sklearn.decomposition import TruncatedSVD

    n_ref, n_cur = reference.shape[0], current.shape[0]
    if n_ref < 3 or reference.shape[1] < 2:
        raise ValueError("projecting needs at least 3 reference rows and 2 feature columns")
    both = (sp.vstack([reference, current], format="csr")
            if sp.issparse(reference) or sp.issparse(current)
            else np.vstack([np.asarray(reference), np.asarray(current)]))
    k = max(1, min(directions, both.shape[1] - 1, n_ref + n_cur - 1))
    svd = TruncatedSVD(n_components=k, random_state=seed).fit(both)
    parts = [np.asarray(svd.transform(both[i:i + _CHUNK]), dtype=np.float64)
             for i in range(0, both.shape[0], _CHUNK)]
    projected = np.vstack(parts)
    projected -= projected[:n_ref].mean(axis=0)
    return projected[:n_ref], projected[n_ref:]


def domain_auc(reference: Any, current: Any, *, seed: int = 0,
               max_rows: int = DOMAIN_ROWS) -> tuple[float, float]:
    """The classifier two-sample test: (AUC, p-value) of a logistic regression telling
    ``current`` rows from ``reference`` rows, scored out of fold (3 folds), the p-value from
    the Mann-Whitney U test of those scores. AUC near 0.5: the two samples look alike; it sees
    every feature at once, where a shift spread over many directions (new classes among many)
    leaves each principal direction almost unmoved. At most ``max_rows`` rows a side."""
    import scipy.sparse as sp
    from scipy.stats import mannwhitneyu
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_auc_score
    from sklearn.model_selection import StratifiedKFold, cross_val_predict

    rng = np.random.default_rng(seed)
    ref_rows = np.sort(rng.permutation(reference.shape[0])[:max_rows])
    cur_rows = np.sort(rng.permutation(current.shape[0])[:max_rows])
    if ref_rows.size < 3 or cur_rows.size < 3:
        return 0.5, 1.0
    sparse = sp.issparse(reference) or sp.issparse(current)
    X = (sp.vstack([reference[ref_rows], current[cur_rows]], format="csr") if sparse
         else np.vstack([np.asarray(reference)[ref_rows], np.asarray(current)[cur_rows]]))
    y = np.r_[np.zeros(ref_rows.size), np.ones(cur_rows.size)]
    folds = StratifiedKFold(n_splits=3, shuffle=True, random_state=seed)
    model = LogisticRegression(C=1.0, class_weight="balanced", max_iter=200)
    scores = cross_val_predict(model, X, y, cv=folds, method="decision_function")
    auc = float(roc_auc_score(y, scores))
    p_value = float(mannwhitneyu(scores[y == 1], scores[y == 0], alternative="greater").pvalue)
    return auc, p_value


def answer_confidence(probs: NDArray[Any], task: str) -> NDArray[np.float64]:
    """Per row, the model's confidence in its own answer for a project of ``task``: a span
    model's probability of its tagging (the first of its two columns), else
    :func:`max_confidence`."""
    if task == "spans":
        return np.asarray(probs, dtype=np.float64)[:, 0]
    return max_confidence(probs, task == "multilabel")


def max_confidence(probs: NDArray[Any], multilabel: bool) -> NDArray[np.float64]:
    """Per row, the model's confidence in its own answer: the largest class probability, or
    for multilabel the least certain label's max(p, 1 - p). ``probs`` is (n, n_classes)."""
    p = np.asarray(probs, dtype=np.float64)
    if multilabel:
        return np.min(np.maximum(p, 1.0 - p), axis=1)
    return np.max(p, axis=1)


@dataclass
class DriftReport:
    """The shift between a reference sample and new items (see the module's docstring)."""

    n_reference: int
    n_new: int
    confidence_psi: float | None = None
    confidence_p: float | None = None
    embedding_psi: float | None = None
    embedding_p: float | None = None
    domain_auc: float | None = None
    domain_p: float | None = None
    shifted: bool = False
    reasons: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {k: (round(v, 6) if isinstance(v, float) else v) for k, v in asdict(self).items()}


def drift_report(*, confidence_reference: NDArray[Any] | None = None,
                 confidence_new: NDArray[Any] | None = None,
                 features_reference: Any = None, features_new: Any = None,
                 psi_alert: float = 0.2, p_alert: float = 0.01, seed: int = 0) -> DriftReport:
    """Compare new items with the reference by confidence and by feature projections (either
    pair may be left out). ``shifted`` when a PSI reaches ``psi_alert`` with p < ``p_alert``."""
    if not psi_alert > 0:
        raise ValueError(f"psi_alert must be > 0, got {psi_alert}")
    if not 0 < p_alert < 1:
        raise ValueError(f"p_alert must be in (0, 1), got {p_alert}")
    rng = np.random.default_rng(seed)
    sizes = [0, 0]
    report = DriftReport(0, 0)
    if confidence_reference is not None and confidence_new is not None:
        ref = np.asarray(confidence_reference, dtype=np.float64).ravel()
        new = np.asarray(confidence_new, dtype=np.float64).ravel()
        if ref.size and new.size:
            ref = ref[sorted_sample(ref.size, MAX_SAMPLE, rng)]
            new = new[sorted_sample(new.size, MAX_SAMPLE, rng)]
            report.confidence_psi, report.confidence_p = psi(ref, new), ks_pvalue(ref, new)
            sizes = [ref.size, new.size]
            if report.confidence_psi >= psi_alert and report.confidence_p < p_alert:
                report.reasons.append(
                    f"the model's confidence on new items moved (PSI {report.confidence_psi:.2f})")
    if features_reference is not None and features_new is not None \
            and features_reference.shape[0] >= 3 and features_new.shape[0] > 0 \
            and features_reference.shape[1] >= 2:  # one column: the confidence view only
        ref_rows = sorted_sample(features_reference.shape[0], MAX_SAMPLE, rng)
        new_rows = sorted_sample(features_new.shape[0], MAX_SAMPLE, rng)
        ref_x, new_x = project_rows(features_reference[ref_rows], features_new[new_rows],
                                    seed=seed)
        scores = [psi(ref_x[:, j], new_x[:, j]) for j in range(ref_x.shape[1])]
        worst = int(np.argmax(scores))
        report.embedding_psi = float(scores[worst])
        p_values = [ks_pvalue(ref_x[:, j], new_x[:, j]) for j in range(ref_x.shape[1])]
        report.embedding_p = float(min(1.0, min(p_values) * len(p_values)))
        sizes = [max(sizes[0], ref_rows.size), max(sizes[1], new_rows.size)]
        if report.embedding_psi >= psi_alert and report.embedding_p < p_alert:
            report.reasons.append(f"new items lie elsewhere in feature space "
                                  f"(PSI {report.embedding_psi:.2f} along direction {worst + 1})")
        auc, p_auc = domain_auc(features_reference[ref_rows], features_new[new_rows], seed=seed)
        report.domain_auc, report.domain_p = auc, p_auc
        if auc >= DOMAIN_AUC_ALERT and p_auc < p_alert:
            report.reasons.append(f"a classifier tells new items from the training data "
                                  f"(AUC {auc:.2f})")
    report.n_reference, report.n_new = sizes
    report.shifted = bool(report.reasons)
    return report


def stale_reasons(*, labels_since: int, seconds_since: float, new_items: int,
                  max_labels: int | None, max_days: float | None) -> list[str]:
    """Why the active model is stale (empty: it is not): more than ``max_labels`` labels
    since it was trained, or older than ``max_days`` while labels or items arrived since."""
    reasons = []
    if max_labels is not None and labels_since >= max_labels:
        reasons.append(f"{labels_since:,} labels arrived since it was trained "
                       f"(at most {max_labels:,})")
    days = seconds_since / 86400
    if max_days is not None and days >= max_days and (labels_since or new_items):
        reasons.append(f"it is {days:.1f} days old (at most {max_days:g}) and "
                       f"{labels_since:,} labels and {new_items:,} items arrived since")
    return reasons
