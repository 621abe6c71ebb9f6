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
