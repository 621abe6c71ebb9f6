"""The dashboard in Chromium: its charts draw the numbers the API reports; rollback works."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from tests.support.api import unique
from tests.support.processes import wait_until
from tests.support.web import PROJECT, Site, axe_violations, label_by_oracle, log_in, run_round


@pytest.fixture(scope="module")
def trained(site: Site) -> Site:
    """Two more rounds trained on true labels, so the curve has points and a model replaced
    another (the confidence histogram then has a previous model too)."""
    for _ in range(2):
        label_by_oracle(site, site.member("annotator"), 40)
        run_round(site)
    return site


def _points(page: Any, series: str) -> list[tuple[float, float]]:
    return [(float(x), float(y)) for x, y in page.eval_on_selector_all(
        f"#chart-curve circle[data-series='{series}']",
        "els => els.map(e => [e.dataset.x, e.dataset.y])")]


def _open_with_payoff(page: Any, site: Site, payoff: dict[str, Any]) -> dict[str, Any]:
    """Open the dashboard as the admin with the stats' payoff replaced by ``payoff``'s keys
    (the page's request is answered in the browser); returns the payoff shown."""
    stats = site.get(f"/projects/{PROJECT}/stats")
    shown = {**stats["payoff"], **payoff}
    body = json.dumps({**stats, "payoff": shown})
    page.unroute(f"**/api/v1/projects/{PROJECT}/stats")
    page.route(f"**/api/v1/projects/{PROJECT}/stats", lambda route: route.fulfill(
        status=200, content_type="application/json", body=body))
    log_in(page, site, site.admin)
    page.goto(f"{site.url}/projects/{PROJECT}/dashboard")
    page.wait_for_selector("body[data-loaded=true]")
    return shown


def _rounds_with(page: Any, site: Site, key: str, start: float) -> list[dict[str, Any]]:
    """Answer the page's dashboard request with every scored round given ``key`` in its
    metrics (``start``, then 0.1 more a round); returns those rounds."""
    dash = site.get(f"/projects/{PROJECT}/dashboard")
    scored = [r for r in dash["rounds"] if r["status"] == "done"
              and r["metrics"].get("accuracy") is not None]
    for i, r in enumerate(scored):
        r["metrics"][key] = start + 0.1 * i
    body = json.dumps(dash)
    page.route(f"**/api/v1/projects/{PROJECT}/dashboard", lambda route: route.fulfill(
        status=200, content_type="application/json", body=body))
    return scored


def test_dashboard_charts_show_the_api_numbers(page: Any, trained: Site) -> None:
    site = trained
    log_in(page, site, site.admin)
    page.goto(f"{site.url}/projects/{PROJECT}/dashboard")
    page.wait_for_selector("body[data-loaded=true]")
    dash = site.get(f"/projects/{PROJECT}/dashboard")
    scored = [r for r in dash["rounds"] if r["status"] == "done"
              and r["metrics"].get("accuracy") is not None]
    assert len(scored) >= 2
    for key in ("accuracy", "macro_f1", "ece"):
        expected = [(float(r["metrics"]["n_train"]), r["metrics"][key]) for r in scored]
        got = _points(page, key)
        assert [x for x, _ in got] == [x for x, _ in expected], key
        assert all(abs(a - b) < 1e-9 for (_, a), (_, b) in zip(got, expected, strict=True))

    named = 0
    for r in dash["rounds"]:  # an `auto` round names the strategy its schedule ran
        ran = (r["metrics"].get("schedule") or {}).get("strategy")
        shown = page.inner_text(f"#rounds tr[data-round='{r['number']}'] td:nth-of-type(2)")
        assert shown == (f"{r['strategy']}: {ran}" if ran and ran != r["strategy"]
                         else r["strategy"])
        named += shown.startswith("auto: ")
    # the demo's rounds run `auto` (the API left out what they ran, and every row read "auto")
    assert named >= 2, [r["metrics"] for r in dash["rounds"]]
    assert dash["measure"] == "accuracy"
    assert page.inner_text("#rounds-score") == "accuracy"
    assert page.inner_text("#h-gain") == "Gain per 100 labels (accuracy points)"
    assert page.get_attribute("#chart-gain svg", "aria-label") == "Accuracy gain per 100 labels"

    gathered = page.eval_on_selector_all("#chart-rounds rect.col",
                                         "els => els.map(e => Number(e.dataset.value))")
    assert gathered == [r["labels_gathered"] for r in dash["rounds"] if r["status"] == "done"]
    assert sum(gathered) >= 80

    stats = site.get(f"/projects/{PROJECT}/stats")
    backlog = page.eval_on_selector_all("#chart-backlog rect.col",
                                        "els => els.map(e => Number(e.dataset.value))")
    assert backlog == [stats["queued"], stats["leased"], stats["labeled"], stats["open_flags"]]
    note = page.inner_text("#features-note")  # what the model reads, as the API says
    features = stats["features"]
    assert note.startswith(f"Features: {features['featurizer']} (built for "
                           f"{features['built_for']:,} items)")
    if features["sentence_vectors"]:
        assert features["sentence_vectors"]["text"] in note
    headline = page.inner_text("#payoff-headline")
    assert f"labels spent {stats['payoff']['labels_spent']}" in headline
    if stats["payoff"]["accuracy"] is not None:
        assert f"{100 * stats['payoff']['accuracy']:.1f}%" in headline

    conf = site.get(f"/projects/{PROJECT}/confidence", params={"bins": 20})
    for which in ("current", "previous"):
        bins = page.eval_on_selector_all(f"#chart-confidence rect.bin[data-series='{which}']",
                                         "els => els.map(e => Number(e.dataset.count))")
        assert bins == conf[which]["counts"], which
    assert sum(conf["current"]["counts"]) == conf["current"]["n"] > 1000

    # One numbering: models are named by the round that trained them, nowhere "v2".
    stale = dash["staleness"]
    models = site.get(f"/projects/{PROJECT}/models")
    number = {r["id"]: r["number"] for r in dash["rounds"]}
    active = next(m for m in models if m["version"] == stale["model_version"])
    assert page.locator("#stale-line").inner_text().endswith(
        f"The model of round {number[active['round_id']]}: {stale['labels_since']} labels and "
        f"{stale['new_items']} items since it was trained, 0 h ago.")
    assert page.locator("#models tbody tr").count() == len(models)
    assert sorted(page.locator("#models tbody th").all_inner_texts()) == sorted(
        f"round {number[m['round_id']]}" for m in models)
    assert not re.search(r"\b[Mm]odel v\d|\bv\d+\b", page.inner_text("main"))
    assert page.locator("#audit tbody tr").count() > 0  # the owner sees the audit trail
    trail = page.inner_text("#audit tbody")
    assert "admin" in trail  # who, by name
    assert "user 1" not in trail
    assert "{" not in trail  # changes as "field: before → after", not JSON
    assert "→" in trail


def test_rollback_button_activates_an_older_model(page: Any, trained: Site) -> None:
    site = trained
    log_in(page, site, site.admin)
    page.goto(f"{site.url}/projects/{PROJECT}/dashboard")
    page.wait_for_selector("body[data-loaded=true]")
    models = site.get(f"/projects/{PROJECT}/models")
    older = models[0]["version"]
    assert not models[0]["is_active"]
    trained_by = next(r["number"] for r in site.get(f"/projects/{PROJECT}/rounds")
                      if r["id"] == models[0]["round_id"])
    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name=f"Roll back to the model of round {trained_by}").click()
    wait_until(lambda: next(m for m in site.get(f"/projects/{PROJECT}/models")
                            if m["version"] == older)["is_active"], timeout=20,
               what="older model active")
    page.wait_for_selector(f"#models tr[data-version='{older}'] .badge.ok")
    wait_until(lambda: all(r["status"] in ("done", "failed")
                           for r in site.get(f"/projects/{PROJECT}/rounds")),
               timeout=60, what="re-rank done")


def test_agreement_per_label_comes_from_the_agreement_report(page: Any, trained: Site) -> None:
    site = trained
    first, second = site.member("annotator"), site.member("annotator")
    items = site.get(f"/projects/{PROJECT}/tasks/next", first, params={"n": 4})
    for i, task in enumerate(items):  # both label the same items; they differ on one
        for who, digit in ((first, "2"), (second, "2" if i else "7")):
            answer = site.api("POST", f"/projects/{PROJECT}/annotations", who,
                              json={"item_id": task["item"]["id"], "labels": [digit]})
            assert answer.status_code == 201, answer.text
    report = site.get(f"/projects/{PROJECT}/agreement")
    log_in(page, site, site.admin)
    page.goto(f"{site.url}/projects/{PROJECT}/dashboard")
    page.wait_for_selector("#chart-agreement rect.col[data-series='agreement']")
    drawn = dict(page.eval_on_selector_all(
        "#chart-agreement rect.col", "els => els.map(e => [e.dataset.category, Number(e.dataset.value)])"))
    assert set(drawn) == set(report["per_label"])
    for label, value in drawn.items():
        assert abs(value - (report["per_label"][label]["agreement"] or 0)) < 1e-9
    assert "Krippendorff's alpha" in page.inner_text("#agreement-note")
    page.wait_for_selector(f"#annotators tr[data-annotator='{first.username}']")


def test_dashboard_shows_pace_verdicts_and_forecast(page: Any, trained: Site) -> None:
    site = trained
    log_in(page, site, site.admin)
    page.goto(f"{site.url}/projects/{PROJECT}/dashboard")
    page.wait_for_selector("#verdicts li[data-rule]")
    outlook = site.get(f"/projects/{PROJECT}/outlook")
    rules = page.eval_on_selector_all("#verdicts li[data-rule]",
                                      "els => els.map(e => e.dataset.rule)")
    assert rules == [v["rule"] for v in outlook["verdicts"]]
    # the time at the team's pace moves with the clock: compare what precedes it
    shown = page.inner_text("#forecast-text")
    assert shown.split(", about")[0] == outlook["forecast"]["text"].split(", about")[0]
    pace = page.inner_text("#pace")
    assert f"{outlook['pace']['retrain_after']} labels" in pace
    assert "labels behind" in pace


@pytest.mark.parametrize(("needed", "extrapolated", "ends", "shown"), [
    (68, True, [30, 160], "random sampling would have needed about 68 (extrapolated; 30 to "
                          "160 within both intervals)"),
    (20, False, [12, None], "random sampling would have needed about 20 (12 to more than the "
                            "curve tells within both intervals)"),
    (120, False, [80, 200], "random sampling would have needed about 120 (80 to 200 within both "
                            "intervals)"),
])
def test_payoff_headline_gives_the_random_labels_at_the_intervals_ends(
        page: Any, trained: Site, needed: int, extrapolated: bool, ends: list[int | None],
        shown: str) -> None:
    """The count random sampling would have needed is read at the accuracy's interval too:
    with few audit labels the range says what the single number is worth."""
    _open_with_payoff(page, trained, {
        "accuracy": 0.9, "low": 0.76, "high": 0.96, "audit_labels": 38,
        "random_labels_needed": needed, "random_extrapolated": extrapolated,
        "random_labels_range": ends})
    headline = page.inner_text("#payoff-headline")
    assert "Accuracy now 90.0% (95% interval 76.0%–96.0%, 38 audit labels)" in headline
    assert shown in headline


@pytest.mark.parametrize(("status", "to_target", "shown"), [
    ("reached", -0.05, "target 85.0% reached"),
    ("reached_by_estimate", -0.05, "target 85.0% reached by the estimate, not yet by the "
                                   "interval (low end 76.0%)"),
    ("below_by_estimate", 0.03, "3.0% below the target 85.0% (the interval reaches it)"),
    ("below", 0.03, "3.0% below the target 85.0%"),
])
def test_payoff_headline_reads_the_target_against_the_interval(
        page: Any, trained: Site, status: str, to_target: float, shown: str) -> None:
    """A served run said "target 85.0% reached" from 33 audit labels at 93.9% (80.4-98.3%):
    reached by the estimate, not by the interval. The headline says which."""
    _open_with_payoff(page, trained, {
        "accuracy": 0.85 - to_target, "low": 0.76, "high": 0.96, "audit_labels": 38,
        "target_accuracy": 0.85, "to_target": to_target, "target_status": status})
    headline = page.inner_text("#payoff-headline")
    assert headline.endswith(shown)
    if status != "reached":
        assert "target 85.0% reached ·" not in headline + " ·"


def test_payoff_headline_says_when_the_curve_cannot_tell_yet(page: Any, trained: Site) -> None:
    _open_with_payoff(page, trained, {
        "accuracy": 0.75, "low": 0.6, "high": 0.86, "audit_labels": 41,
        "random_curve": [[10, 0.05], [20, 0.1]], "random_labels_needed": None,
        "random_extrapolated": None, "random_labels_range": None})
    headline = page.inner_text("#payoff-headline")
    assert ("random sampling's curve (up to 20 audit labels) cannot tell yet what it would "
            "have needed") in headline
    assert "would have needed about" not in headline


def test_span_payoff_names_its_measure(page: Any, trained: Site) -> None:
    """A span project's payoff is entity F1: the headline, the note and the learning curve's
    audit series say so (not the holdout's token accuracy)."""
    _open_with_payoff(page, trained, {
        "measure": "entity_f1", "interval": "bootstrap", "accuracy": 0.62, "low": 0.5,
        "high": 0.72,
        "audit_labels": 60, "n_train": 300, "random_curve": [[10, 0.3], [20, 0.4], [48, 0.5]],
        "to_target": None})
    headline = page.inner_text("#payoff-headline")
    assert "Entity F1 now 62.0% (95% interval 50.0%–72.0%, 60 audit labels)" in headline
    assert "Accuracy now" not in headline
    note = page.inner_text("#payoff-note")
    assert "bootstrap over the sentences" in note
    assert "Wilson" not in note
    assert "each of its points is scored on the audit labels after its training labels" in note
    assert "random sampling (audit labels, entity F1)" in page.inner_text("#chart-curve")
    assert _points(page, "audit_accuracy") == [(300.0, 0.62)]

    _open_with_payoff(page, trained, {
        "measure": "entity_f1", "accuracy": None, "audit_labels": 12, "audit_entities": 7,
        "note": "12 audit sentences labeled, holding 7 entities: entity F1 is measured from 20"})
    assert page.inner_text("#payoff-headline").startswith(
        "12 audit sentences labeled, holding 7 entities: entity F1 is measured from 20.")


def test_multilabel_payoff_and_rounds_name_label_f1(page: Any, trained: Site) -> None:
    """A multi-label project's payoff is label F1 (a share of label sets given exactly
    rewards a model that gives none): the headline, the note, the curve's audit series; its
    rounds' holdout label F1 is drawn beside their exact-set accuracy."""
    scored = _rounds_with(page, trained, "label_f1", 0.2)
    _open_with_payoff(page, trained, {
        "measure": "label_f1", "interval": "bootstrap", "accuracy": 0.41, "low": 0.3,
        "high": 0.5, "audit_labels": 80, "audit_positives": 40, "n_train": 500,
        "random_curve": [[10, 0.0], [20, 0.1], [40, 0.2]], "to_target": None})
    headline = page.inner_text("#payoff-headline")
    assert "Label F1 now 41.0% (95% interval 30.0%–50.0%, 80 audit labels)" in headline
    assert "Accuracy now" not in headline
    assert "micro over the audit items' labels" in page.inner_text("#payoff-note")
    chart = page.inner_text("#chart-curve")
    assert "random sampling (audit labels, label F1)" in chart
    assert "exact-set accuracy" in chart
    assert [y for _, y in _points(page, "label_f1")] == pytest.approx(
        [0.2 + 0.1 * i for i in range(len(scored))])


def test_span_rounds_draw_the_holdouts_entity_f1(page: Any, trained: Site) -> None:
    """A span round's accuracy is the share of tokens tagged right; its entity F1 is drawn
    beside it, and the accuracy series says which accuracy it is."""
    scored = _rounds_with(page, trained, "entity_f1", 0.3)
    log_in(page, trained, trained.admin)
    page.goto(f"{trained.url}/projects/{PROJECT}/dashboard")
    page.wait_for_selector("body[data-loaded=true]")
    got = _points(page, "entity_f1")
    assert [y for _, y in got] == pytest.approx([0.3 + 0.1 * i for i in range(len(scored))])
    assert "token accuracy" in page.inner_text("#chart-curve")


def test_learning_curve_draws_random_sampling_from_the_audit_labels(page: Any,
                                                                     trained: Site) -> None:
    """Without a shell: the payoff's random-sampling curve (traced from the audit labels) and
    the model's audited accuracy are on the learning curve; short of the labels it needs, the
    note says how many are in."""
    curve = [[10, 0.4], [20, 0.55], [40, 0.7]]
    _open_with_payoff(page, trained, {"accuracy": 0.9, "low": 0.8, "high": 0.95,
                                      "n_train": 120, "audit_labels": 50, "random_curve": curve})
    assert _points(page, "random_audit") == [(10.0, 0.4), (20.0, 0.55), (40.0, 0.7)]
    assert _points(page, "audit_accuracy") == [(120.0, 0.9)]
    assert page.inner_text("#curve-note").startswith("Random sampling from the audit labels")
    assert axe_violations(page) == []

    few = _open_with_payoff(page, trained, {"audit_share": 0.05, "audit_labels": 7,
                                            "random_curve": []})
    assert _points(page, "random_audit") == []
    assert page.inner_text("#curve-note").startswith(
        f"Random sampling's curve appears here once {few['curve_min_labels']} audit labels are "
        "in (7 so far)")

    _open_with_payoff(page, trained, {"audit_share": 0.05, "audit_labels": 40,
                                      "random_curve": [], "curve_min_labels": None})
    assert "served over HTTP" in page.inner_text("#curve-note")  # never "appears once ..."


def _rate(share: float | None) -> str:
    return "–" if share is None else f"{round(100 * share)}%"


def test_anchoring_table_counts_answers_changed_after_the_suggestion(page: Any,
                                                                     trained: Site) -> None:
    """An annotator answers three items before the suggestion shows (after_answer), then
    submits the model's label on one, another label on one and the first answer on the last:
    the dashboard's anchoring table shows the API's counts and rates, for that annotator."""
    site = trained
    before = site.get(f"/projects/{PROJECT}")["settings"]
    kept = {k: before[k] for k in ("suggestion_display", "suggestion_min_confidence")}
    changed = site.api("PATCH", f"/projects/{PROJECT}", json={"settings": {
        "suggestion_display": "after_answer", "suggestion_min_confidence": 0}})
    assert changed.status_code == 200, changed.text
    try:
        annotator = site.member("annotator")
        tasks = site.get(f"/projects/{PROJECT}/tasks/next", annotator, params={"n": 3})
        assert len(tasks) == 3
        ids = [t["item"]["id"] for t in tasks]
        asked = site.api("POST", f"/projects/{PROJECT}/tasks/suggestions", annotator,
                         json={"answers": [{"item_id": i, "labels": ["0"]} for i in ids]})
        assert asked.status_code == 200, asked.text
        shown = {a["item_id"]: a["suggestion"]["label"] for a in asked.json()}
        model = [shown[i] for i in ids]  # min confidence 0: every answer brings one
        other = next(d for d in "123456789" if d != model[1])
        for item_id, label in zip(ids, [model[0], other, "0"], strict=True):
            done = site.api("POST", f"/projects/{PROJECT}/annotations", annotator,
                            json={"item_id": item_id, "labels": [label]})
            assert done.status_code == 201, done.text
    finally:
        restored = site.api("PATCH", f"/projects/{PROJECT}", json={"settings": kept})
        assert restored.status_code == 200, restored.text
    n_changed = int(model[0] != "0") + 1
    disagreed = sum(m != "0" for m in model)
    switched = int(model[0] != "0")
    [row] = [r for r in site.get(f"/projects/{PROJECT}/anchoring")
             if r["username"] == annotator.username]
    assert (row["blind_answers"], row["submitted"], row["changed"],
            row["disagreed_with_suggestion"], row["switched_to_suggestion"]) == (
        3, 3, n_changed, disagreed, switched)

    log_in(page, site, site.admin)
    page.goto(f"{site.url}/projects/{PROJECT}/dashboard")
    shown_row = page.locator(f"#anchoring tr[data-annotator='{annotator.username}']")
    shown_row.wait_for()
    assert shown_row.locator("th").inner_text() == annotator.username
    cells = shown_row.locator("td").all_inner_texts()
    assert cells == [str(x) for x in (3, 3, n_changed)] + [_rate(row["changed_share"])] + [
        str(disagreed), str(switched), _rate(row["switched_share"])]
    assert _rate(row["changed_share"]) == f"{round(100 * n_changed / 3)}%"
    assert page.locator("#anchoring-empty").is_hidden()
    assert "after_answer" in page.inner_text("#anchoring-note")
    page.wait_for_selector("body[data-state=ready]")
    assert axe_violations(page) == []


def test_anchoring_empty_state_and_annotators_see_none(page: Any, site: Site) -> None:
    """A project without answers given before the suggestion says so instead of a table;
    an annotator's dashboard is closed to them and shows no anchoring either."""
    made = site.api("POST", "/projects", json={"name": unique("blind"), "labels": ["a", "b"]})
    assert made.status_code == 201, made.text
    pid = made.json()["id"]
    log_in(page, site, site.admin)
    page.goto(f"{site.url}/projects/{pid}/dashboard")
    page.wait_for_selector("#anchoring-empty:visible")
    assert page.locator("#anchoring-wrap").is_hidden()
    assert axe_violations(page) == []

    annotator = site.member("annotator")
    log_in(page, site, annotator)
    page.goto(f"{site.url}/projects/{PROJECT}/dashboard")
    page.wait_for_selector("body[data-state=ready]")
    assert page.locator("#anchoring-box").is_hidden()
    assert page.locator("#anchoring tbody tr").count() == 0


def test_a_multilabel_projects_gain_and_rounds_read_its_label_f1(page: Any,
                                                                 trained: Site) -> None:
    """The gain chart and the rounds table read the task's score (a multi-label project's
    label F1) where the dashboard answer names it."""
    dash = trained.get(f"/projects/{PROJECT}/dashboard")
    done = [r for r in dash["rounds"] if r["status"] == "done" and r["gain"]]
    assert done
    for i, r in enumerate(done):
        r["metrics"]["label_f1"] = 0.3 + 0.01 * i
        r["gain"] = {**r["gain"], "measure": "label_f1", "score": 0.02,
                     "per_100_labels": 0.05 + 0.01 * i}
    body = json.dumps({**dash, "measure": "label_f1"})
    page.route(f"**/api/v1/projects/{PROJECT}/dashboard", lambda route: route.fulfill(
        status=200, content_type="application/json", body=body))
    log_in(page, trained, trained.admin)
    page.goto(f"{trained.url}/projects/{PROJECT}/dashboard")
    page.wait_for_selector("body[data-loaded=true]")
    assert page.inner_text("#rounds-score") == "label F1"
    assert page.inner_text("#models-score") == "label F1"
    assert page.inner_text("#h-gain") == "Gain per 100 labels (label F1 points)"
    assert page.get_attribute("#chart-gain svg", "aria-label") == "Label F1 gain per 100 labels"
    bars = page.eval_on_selector_all("#chart-gain rect.col",
                                     "els => els.map(e => Number(e.dataset.value))")
    assert bars == pytest.approx([100 * (0.05 + 0.01 * i) for i in range(len(done))])
    for i, r in enumerate(done):
        row = f"#rounds tr[data-round='{r['number']}']"
        assert page.inner_text(f"{row} td:nth-of-type(6)") == f"{0.3 + 0.01 * i:.3f}"


def test_the_throughput_table_fits_its_card(page: Any, trained: Site) -> None:
    """Seven columns: the card spans the dashboard's width (at a third of it the table
    scrolled sideways and hid gold accuracy and agreement)."""
    page.set_viewport_size({"width": 1280, "height": 900})
    log_in(page, trained, trained.admin)
    page.goto(f"{trained.url}/projects/{PROJECT}/dashboard")
    page.wait_for_selector("body[data-loaded=true]")
    page.wait_for_selector("#annotators tbody tr")
    widths = page.eval_on_selector("#annotators", "t => [t.scrollWidth, t.parentElement.clientWidth]")
    assert widths[0] <= widths[1], widths
