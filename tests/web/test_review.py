"""The review page in Chromium: the ranked queue filtered by annotator and reason; accept,
correct with a reason, resolve a flag with a note, and the annotator seeing that note."""

from __future__ import annotations

from typing import Any

import pytest

from tests.support.processes import wait_until
from tests.support.web import PROJECT, Site, label_by_oracle, log_in, run_round


def _history(site: Site, item_id: int) -> list[dict[str, Any]]:
    return list(site.get(f"/projects/{PROJECT}/items/{item_id}")["history"])


def test_review_accept_correct_and_resolve_a_flag(page: Any, site: Site) -> None:
    first, second, reviewer = (site.member("annotator"), site.member("annotator"),
                               site.member("reviewer"))
    tasks = site.get(f"/projects/{PROJECT}/tasks/next", first, params={"n": 3})
    disputed = [int(t["item"]["id"]) for t in tasks[:2]]
    for item_id in disputed:  # the two annotators disagree on both items
        for who, digit in ((first, "3"), (second, "5")):
            answer = site.api("POST", f"/projects/{PROJECT}/annotations", who,
                              json={"item_id": item_id, "labels": [digit]})
            assert answer.status_code == 201, answer.text
    flagged = int(tasks[2]["item"]["id"])
    assert site.api("POST", f"/projects/{PROJECT}/flags", first, json={
        "item_id": flagged, "reason": "a 3 or a 5?"}).status_code == 201

    log_in(page, site, reviewer)
    page.goto(f"{site.url}/projects/{PROJECT}/review")
    page.wait_for_selector("body[data-loaded=true]")
    assert page.locator("#keys-correct").is_visible()  # a label project: digits correct
    page.get_by_label("Annotator", exact=True).select_option(second.username)
    page.get_by_label("Show", exact=True).select_option("disagreement")
    page.get_by_role("button", name="Apply").click()
    for item_id in disputed:
        page.wait_for_selector(f"article[data-item='{item_id}'] [data-reason='disagreement']")
    one, two = (page.locator(f"article[data-item='{i}']") for i in disputed)
    one.get_by_role("button", name=f"accept {first.username}'s label").click()
    wait_until(lambda: _history(site, disputed[0])[-1]["kind"] == "review_accept", timeout=60,
               what="accepted")
    page.wait_for_selector("body[data-loaded=true]")  # the cards are rendered anew
    two.get_by_label("Reason for a rejection or correction").fill("the loop is closed")
    two.get_by_label(f"correct the label of {second.username}").select_option("3")
    wait_until(lambda: _history(site, disputed[1])[-1]["kind"] == "correction", timeout=60,
               what="corrected")
    page.wait_for_selector("body[data-loaded=true]")
    current = site.get(f"/projects/{PROJECT}/items/{disputed[1]}")["current"]
    assert sorted(r["labels"][0] for r in current) == ["3", "3"]

    page.get_by_label("Annotator", exact=True).select_option("")
    page.get_by_label("Show", exact=True).select_option("flagged")
    page.get_by_role("button", name="Apply").click()
    page.wait_for_selector(f"article[data-item='{flagged}'] .flag")
    card = page.locator(f"article[data-item='{flagged}']")
    assert f"Flagged by {first.username}" in card.inner_text()
    card.get_by_label(f"label item {tasks[2]['item']['external_id']} yourself").select_option("5")
    wait_until(lambda: [r["labels"] for r in _history(site, flagged)] == [["5"]], timeout=60,
               what="the reviewer's label")
    page.wait_for_selector("body[data-loaded=true]")  # else the note goes into the old card
    card = page.locator(f"article[data-item='{flagged}']")
    page.wait_for_selector(f"article[data-item='{flagged}'] .flag")
    card.get_by_label("Note for the annotator").fill("It is a 5: the top bar is flat.")
    card.get_by_role("button", name="Resolve flag").click()
    page.wait_for_selector(f"article[data-item='{flagged}']", state="detached")
    (flag,) = [f for f in site.get(f"/projects/{PROJECT}/flags",
                                   params={"unresolved_only": False})
               if f["item_id"] == flagged]
    assert flag["resolution_note"] == "It is a 5: the top bar is flat."

    page.evaluate("localStorage.clear()")
    log_in(page, site, first)
    page.goto(f"{site.url}/projects/{PROJECT}/label")
    page.wait_for_selector("#my-flags li .note")
    assert "reviewer: It is a 5: the top bar is flat." in page.inner_text("#my-flags")


def test_the_review_names_the_model_by_its_round(page: Any, site: Site) -> None:
    """As the dashboard and the labeling page do: "the model of round N" says what."""
    if not site.get(f"/projects/{PROJECT}/models"):
        label_by_oracle(site, site.member("annotator"), 60)
        run_round(site)
    (active,) = [m for m in site.get(f"/projects/{PROJECT}/models") if m["is_active"]]
    number = site.get(f"/projects/{PROJECT}/rounds/{active['round_id']}?limit=0")["number"]
    first, second = site.member("annotator"), site.member("annotator")
    (task,) = site.get(f"/projects/{PROJECT}/tasks/next", first, params={"n": 1})
    item_id = int(task["item"]["id"])
    for who, digit in ((first, "3"), (second, "5")):
        answer = site.api("POST", f"/projects/{PROJECT}/annotations", who,
                          json={"item_id": item_id, "labels": [digit]})
        assert answer.status_code == 201, answer.text
    entries = site.get(f"/projects/{PROJECT}/review", params={
        "reason": "disagreement", "annotator": second.username})
    (entry,) = [e for e in entries if e["item_id"] == item_id]
    assert (entry["suggestion"]["model_version"], entry["suggestion"]["model_round"]) == (
        active["version"], number)
    log_in(page, site, site.member("reviewer"))
    page.goto(f"{site.url}/projects/{PROJECT}/review")
    page.wait_for_selector("body[data-loaded=true]")
    page.get_by_label("Annotator", exact=True).select_option(second.username)
    page.get_by_label("Show", exact=True).select_option("disagreement")
    page.get_by_role("button", name="Apply").click()
    card = page.locator(f"article[data-item='{item_id}']")
    page.wait_for_selector(f"article[data-item='{item_id}'] .consensus")
    text = card.inner_text()
    assert f"the model of round {number} says {entry['suggestion']['label']}" in text, text
    assert "current model" not in text


def test_annotators_cannot_review(page: Any, site: Site) -> None:
    annotator = site.member("annotator")
    log_in(page, site, annotator)
    page.goto(f"{site.url}/projects/{PROJECT}/review")
    page.wait_for_selector("#page-state[data-kind=forbidden]:has-text('Review is for reviewers and owners')")


@pytest.mark.parametrize("width", [1280, 390])
def test_the_show_filter_is_not_cut_off(page: Any, site: Site, width: int) -> None:
    page.set_viewport_size({"width": width, "height": 800})
    log_in(page, site, site.admin)
    page.goto(f"{site.url}/projects/{PROJECT}/review")
    page.wait_for_selector("body[data-state=ready]")
    room, text = page.eval_on_selector("#f-reason", """s => {
      const c = document.createElement('canvas').getContext('2d');
      c.font = getComputedStyle(s).font;
      const longest = Math.max(...[...s.options].map(o => c.measureText(o.text).width));
      return [s.clientWidth, longest];
    }""")
    assert room >= text + 24, f"the Show select is {room} px wide for {text:.0f} px of text"


def test_the_page_says_it_reads_the_queue_while_it_is_read(page: Any, site: Site) -> None:
    """While the queue is read, the page says so (it showed the filters over an empty page)."""
    held: list[Any] = []
    page.route("**/api/v1/projects/*/review?*", lambda route: held.append(route))
    log_in(page, site, site.admin)
    page.goto(f"{site.url}/projects/{PROJECT}/review")
    for _ in range(300):  # Playwright runs the route's callback while the page is waited on
        if held:
            break
        page.wait_for_timeout(100)
    assert held, "the page never asked for the queue"
    assert "Reading the review queue" in page.inner_text("#review-count")
    held[0].continue_()
    page.unroute("**/api/v1/projects/*/review?*")
    page.wait_for_selector("body[data-loaded=true]")
    assert "to review" in page.inner_text("#review-count")


def test_the_label_check_runs_in_the_worker_and_its_findings_follow(page: Any, site: Site
                                                                    ) -> None:
    """New labels, a few of them wrong: the queue is read at once (the request trains no
    model), the page says the check is on its way, and once the server's worker has checked
    the labels their findings are a click away (the page never reads the queue again by
    itself) and show as likely label errors."""
    from sklearn.datasets import load_digits

    truth = load_digits().target
    annotator = site.member("annotator")
    label_by_oracle(site, annotator, 12)  # labels the last check did not read
    for task in site.get(f"/projects/{PROJECT}/tasks/next", annotator, params={"n": 6}):
        wrong = (int(truth[int(task["item"]["external_id"].split("-")[1])]) + 1) % 10
        assert site.api("POST", f"/projects/{PROJECT}/annotations", annotator, json={
            "item_id": task["item"]["id"], "labels": [str(wrong)]}).status_code == 201
    assert site.get(f"/projects/{PROJECT}/label-check")["state"] != "up_to_date"
    log_in(page, site, site.admin)
    page.goto(f"{site.url}/projects/{PROJECT}/review")
    page.wait_for_selector("body[data-loaded=true]")
    assert "label check" in page.inner_text("#label-check-text").lower()
    wait_until(lambda: site.get(f"/projects/{PROJECT}/label-check")["state"] == "up_to_date",
               timeout=180, what="the worker's label check")
    after = site.get(f"/projects/{PROJECT}/label-check")
    assert after["job"]["status"] == "done"
    assert after["labels_checked"] == after["labels"]
    assert after["flagged"] > 0
    # the page finds the check done (its poll) and offers its findings, or (a check that
    # had read these labels finished before the page read the queue) shows them already
    page.wait_for_function(
        "() => !document.getElementById('label-check-show').hidden || document"
        ".getElementById('label-check-text').textContent.startsWith("
        "'Label check: every label checked')", timeout=30_000)
    if page.locator("#label-check-show").is_visible():
        page.get_by_role("button", name="Show its findings").click()
        page.wait_for_selector("body[data-loaded=true]")
    note = page.locator("#label-check-text")
    assert note.inner_text().startswith("Label check: every label checked")
    assert f"{after['flagged']} label" in note.inner_text()
    assert page.locator("#label-check-show").is_hidden()
    shown = page.locator("[data-reason='label_issue']").count()
    listed = site.get(f"/projects/{PROJECT}/review", params={"limit": 100})
    assert shown == sum(e["reason"] == "label_issue" for e in listed) > 0
    # the label the check finds likelier is the first correction offered, among ten digits
    # (of any annotator's label: the site's earlier tests labeled too)
    flagged = next(e for e in listed if e["reason"] == "label_issue" and e["proposed"])
    likelier = str(flagged["proposed"][0])
    row = next(a for a in flagged["annotations"] if [str(x) for x in a["labels"]] != [likelier])
    options = page.locator(f"article[data-item='{flagged['item_id']}']").get_by_label(
        f"correct the label of {row['annotator']}").locator("option").all_inner_texts()
    assert options[1] == f"{likelier} (the label check finds it likelier)", options
    assert len(options) == 1 + 9  # the prompt, then every digit but the one given


def test_a_multilabel_label_is_corrected_a_label_at_a_time(page: Any, site: Site) -> None:
    """A multi-label answer is corrected to the given labels with one added or taken out, or
    to none (the select offered single labels only: no way to a set of two, nor to none);
    a number key adds or takes out its label."""
    made = site.api("POST", "/projects", json={
        "name": "tweets", "task": "multilabel", "labels": ["person", "place", "brand"],
        "settings": {"overlap": 2, "free_labeling": True, "audit_share": 0.0}})
    assert made.status_code == 201, made.text
    pid = made.json()["id"]
    added = site.api("POST", f"/projects/{pid}/items", json=[
        {"external_id": f"t{i}", "data": {"text": f"tweet {i}"}} for i in range(3)])
    assert added.json()["inserted"] == 3, added.text
    other = site.member("annotator")
    assert site.api("POST", f"/projects/{pid}/members", json={
        "username": other.username, "role": "annotator"}).status_code == 201
    items = [i["id"] for i in site.get(f"/projects/{pid}/items")["items"]]
    for who, labels in ((site.admin, ["person"]), (other, ["person", "place"])):
        for item_id in items[:2]:
            answer = site.api("POST", f"/projects/{pid}/annotations", who,
                              json={"item_id": item_id, "labels": labels})
            assert answer.status_code == 201, answer.text
    log_in(page, site, site.admin)
    page.goto(f"{site.url}/projects/{pid}/review")
    page.wait_for_selector("body[data-loaded=true]")
    assert page.inner_text("#keys-correct") == "number keys add or take out a label · "
    card = page.locator(f"article[data-item='{items[0]}']")
    page.wait_for_selector(f"article[data-item='{items[0]}']")
    pick = card.get_by_label(f"correct the label of {other.username}")
    options = pick.locator("option").all_inner_texts()
    assert options[1:] == ["without person", "without place", "with brand", "no label"]
    pick.select_option("with brand")
    wait_until(lambda: site.get(f"/projects/{pid}/items/{items[0]}")["history"][-1]["kind"]
               == "correction", timeout=60, what="corrected")
    current = site.get(f"/projects/{pid}/items/{items[0]}")["current"]
    assert sorted(map(sorted, (r["labels"] for r in current))) == [
        ["brand", "person", "place"], ["person"]]

    page.wait_for_selector(f"article[data-item='{items[0]}']", state="detached")
    page.wait_for_selector(f"article[data-item='{items[1]}']")
    page.locator(f"article[data-item='{items[1]}']").focus()
    first = site.get(f"/projects/{pid}/review")[0]
    assert first["item_id"] == items[1]
    given = sorted(first["annotations"][0]["labels"])
    page.keyboard.press("1")  # person: taken out of the first annotation's labels
    wait_until(lambda: site.get(f"/projects/{pid}/items/{items[1]}")["history"][-1]["kind"]
               == "correction", timeout=60, what="corrected by key")
    history = site.get(f"/projects/{pid}/items/{items[1]}")["history"]
    assert sorted(history[-1]["labels"]) == [x for x in given if x != "person"]


def test_a_tie_is_worded_once(page: Any, site: Site) -> None:
    """Two annotators split on an item: its card carries both badges and says how they split
    once (it also said "2 annotators split with no majority")."""
    first, second = site.member("annotator"), site.member("annotator")
    [task] = site.get(f"/projects/{PROJECT}/tasks/next", first, params={"n": 1})
    item_id = int(task["item"]["id"])
    for who, digit in ((first, "2"), (second, "6")):
        assert site.api("POST", f"/projects/{PROJECT}/annotations", who, json={
            "item_id": item_id, "labels": [digit]}).status_code == 201
    log_in(page, site, site.admin)
    page.goto(f"{site.url}/projects/{PROJECT}/review")  # every reason
    page.wait_for_selector("body[data-loaded=true]")
    # this item's entries (among many, the disagreement may rank below the first 100)
    page.get_by_label("Annotator", exact=True).select_option(second.username)
    page.get_by_role("button", name="Apply").click()
    card = page.locator(f"article[data-item='{item_id}']")
    page.wait_for_selector(f"article[data-item='{item_id}'] .badge[data-reason='disagreement']")
    badges = card.locator(".badge[data-reason]").evaluate_all("els => els.map(e => e.dataset.reason)")
    assert {"tie", "disagreement"} <= set(badges)
    said = card.locator("ul.reasons li").all_inner_texts()
    assert "no majority: 1 '2', 1 '6'" in said
    assert not any("split with no majority" in line for line in said)
