"""Fixtures of the browser tests: a real ``activelabel serve`` over the digits demo and
Chromium (Debian's package) driven by Playwright (helpers in :mod:`tests.support.web`).

The server is started once per session and the browser once for this folder's tests; each test
makes its own users. Without
Chromium the tests are skipped locally and fail in CI (``CI=true``), where ``make test`` installs it.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.support.processes import ServerProcess, run_cli
from tests.support.web import (
    ADMIN_PASSWORD,
    CHROMIUM_ARGS,
    Person,
    Site,
    chromium_or_skip,
    login,
    widen_queue,
)


@pytest.fixture(scope="session")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    """The digits demo (admin, 1797 items, seed round done) served on a free port."""
    folder = tmp_path_factory.mktemp("web")
    data, db = folder / "data", f"sqlite:///{folder / 'web.db'}"
    data.mkdir()
    made = run_cli("demo", "--password", ADMIN_PASSWORD, data_dir=data, db=db, timeout=180)
    assert made.returncode == 0, made.stderr
    server = ServerProcess(data, db)
    try:
        server.start()
        admin = Person("admin", ADMIN_PASSWORD, login(server.url, "admin", ADMIN_PASSWORD),
                       "owner")
        built = Site(server.url, admin, server)
        widen_queue(built)
        yield built
    finally:
        server.stop()


@pytest.fixture(scope="package")
def browser() -> Iterator[Any]:
    """Chromium, for the tests of this folder: Playwright's sync API runs an event loop in
    the thread until it stops, so it stops when they end (a test of another folder run after
    them in the same process, as ``pytest tests/web tests/http`` does, calls asyncio.run)."""
    executable = chromium_or_skip()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        try:
            yield launched
        finally:
            launched.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    """A fresh browser context (own localStorage) at 1280x800; page errors fail the test."""
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    # Generous: on a busy machine the review queue (a model ranks label issues) can take
    # tens of seconds to answer; the tests wait for what they check, never for the timeout.
    context.set_default_timeout(60_000)
    opened = context.new_page()
    errors: list[str] = []
    opened.on("pageerror", lambda exc: errors.append(str(exc)))
    yield opened
    context.close()
    assert not errors, f"JavaScript errors on the page: {errors}"
