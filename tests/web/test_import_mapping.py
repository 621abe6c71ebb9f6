"""The import page in Chromium: a new project, an upload of sms_spam.jsonl, its label column
proposed as existing labels (never shown), the import, and a label page without the answer;
axe-core finds no violation on the page with its mapping shown."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tests.support.api import unique
from tests.support.processes import wait_until
from tests.support.web import Site, axe_source, log_in


def _axe_violations(page: Any, within: str = "document") -> list[str]:
    """Every axe-core violation on the page as it is now, or in the element ``within``
    selects (:func:`tests.support.web.axe_source`)."""
    page.add_script_tag(content=axe_source())
    return list(page.evaluate("""async (within) => {
      const context = within === "document" ? document : document.querySelector(within);
      const r = await axe.run(context, {resultTypes: ['violations']});
      return r.violations.map(v => `${v.id} (${v.impact}): ${v.help}: ` +
        v.nodes.slice(0, 4).map(n => n.target.join(' ')).join(' | '));
    }""", within))


def _sms_rows(tmp_path: Path, shared_data: Path, n: int = 300) -> Path:
    """The first ``n`` rows of the SMS file."""
    out = tmp_path / "sms_spam.jsonl"
    with (shared_data / "sms_spam.jsonl").open() as handle:
        out.write_text("".join(line for _, line in zip(range(n), handle, strict=False)))
    return out


def test_upload_preview_mapping_and_a_label_page_without_the_answer(
        page: Any, site: Site, tmp_path: Path, shared_data: Path) -> None:
    log_in(page, site, site.admin)
    page.get_by_role("link", name="New project").click()
    page.get_by_label("Name").fill(unique("sms"))
    page.get_by_label("Labels (one per line)").fill("ham\nspam")
    page.get_by_label("Field the model reads").fill("text")
    page.get_by_role("button", name="Create, then upload data").click()
    page.wait_for_url("**/import")
    page.wait_for_selector("body[data-loaded=true]")
    pid = int(page.url.split("/")[-2])

    page.get_by_label("File (JSONL, CSV or Parquet)").set_input_files(str(_sms_rows(tmp_path, shared_data)))
    page.get_by_role("button", name="Preview").click()
    page.wait_for_selector("#mapping tbody tr[data-column=label]")
    label_role = page.get_by_label("role of column label")
    assert label_role.input_value() == "label"  # proposed: existing labels
    assert page.get_by_label("role of column text").input_value() == "content"
    assert page.get_by_label("role of column id").input_value() == "external_id"
    why = page.inner_text("#mapping tr[data-column=label]")
    assert "looks like an answer" in why
    assert "never shown to annotators" in why
    # The first rows as annotators see them: the text, never the label.
    header = page.inner_text("#preview-rows thead")
    assert "text" in header
    assert "label" not in header
    assert _axe_violations(page) == []
    # Choosing to show it says so, and puts it in what annotators see.
    label_role.select_option("content")
    assert "you chose to show it" in page.inner_text("[data-warning=label]")
    assert "label" in page.inner_text("#preview-rows thead")
    label_role.select_option("label")

    page.get_by_role("button", name="Import with these roles").click()
    page.wait_for_selector("#import-progress:has-text('Imported 300 items')")
    assert "300 existing labels" in page.inner_text("#import-progress")
    assert site.get(f"/projects/{pid}/import-mapping")["columns"]["label"] == "label"
    assert _axe_violations(page) == []
    # The same file again: no item doubled, every label already there left as it was.
    page.get_by_label("File (JSONL, CSV or Parquet)").set_input_files(
        str(_sms_rows(tmp_path, shared_data)))
    page.get_by_role("button", name="Preview").click()
    page.wait_for_selector("#mapping tbody tr[data-column=label]")
    page.get_by_role("button", name="Import with these roles").click()
    page.wait_for_selector("#import-progress:has-text('Imported 0 items')")
    again = page.inner_text("#import-progress")
    assert "300 duplicates" in again
    assert ("300 existing labels of items already in left out: 300: its annotator had "
            "labeled the item already (kept as it was).") in again

    # What annotators are handed holds no answer; imported labels count as labels.
    items = site.get(f"/projects/{pid}/items", params={"limit": 5})["items"]
    assert all(set(i["data"]) == {"text"} for i in items)
    # Every item has its imported label: a second label each is wanted, so the page shows one.
    changed = site.api("PATCH", f"/projects/{pid}", json={"settings": {"overlap": 2}})
    assert changed.status_code == 200, changed.text
    page.get_by_role("link", name="Start labeling").click()
    page.wait_for_url("**/label")
    page.wait_for_function("document.querySelector('#item') && "
                           "document.querySelector('#item').innerText.trim().length > 0")
    shown = page.inner_text("#item")
    assert shown.strip()
    assert "label" not in shown  # no "label | ham" under the text
    assert "|" not in shown


def test_the_dashboard_compares_imported_predictions_with_people(
        page: Any, site: Site, tmp_path: Path) -> None:
    made = site.api("POST", "/projects", json={"name": unique("pred"), "labels": ["ham", "spam"]})
    assert made.status_code == 201, made.text
    pid = made.json()["id"]
    rows = [{"id": f"p{i}", "text": f"message {i}", "label": "spam" if i < 3 else "ham",
             "pred": "spam", "score": 0.9} for i in range(6)]
    path = tmp_path / "pred.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    mapping = {"columns": {"id": "external_id", "text": "content", "label": "label",
                           "pred": "prediction", "score": "prediction_score"}}
    with path.open("rb") as handle:
        sent = site.api("POST", f"/projects/{pid}/imports", files={"file": handle},
                        data={"mapping": json.dumps(mapping)})
    assert sent.status_code == 202, sent.text
    job_id = sent.json()["job_id"]
    wait_until(lambda: site.get(f"/jobs/{job_id}")["status"] == "done", timeout=120,
               poll=0.3, what="import done")
    log_in(page, site, site.admin)
    page.goto(f"{site.url}/projects/{pid}/dashboard")
    page.wait_for_selector("#predictions-card")
    text = page.inner_text("#predictions-card")
    assert "agree with people's labels on 3 (50.0%)" in text
    assert page.locator("#predictions-table tbody tr").count() == 1
    assert _axe_violations(page, "#predictions-card") == []  # the rest is the dashboard's
    # the audit trail names who asked for the import, not their user id
    page.wait_for_selector("#audit tbody tr")
    imported = page.eval_on_selector_all(
        "#audit tbody tr", "rows => rows.filter(r => r.cells[3].textContent.startsWith('import '))"
        ".map(r => r.cells[4].innerText)")
    assert imported
    assert all("requested by: admin" in change for change in imported), imported
