"""Every page at 1280x800 and on a 390 px wide screen: labelled controls, visible focus, no
sideways scrolling."""

from __future__ import annotations

from typing import Any

import pytest

from tests.support.api import unique
from tests.support.web import PASSWORD, PROJECT, Person, Site, axe_violations, log_in, login

PAGES = {"projects": "/", "label": f"/projects/{PROJECT}/label",
         "review": f"/projects/{PROJECT}/review",
         "dashboard": f"/projects/{PROJECT}/dashboard",
         "settings": f"/projects/{PROJECT}/settings", "new": "/projects/new"}

UNLABELLED = """() => [...document.querySelectorAll('input, select, textarea, button')]
  .filter(e => e.offsetParent !== null && e.type !== 'hidden')
  .filter(e => !(e.getAttribute('aria-label') || (e.labels && e.labels.length)
                 || (e.tagName === 'BUTTON' && e.textContent.trim())))
  .map(e => e.outerHTML.slice(0, 120))"""


@pytest.mark.parametrize("width", [1280, 390])
@pytest.mark.parametrize("name", list(PAGES))
def test_pages_are_labelled_focusable_and_fit(page: Any, site: Site, name: str,
                                              width: int) -> None:
    log_in(page, site, site.admin)
    page.set_viewport_size({"width": width, "height": 800})
    page.goto(site.url + PAGES[name])
    page.wait_for_load_state("networkidle")
    assert page.evaluate(UNLABELLED) == []
    overflow = page.evaluate("document.documentElement.scrollWidth")
    assert overflow <= width + 1, f"{name} scrolls sideways at {width} px ({overflow} px wide)"
    page.keyboard.press("Tab")
    page.keyboard.press("Tab")
    outline = page.evaluate("getComputedStyle(document.activeElement).outlineStyle")
    assert outline not in ("", "none"), f"no visible focus on {name}"


def _empty_project(site: Site) -> int:
    made = site.api("POST", "/projects", json={"name": unique("empty"), "labels": ["ham", "spam"]})
    assert made.status_code == 201, made.text
    return int(made.json()["id"])


#: Page states with what to wait for before axe-core looks: (path, selector shown when ready).
STATES: dict[str, tuple[str, str]] = {
    "projects": ("/", "#project-list li"),
    "new": ("/projects/new", "form"),
    "label": (f"/projects/{PROJECT}/label", "#choices button"),
    "review": (f"/projects/{PROJECT}/review", "body[data-state=ready]"),
    "dashboard": (f"/projects/{PROJECT}/dashboard", "body[data-state=ready]"),
    "settings": (f"/projects/{PROJECT}/settings", "body[data-state=ready]"),
    "missing page": (f"/projects/{PROJECT}/nowhere", "h1"),
    "missing project": ("/projects/99999/label", "#page-state:not([hidden])"),
}


@pytest.mark.parametrize("state", list(STATES))
def test_axe_finds_no_violation(page: Any, site: Site, state: str) -> None:
    """axe-core (every rule, every impact) on each page once its content is in."""
    log_in(page, site, site.admin)
    path, ready = STATES[state]
    page.goto(site.url + path)
    page.wait_for_selector(ready)
    assert axe_violations(page) == []


def test_axe_on_login_grid_dialog_and_empty_project(page: Any, site: Site) -> None:
    """The states a page reaches only by acting: the login form, the batch grid, the keys
    dialog, an empty project's label page (owner) and its dashboard."""
    page.goto(site.url + "/")
    page.wait_for_selector("#login:not([hidden])")
    assert page.locator("#logout").is_hidden()
    assert axe_violations(page) == [], "login"
    log_in(page, site, site.admin)
    page.goto(f"{site.url}/projects/{PROJECT}/label")
    page.wait_for_selector("#choices button")
    page.keyboard.press("g")
    page.wait_for_selector("#grid [role=gridcell]")
    assert axe_violations(page) == [], "grid"
    page.keyboard.press("?")
    page.wait_for_selector("#keys-dialog[open]")
    assert axe_violations(page) == [], "keys dialog"
    empty = _empty_project(site)
    page.goto(f"{site.url}/projects/{empty}/label")
    page.wait_for_selector("#upload-link")
    assert axe_violations(page) == [], "empty project"
    page.goto(f"{site.url}/projects/{empty}/dashboard")
    page.wait_for_selector("body[data-state=ready]")
    assert axe_violations(page) == [], "empty dashboard"


def test_clear_states_instead_of_loading_forever(page: Any, site: Site) -> None:
    """A missing project says so; an annotator of an empty project is told nothing is there
    yet (not that a round trains), its owner gets "Upload data", then "Start labeling" on the
    dashboard once items are in; a page above the caller's role says no access; a server
    error offers a retry that works."""
    log_in(page, site, site.admin)
    page.goto(f"{site.url}/projects/99999/label")
    page.wait_for_selector("#page-state[data-kind=missing]")
    assert "Not found" in page.inner_text("#page-state")
    assert page.is_hidden("#page-body")

    empty = _empty_project(site)
    page.goto(f"{site.url}/projects/{empty}/label")
    page.wait_for_selector("#upload-link")
    assert "no items yet" in page.inner_text("#empty")
    assert "round" not in page.inner_text("#empty")
    page.goto(f"{site.url}/projects/{empty}/dashboard")
    page.wait_for_selector("body[data-state=ready]")
    assert page.is_hidden("#start-card")
    added = site.api("POST", f"/projects/{empty}/items",
                     json=[{"external_id": "m1", "data": {"text": "win a prize now"}}])
    assert added.status_code in (200, 201), added.text
    page.reload()
    page.wait_for_selector("#start-labeling")
    page.click("#start-labeling")
    page.wait_for_url(f"**/projects/{empty}/label")

    annotator = site.member("annotator")
    bare = _empty_project(site)
    assert site.api("POST", f"/projects/{bare}/members",
                    json={"username": annotator.username, "role": "annotator"}).status_code == 201
    log_in(page, site, annotator)
    page.goto(f"{site.url}/projects/{bare}/label")
    page.wait_for_selector("#empty:has-text('Nothing to label yet')")
    assert page.locator("#upload-link").count() == 0
    page.goto(f"{site.url}/projects/{bare}/dashboard")
    page.wait_for_selector("#page-state[data-kind=forbidden]")
    assert axe_violations(page) == []

    failures = {"n": 0}

    def fail_once(route: Any) -> None:
        failures["n"] += 1
        if failures["n"] == 1:
            route.fulfill(status=500, content_type="application/json",
                          body='{"error": {"code": "internal", "message": "the database is busy"}}')
        else:
            route.continue_()

    page.route(f"**/api/v1/projects/{PROJECT}", fail_once)
    page.goto(f"{site.url}/projects/{PROJECT}/label")
    page.wait_for_selector("#page-state[data-kind=error]")
    assert "the database is busy" in page.inner_text("#page-state")
    assert axe_violations(page) == []
    page.get_by_role("button", name="Try again").click()
    page.wait_for_selector("#choices button")


FOCUSABLE = """() => [...document.querySelectorAll(
    'a[href], button, input, select, textarea, summary, [tabindex]:not([tabindex="-1"])')]
  .filter(e => !(e.type === 'radio' && !e.checked))  // a radio group is one stop (arrows)
  .filter(e => !e.disabled && e.getClientRects().length && getComputedStyle(e).visibility !== 'hidden'
               && !e.closest('dialog:not([open]), [hidden], details:not([open]) > :not(summary)'))
  .map(e => e.id || e.getAttribute('href') || e.dataset.label || e.outerHTML.slice(0, 80))"""


def _tab_through(page: Any, limit: int = 400) -> list[str]:
    """Focus stops met pressing Tab from the top of the page until focus comes round."""
    page.evaluate("document.activeElement && document.activeElement.blur()")
    seen: list[str] = []
    for _ in range(limit):
        page.keyboard.press("Tab")
        here = page.evaluate("""() => { const e = document.activeElement;
          return e === document.body ? null
            : (e.id || e.getAttribute('href') || e.dataset.label || e.outerHTML.slice(0, 80)); }""")
        if here is None or (seen and here == seen[0]):
            break
        seen.append(here)
    return seen


def _review_project(site: Site) -> int:
    """A project of its own whose review queue holds the same three items whatever the other
    tests labeled in the demo project: two labels that disagree, a labeled item flagged and a
    flagged item nobody labeled (every kind of control the review page shows)."""
    made = site.api("POST", "/projects", json={
        "name": unique("review"), "labels": ["ham", "spam"],
        "settings": {"free_labeling": True, "audit_share": 0}})
    assert made.status_code == 201, made.text
    pid = int(made.json()["id"])
    added = site.api("POST", f"/projects/{pid}/items", json=[
        {"external_id": f"r{i}", "data": {"text": f"message number {i}"}} for i in range(4)])
    assert added.status_code in (200, 201), added.text
    item = {i["external_id"]: i["id"] for i in site.get(f"/projects/{pid}/items")["items"]}
    people = []
    for _ in range(2):
        name = unique("annotator")
        assert site.api("POST", "/users", json={"username": name, "password": PASSWORD}
                        ).status_code == 201
        assert site.api("POST", f"/projects/{pid}/members",
                        json={"username": name, "role": "annotator"}).status_code == 201
        people.append(Person(name, PASSWORD, login(site.url, name, PASSWORD), "annotator"))
    first, second = people
    for who, external_id, label in ((first, "r0", "ham"), (second, "r0", "spam"),
                                    (first, "r1", "ham")):
        given = site.api("POST", f"/projects/{pid}/annotations", who,
                         json={"item_id": item[external_id], "labels": [label]})
        assert given.status_code == 201, given.text
    for external_id in ("r1", "r2"):
        flagged = site.api("POST", f"/projects/{pid}/flags", second,
                           json={"item_id": item[external_id], "reason": "unclear"})
        assert flagged.status_code == 201, flagged.text
    return pid


@pytest.mark.parametrize("state", ["projects", "label", "review", "dashboard", "settings"])
def test_keyboard_reaches_every_control(page: Any, site: Site, state: str) -> None:
    """Tab alone reaches every visible control of the page (the grid's cells by arrows, one
    stop for the grid), in a cycle without a trap. The review page is a project's of its own
    (:func:`_review_project`): the demo's queue grows with what the other tests label."""
    log_in(page, site, site.admin)
    path, ready = STATES[state]
    if state == "review":
        path = f"/projects/{_review_project(site)}/review"
    page.goto(site.url + path)
    page.wait_for_selector(ready)
    if state == "review":
        page.wait_for_selector("body[data-loaded=true]")
        assert page.locator("article.review-item").count() == 3
        assert (page.locator("button.accept").count(), page.locator("form.flag").count(),
                page.locator("select[id^=label-]").count()) == (3, 2, 1)
    reached = set(_tab_through(page))
    missing = [c for c in page.evaluate(FOCUSABLE) if c not in reached]
    assert missing == [], f"not reachable by Tab on {state}: {missing[:10]}"


def test_keyboard_only_login_label_and_grid(page: Any, site: Site) -> None:
    """From the login form to a stored label and back out, without the mouse."""
    annotator = site.member("annotator")
    page.goto(site.url + "/")
    page.wait_for_selector("#login:not([hidden])")
    page.keyboard.type(annotator.username)  # the user name field has the focus
    page.keyboard.press("Tab")
    page.keyboard.type(annotator.password)
    page.keyboard.press("Enter")
    page.wait_for_selector("#project-list li")
    page.focus("#project-list a.button.primary")
    page.keyboard.press("Enter")
    page.wait_for_selector("#choices button")
    item = page.get_attribute("#item", "data-item")
    page.keyboard.press("4")
    page.keyboard.press("Enter")
    page.wait_for_function(f"document.querySelector('#item').dataset.item !== '{item}'")
    page.keyboard.press("g")
    page.wait_for_selector("#grid [role=gridcell][tabindex='0']:focus")
    page.keyboard.press("ArrowRight")
    assert page.evaluate("document.activeElement.dataset.index") == "1"
    page.keyboard.press("Escape")
    page.keyboard.press("?")
    page.wait_for_selector("#keys-dialog[open]")
    page.keyboard.press("Escape")
    page.wait_for_selector("#keys-dialog", state="hidden")


@pytest.mark.parametrize("state", ["projects", "label", "review", "dashboard", "settings"])
def test_axe_in_dark_mode(page: Any, site: Site, state: str) -> None:
    """Dark mode (the system's preference) keeps every contrast axe-core checks."""
    page.emulate_media(color_scheme="dark")
    log_in(page, site, site.admin)
    path, ready = STATES[state]
    page.goto(site.url + path)
    page.wait_for_selector(ready)
    assert page.evaluate("getComputedStyle(document.body).backgroundColor") == "rgb(15, 20, 25)"
    assert axe_violations(page) == []
