"""The labeling page's display under the project's control, in Chromium: when the model's
suggestion shows (always, after an answer, never; not below a confidence), how it is marked,
why an item was picked in a labeler's words, related examples of several labels, the grid
grouped by suggestion with a group accepted at once, what stays above the fold at 1280x800
and 390x844, and text, keys, colours, zoom and dark mode."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest

from tests.support.api import unique
from tests.support.processes import wait_until
from tests.support.web import (
    PROJECT,
    Person,
    Site,
    axe_violations,
    label_by_oracle,
    log_in,
    run_round,
)

LABEL_PAGE = f"/projects/{PROJECT}/label"
DEFAULTS = {"suggestion_display": "after_answer", "suggestion_min_confidence": None,
            "related_examples": "varied"}


@pytest.fixture(scope="module")
def modelled(site: Site) -> Site:
    """A model trained on true labels, so that tasks carry suggestions."""
    if not site.get(f"/projects/{PROJECT}/models"):
        label_by_oracle(site, site.member("annotator"), 60)
        run_round(site)
    return site


@pytest.fixture
def shown(modelled: Site) -> Iterator[Any]:
    """Set the demo project's display settings for one test; the defaults come back after."""
    site = modelled

    def set_(**settings: Any) -> None:
        changed = site.api("PATCH", f"/projects/{PROJECT}", json={"settings": settings})
        assert changed.status_code == 200, changed.text

    try:
        yield set_
    finally:
        set_(**DEFAULTS)


def _open(page: Any, site: Site, who: Person) -> None:
    log_in(page, site, who)
    page.goto(site.url + LABEL_PAGE)
    page.wait_for_selector("#choices button")


def _open_grid(page: Any, site: Site, who: Person, size: int = 20) -> None:
    """The label page in grid mode (G), showing ``size`` items."""
    _open(page, site, who)
    page.keyboard.press("g")
    page.wait_for_selector("#grid [role=gridcell]")
    page.select_option("#grid-size", str(size))
    page.wait_for_function(
        f"document.querySelectorAll('#grid [role=gridcell]').length === {size}")


def test_after_answer_the_suggestion_shows_once_a_label_is_chosen(page: Any, site: Site,
                                                                  shown: Any) -> None:
    shown(suggestion_display="after_answer", suggestion_min_confidence=0)
    annotator = site.member("annotator")
    _open(page, site, annotator)
    # what the browser holds names no label: the suggestion comes with the answer
    held = site.get(f"/projects/{PROJECT}/tasks/next", annotator, params={"n": 10})
    assert held
    assert all(t["suggestion"] is None and t["group"] for t in held)
    assert page.locator("#suggested-label").count() == 0
    assert page.locator("#choices .suggested").count() == 0
    assert "once you have chosen" in page.inner_text("#suggestion")
    assert "decide between" not in page.inner_text("#why")  # names no label before the answer
    page.keyboard.press("3")
    page.wait_for_selector("#suggested-label")
    marked = page.locator("#choices .suggested")
    assert marked.count() == 1
    assert "model" in marked.inner_text().lower()  # a word on the button, not a thin line
    assert page.eval_on_selector("#choices .suggested", "b => getComputedStyle(b).outlineStyle") \
        == "dashed"
    assert "model of round" in page.inner_text("#suggestion")  # one numbering for models


def test_always_never_and_the_confidence_threshold(page: Any, site: Site, shown: Any) -> None:
    annotator = site.member("annotator")
    shown(suggestion_display="always", suggestion_min_confidence=0)
    _open(page, site, annotator)
    page.wait_for_selector("#suggested-label")
    why = page.inner_text("#why")
    for jargon in ["rank", "score", "cluster", "margin"]:
        assert jargon not in why
    page.click("#why-details summary")
    assert "round" in page.inner_text("#why-more")  # the details on demand
    page.wait_for_selector("#related figure")
    shown_labels = page.eval_on_selector_all("#related figcaption strong",
                                             "els => els.map(e => e.textContent)")
    assert max(Counter(shown_labels).values()) <= 2, shown_labels

    shown(suggestion_display="always", suggestion_min_confidence=1)
    page.reload()
    page.wait_for_selector("#choices button")
    assert page.locator("#suggested-label").count() == 0
    assert "no confident guess" in page.inner_text("#suggestion")
    # the threshold is the server's: the tasks carry no suggestion the page would hide
    tasks = site.get(f"/projects/{PROJECT}/tasks/next", annotator, params={"n": 3})
    assert [t["suggestion"] for t in tasks] == [None, None, None]

    shown(suggestion_display="never")
    page.reload()
    page.wait_for_selector("#choices button")
    assert page.inner_text("#suggestion").strip() == ""
    tasks = site.get(f"/projects/{PROJECT}/tasks/next", annotator, params={"n": 3})
    assert [t["suggestion"] for t in tasks] == [None, None, None]


def test_grid_groups_by_suggestion_and_accepts_a_group(page: Any, site: Site,
                                                       shown: Any) -> None:
    shown(suggestion_display="always", suggestion_min_confidence=0)
    annotator = site.member("annotator")
    _open_grid(page, site, annotator)
    heads = page.locator("#grid .group-head h2").all_inner_texts()
    assert heads
    assert all(h.startswith("Model suggests") for h in heads)
    assert page.locator("#grid .cell-suggestion").count() == 20  # the suggestion in each cell
    first = page.locator("#grid .group-cells").first
    group = first.get_attribute("data-group")
    size = first.locator("[role=gridcell]").count()
    page.locator("#grid .accept-group").first.click()
    picks = first.locator(".pick").all_inner_texts()
    assert picks == [group] * size
    page.keyboard.press("Enter")
    wait_until(lambda: site.get(f"/projects/{PROJECT}/progress", annotator)["me"]["labels"]
               == size, timeout=20, what="the group's labels stored")
    assert axe_violations(page) == []


def test_grid_after_answer_groups_neutrally_and_labels_a_group(page: Any, site: Site,
                                                               shown: Any) -> None:
    shown(suggestion_display="after_answer", suggestion_min_confidence=0)
    annotator = site.member("annotator")
    _open_grid(page, site, annotator)
    # Similar items together, but nothing names the model's label before an answer.
    heads = page.locator("#grid .group-head h2").all_inner_texts()
    assert len(heads) >= 2
    assert heads == [f"Group {n}: similar items" for n in range(1, len(heads) + 1)]
    assert "model" not in page.inner_text("#grid").lower()
    assert page.locator("#grid .cell-suggestion, #grid .suggested").count() == 0
    groups = page.locator("#grid .group-cells")
    assert [groups.nth(n).get_attribute("data-group") for n in range(groups.count())] == [
        f"group {n}" for n in range(1, len(heads) + 1)]
    sizes = [groups.nth(n).locator("[role=gridcell]").count() for n in range(groups.count())]
    assert sizes == sorted(sizes, reverse=True)  # a group's place says nothing of its label
    assert "similar ones grouped" in (page.get_attribute("#grid", "aria-label") or "")
    # A on a focused item goes to its group's label picker.
    page.locator("#grid [role=gridcell]").first.click()
    page.keyboard.press("a")
    assert page.evaluate("document.activeElement.id") == "group-pick-1"
    # The picker labels the whole group; its items then show the model's label to compare.
    page.locator("#grid .accept-group").first.click()
    assert "Choose a label" in page.inner_text("#toast")
    assert page.locator("#grid .group-cells").first.locator(".pick").all_inner_texts() == \
        [""] * sizes[0]
    page.select_option("#group-pick-1", "3")
    page.locator("#grid .accept-group").first.click()
    first = page.locator("#grid .group-cells").first
    assert first.locator(".pick").all_inner_texts() == ["3"] * sizes[0]
    page.wait_for_selector("#grid .group-head .group-model")  # the answers brought it
    assert first.locator(".cell-suggestion").count() == sizes[0]
    assert "model suggests" in page.locator("#grid .group-head").first.inner_text()
    assert "model suggests" not in page.locator("#grid .group-head").nth(1).inner_text()
    assert axe_violations(page) == []
    page.keyboard.press("Enter")
    wait_until(lambda: site.get(f"/projects/{PROJECT}/progress", annotator)["me"]["labels"]
               == sizes[0], timeout=20, what="the group's labels stored")


@pytest.fixture
def no_audit_draws(modelled: Site) -> Iterator[Site]:
    """No audit draws among the tasks handed out during the test (the project's share comes
    back after). An audit draw reads to an annotator as what its queue rank says, mostly
    "ranked behind the batch by the model's score": one in the second place of a page's
    tasks (1 run in 20 at the default 5%) is no item of the round's batch."""
    site = modelled
    share = site.get(f"/projects/{PROJECT}")["settings"]["audit_share"]

    def set_(value: float) -> None:
        changed = site.api("PATCH", f"/projects/{PROJECT}",
                           json={"settings": {"audit_share": value}})
        assert changed.status_code == 200, changed.text

    set_(0.0)
    try:
        yield site
    finally:
        set_(share)


def test_the_batch_line_names_the_round_of_the_item_in_hand(page: Any,
                                                            no_audit_draws: Site) -> None:
    site = no_audit_draws
    annotator = site.member("annotator")
    # A round of its own first: one that earlier tests' labels queued, finishing after the
    # page leased its items, would rank them anew behind its batch (by the model's score).
    run_round(site)
    _open(page, site, annotator)
    now = site.get(f"/projects/{PROJECT}/progress", annotator)["round"]
    page.wait_for_function(f"document.getElementById('batch-progress').textContent"
                           f".startsWith(\"Round {now}'s batch\")")
    # The page's tasks, renewed in the order it holds them (its own leases come first).
    tasks = site.get(f"/projects/{PROJECT}/tasks/next", annotator, params={"n": 3})
    assert page.get_attribute("#item", "data-item") == str(tasks[0]["item"]["id"])
    # the next item in hand: picked by this round's strategy, in its batch
    assert (tasks[1]["why"]["ranked_by"], tasks[1]["why"]["round"]) == ("strategy", now)
    run_round(site)  # a newer round finishes while the annotator holds these items
    page.keyboard.press("3")
    page.keyboard.press("Enter")  # the next item, still of the earlier round
    page.wait_for_function(f"document.getElementById('item').dataset.item === "
                           f"'{tasks[1]['item']['id']}'")
    page.wait_for_function(f"document.getElementById('batch-progress').textContent"
                           f".startsWith(\"Round {now}'s item · round {now + 1}:\")",
                           timeout=20_000)


@pytest.mark.parametrize("viewport", [(1280, 800), (390, 844)])
def test_item_labels_and_suggestion_above_the_fold(page: Any, site: Site, shown: Any,
                                                   viewport: tuple[int, int]) -> None:
    width, height = viewport
    shown(suggestion_display="always", suggestion_min_confidence=0)
    page.set_viewport_size({"width": width, "height": height})
    _open(page, site, site.member("annotator"))
    page.wait_for_selector("#suggested-label")
    for what in ["#item img", "#suggestion", "#choices button:last-child", "#submit"]:
        box = page.locator(what).bounding_box()
        assert box is not None
        assert box["y"] + box["height"] <= height, f"{what} ends at {box} of {height} px"
    item_top = page.locator("#item").bounding_box()["y"]
    # A new model arrives with long news: the progress line does not grow.
    page.evaluate("""() => {
      document.getElementById('last-gain').textContent =
        'Model of round 12: accuracy 93.4% (+4.2 points) after 1,240 labels from 6 annotators';
      document.getElementById('next-model').textContent = 'Round 13 is training…';
      document.getElementById('outlook').textContent = 'Forecast: about 800 more labels';
    }""")
    assert page.locator("#item").bounding_box()["y"] == item_top
    card = page.locator("#progress").bounding_box()
    bar = page.locator("#progress .bar").bounding_box()
    assert bar["x"] + bar["width"] <= card["x"] + card["width"], (bar, card)  # not cut off
    if width >= 1000:  # a long forecast gives way: the model's state and the count stay whole
        page.evaluate("""() => { document.getElementById('outlook').textContent =
          'Forecast: about 1,200 more labeled items (700-3,100; 2.0 labels an item) to reach '
          + 'accuracy 0.9, about 2 h 10 min at the team\\'s pace'; }""")
        cut = page.evaluate("""() => ['next-model', 'my-count'].filter((id) => {
          const e = document.getElementById(id); return e.scrollWidth > e.clientWidth; })""")
        assert cut == []
    if width < 500:  # phone: every button of the grid is at least 44 px
        page.keyboard.press("g")
        page.wait_for_selector("#grid [role=gridcell]")
        # Measured once the grid is laid out, in the same turn as the check (a refill may
        # redraw it right after it shows, even between two calls from here).
        sizes = page.wait_for_function(
            "() => { const bs = [...document.querySelectorAll('#grid button')];"
            " return bs.length > 0 && bs.every(b => b.offsetWidth > 0)"
            " && bs.map(b => [b.offsetWidth, b.offsetHeight]); }").json_value()
        assert sizes
        assert min(min(s) for s in sizes) >= 44, sizes


def _round_done(site: Site, pid: int) -> dict[str, Any]:
    asked = site.api("POST", f"/projects/{pid}/rounds")
    assert asked.status_code == 202, asked.text
    round_id = asked.json()["round_id"]
    done = wait_until(lambda: (lambda r: r if r["status"] in ("done", "failed") else None)(
        site.get(f"/projects/{pid}/rounds/{round_id}?limit=0")), timeout=120, poll=0.3,
        what="the round done")
    assert done["status"] == "done", done
    return dict(done)


def test_before_any_model_the_page_says_there_is_no_suggestion(page: Any, site: Site) -> None:
    # no audit draws: the owner's first task would then say "Drawn at random" (1 run in 20)
    made = site.api("POST", "/projects", json={"name": unique("seed"), "labels": ["a", "b"],
                                               "settings": {"audit_share": 0}})
    assert made.status_code == 201, made.text
    pid = made.json()["id"]
    rows = [{"external_id": f"s{i}", "data": {"text": f"message number {i} about {i % 7}"}}
            for i in range(40)]
    assert site.api("POST", f"/projects/{pid}/items", json=rows).status_code in (200, 201)
    seed = _round_done(site, pid)
    assert seed["model_version"] is None  # a seed batch, no model trained
    log_in(page, site, site.admin)
    page.goto(f"{site.url}/projects/{pid}/label")
    page.wait_for_selector("#choices button")
    page.wait_for_function("document.getElementById('batch-progress').textContent"
                           ".startsWith('Round')")  # the progress is known
    assert page.inner_text("#suggestion") == "No model suggestion for this item."
    assert "varied first sample" in page.inner_text("#why")
    page.keyboard.press("g")
    page.wait_for_selector("#grid [role=gridcell]")
    assert page.locator("#grid .group-head h2").all_inner_texts() == ["Items"]


def test_an_early_auto_round_says_the_item_covers_new_ground(page: Any, site: Site) -> None:
    """A new project's strategy (auto) starts with TypiClust: the page says the item stands
    for ground no label covers yet, not that the model is unsure of it."""
    labels = ["a", "b", "c", "d", "e"]
    made = site.api("POST", "/projects", json={"name": unique("auto"), "labels": labels,
                                               "settings": {"audit_share": 0,
                                                            "batch_size": 5}})
    assert made.status_code == 201, made.text
    assert made.json()["settings"]["strategy"] == "auto"  # the default
    pid = made.json()["id"]
    rows = [{"external_id": f"t{i}", "data": {"text": f"note {i} on topic {labels[i % 5]} "
                                                      f"and {i % 3}"}} for i in range(60)]
    assert site.api("POST", f"/projects/{pid}/items", json=rows).status_code in (200, 201)
    _round_done(site, pid)  # the seed batch
    for task in site.get(f"/projects/{pid}/tasks/next", params={"n": 5}):
        text = task["item"]["data"]["text"]
        given = site.api("POST", f"/projects/{pid}/annotations",
                         json={"item_id": task["item"]["id"], "labels": [text.split()[4]]})
        assert given.status_code == 201, given.text
    second = _round_done(site, pid)  # 5 labels, under 3 a class for 5 classes: TypiClust
    assert second["strategy"] == "auto"
    assert site.get(f"/projects/{pid}/tasks/next", params={"n": 1})[0]["why"]["strategy"] \
        == "typiclust"
    log_in(page, site, site.admin)
    page.goto(f"{site.url}/projects/{pid}/label")
    page.wait_for_selector("#choices button")
    assert "covers new ground" in page.inner_text("#why")
    assert "unsure" not in page.inner_text("#why")


def test_long_related_examples_are_clamped(page: Any, site: Site) -> None:
    long_label = "restaurant_reviews_and_recommendations"  # wider than a related example
    made = site.api("POST", "/projects", json={"name": unique("long"),
                                               "labels": [long_label, "b"]})
    assert made.status_code == 201, made.text
    pid = made.json()["id"]
    rows = [{"external_id": f"l{i}", "data": {"text": f"message {i} " + "about the parking garage"
                                                        " and the weather today " * (8 + i % 3)}}
            for i in range(30)]
    assert site.api("POST", f"/projects/{pid}/items", json=rows).status_code in (200, 201)
    items = site.get(f"/projects/{pid}/items", params={"limit": 30})["items"]
    for n, item in enumerate(items[:10]):
        answer = site.api("POST", f"/projects/{pid}/annotations", json={
            "item_id": item["id"], "labels": [long_label if n % 2 else "b"], "duration_ms": 900})
        assert answer.status_code == 201, answer.text
    asked = site.api("POST", f"/projects/{pid}/rounds")
    assert asked.status_code == 202, asked.text
    wait_until(lambda: site.get(f"/projects/{pid}/rounds/{asked.json()['round_id']}?limit=0")
               ["status"] == "done", timeout=120, poll=0.3, what="the round done")
    log_in(page, site, site.admin)
    page.goto(f"{site.url}/projects/{pid}/label")
    page.wait_for_selector("#related figure")
    heights = page.eval_on_selector_all("#related figure .item-text",
                                        "els => els.map(e => e.getBoundingClientRect().height)")
    line = page.evaluate("parseFloat(getComputedStyle(document.querySelector("
                         "'#related .item-text')).lineHeight) || 20")
    assert heights
    assert max(heights) <= 4 * line + 2, (heights, line)  # four lines at most, not the essay
    # a long label wraps inside its example (it ran over the next one)
    overflow = page.eval_on_selector_all("#related figure", """els => els.map(f => {
        const s = f.querySelector('figcaption strong').getBoundingClientRect();
        return s.right - f.getBoundingClientRect().right; })""")
    assert max(overflow) <= 1, overflow


def test_text_keys_colours_filter_and_grid_clamp(page: Any, site: Site) -> None:
    labels = [f"intent_{i:02d}" for i in range(14)] + ["spam"]
    made = site.api("POST", "/projects", json={
        "name": unique("text"), "labels": labels,
        "settings": {"label_keys": {"spam": "x"}, "label_colors": {"spam": "#c62828"}}})
    assert made.status_code == 201, made.text
    pid = made.json()["id"]
    rows = [{"external_id": "ar", "data": {"text": "مرحبا بكم في المتجر، هل تريد شراء هذا؟"}},
            {"external_id": "long", "data": {"text": "a very long message " * 30}}]
    assert site.api("POST", f"/projects/{pid}/items", json=rows).status_code in (200, 201)
    log_in(page, site, site.admin)
    page.goto(f"{site.url}/projects/{pid}/label")
    page.wait_for_selector("#choices button")
    assert page.get_attribute("#item .item-text", "dir") == "auto"
    spam = page.locator("#choices button[data-label=spam]")
    assert "x" in spam.inner_text()
    assert "#c62828" in (spam.get_attribute("style") or "")
    page.keyboard.press("x")
    page.wait_for_selector("#choices button[data-label=spam][aria-pressed=true]")
    assert page.is_visible("#label-filter")  # more than ten labels: type to find one
    page.keyboard.press("i")  # typing a letter starts the search
    page.keyboard.type("ntent_13")
    assert page.locator("#choices button").count() == 1
    page.keyboard.press("Enter")
    page.wait_for_selector("#choices button[data-label=intent_13][aria-pressed=true]")
    page.keyboard.press("g")
    page.wait_for_selector("#grid [role=gridcell]")
    asked: list[str] = []
    page.on("request", lambda r: asked.append(r.url) if "/tasks/next" in r.url else None)
    page.wait_for_timeout(1000)
    assert len(asked) <= 1, f"a small queue asked for tasks {len(asked)} times in a second"
    long_cell = page.locator("#grid [role=gridcell]", has_text="a very long message")
    clamped = long_cell.bounding_box()["height"]
    long_cell.get_by_role("button", name="Show all").click()
    assert page.locator("#grid [role=gridcell]", has_text="a very long message") \
        .bounding_box()["height"] > clamped
    assert axe_violations(page) == []


def test_image_zoom_and_dark_mode(page: Any, site: Site) -> None:
    page.emulate_media(color_scheme="dark")
    _open(page, site, site.member("annotator"))
    background = page.evaluate("getComputedStyle(document.body).backgroundColor")
    assert background == "rgb(15, 20, 25)", background
    assert axe_violations(page) == []
    before = page.locator("#item img").bounding_box()["width"]
    page.keyboard.press("+")
    assert page.locator("#item img").bounding_box()["width"] > before * 1.4
    page.keyboard.press("-")
    assert abs(page.locator("#item img").bounding_box()["width"] - before) < 2


def test_the_last_model_line_names_the_tasks_score(page: Any, modelled: Site) -> None:
    """The progress line reads the last round's score in the task's measure: the real
    answer's accuracy, and a multi-label answer's label F1 and its gain in points (it read
    'accuracy' whatever the task)."""
    site, annotator = modelled, modelled.member("annotator")
    _open(page, site, annotator)
    real = site.get(f"/projects/{PROJECT}/progress", annotator)["last_round"]
    assert real["measure"] == "accuracy"
    page.wait_for_function("document.getElementById('last-gain').textContent !== ''")
    assert page.inner_text("#last-gain").startswith(
        f"Model of round {real['number']}: accuracy {100 * real['score']:.1f}%")
    body = site.get(f"/projects/{PROJECT}/progress", annotator)
    body["last_round"] = {**real, "accuracy": 0.612, "measure": "label_f1", "score": 0.437,
                          "gain": {"accuracy": -0.1, "measure": "label_f1", "score": 0.052,
                                   "per_100_labels": 0.26, "labels_added": 20}}
    page.route(f"**/api/v1/projects/{PROJECT}/progress", lambda route: route.fulfill(
        status=200, content_type="application/json", body=json.dumps(body)))
    page.reload()
    page.wait_for_selector("#choices button")
    page.wait_for_function("document.getElementById('last-gain').textContent.includes('F1')")
    assert page.inner_text("#last-gain") == (
        f"Model of round {real['number']}: label F1 43.7% (+5.2 points)")
