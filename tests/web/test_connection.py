"""The connection banner and the outbox against a real server that stops and comes back:
the page says it is offline and how many labels wait, keeps labeling from its prefetched
items, and sends what waits as soon as the server answers again (no back-off)."""

from __future__ import annotations

import time
from typing import Any

from tests.support.web import PROJECT, Site, log_in

OUTBOX_EMPTY = f"JSON.parse(localStorage.getItem('activelabel.outbox.{PROJECT}') || '[]').length === 0"


def test_offline_banner_and_labels_sent_when_the_server_returns(page: Any, site: Site) -> None:
    annotator = site.member("annotator")
    log_in(page, site, annotator)
    page.goto(f"{site.url}/projects/{PROJECT}/label")
    page.wait_for_selector("#choices button")
    assert page.is_hidden("#connection")
    site.process.stop()
    try:
        items = []
        for key in ["3", "5"]:  # prefetched items go on being labeled
            items.append(int(page.get_attribute("#item", "data-item")))
            page.keyboard.press(key)
            page.keyboard.press("Enter")
            page.wait_for_function(f"document.querySelector('#item').dataset.item !== '{items[-1]}'")
        page.wait_for_selector("#connection[data-kind=offline]:has-text('2 labels waiting')")
        assert "Offline" in page.inner_text("#connection")
        page.wait_for_timeout(8000)  # long enough for a doubling back-off to reach 8 s
    finally:
        site.process.start(same_port=True)
    back = time.monotonic()
    # The page probes the health endpoint twice a second while offline: the labels leave
    # within about a second of the server's return, not after the next back-off step.
    page.wait_for_function(OUTBOX_EMPTY, timeout=5000)
    print(f"waiting labels sent {time.monotonic() - back:.2f} s after the server returned")
    page.wait_for_selector("#connection", state="hidden")
    for item, label in zip(items, ["3", "5"], strict=True):
        history = site.get(f"/projects/{PROJECT}/items/{item}")["history"]
        assert [r["labels"] for r in history if r["username"] == annotator.username] == [[label]]


def test_a_page_that_could_not_reach_the_server_loads_when_it_answers(page: Any,
                                                                      site: Site) -> None:
    """The project could not be read (the connection dropped): the page shows the error
    state, then, the health endpoint answering, loads by itself without a click."""
    log_in(page, site, site.admin)
    calls = {"n": 0}

    def drop_first(route: Any) -> None:
        calls["n"] += 1
        if calls["n"] == 1:
            route.abort("connectionreset")
        else:
            route.continue_()

    page.route(f"**/api/v1/projects/{PROJECT}", drop_first)
    page.goto(f"{site.url}/projects/{PROJECT}/label")
    page.wait_for_selector("#choices button", timeout=10_000)
    assert calls["n"] == 2
    assert page.is_hidden("#page-state")
    page.wait_for_selector("#connection", state="hidden")
