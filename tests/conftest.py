"""Fixtures shared by the whole suite."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def _shared_data_dir() -> Path | None:
    """The real text datasets: ACTIVELABEL_SHARED_DATA, else ``shared/data`` beside the repository."""
    candidates = [os.environ.get("ACTIVELABEL_SHARED_DATA"), REPO.parent / "shared" / "data",
                  Path("/work/shared/data")]  # fmt: skip
    for candidate in candidates:
        if candidate and (Path(candidate) / "sms_spam.jsonl").exists():
            return Path(candidate)
    return None


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """Folder holding sms_spam.jsonl and ag_news_test.jsonl; missing data fails in CI."""
    found = _shared_data_dir()
    if found is None:
        message = "shared datasets not found: set ACTIVELABEL_SHARED_DATA to the folder with sms_spam.jsonl"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return found
