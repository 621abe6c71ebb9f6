"""Fixtures of the labeling tests (the storage fixtures they share with the worker tests are in
tests/conftest.py; helpers in :mod:`tests.support.projects`)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from sklearn.datasets import load_digits


@pytest.fixture(scope="session")
def digits() -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]]:
    """The 1797 8x8 digit images (int64) and their classes."""
    bunch = load_digits()
    return np.asarray(bunch.images, dtype=np.int64), np.asarray(bunch.target)


@pytest.fixture
def handed_pool(monkeypatch: pytest.MonkeyPatch) -> list[np.ndarray[Any, Any]]:
    """The unlabeled pool rows each round hands its model to pseudo-label, in order (the
    rounds still sample them as usual)."""
    from activelabel.labeling import rounds

    handed: list[np.ndarray[Any, Any]] = []
    sample = rounds.pseudo_label_rows

    def spy(rows: np.ndarray[Any, Any], random_state: int | None) -> np.ndarray[Any, Any]:
        handed.append(rows)
        return sample(rows, random_state)

    monkeypatch.setattr(rounds, "pseudo_label_rows", spy)
    return handed
