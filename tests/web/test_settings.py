"""Settings and the new-project form in Chromium: create a project, upload data with a bad
row, change labels, guidelines and settings, add a member."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.support.api import unique
from tests.support.web import PROJECT, Site, log_in, save_settings


def test_create_a_project_upload_and_configure_it(page: Any, site: Site,
                                                  tmp_path: Path) -> None:
    log_in(page, site, site.admin)
    page.get_by_role("link", name="New project").click()
    name = unique("reviews")
    page.get_by_label("Name").fill(name)
    page.get_by_label("Labels (one per line)").fill("good\nbad")
    page.get_by_label("Guidelines").fill("Is the review positive?")
    page.get_by_label("Field the model reads").fill("text")
    page.get_by_role("button", name="Create, then upload data").click()
    page.wait_for_url("**/import")  # the upload with a preview (tests/web/test_import_mapping.py)
    pid = int(page.url.split("/")[-2])
    page.goto(f"{site.url}/projects/{pid}/settings")
    page.wait_for_selector("body[data-loaded=true]")

    rows = tmp_path / "reviews.jsonl"
    rows.write_text("".join(f'{{"external_id": "r{i}", "data": {{"text": "review {i}"}}}}\n'
                            for i in range(30)) + "this is not json\n")
    page.get_by_label("File (JSONL, CSV or Parquet)").set_input_files(str(rows))
    page.get_by_role("button", name="Upload").click()
    page.wait_for_selector("#import-progress:has-text('Imported 30 items')")
    assert "1 rejected rows" in page.inner_text("#import-progress")
    assert page.locator("#rejected tbody tr").count() == 1
    assert page.inner_text("#rejected tbody td.num") == "31"

    page.get_by_label("Labels (one per line", exact=False).fill("good\nbad\nmixed")
    page.get_by_label("Guidelines").fill("Is the review positive, negative or both?")
    page.get_by_role("button", name="Save project").click()
    page.wait_for_selector("#guidelines-version:has-text('version 2')")
    page.wait_for_selector("#versions li[data-version='2']", state="attached")
    assert "labels: good, bad, mixed" in page.text_content("#versions li[data-version='2']")
    page.get_by_label("Strategy", exact=True).select_option("entropy")
    page.get_by_label("Batch size (items per round, or auto)").fill("15")
    page.get_by_label("Target accuracy", exact=False).fill("0.9")
    page.get_by_label("the model's suggestion and confidence").uncheck()
    page.get_by_label("Gold items among tasks (0-1)").fill("0.1")
    page.get_by_label("Agreement target", exact=False).fill("0.7")
    page.get_by_role("button", name="Save settings").click()
    page.wait_for_selector("#toast:has-text('Settings saved')")
    project = site.get(f"/projects/{pid}")
    assert project["labels"] == ["good", "bad", "mixed"]
    assert project["guidelines_version"] == 2
    settings = project["settings"]
    assert (settings["strategy"], settings["batch_size"], settings["target_accuracy"],
            settings["show_suggestions"]) == ("entropy", 15, 0.9, False)
    assert (settings["gold_rate"], settings["agreement_target"]) == (0.1, 0.7)

    page.get_by_label("Batch size (items per round, or auto)").fill("0")  # the form refuses it
    assert page.eval_on_selector("#batch_size", "e => e.validity.valid") is False
    page.get_by_label("Batch size (items per round, or auto)").fill("auto")  # a count, or auto
    assert page.eval_on_selector("#batch_size", "e => e.validity.valid") is True
    save_settings(page, site, pid, "batch_size", "auto")
    pseudo = page.get_by_label("Pseudo-labels per label (self-training, or auto)")
    assert pseudo.input_value() == "auto"  # a share, or auto
    pseudo.fill("0.5")
    assert page.eval_on_selector("#pseudo_labels", "e => e.validity.valid") is True
    save_settings(page, site, pid, "pseudo_labels", 0.5)
    pseudo.fill("many")
    assert page.eval_on_selector("#pseudo_labels", "e => e.validity.valid") is False
    pseudo.fill("auto")
    page.get_by_label("Batch size (items per round, or auto)").fill("15")
    page.get_by_label("Labels (one per line", exact=False).fill("good\nmixed")
    page.get_by_role("button", name="Save project").click()  # the server refuses it
    page.wait_for_selector("#project-error:has-text('labels can be added, not removed')")

    other = site.member("annotator")
    page.get_by_label("User name").fill(other.username)
    page.get_by_label("Role", exact=True).select_option("reviewer")
    page.get_by_role("button", name="Add or change").click()
    page.wait_for_selector(f"#members th:has-text('{other.username}')")
    roles = {m["username"]: m["role"] for m in site.get(f"/projects/{pid}/members")}
    assert roles[other.username] == "reviewer"


def test_settings_are_for_owners_only(page: Any, site: Site) -> None:
    reviewer = site.member("reviewer")
    log_in(page, site, reviewer)
    page.goto(f"{site.url}/projects/{PROJECT}/settings")
    page.wait_for_selector("main:has-text('Settings are for the project')")
    assert page.is_hidden("nav a[href$='/settings']")
    assert page.is_visible("nav a[href$='/dashboard']")


def test_the_new_project_form_waits_for_its_script(page: Any, site: Site) -> None:
    """Submitted before the page's script ran, the form went out as a GET of the page (the
    fields in the address, no project made: a CI run under load met it). Its button is
    enabled by the script."""
    log_in(page, site, site.admin)
    page.route("**/static/settings.js*", lambda route: route.abort())
    page.goto(f"{site.url}/projects/new")
    assert page.get_by_role("button", name="Create, then upload data").is_disabled()
    page.unroute("**/static/settings.js*")
    page.reload()
    page.wait_for_selector("body[data-loaded=true]")
    assert page.get_by_role("button", name="Create, then upload data").is_enabled()
