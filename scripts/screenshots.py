"""Screenshots of the web app for the README, from a real demo server.

Starts ``activelabel demo`` and ``activelabel serve`` on a free port over a temporary data
folder, labels a few batches with the digits' true labels (two rounds train on them), then
logs in with Chromium (Debian's package, driven by Playwright) and saves in
``docs/screenshots/``: ``label.png``, ``grid.png``, ``review.png`` and ``dashboard.png`` at
1280x800, ``phone.png`` (the labeling page at 390x844) and ``dark.png`` (the labeling page
in dark mode).

    python scripts/screenshots.py [--out docs/screenshots] [--chromium /usr/bin/chromium]
"""

from __future__ import annotations

import argparse
import os
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
PASSWORD = "screenshots-admin"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]
PROJECT = 1


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def cli(*args: str, data: Path) -> list[str]:
    return [sys.executable, "-m", "activelabel", *args, "--data-dir", str(data)]


def env() -> dict[str, str]:
    out = {k: v for k, v in os.environ.items() if not k.startswith("ACTIVELABEL_")}
    out["PYTHONPATH"] = str(ROOT / "src")
    return out


def wait_healthy(url: str, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"the server exited with {proc.returncode}")
        try:
            if httpx.get(f"{url}/api/v1/health", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise SystemExit("the server did not answer within 90 s")


class Api:
    def __init__(self, url: str, token: str) -> None:
        self.base = f"{url}/api/v1/projects/{PROJECT}"
        self.headers = {"Authorization": f"Bearer {token}"}

    def get(self, path: str, **params: Any) -> Any:
        answer = httpx.get(self.base + path, headers=self.headers, params=params, timeout=60)
        answer.raise_for_status()
        return answer.json()

    def post(self, path: str, body: Any = None) -> Any:
        answer = httpx.post(self.base + path, headers=self.headers, json=body, timeout=60)
        answer.raise_for_status()
        return answer.json()

    def settings(self, **values: Any) -> None:
        answer = httpx.patch(self.base, headers=self.headers, json={"settings": values},
                             timeout=60)
        answer.raise_for_status()


def label_batch(api: Api, truth: Any, n: int, *, wrong_every: int = 0) -> None:
    """Label ``n`` queued items with their true digit (every ``wrong_every``-th one wrong)."""
    for i, task in enumerate(api.get("/tasks/next", n=n)):
        digit = int(truth[int(task["item"]["external_id"].split("-")[1])])
        if wrong_every and i % wrong_every == wrong_every - 1:
            digit = (digit + 1) % 10
        api.post("/annotations", {"item_id": task["item"]["id"], "labels": [str(digit)],
                                  "duration_ms": 1500 + 97 * (i % 13)})


def run_round(api: Api) -> None:
    round_id = api.post("/rounds")["round_id"]
    deadline = time.monotonic() + 120
    while api.get(f"/rounds/{round_id}", limit=0)["status"] not in ("done", "failed"):
        if time.monotonic() > deadline:
            raise SystemExit("the round did not finish within 120 s")
        time.sleep(0.5)


def prepare(api: Api) -> None:
    from sklearn.datasets import load_digits

    truth = load_digits().target
    for _ in range(3):  # three trained rounds: a learning curve with a few points
        label_batch(api, truth, 20)
        run_round(api)
    label_batch(api, truth, 7)  # part of the current batch done
    task = api.get("/tasks/next", n=1)[0]
    api.post("/flags", {"item_id": task["item"]["id"], "reason": "could be a 1 or a 7"})
    # the review queue asks the worker for a label check of these labels: done before the
    # review page is shown
    api.get("/review")
    deadline = time.monotonic() + 120
    while api.get("/label-check")["state"] != "up_to_date":
        if time.monotonic() > deadline:
            raise SystemExit("the label check did not finish within 120 s")
        time.sleep(0.5)


def _label_page(page: Any, url: str) -> None:
    page.goto(f"{url}/projects/{PROJECT}/label")
    page.wait_for_selector("#choices button")
    page.wait_for_selector("#related figure")


def _choose_true_digit(page: Any) -> None:
    from sklearn.datasets import load_digits

    shown = page.inner_text("#item p.muted").split("-")[-1]  # "item digit-0494"
    page.keyboard.press(f"Digit{int(load_digits().target[int(shown)])}")  # the true digit
    page.wait_for_timeout(500)


def _log_in(page: Any, url: str) -> None:
    page.goto(url + "/")
    page.get_by_label("User name").fill("admin")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_selector("#project-list li")


def shoot(url: str, api: Api, out: Path, chromium: str) -> None:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=ARGS)
        page = browser.new_page(viewport={"width": 1280, "height": 800})
        _log_in(page, url)
        _label_page(page, url)  # the default: the suggestion once the annotator has chosen
        _choose_true_digit(page)
        page.screenshot(path=str(out / "label.png"))
        api.settings(suggestion_display="always")
        _label_page(page, url)
        page.keyboard.press("g")
        page.wait_for_selector("#grid [role=gridcell]")
        page.wait_for_timeout(500)
        page.screenshot(path=str(out / "grid.png"))
        page.goto(f"{url}/projects/{PROJECT}/review")
        page.wait_for_selector("body[data-state=ready]")
        page.wait_for_timeout(500)
        page.screenshot(path=str(out / "review.png"))
        page.goto(f"{url}/projects/{PROJECT}/dashboard")
        page.wait_for_selector("body[data-loaded=true]")
        page.wait_for_timeout(500)
        page.screenshot(path=str(out / "dashboard.png"))
        for name, options in [("phone", {"viewport": {"width": 390, "height": 844},
                                         "device_scale_factor": 2}),
                              ("dark", {"viewport": {"width": 1280, "height": 800},
                                        "color_scheme": "dark"})]:
            context = browser.new_context(**options)
            other = context.new_page()
            _log_in(other, url)
            _label_page(other, url)
            other.wait_for_timeout(500)
            other.screenshot(path=str(out / f"{name}.png"))
            context.close()
        api.settings(suggestion_display="after_answer")
        browser.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "screenshots")
    parser.add_argument("--chromium", default="/usr/bin/chromium")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="al-shots-") as tmp:
        data = Path(tmp)
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        subprocess.run(cli("demo", "--password", PASSWORD, "--url", url, data=data),
                       check=True, env=env(), stdout=subprocess.DEVNULL)
        server = subprocess.Popen(cli("serve", "--port", str(port), "--log-level", "warning",
                                      data=data), env=env(), start_new_session=True)
        try:
            wait_healthy(url, server)
            token = httpx.post(f"{url}/api/v1/auth/login", timeout=30, json={
                "username": "admin", "password": PASSWORD}).json()["token"]
            api = Api(url, token)
            prepare(api)
            shoot(url, api, args.out, args.chromium)
        finally:
            os.killpg(server.pid, signal.SIGTERM)
            server.wait(timeout=30)
    print(f"saved label, grid, review, dashboard, phone and dark .png in {args.out}")


if __name__ == "__main__":
    main()
