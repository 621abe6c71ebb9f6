"""The labeling page of a span project in Chromium: entities marked by keyboard only (move,
extend with Shift, a number key sets the type, undo), the model's spans accepted one by one
and all at once, and what is stored is what the page showed."""

from __future__ import annotations

import time
from typing import Any

from tests.support.api import unique
from tests.support.processes import ROUND_TIMEOUT, wait_until
from tests.support.web import (
    PASSWORD,
    Person,
    Site,
    add_member,
    axe_violations,
    log_in,
    login,
    refresh_progress,
    sleep_past_leases,
    watch_progress,
)

TYPES = ["person", "location"]
PEOPLE = ["Anna", "Boris", "Chen", "Dara", "Emil", "Farah"]
PLACES = ["Paris", "Lagos", "Quito", "Oslo", "Hanoi", "Perth"]


def sentence(i: int) -> tuple[str, list[dict[str, Any]]]:
    """"i met <person> in <place> today ." with its two spans."""
    person, place = PEOPLE[i % 6], PLACES[(i // 6) % 6]
    text = f"i met {person} in {place} today ."
    at = 10 + len(person)
    return text, [{"start": 6, "end": 6 + len(person), "label": "person"},
                  {"start": at, "end": at + len(place), "label": "location"}]


def _span_project(site: Site, *, train: bool = True
                  ) -> tuple[int, Person, dict[str, list[dict[str, Any]]]]:
    made = site.api("POST", "/projects", json={
        "name": unique("spans"), "task": "spans", "labels": TYPES,
        "settings": {"batch_size": 10, "retrain_every_labels": 10_000, "free_labeling": True,
                     "audit_share": 0.0, "span_strategy": "token_entropy_sum"}})
    assert made.status_code == 201, made.text
    pid = int(made.json()["id"])
    truth = {}
    rows = []
    for i in range(36):
        text, spans = sentence(i)
        rows.append({"external_id": f"s{i}", "data": {"text": text}})
        truth[f"s{i}"] = spans
    added = site.api("POST", f"/projects/{pid}/items", json=rows)
    assert added.json()["inserted"] == 36, added.text
    # the owner labels twelve sentences, then a round trains the first model
    items = site.get(f"/projects/{pid}/items", params={"limit": 100})["items"]
    for item in items[:12] if train else []:
        answer = site.api("POST", f"/projects/{pid}/annotations", json={
            "item_id": item["id"], "labels": truth[item["external_id"]]})
        assert answer.status_code == 201, answer.text
    asked = site.api("POST", f"/projects/{pid}/rounds")
    assert asked.status_code == 202, asked.text
    round_id = asked.json()["round_id"]

    def done() -> bool:
        found = site.get(f"/projects/{pid}/rounds/{round_id}?limit=0")
        assert found["status"] != "failed", found
        return bool(found["status"] == "done")

    if train:
        wait_until(done, timeout=ROUND_TIMEOUT, poll=0.3, what="span round done")
    name = unique("tagger")
    assert site.api("POST", "/users", json={"username": name, "password": PASSWORD}
                    ).status_code == 201
    assert site.api("POST", f"/projects/{pid}/members",
                    json={"username": name, "role": "annotator"}).status_code == 201
    return pid, Person(name, PASSWORD, login(site.url, name, PASSWORD), "annotator"), truth


def _history(site: Site, pid: int, item_id: int) -> list[Any]:
    return [r["labels"] for r in site.get(f"/projects/{pid}/items/{item_id}")["history"]]


def _shown(page: Any) -> int:
    page.wait_for_selector("#span-text .tok")
    return int(page.get_attribute("#item", "data-item"))


def test_spans_by_keyboard_and_suggestions_accepted(page: Any, site: Site) -> None:
    pid, tagger, truth = _span_project(site)
    log_in(page, site, tagger)
    page.goto(f"{site.url}/projects/{pid}/label")

    # 1. the model's spans are shown as suggestions; A accepts them all, Enter submits
    first = _shown(page)
    page.wait_for_selector("#suggested-spans li")
    suggested = page.locator("#suggested-spans li").count()
    assert suggested >= 1
    page.keyboard.press("a")
    page.wait_for_selector("#suggested-spans li", state="detached")
    assert page.locator("#my-spans li").count() == suggested
    page.keyboard.press("Enter")
    second = wait_until(lambda: _shown(page) if _shown(page) != first else None, timeout=30,
                        what="next sentence")
    stored = wait_until(lambda: _history(site, pid, first) or None, timeout=30, what="stored")
    assert len(stored[-1]) == suggested

    # 2. by keyboard alone: → → to the person, 1; → → to the place, 2; undo and redo it;
    # (the suggestions are left as they are: only what the annotator marked is stored)
    ext = site.get(f"/projects/{pid}/items/{second}")["external_id"]
    page.keyboard.press("ArrowRight")
    page.keyboard.press("ArrowRight")
    page.keyboard.press("1")
    page.wait_for_selector("#my-spans li[data-label=person]")
    page.keyboard.press("ArrowRight")
    page.keyboard.press("ArrowRight")
    page.keyboard.press("2")
    page.wait_for_selector("#my-spans li[data-label=location]")
    page.keyboard.press("z")
    page.wait_for_selector("#my-spans li[data-label=location]", state="detached")
    page.keyboard.press("2")
    page.wait_for_selector("#my-spans li[data-label=location]")
    page.keyboard.press("Enter")
    third = wait_until(lambda: _shown(page) if _shown(page) != second else None, timeout=30,
                       what="third sentence")
    stored = wait_until(lambda: _history(site, pid, second) or None, timeout=30, what="stored")
    assert stored[-1] == truth[ext]

    # 3. Shift extends a selection over two tokens; one suggestion accepted with its button
    page.keyboard.press("ArrowRight")
    page.keyboard.press("ArrowRight")
    page.keyboard.press("Shift+ArrowRight")
    page.keyboard.press("1")  # "<person> in" as one (wrong) person span
    li = page.locator("#my-spans li[data-label=person]")
    li.wait_for()
    text = site.get(f"/projects/{pid}/items/{third}")["data"]["text"]
    start, end = int(li.get_attribute("data-start")), int(li.get_attribute("data-end"))
    assert text[start:end].endswith(" in")
    page.keyboard.press("x")  # removed again
    page.wait_for_selector("#my-spans li", state="detached")
    if page.locator("#suggested-spans li .accept-one").count():
        page.locator("#suggested-spans li .accept-one").first.click()
        page.wait_for_selector("#my-spans li")
    page.keyboard.press("Enter")
    wait_until(lambda: _shown(page) != third or None, timeout=30, what="fourth sentence")
    stored = wait_until(lambda: _history(site, pid, third) or None, timeout=30, what="stored")
    ext3 = site.get(f"/projects/{pid}/items/{third}")["external_id"]
    assert all(span in truth[ext3] for span in stored[-1])

    # 4. the review page shows where annotators' spans differ: the owner gives the first
    # sentence one span only, the annotator's other span is marked as not given by everyone
    items = {i["id"]: i for i in site.get(f"/projects/{pid}/items", params={"limit": 100})
             ["items"]}
    owner_spans = [truth[items[first]["external_id"]][0]]
    assert site.api("POST", f"/projects/{pid}/annotations", json={
        "item_id": first, "labels": owner_spans}).status_code == 201
    log_in(page, site, site.admin)
    page.goto(f"{site.url}/projects/{pid}/review")
    box = page.locator(f"article[data-item='{first}'] .span-diff")
    box.wait_for()
    assert box.locator(".missed").count() >= 1
    card = page.inner_text(f"article[data-item='{first}']")
    assert "annotators' spans differ" in card
    assert "[(" not in card  # a tie beside it is said once, by the spans in words


def test_a_reviewer_corrects_spans_to_the_models_or_to_no_entity(page: Any, site: Site
                                                                  ) -> None:
    """The review page speaks of spans by their words, shows the model's spans, and corrects
    a span label to them or to "no entity" (its correction select offered the entity types,
    which a span project refuses)."""
    pid, tagger, truth = _span_project(site)
    items = site.get(f"/projects/{pid}/items", params={"limit": 100})["items"]
    # unlabeled sentences: on the first the tagger sees no entity, on the second the person
    # only; the owner gives both spans on each
    first, second = items[20], items[21]
    for item, given in ((first, []), (second, truth[second["external_id"]][:1])):
        assert site.api("POST", f"/projects/{pid}/annotations", tagger, json={
            "item_id": item["id"], "labels": given}).status_code == 201
        assert site.api("POST", f"/projects/{pid}/annotations", json={
            "item_id": item["id"], "labels": truth[item["external_id"]]}).status_code == 201
    [entry] = [e for e in site.get(f"/projects/{pid}/review", params={"limit": 500})
               if e["item_id"] == first["id"] and e["reason"] == "disagreement"]
    model = [{k: s[k] for k in ("start", "end", "label")} for s in entry["suggestion"]["label"]]
    assert model, entry  # the model of twelve such sentences tags this one
    tagger_id = next(r["annotator_id"] for r in site.get(
        f"/projects/{pid}/items/{first['id']}")["history"] if r["username"] == tagger.username)

    def tagger_labels(item_id: int) -> Any:
        history = site.get(f"/projects/{pid}/items/{item_id}")["history"]
        return next(r for r in history if r["annotator_id"] == tagger_id and r["is_current"])

    log_in(page, site, site.admin)
    page.goto(f"{site.url}/projects/{pid}/review")
    page.wait_for_selector("body[data-loaded=true]")
    card = page.locator(f"article[data-item='{first['id']}']")
    text = first["data"]["text"]
    words = text[model[0]["start"]:model[0]["end"]]
    assert f"{words} ({model[0]['label']})" in card.inner_text()
    row = card.locator(f"tr[data-annotation]:has(th:text-is('{tagger.username}'))")
    assert row.locator("td.given").inner_text() == "no entity"
    assert axe_violations(page) == [], "span review"
    assert not page.locator("#keys-correct").is_visible()  # number keys correct no span
    # "no entity" corrected to the model's spans (no entity is no correction of it)
    options = row.locator("select option").all_inner_texts()
    assert options[1].startswith("the model's spans: ")
    assert "no entity" not in options
    row.locator("select").select_option(index=1)
    page.wait_for_function("document.body.dataset.loaded === 'true'")
    corrected = wait_until(lambda: (lambda r: r if r["kind"] == "correction" else None)(
        tagger_labels(first["id"])), timeout=30, what="the correction")
    assert corrected["labels"] == model
    # the person alone corrected to no entity
    row = page.locator(f"article[data-item='{second['id']}'] "
                       f"tr[data-annotation]:has(th:text-is('{tagger.username}'))")
    row.locator("select").select_option(label="no entity")
    corrected = wait_until(lambda: (lambda r: r if r["kind"] == "correction" else None)(
        tagger_labels(second["id"])), timeout=30, what="the second correction")
    assert corrected["labels"] == []


def test_span_settings_show_on_span_projects_only(page: Any, site: Site) -> None:
    """The settings page offers the span settings to a span project, and not to a
    classification project, nor a classifier's settings to a span project (its rounds train
    a CRF): each form holds only settings its project reads."""
    made = {task: site.api("POST", "/projects", json={
        "name": unique(task), "task": task, "labels": ["person", "location"]}).json()["id"]
        for task in ("spans", "classification", "multilabel")}
    log_in(page, site, site.admin)
    for task, pid in made.items():
        page.goto(f"{site.url}/projects/{pid}/settings")
        page.wait_for_selector("body[data-loaded=true]")
        for name in ("span_strategy", "span_overlap"):
            assert page.locator(f"[data-setting={name}]").is_visible() == (task == "spans")
        for name in ("strategy", "model", "model_url", "class_weights"):
            assert page.locator(f"[data-setting={name}]").is_visible() == (task != "spans")
        for name in ("pseudo_labels", "consensus"):  # single-label projects
            assert page.locator(f"[data-setting={name}]").is_visible() == (
                task == "classification"), (task, name)
        for name in ("featurizer", "batch_size", "audit_share"):  # every task
            assert page.locator(f"[data-setting={name}]").is_visible(), (task, name)


def _outbox_empty(pid: int) -> str:
    return f"JSON.parse(localStorage.getItem('activelabel.outbox.{pid}') || '[]').length === 0"


def test_span_labels_wait_offline_and_arrive_once_when_the_server_returns(
        page: Any, site: Site) -> None:
    """Span answers go through the labeling page's outbox: with the server stopped, the
    annotator labels prefetched sentences, the banner counts them, an answer taken back
    before it was sent is never stored, and on the server's return each arrives once. The
    review page's label filter then finds items by their spans' types."""
    pid, tagger, truth = _span_project(site, train=False)
    log_in(page, site, tagger)
    page.goto(f"{site.url}/projects/{pid}/label")
    first = _shown(page)
    page.wait_for_function("document.querySelectorAll('#span-text .tok').length > 0")
    page.wait_for_timeout(500)  # the rest of the prefetched batch
    site.process.stop()
    labeled: dict[int, list[dict[str, Any]]] = {}
    try:
        shown = first
        for _ in range(2):  # person (1) and place (2), by keyboard
            for key in ["ArrowRight", "ArrowRight", "1", "ArrowRight", "ArrowRight", "2"]:
                page.keyboard.press(key)
            page.wait_for_selector("#my-spans li[data-label=location]")
            labeled[shown] = [{k: int(li.get_attribute(f"data-{k}")) if k != "label"
                               else li.get_attribute("data-label") for k in ("start", "end", "label")}
                              for li in page.locator("#my-spans li").all()]
            page.keyboard.press("Enter")
            before = shown
            shown = wait_until(lambda b=before: _shown(page) if _shown(page) != b else None,
                               timeout=10, what="next prefetched sentence")
        # a third: the person only, submitted, then taken back while it waits unsent, and
        # submitted again as "no entity"
        third = shown
        for key in ["ArrowRight", "ArrowRight", "1"]:
            page.keyboard.press(key)
        page.wait_for_selector("#my-spans li[data-label=person]")
        page.keyboard.press("Enter")
        page.wait_for_selector("#connection[data-kind=offline]:has-text('3 labels waiting')")
        page.keyboard.press("z")
        page.wait_for_function(f"document.querySelector('#item').dataset.item === '{third}'")
        page.wait_for_selector("#connection:has-text('2 labels waiting')")
        page.wait_for_selector("#my-spans li", state="detached")
        page.keyboard.press("Enter")
        labeled[third] = []
        page.wait_for_selector("#connection[data-kind=offline]:has-text('3 labels waiting')")
        assert "Offline" in page.inner_text("#connection")
        page.wait_for_timeout(3000)
    finally:
        site.process.start(same_port=True)
    back = time.monotonic()
    page.wait_for_function(_outbox_empty(pid), timeout=5000)
    print(f"waiting span labels sent {time.monotonic() - back:.2f} s after the server returned")
    page.wait_for_selector("#connection", state="hidden")
    items = {i["id"]: i["external_id"] for i in
             site.get(f"/projects/{pid}/items", params={"limit": 100})["items"]}
    for item_id, spans in labeled.items():
        history = site.get(f"/projects/{pid}/items/{item_id}")["history"]
        assert [r["labels"] for r in history if r["username"] == tagger.username] == [spans]
        if spans:
            assert spans == truth[items[item_id]]

    # the review page's label filter: the owner disagrees on the first sentence (its person
    # only) and on the third (a person where the annotator saw none)
    ext3 = items[third]
    for item_id, spans in ((first, truth[items[first]][:1]), (third, truth[ext3][:1])):
        assert site.api("POST", f"/projects/{pid}/annotations", json={
            "item_id": item_id, "labels": spans}).status_code == 201
    log_in(page, site, site.admin)
    page.goto(f"{site.url}/projects/{pid}/review")
    page.wait_for_selector("body[data-loaded=true]")
    for label, expected in (("location", {first}), ("person", {first, third})):
        page.select_option("#f-label", label)
        page.click("#filters button[type=submit]")
        page.wait_for_function(
            f"document.body.dataset.loaded === 'true' && document.querySelectorAll("
            f"'article[data-item]').length === {len(expected)}")
        shown_items = {int(a.get_attribute("data-item"))
                       for a in page.locator("article[data-item]").all()}
        assert shown_items == expected, label


def test_sentences_purged_while_waiting_in_the_page_are_not_shown(page: Any, site: Site
                                                                  ) -> None:
    pid, tagger, _ = _span_project(site, train=False)
    page.clock.install()  # the page's timers run when the test says
    log_in(page, site, tagger)
    sent = watch_progress(page, pid)
    page.goto(f"{site.url}/projects/{pid}/label")
    first = _shown(page)
    holding = site.get(f"/projects/{pid}/progress", tagger)["me"]["holding"]
    assert holding[0] == first  # the page's five: one shown, four waiting
    assert len(holding) == 5
    gone = [holding[1], holding[4]]
    purged = site.api("POST", f"/projects/{pid}/items/purge", json={"item_ids": gone})
    assert purged.status_code == 200, purged.text
    refresh_progress(page, pid, sent)  # the page's refresh (every 15 s), read by the page
    shown = [first]
    for _ in range(3):  # Enter: submitted, no entity
        page.keyboard.press("Enter")
        shown.append(wait_until(lambda: _shown(page) if _shown(page) != shown[-1] else None,
                                timeout=30, what="next sentence"))
    assert shown[:3] == [first, holding[2], holding[3]]
    assert not set(gone) & set(shown), (gone, shown)


def test_after_the_page_slept_past_its_leases_no_sentence_others_took_is_shown(
        page: Any, site: Site) -> None:
    pid, tagger, _ = _span_project(site, train=False)
    changed = site.api("PATCH", f"/projects/{pid}", json={"settings": {"lease_seconds": 10}})
    assert changed.status_code == 200, changed.text
    colleague = add_member(site, pid)
    page.clock.install()
    log_in(page, site, tagger)
    page.goto(f"{site.url}/projects/{pid}/label")
    first = _shown(page)
    taken = sleep_past_leases(page, site, pid, colleague)
    assert first in taken
    page.keyboard.press("Enter")  # the sentence on screen: submitted, no entity
    after = wait_until(lambda: _shown(page) if _shown(page) != first else None, timeout=30,
                       what="next sentence")
    assert after not in taken


def test_a_span_model_a_purge_removed_shows_so_and_offers_no_roll_back(page: Any, site: Site
                                                                       ) -> None:
    pid, _, _ = _span_project(site)
    [first] = site.get(f"/projects/{pid}/models")
    labeled = [i["id"] for i in site.get(f"/projects/{pid}/items", params={"limit": 12})["items"]]
    purged = site.api("POST", f"/projects/{pid}/items/purge", json={"item_ids": labeled[:1]})
    assert purged.status_code == 200, purged.text
    # the model that learned the purged sentence's words loses its file; a round trains anew
    models = wait_until(lambda: (lambda m: m if len(m) == 2 and m[1]["is_active"] else None)(
        site.get(f"/projects/{pid}/models")), timeout=ROUND_TIMEOUT, what="a model without it")
    assert models[0]["version"] == first["version"]
    assert "purged" in models[0]["metrics"]["removed_by_purge"]
    log_in(page, site, site.admin)
    page.goto(f"{site.url}/projects/{pid}/dashboard")
    page.wait_for_selector("body[data-loaded=true]")
    row = page.locator(f"#models tr[data-version='{first['version']}']")
    assert "removed by a purge" in row.inner_text()
    assert row.get_by_role("button").count() == 0
    assert page.locator(f"#models tr[data-version='{models[1]['version']}'] .badge.ok").count()
    # the pool's confidence is the span model's probability of its tagging (it read "no
    # model yet"), and the labeled sentences count per entity type (they read 0 each)
    chart = page.locator("#chart-confidence svg")
    assert "tagging" in (chart.get_attribute("aria-label") or "")
    assert chart.locator("rect.bin[data-series='current']").count() == 20
    counts = page.locator("#chart-agreement rect.col[data-series='label_counts']")
    assert {c.get_attribute("data-category"): c.get_attribute("data-value")
            for c in counts.all()} == {"person": "12", "location": "12"}
    # no holdout: the empty gain chart says what it needs
    assert "split" in page.locator("#gain-note").inner_text()
    refused = site.api("POST", f"/projects/{pid}/models/{first['version']}/activate")
    assert refused.status_code == 409, refused.text
