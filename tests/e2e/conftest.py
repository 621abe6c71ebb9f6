"""Fixtures of the end-to-end tests: a new database per test (``backend`` is function-scoped
here, for ``db_url``) and a running server (helpers in :mod:`tests.support.processes`)."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from activelabel.client import Client
from tests.support.databases import BACKENDS
from tests.support.processes import ServerProcess


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def server(db_url: str, tmp_path: Path) -> Iterator[ServerProcess]:
    """``activelabel serve`` with one worker on ``db_url``; always killed at teardown."""
    proc = ServerProcess(tmp_path / "data", db_url)
    proc.data_dir.mkdir()
    try:
        yield proc.start()
    finally:
        proc.stop()


@pytest.fixture
def connect() -> Iterator[Callable[..., Client]]:
    """``connect(url, token)``: a :class:`Client` whose connections are closed at teardown."""
    with contextlib.ExitStack() as opened:
        yield lambda url, token=None: opened.enter_context(Client(url, token))
