"""The labeling page in Chromium: log in, label by keyboard only, undo, skip, flag, the grid,
and a submission that survives a dropped connection without being stored twice."""

from __future__ import annotations

import time
from typing import Any

from tests.support.api import unique
from tests.support.processes import wait_until
from tests.support.web import (
    PROJECT,
    Person,
    Site,
    add_member,
    log_in,
    refresh_progress,
    shown_item,
    sleep_past_leases,
    watch_progress,
)

LABEL_PAGE = f"/projects/{PROJECT}/label"


def _open_label_page(page: Any, site: Site, who: Person) -> None:
    log_in(page, site, who)
    page.goto(site.url + LABEL_PAGE)
    page.wait_for_selector("#choices button")


def _my_labels(site: Site, who: Person) -> int:
    return int(site.get(f"/projects/{PROJECT}/progress", who)["me"]["labels"])


def _press_label(page: Any, key: str) -> None:
    page.keyboard.press(key)
    page.wait_for_selector(f"#choices button[aria-pressed=true][data-label='{key}']")


def test_login_form_rejects_a_wrong_password(page: Any, site: Site) -> None:
    page.goto(site.url + "/")
    page.get_by_label("User name").fill("admin")
    page.get_by_label("Password").fill("not the password")
    page.get_by_role("button", name="Log in").click()
    page.wait_for_selector("#login-error:has-text('Wrong user name or password')")
    assert page.evaluate("localStorage.getItem('activelabel.token')") is None


def test_pages_redirect_anonymous_callers_to_the_login(page: Any, site: Site) -> None:
    page.goto(site.url + LABEL_PAGE)
    page.wait_for_url("**/?next=*")
    assert page.is_visible("#login-form")
    html = page.content()
    assert "digit-" not in html  # no item data in the shell


def test_label_by_keyboard_undo_skip_and_flag(page: Any, site: Site) -> None:
    annotator = site.member("annotator")
    log_in(page, site, annotator, form=True)
    assert page.locator("#project-list li").count() == 1
    page.get_by_role("link", name="Label", exact=True).click()
    page.wait_for_selector("#choices button")
    assert page.is_hidden("nav a[href$='/settings']")  # an annotator's nav has no settings

    submitted = []
    for key in ["1", "2", "3", "4", "5"]:
        item = shown_item(page)
        _press_label(page, key)
        page.keyboard.press("Enter")
        page.wait_for_function(f"document.querySelector('#item').dataset.item !== '{item}'")
        submitted.append(item)
    assert len(set(submitted)) == 5
    wait_until(lambda: _my_labels(site, annotator) == 5, timeout=20, what="5 labels stored")
    page.wait_for_selector("#my-count:has-text('You: 5 labels')")

    page.keyboard.press("z")  # undo the last one: it comes back with its label chosen
    page.wait_for_function(f"document.querySelector('#item').dataset.item === '{submitted[-1]}'")
    assert page.get_attribute("#choices button[aria-pressed=true]", "data-label") == "5"
    wait_until(lambda: _my_labels(site, annotator) == 4, timeout=20, what="undo stored")
    history = site.get(f"/projects/{PROJECT}/items/{submitted[-1]}")["history"]
    assert [r["kind"] for r in history if r["user_id"] != 1] == ["label", "undo"]

    page.keyboard.press("Enter")  # label it again: a correction, not a second chain
    wait_until(lambda: _my_labels(site, annotator) == 5, timeout=20, what="relabel stored")

    skipped = shown_item(page)
    page.keyboard.press("s")
    page.wait_for_function(f"document.querySelector('#item').dataset.item !== '{skipped}'")

    flagged = shown_item(page)
    page.keyboard.press("f")
    page.wait_for_selector("#flag-dialog[open]")
    page.keyboard.type("could be a 1 or a 7")
    page.keyboard.press("Enter")
    page.wait_for_function(f"document.querySelector('#item').dataset.item !== '{flagged}'")
    flags = site.get(f"/projects/{PROJECT}/flags", annotator)
    assert [(f["item_id"], f["reason"]) for f in flags] == [(flagged, "could be a 1 or a 7")]

    page.keyboard.press("?")
    page.wait_for_selector("#keys-dialog[open]")
    assert "undo the last submission" in page.inner_text("#keys-dialog")
    page.keyboard.press("Escape")
    page.wait_for_selector("#keys-dialog", state="hidden")


def test_batch_grid_labels_many_items_at_once(page: Any, site: Site) -> None:
    annotator = site.member("annotator")
    _open_label_page(page, site, annotator)
    page.keyboard.press("g")
    page.wait_for_selector("#grid .cell")
    page.select_option("#grid-size", "10")
    page.wait_for_function("document.querySelectorAll('#grid .cell').length === 10")
    page.keyboard.press("2")  # the focused item, then focus moves on
    page.keyboard.press("Shift+Digit7")  # every item not labeled yet
    assert page.locator("#grid .cell .pick:text-is('7')").count() == 9
    page.keyboard.press("Enter")
    wait_until(lambda: _my_labels(site, annotator) == 10, timeout=20, what="grid stored")
    page.wait_for_function("document.querySelectorAll('#grid .cell').length === 10")


def test_a_submission_survives_a_dropped_connection(page: Any, site: Site) -> None:
    annotator = site.member("annotator")
    _open_label_page(page, site, annotator)
    answers: list[int] = []

    def lose_the_answer(route: Any) -> None:
        # the server stores the label, but the answer never reaches the page
        response = route.fetch()
        answers.append(response.status)
        if len(answers) == 1:
            route.abort("connectionreset")
        else:
            route.fulfill(response=response)

    page.route("**/api/v1/projects/*/annotations", lose_the_answer)
    item = shown_item(page)
    _press_label(page, "8")
    page.keyboard.press("Enter")
    for _ in range(200):  # let Playwright run the route handler while waiting
        if len(answers) >= 2:
            break
        page.wait_for_timeout(100)
    assert len(answers) >= 2, f"no retry after the lost answer: {answers}"
    page.wait_for_function("JSON.parse(localStorage.getItem('activelabel.outbox.1')).length === 0")
    history = site.get(f"/projects/{PROJECT}/items/{item}")["history"]
    mine = [r for r in history if r["username"] == annotator.username]
    assert [r["labels"] for r in mine] == [["8"]]  # retried, never doubled
    page.unroute("**/api/v1/projects/*/annotations")

    page.context.set_offline(True)  # offline: kept in localStorage, sent when back
    offline_item = shown_item(page)
    _press_label(page, "9")
    page.keyboard.press("Enter")
    page.wait_for_selector("#outbox:has-text('1 submission waiting')")
    page.context.set_offline(False)
    page.evaluate("window.dispatchEvent(new Event('online'))")
    page.wait_for_function("JSON.parse(localStorage.getItem('activelabel.outbox.1')).length === 0")
    history = site.get(f"/projects/{PROJECT}/items/{offline_item}")["history"]
    assert [r["labels"] for r in history if r["username"] == annotator.username] == [["9"]]


def test_unsent_submissions_are_sent_after_a_reload(page: Any, site: Site) -> None:
    annotator = site.member("annotator")
    _open_label_page(page, site, annotator)
    item = shown_item(page)
    page.route("**/api/v1/projects/*/annotations", lambda route: route.abort("failed"))
    _press_label(page, "4")
    page.keyboard.press("Enter")
    page.wait_for_selector("#outbox:has-text('waiting')")
    page.unroute("**/api/v1/projects/*/annotations")
    page.reload()
    page.wait_for_function("JSON.parse(localStorage.getItem('activelabel.outbox.1')).length === 0")
    history = site.get(f"/projects/{PROJECT}/items/{item}")["history"]
    assert [r["labels"] for r in history if r["username"] == annotator.username] == [["4"]]
    assert shown_item(page) != item



def _label_shown(page: Any, key: str) -> int:
    """Label what the page shows with the label of ``key``; the item it showed."""
    item = shown_item(page)
    page.keyboard.press(key)
    page.wait_for_selector("#choices button[aria-pressed=true]")
    page.keyboard.press("Enter")
    page.wait_for_function(f"document.querySelector('#item').dataset.item !== '{item}'")
    return item


def _text_project(site: Site, name: str, n: int = 60, **settings: Any
                  ) -> tuple[int, Person]:
    """A two-label text project of its own (a purge drops a project's cached features until
    its next round: the demo the other tests share is left alone) and a new annotator of it
    (the demo's admin has a pace of its own, which sets the page's prefetch)."""
    made = site.api("POST", "/projects", json={"name": unique(name), "labels": ["a", "b"],
                                               "settings": {"audit_share": 0, **settings}})
    assert made.status_code == 201, made.text
    pid = int(made.json()["id"])
    rows = [{"external_id": f"{name}{i}", "data": {"text": f"a line numbered {i}"}}
            for i in range(n)]
    assert site.api("POST", f"/projects/{pid}/items", json=rows).status_code in (200, 201)
    return pid, add_member(site, pid)


def test_items_purged_from_the_buffer_are_not_shown_and_a_purged_label_is_kept(
        page: Any, site: Site) -> None:
    """The owner purges items the page holds: the one on screen takes its label (people's
    work, kept in its history), the ones waiting in the page's buffer are never shown."""
    pid, annotator = _text_project(site, "purge")
    page.clock.install()  # the page's timers run when the test says
    log_in(page, site, annotator)
    sent = watch_progress(page, pid)
    page.goto(f"{site.url}/projects/{pid}/label")
    page.wait_for_selector("#choices button")
    item = shown_item(page)
    holding = site.get(f"/projects/{pid}/progress", annotator)["me"]["holding"]
    assert holding[0] == item  # the page's buffer, the shown item first
    assert len(holding) >= 6, holding
    gone = [holding[2], holding[4]]
    purged = site.api("POST", f"/projects/{pid}/items/purge", json={"item_ids": [item, *gone]})
    assert purged.status_code == 200, purged.text
    assert site.get(f"/projects/{pid}/progress", annotator)["me"]["holding"] == \
        [i for i in holding if i not in (item, *gone)]
    refresh_progress(page, pid, sent)
    assert _label_shown(page, "1") == item  # on screen: labeled, the annotator unaware
    shown = [shown_item(page)]
    for _ in range(3):
        _label_shown(page, "2")
        shown.append(shown_item(page))
    assert not set(gone) & set(shown), (gone, shown)
    assert shown[:3] == [holding[1], holding[3], holding[5]]  # the buffer's order, less those
    page.wait_for_function(f"JSON.parse(localStorage.getItem('activelabel.outbox.{pid}'))"
                           ".length === 0")
    history = site.get(f"/projects/{pid}/items/{item}")["history"]
    assert [r["labels"] for r in history if r["kind"] == "label"] == [["a"]]
    assert page.is_hidden("#connection")  # nothing went wrong, as far as the annotator sees


def test_a_buffer_left_idle_past_its_leases_is_not_shown_once_others_took_them(
        page: Any, site: Site) -> None:
    """The page sat idle past its leases and a colleague took the items waiting in its
    buffer: the next progress refresh drops them, and the annotator labels none of them."""
    pid, annotator = _text_project(site, "idle", lease_seconds=10)
    colleague = add_member(site, pid)
    page.clock.install()  # the page's timers run when the test says; the server's clock is real
    log_in(page, site, annotator)
    sent = watch_progress(page, pid)
    page.goto(f"{site.url}/projects/{pid}/label")
    page.wait_for_selector("#choices button")
    first = shown_item(page)
    buffered = site.get(f"/projects/{pid}/progress", annotator)["me"]["holding"][1:]
    assert len(buffered) >= 5, buffered
    time.sleep(11)  # the leases run out while the page sits idle
    taken = {t["item"]["id"] for t in site.get(f"/projects/{pid}/tasks/next", colleague,
                                                params={"n": len(buffered) + 1})}
    assert set(buffered) <= taken  # the colleague got what the page was keeping
    refresh_progress(page, pid, sent)
    assert _label_shown(page, "1") == first  # on screen: kept, its label stored
    shown = []
    for _ in range(3):
        page.clock.run_for(6_000)  # the page's check for tasks when it has none (5 s)
        shown.append(_label_shown(page, "1"))
    assert not taken & set(shown), (taken, shown)


def test_grid_cells_whose_lease_ended_leave_the_grid_unless_labeled(
        page: Any, site: Site) -> None:
    pid, annotator = _text_project(site, "grid")
    page.clock.install()  # the page's timers run when the test says
    log_in(page, site, annotator)
    sent = watch_progress(page, pid)
    page.goto(f"{site.url}/projects/{pid}/label")
    page.wait_for_selector("#choices button")
    page.keyboard.press("g")
    page.wait_for_selector("#grid .cell")
    cells = [int(c) for c in page.eval_on_selector_all(
        "#grid .cell", "els => els.map(e => e.dataset.item)")]
    assert len(cells) >= 4, cells
    page.keyboard.press("1")  # the focused cell (the first) is labeled, focus moves on
    page.wait_for_selector("#grid .cell.labeled")
    focused = int(page.get_attribute("#grid .cell.focused", "data-item"))
    labeled = int(page.get_attribute("#grid .cell.labeled", "data-item"))
    others = [c for c in cells if c not in (focused, labeled)]
    purged = site.api("POST", f"/projects/{pid}/items/purge",
                      json={"item_ids": [labeled, focused, others[0]]})
    assert purged.status_code == 200, purged.text
    refresh_progress(page, pid, sent)
    page.wait_for_function(f"!document.querySelector('#grid .cell[data-item=\"{others[0]}\"]')")
    left = {int(c) for c in page.eval_on_selector_all(
        "#grid .cell", "els => els.map(e => e.dataset.item)")}
    assert {labeled, focused} <= left  # the annotator's pick and the focused cell stay
    assert set(others[1:]) <= left
    assert others[0] not in left


def test_after_the_page_slept_past_its_leases_the_next_item_is_not_one_they_held(
        page: Any, site: Site) -> None:
    """The page's timers stopped (a laptop asleep, a tab in the background) past its leases,
    and a colleague took the items it kept: the next item shown is none of them, though no
    progress refresh ran (each task's lease end is checked before it is shown)."""
    pid, annotator = _text_project(site, "slept", lease_seconds=10)
    colleague = add_member(site, pid)
    page.clock.install()
    log_in(page, site, annotator)
    page.goto(f"{site.url}/projects/{pid}/label")
    page.wait_for_selector("#choices button")
    first = shown_item(page)
    taken = sleep_past_leases(page, site, pid, colleague)
    assert first in taken
    assert _label_shown(page, "1") == first  # on screen: kept, its label stored
    assert shown_item(page) not in taken
