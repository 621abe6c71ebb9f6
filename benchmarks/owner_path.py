"""The owner's path in the browser, from "New project" to the first task, timed per step.

Starts ``activelabel serve`` (with its worker) over a fresh data folder with one administrator,
writes a file of ``--rows`` SMS messages (id and text, no label: a pool to label) from
``sms_spam.jsonl``, then drives Chromium (Debian's package, through Playwright) the way an
owner would, and prints the seconds of each step:

- ``create``: "New project", name, labels, the field the model reads, "Create, then upload
  data", until the import page is ready;
- ``upload``: the file chosen, "Preview", until the upload has been sent (with its progress)
  and the proposed column roles and first rows show;
- ``map and import``: the proposed roles checked, "Import with these roles", until the import
  job says every row is in;
- ``first item``: "Start labeling" (focused once the import is done: Enter follows it), until
  the first item and its label buttons show.

    python benchmarks/owner_path.py                      # 5,000 rows
    python benchmarks/owner_path.py --rows 5000 --data /work/shared/data --json out.json

The same steps run in the browser tests (``tests/web/test_owner_path.py``), which assert
that the path completes in under a minute.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
PASSWORD = "owner-path-admin"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                 "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]
STEPS = ("create", "upload", "map and import", "first item")


def write_rows(source: Path, out: Path, n: int) -> int:
    """The first ``n`` rows of ``source`` (a JSONL of id, text, label) as id and text only:
    a pool nobody has labeled. The rows written (fewer when the source is shorter)."""
    written = 0
    with source.open(encoding="utf-8") as src, out.open("w", encoding="utf-8") as dst:
        for line in src:
            if written == n:
                break
            row = json.loads(line)
            dst.write(json.dumps({"id": row["id"], "text": row["text"]}) + "\n")
            written += 1
    return written


def owner_path(page: Any, url: str, file: Path, rows: int, name: str) -> dict[str, float]:
    """Drive the owner's path on ``page`` (logged in, any page of the app at ``url``) with
    ``file`` of ``rows`` rows; seconds per step (:data:`STEPS`), in order."""
    times: dict[str, float] = {}
    start = time.perf_counter()

    def lap(step: str) -> None:
        nonlocal start
        now = time.perf_counter()
        times[step] = now - start
        start = now

    page.goto(f"{url}/")
    page.get_by_role("link", name="New project").click()
    page.get_by_label("Name").fill(name)
    page.get_by_label("Labels (one per line)").fill("ham\nspam")
    page.get_by_label("Field the model reads").fill("text")
    page.get_by_role("button", name="Create, then upload data").click()
    page.wait_for_url("**/import")
    page.wait_for_selector("body[data-loaded=true]")
    lap("create")

    page.get_by_label("File (JSONL, CSV or Parquet)").set_input_files(str(file))
    page.get_by_role("button", name="Preview").click()
    page.wait_for_selector("#mapping tbody tr[data-column=text]")
    lap("upload")
    sent = page.inner_text("#upload-status")
    if not sent.startswith("Uploaded "):
        raise AssertionError(f"the upload's progress line says {sent!r}")

    roles = {c: page.get_by_label(f"role of column {c}").input_value() for c in ("id", "text")}
    if roles != {"id": "external_id", "text": "content"}:
        raise AssertionError(f"proposed roles {roles}")
    page.get_by_role("button", name="Import with these roles").click()
    page.wait_for_selector(f"#import-progress:has-text('Imported {rows} items')")
    lap("map and import")

    if page.evaluate("document.activeElement.id") != "start-labeling":
        raise AssertionError("the import done, the focus is not on Start labeling")
    page.keyboard.press("Enter")
    page.wait_for_url("**/label")
    page.wait_for_function("() => { const i = document.querySelector('#item');"
                           " return i && !document.getElementById('single').hidden"
                           " && i.innerText.trim().length > 0"
                           " && document.querySelectorAll('#choices button').length === 2; }")
    lap("first item")
    return times


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _env() -> dict[str, str]:
    out = {k: v for k, v in os.environ.items() if not k.startswith("ACTIVELABEL_")}
    out["PYTHONPATH"] = str(ROOT / "src")
    return out


def _cli(data: Path, *args: str) -> None:
    done = subprocess.run([sys.executable, "-m", "activelabel", *args, "--data-dir", str(data)],
                          env=_env(), capture_output=True, text=True, timeout=120, check=False)
    if done.returncode != 0:
        raise SystemExit(f"activelabel {' '.join(args)} failed: {done.stderr}")


def _wait_ready(url: str, proc: subprocess.Popen[bytes], log: Path) -> None:
    """Until the API answers and the worker has started (an owner's server is up before they
    open the page; a worker still starting would be timed as a slow import)."""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"the server exited with {proc.returncode}: {log.read_text()}")
        try:
            healthy = httpx.get(f"{url}/api/v1/health", timeout=1).status_code == 200
        except httpx.TransportError:
            healthy = False
        if healthy and re.search(r"worker \S+ started", log.read_text(errors="replace")):
            return
        time.sleep(0.2)
    raise SystemExit(f"the server and its worker were not ready within 120 s: {log.read_text()}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=5000, help="rows of the file (5000)")
    parser.add_argument("--data", type=Path,
                        default=Path(os.environ.get("ACTIVELABEL_SHARED_DATA",
                                                    "/work/shared/data")),
                        help="folder with sms_spam.jsonl")
    parser.add_argument("--chromium", default=os.environ.get("ACTIVELABEL_CHROMIUM",
                                                             "/usr/bin/chromium"))
    parser.add_argument("--json", type=Path, help="also write the timings here")
    args = parser.parse_args(argv)
    source = args.data / "sms_spam.jsonl"
    if not source.exists():
        raise SystemExit(f"{source} not found: pass --data with the folder holding it")
    if not Path(args.chromium).exists() and not shutil.which("chromium"):
        raise SystemExit(f"Chromium not found at {args.chromium}: pass --chromium")
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory(prefix="owner-path-") as tmp:
        folder = Path(tmp)
        data = folder / "data"
        data.mkdir()
        file = folder / "sms.jsonl"
        rows = write_rows(source, file, args.rows)
        _cli(data, "users", "create", "owner", "--admin", "--password", PASSWORD)
        port = _free_port()
        url = f"http://127.0.0.1:{port}"
        log = folder / "server.log"
        with log.open("wb") as out:
            proc = subprocess.Popen([sys.executable, "-m", "activelabel", "serve", "--data-dir",
                                     str(data), "--port", str(port)], env=_env(),
                                    stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            _wait_ready(url, proc, log)
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(executable_path=args.chromium,
                                                     args=CHROMIUM_ARGS)
                page = browser.new_page(viewport={"width": 1280, "height": 800})
                page.set_default_timeout(120_000)
                page.goto(f"{url}/")
                page.get_by_label("User name").fill("owner")
                page.get_by_label("Password").fill(PASSWORD)
                page.get_by_role("button", name="Log in").click()
                page.get_by_role("link", name="New project").wait_for()
                times = owner_path(page, url, file, rows, "sms")
                browser.close()
        finally:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=30)
    total = sum(times.values())
    print(f"The owner's path for a {rows:,}-row file, in Chromium:")
    for step in STEPS:
        print(f"  {step:<16} {times[step]:6.2f} s")
    print(f"  {'total':<16} {total:6.2f} s")
    if args.json:
        args.json.write_text(json.dumps({"rows": rows, "steps": times, "total_s": total},
                                        indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
