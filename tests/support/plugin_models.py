"""Model plugins for the tests: what a team's own package would offer (docs/models.md).

``CentroidClassifier`` is a plain class (no scikit-learn base, no ``get_params``), so it goes
through the plugin contract alone; ``make_knn`` is a factory returning a scikit-learn
classifier (which the rounds may calibrate). The others break the contract on purpose.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import scipy.sparse as sp
from numpy.typing import NDArray
from sklearn.neighbors import KNeighborsClassifier

#: Every CentroidClassifier fitted in this process (what a test checks the rounds used).
FITTED: list[int] = []


class CentroidClassifier:
    """Nearest class mean, with a softmax over negative squared distances as probabilities."""

    def __init__(self, temperature: float = 50.0) -> None:
        self.temperature = temperature

    def fit(self, X: Any, y: Any) -> None:  # returns None: the contract does not need self
        X = np.asarray(X.toarray() if sp.issparse(X) else X, dtype=np.float64)
        y = np.asarray(y)
        self.classes_ = np.unique(y)
        self.centroids_ = np.stack([X[y == c].mean(axis=0) for c in self.classes_])
        FITTED.append(int(X.shape[0]))

    def predict_proba(self, X: Any) -> NDArray[np.float64]:
        X = np.asarray(X.toarray() if sp.issparse(X) else X, dtype=np.float64)
        d = ((X[:, None, :] - self.centroids_[None, :, :]) ** 2).sum(axis=2)
        logits = -d / self.temperature
        logits -= logits.max(axis=1, keepdims=True)
        e = np.exp(logits)
        out: NDArray[np.float64] = e / e.sum(axis=1, keepdims=True)
        return out


def make_knn(n_neighbors: int = 3) -> KNeighborsClassifier:
    """A factory: a scikit-learn classifier with get_params (calibration may wrap it)."""
    return KNeighborsClassifier(n_neighbors=n_neighbors)


class NoProba:
    """Has fit but no predict_proba: refused when set."""

    def fit(self, X: Any, y: Any) -> NoProba:
        return self


class NoClasses(CentroidClassifier):
    """Forgets classes_ after fit: the round fails and says so."""

    def fit(self, X: Any, y: Any) -> None:
        super().fit(X, y)
        del self.classes_


class WrongShape(CentroidClassifier):
    """Answers one column too many."""

    def predict_proba(self, X: Any) -> NDArray[np.float64]:
        p = super().predict_proba(X)
        return np.hstack([p, np.zeros((p.shape[0], 1))])


NOT_CALLABLE = 42
