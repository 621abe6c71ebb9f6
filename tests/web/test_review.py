"""The review page in Chromium: filter, accept, correct, resolve a flag with a note, and the
annotator seeing that note on the labeling page."""

from __future__ import annotations

from typing import Any

from tests.e2e._support import wait_until
from tests.web.conftest import PROJECT, Site, log_in


def _kinds(site: Site, item_id: int) -> list[str]:
    return [r["kind"] for r in site.get(f"/projects/{PROJECT}/items/{item_id}")["history"]]


def test_review_accept_correct_and_resolve_a_flag(page: Any, site: Site) -> None:
    annotator, reviewer = site.member("annotator"), site.member("reviewer")
    tasks = site.get(f"/projects/{PROJECT}/tasks/next", annotator, params={"n": 3})
    labeled = [int(t["item"]["id"]) for t in tasks[:2]]
    for item_id in labeled:
        answer = site.api("POST", f"/projects/{PROJECT}/annotations", annotator,
                          json={"item_id": item_id, "labels": ["3"]})
        assert answer.status_code == 201, answer.text
    flagged = int(tasks[2]["item"]["id"])
    assert site.api("POST", f"/projects/{PROJECT}/flags", annotator, json={
        "item_id": flagged, "reason": "a 3 or a 5?"}).status_code == 201

    log_in(page, site, reviewer)
    page.goto(f"{site.url}/projects/{PROJECT}/review")
    page.wait_for_selector("body[data-loaded=true]")
    page.get_by_label("Annotator", exact=True).select_option(annotator.username)
    page.get_by_role("button", name="Apply").click()
    page.wait_for_selector("#review-count:has-text('2 items')")
    first, second = (page.locator(f"article[data-item='{i}']") for i in labeled)
    first.get_by_role("button", name=f"accept {annotator.username}'s label").click()
    wait_until(lambda: _kinds(site, labeled[0])[-1] == "review_accept", timeout=20,
               what="accepted")
    page.wait_for_selector("#toast:has-text('Accepted')")
    second.get_by_label(f"correct the label of {annotator.username}").select_option("5")
    wait_until(lambda: _kinds(site, labeled[1])[-1] == "correction", timeout=20,
               what="corrected")
    current = site.get(f"/projects/{PROJECT}/items/{labeled[1]}")["current"]
    assert [r["labels"] for r in current] == [["5"]]

    page.get_by_label("Annotator", exact=True).select_option("")
    page.get_by_label("Show", exact=True).select_option("flagged")
    page.get_by_role("button", name="Apply").click()
    page.wait_for_selector(f"article[data-item='{flagged}'] .flag")
    card = page.locator(f"article[data-item='{flagged}']")
    card.get_by_label("Note for the annotator").fill("It is a 5: the top bar is flat.")
    card.get_by_role("button", name="Resolve flag").click()
    page.wait_for_selector(f"article[data-item='{flagged}']", state="detached")
    (flag,) = [f for f in site.get(f"/projects/{PROJECT}/flags",
                                   params={"unresolved_only": False})
               if f["item_id"] == flagged]
    assert flag["resolution_note"] == "It is a 5: the top bar is flat."

    page.context.clear_cookies()
    page.evaluate("localStorage.clear()")
    log_in(page, site, annotator)
    page.goto(f"{site.url}/projects/{PROJECT}/label")
    page.wait_for_selector("#my-flags li .note")
    assert "reviewer: It is a 5: the top bar is flat." in page.inner_text("#my-flags")


def test_annotators_cannot_review(page: Any, site: Site) -> None:
    annotator = site.member("annotator")
    log_in(page, site, annotator)
    page.goto(f"{site.url}/projects/{PROJECT}/review")
    page.wait_for_selector("main:has-text('Review is for reviewers and owners')")
