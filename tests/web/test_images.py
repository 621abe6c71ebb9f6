"""An image-folder project labeled end to end in Chromium: the digits as PNG files in a
folder the server may read, imported over the API, shown (fetched with the login's token)
with zoom and pan, labeled by keyboard, thumbnails in the grid; axe-core finds nothing."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.images import write_digit_folder
from tests.support.processes import ServerProcess, run_cli, wait_until
from tests.support.web import Person, Site, axe_violations, log_in, login, shown_item

PASSWORD = "image-admin-password"


@pytest.fixture(scope="module")
def image_site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Site, int, Path]]:
    """A server allowed to read one folder of 60 digit PNGs, and an empty project."""
    folder = tmp_path_factory.mktemp("images")
    root = folder / "allowed"
    write_digit_folder(root / "digits", 60)
    data, db = folder / "data", f"sqlite:///{folder / 'web.db'}"
    data.mkdir()
    made = run_cli("users", "create", "admin", "--password", PASSWORD, "--admin",
                   data_dir=data, db=db)
    assert made.returncode == 0, made.stderr
    server = ServerProcess(data, db, env={"ACTIVELABEL_IMAGE_ROOTS": str(root)})
    try:
        server.start()
        admin = Person("admin", PASSWORD, login(server.url, "admin", PASSWORD), "owner")
        site = Site(server.url, admin, server)
        created = site.api("POST", "/projects", json={
            "name": "digit files", "labels": list(range(10)), "settings": {
                "featurizer": "image", "featurizer_params": {"field": "image",
                                                             "shape": [16, 16]},
                "batch_size": 20, "audit_share": 0.0}})
        assert created.status_code == 201, created.text
        yield site, int(created.json()["id"]), root
    finally:
        server.stop()


def test_image_folder_project_labeled_in_the_browser(
        page: Any, image_site: tuple[Site, int, Path], tmp_path: Path) -> None:
    site, pid, root = image_site
    log_in(page, site, site.admin)
    page.goto(f"{site.url}/projects/{pid}/import")
    page.wait_for_selector("body[data-loaded=true]")
    page.get_by_label("Or a folder on the server").fill(str(tmp_path))
    page.get_by_role("button", name="Import images").click()
    page.wait_for_selector("#images-error:has-text('outside the folders')")
    page.get_by_label("Or a folder on the server").fill(str(root / "digits"))
    page.get_by_role("button", name="Import images").click()
    page.wait_for_selector("#images-result:has-text('Imported 60 items')", timeout=60_000)
    assert axe_violations(page) == []
    page.get_by_role("link", name="Start labeling").click()
    page.wait_for_selector("#choices button")
    picture = "#zoom-frame img.file-image[data-loaded=true]"
    page.wait_for_selector(picture)
    assert page.evaluate(f"document.querySelector('{picture}').naturalWidth") == 64
    assert page.get_attribute(picture, "src").startswith("blob:")
    width = page.evaluate(f"document.querySelector('{picture}').getBoundingClientRect().width")
    page.keyboard.press("+")
    page.wait_for_selector("#zoom-level:has-text('150%')")
    wider = page.evaluate(f"document.querySelector('{picture}').getBoundingClientRect().width")
    assert wider == pytest.approx(width * 1.5, rel=0.02)
    assert axe_violations(page) == []

    labeled: dict[int, int] = {}
    for _ in range(6):
        page.wait_for_selector(picture)
        item = shown_item(page)
        digit = site.get(f"/projects/{pid}/items/{item}")["external_id"].split("/")[0]
        page.keyboard.press(digit)
        page.wait_for_selector(f"#choices button[aria-pressed=true][data-label='{digit}']")
        page.keyboard.press("Enter")
        page.wait_for_function(f"document.querySelector('#item').dataset.item !== '{item}'")
        labeled[item] = int(digit)
    for item, digit in labeled.items():
        wait_until(lambda i=item: bool(site.get(f"/projects/{pid}/items/{i}")["current"]),
                   timeout=20, what="label stored")
        current = site.get(f"/projects/{pid}/items/{item}")["current"]
        assert current[0]["labels"] == [digit]

    page.keyboard.press("g")  # the grid shows thumbnails
    loaded = "#grid .cell img.file-image[data-loaded=true]"
    page.wait_for_selector(loaded)
    first = page.locator(loaded).first  # thumbnails arrive one by one: a loaded one
    assert first.get_attribute("src").startswith("blob:")
    assert axe_violations(page) == []
