"""The browser tests' world: a real ``activelabel serve`` over the digits demo, its members,
and Chromium (Debian's package) driven by Playwright. Without Chromium the tests are skipped
locally and fail in CI (``CI=true``), where ``make test`` installs it. The fixtures that start
the server and the browser are in ``tests/web/conftest.py``.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.api import unique
from tests.support.processes import ROUND_TIMEOUT, ServerProcess, wait_until

__all__ = [
    "ADMIN_PASSWORD",
    "BATCH",
    "CHROMIUM",
    "CHROMIUM_ARGS",
    "PASSWORD",
    "PROJECT",
    "Person",
    "Site",
    "axe_source",
    "axe_violations",
    "chromium_or_skip",
    "label_by_oracle",
    "log_in",
    "login",
    "run_round",
    "widen_queue",
]

CHROMIUM = os.environ.get("ACTIVELABEL_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                 "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]
ADMIN_PASSWORD = "demo-admin-password"
PASSWORD = "password123"
PROJECT = 1
#: Items per round in the browser tests.
BATCH = 200


def chromium_or_skip() -> str:
    """The Chromium executable; a skip locally when missing, a failure in CI."""
    if Path(CHROMIUM).exists() or shutil.which("chromium"):
        return CHROMIUM if Path(CHROMIUM).exists() else str(shutil.which("chromium"))
    message = (f"Chromium not found at {CHROMIUM}: install Debian's package "
               "(apt-get install chromium); `make test` does")
    if os.environ.get("CI") == "true":
        pytest.fail(message)
    pytest.skip(message)


@dataclass
class Person:
    username: str
    password: str
    token: str
    role: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


@dataclass
class Site:
    """The running demo server and a way to make members."""

    url: str
    admin: Person
    process: ServerProcess

    def api(self, method: str, path: str, who: Person | None = None,
            **kwargs: Any) -> httpx.Response:
        who = who or self.admin
        return httpx.request(method, f"{self.url}/api/v1{path}", headers=who.headers,
                             timeout=30, **kwargs)

    def get(self, path: str, who: Person | None = None, **kw: Any) -> Any:
        answer = self.api("GET", path, who, **kw)
        assert answer.status_code == 200, answer.text
        return answer.json()

    def member(self, role: str) -> Person:
        name = unique(role)
        made = self.api("POST", "/users", json={"username": name, "password": PASSWORD})
        assert made.status_code == 201, made.text
        added = self.api("POST", f"/projects/{PROJECT}/members",
                         json={"username": name, "role": role})
        assert added.status_code == 201, added.text
        return Person(name, PASSWORD, login(self.url, name, PASSWORD), role)


def label_by_oracle(site: Site, who: Person, n: int) -> list[int]:
    """Label ``n`` items from ``who``'s queue with their true digit; the item ids."""
    from sklearn.datasets import load_digits

    truth = load_digits().target
    tasks = site.get(f"/projects/{PROJECT}/tasks/next", who, params={"n": n})
    for task in tasks:
        digit = str(truth[int(task["item"]["external_id"].split("-")[1])])
        answer = site.api("POST", f"/projects/{PROJECT}/annotations", who, json={
            "item_id": task["item"]["id"], "labels": [digit], "duration_ms": 1500})
        assert answer.status_code == 201, answer.text
    return [int(t["item"]["id"]) for t in tasks]


def login(url: str, username: str, password: str) -> str:
    answer = httpx.post(f"{url}/api/v1/auth/login", timeout=30,
                        json={"username": username, "password": password})
    assert answer.status_code == 201, answer.text
    return str(answer.json()["token"])


def widen_queue(site: Site) -> None:
    """A queue of BATCH items (the demo's 20 would run dry with several annotators), no
    automatic rounds (the tests that need one ask for it), and free labeling: tests stage
    disagreements by having a second annotator label the items handed to a first."""
    changed = site.api("PATCH", f"/projects/{PROJECT}", json={"settings": {
        "batch_size": BATCH, "retrain_every_labels": 10_000, "free_labeling": True}})
    assert changed.status_code == 200, changed.text
    run_round(site)


def run_round(site: Site) -> dict[str, Any]:
    """Ask for a round and wait until it is done; the round."""
    asked = site.api("POST", f"/projects/{PROJECT}/rounds")
    assert asked.status_code == 202, asked.text
    round_id = asked.json()["round_id"]

    def done() -> dict[str, Any] | None:
        found = site.get(f"/projects/{PROJECT}/rounds/{round_id}?limit=0")
        assert found["status"] != "failed", found
        return found if found["status"] == "done" else None

    return dict(wait_until(done, timeout=ROUND_TIMEOUT, poll=0.3, what="round done"))


def log_in(page: Any, site: Site, who: Person, *, form: bool = False) -> None:
    """Log in and land on the project list: through the login form, or (faster, for tests
    about other pages) by storing ``who``'s token the way the login page does."""
    if form:
        page.goto(f"{site.url}/")
        page.get_by_label("User name").fill(who.username)
        page.get_by_label("Password").fill(who.password)
        page.get_by_role("button", name="Log in").click()
    else:
        me = site.get("/me", who)
        page.goto(f"{site.url}/static/app.css")  # same origin, no page script
        page.evaluate("([token, user]) => { localStorage.setItem('activelabel.token', token);"
                      " localStorage.setItem('activelabel.user', user); }",
                      [who.token, json.dumps(me)])
        page.goto(f"{site.url}/")
    page.wait_for_selector("#project-list li")


#: Where ``make test`` installs the axe-core npm package.
AXE_NPM = Path(__file__).resolve().parents[2] / ".axe" / "node_modules" / "axe-core" / "axe.min.js"


def save_settings(page: Any, site: Site, pid: int, name: str, value: Any) -> None:
    """Press Save settings and wait until the project holds ``value`` for setting ``name``
    (the toast may still be up from an earlier save, so the project is polled)."""
    page.get_by_role("button", name="Save settings").click()
    for _ in range(100):
        if site.get(f"/projects/{pid}")["settings"][name] == value:
            break
        page.wait_for_timeout(50)
    assert site.get(f"/projects/{pid}")["settings"][name] == value


def shown_item(page: Any) -> int:
    """The item on the labeling page, once one is shown (after a load or a reload the page
    fetches its task first, and reading the attribute before then finds none)."""
    page.wait_for_selector("#item[data-item]:not([data-item=''])")
    return int(page.get_attribute("#item", "data-item"))


def axe_source() -> str:
    """axe-core's ``axe.min.js``: the file ``ACTIVELABEL_AXE`` names, else the npm package
    ``make test`` installs in ``.axe/``, else the same file as shipped inside the
    ``axe-playwright-python`` test dependency (a run without make)."""
    named = os.environ.get("ACTIVELABEL_AXE")
    if named:
        return Path(named).read_text(encoding="utf-8")
    if AXE_NPM.exists():
        return AXE_NPM.read_text(encoding="utf-8")
    import axe_playwright_python

    return (Path(axe_playwright_python.__file__).parent / "axe.min.js").read_text(encoding="utf-8")


def axe_violations(page: Any) -> list[str]:
    """Every axe-core violation (any impact) on the page as it is now, one line each: rule,
    impact and the first nodes' selectors."""
    if not page.evaluate("typeof window.axe !== 'undefined'"):
        page.add_script_tag(content=axe_source())
    found = page.evaluate("""async () => {
      const r = await axe.run(document, {resultTypes: ['violations']});
      return r.violations.map(v => `${v.id} (${v.impact}): ${v.help}: ` +
        v.nodes.slice(0, 4).map(n => n.target.join(' ') + ' ' + (n.failureSummary || '')
          .replace(/\\s+/g, ' ').slice(0, 160)).join(' | '));
    }""")
    return list(found)


def add_member(site: Site, pid: int, role: str = "annotator") -> Person:
    """A new user made a member of project ``pid`` (and of the demo, as :meth:`Site.member`)."""
    who = site.member(role)
    added = site.api("POST", f"/projects/{pid}/members",
                     json={"username": who.username, "role": role})
    assert added.status_code == 201, added.text
    return who


def watch_progress(page: Any, pid: int) -> list[int]:
    """Count the progress requests of project ``pid`` the page sends (call it before the
    page opens): ``[count]``, for :func:`refresh_progress`."""
    sent = [0]

    def seen(request: Any) -> None:
        if request.url.endswith(f"/projects/{pid}/progress"):
            sent[0] += 1

    page.on("request", seen)
    return sent


def refresh_progress(page: Any, pid: int, sent: list[int]) -> None:
    """Run the page's timers to its next progress refresh (every 15 s) and wait until the
    page has read the answer of every progress request it sent (``body[data-progress-read]``;
    a response Playwright saw may not have reached the page's code yet)."""
    before = sent[0]
    page.clock.run_for(16_000)

    def read() -> bool:
        return sent[0] > before and int(
            page.get_attribute("body", "data-progress-read") or 0) >= sent[0]

    wait_until(read, timeout=15, poll=0.05, what=f"the page read its progress ({pid})")


def sleep_past_leases(page: Any, site: Site, pid: int, colleague: Person) -> set[int]:
    """The page's timers stopped (its clock paused) while the project's 10-second leases run
    out and ``colleague`` takes up to 20 items; then the page's clock moves on, no timer run.
    The ids the colleague took."""
    now = page.evaluate("Date.now()")
    page.clock.pause_at(now + 500)
    time.sleep(11)
    taken = {int(t["item"]["id"]) for t in site.get(f"/projects/{pid}/tasks/next", colleague,
                                                     params={"n": 20})}
    page.clock.set_system_time(now + 12_000)
    return taken
