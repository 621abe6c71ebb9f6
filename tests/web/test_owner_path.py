"""The owner's path in Chromium, from "New project" to the first task with a 5,000-row SMS
file: create, upload with its progress, the proposed column roles, the import, "Start
labeling" and the first item, in under a minute (the steps and their timing are
``benchmarks/owner_path.py``'s, whose figures docs/benchmarks.md records)."""

from __future__ import annotations

import importlib.util
import time
from pathlib import Path
from types import ModuleType
from typing import Any

from tests.support.api import unique
from tests.support.web import Site, axe_violations, log_in

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "owner_path.py"
ROWS = 5000


def _benchmark() -> ModuleType:
    spec = importlib.util.spec_from_file_location("owner_path", SCRIPT)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_new_project_to_the_first_item_in_under_a_minute(page: Any, site: Site, tmp_path: Path,
                                                         shared_data: Path) -> None:
    bench = _benchmark()
    file = tmp_path / "sms.jsonl"
    assert bench.write_rows(shared_data / "sms_spam.jsonl", file, ROWS) == ROWS
    log_in(page, site, site.admin)
    started = time.perf_counter()
    times = bench.owner_path(page, site.url, file, ROWS, unique("sms"))
    total = time.perf_counter() - started
    assert list(times) == list(bench.STEPS)
    assert total < 60, f"the owner's path took {total:.1f} s: {times}"
    # The first task: an item of the file, unlabeled, with the project's two labels.
    pid = int(page.url.split("/")[-2])
    shown = page.inner_text("#item")
    assert "item sms-" in shown
    assert page.locator("#choices button").all_inner_texts() == ["1 ham", "2 spam"]
    assert site.get(f"/projects/{pid}/progress")["items"] == ROWS
    assert axe_violations(page) == []


def test_a_refused_upload_says_why_and_hides_its_progress(page: Any, site: Site,
                                                          tmp_path: Path) -> None:
    made = site.api("POST", "/projects", json={"name": unique("bad"), "labels": ["a", "b"]})
    assert made.status_code == 201, made.text
    bad = tmp_path / "notes.txt"
    bad.write_text("not a table\n")
    log_in(page, site, site.admin)
    page.goto(f"{site.url}/projects/{made.json()['id']}/import")
    page.wait_for_selector("body[data-loaded=true]")
    page.get_by_label("File (JSONL, CSV or Parquet)").set_input_files(str(bad))
    page.get_by_role("button", name="Preview").click()
    page.wait_for_function("document.getElementById('preview-error').textContent.length > 0")
    assert page.is_hidden("#upload-progress")
    assert page.inner_text("#upload-status") == ""
    assert page.is_hidden("#mapping-card")
