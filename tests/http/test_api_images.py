"""Images over the API: folder, zip and list imports (owners only, folders only under the
server's roots), the image and its thumbnail (members only, with type and caching headers)."""

from __future__ import annotations

import io
import json
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from PIL import Image

from activelabel.http.app import create_app
from activelabel.http.config import ServerSettings
from activelabel.store import Storage
from tests.support.api import Api, Person, assert_error
from tests.support.images import digit_png, digits, write_digit_folder
from tests.support.projects import run_job


@pytest.fixture(scope="module")
def roots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("images")
    write_digit_folder(root / "digits", 12)
    (root / "digits" / "7" / "bad.png").write_bytes(b"nope")
    return root


@pytest.fixture(scope="module")
def api(api_storage: Storage, roots: Path) -> Iterator[Api]:
    settings = ServerSettings(project_creators="everyone", image_roots=str(roots))
    with TestClient(create_app(storage=api_storage, settings=settings),
                    raise_server_exceptions=False) as client:
        yield Api(client, api_storage)


def _job(api: Api, answer: object) -> dict[str, object]:
    assert answer.status_code == 202, answer.text  # type: ignore[attr-defined]
    return run_job(api.storage, int(answer.json()["job_id"]))  # type: ignore[attr-defined]


def _items(api: Api, owner: Person, pid: int) -> dict[str, dict[str, object]]:
    page = api.get(f"/projects/{pid}/items", owner, params={"limit": 1000}).json()
    return {i["external_id"]: i for i in page["items"]}


def test_folder_import_then_image_and_thumbnail(api: Api, roots: Path) -> None:
    owner = api.person("owner")
    pid = api.project(owner, labels=list(range(10)), n_items=1)
    result = _job(api, api.post(f"/projects/{pid}/images/folder", owner, json={
        "path": str(roots / "digits"), "labels_from_folders": True}))
    assert result["inserted"] == 12
    assert result["labels"] == 12
    assert [r["reason"].split(":")[0] for r in result["rejected"]] == ["7/bad.png"]
    item = _items(api, owner, pid)["0/digit_0000.png"]
    url = f"/projects/{pid}/items/{item['id']}"
    image = api.get(url + "/image", owner)
    assert image.status_code == 200
    assert image.headers["content-type"] == "image/png"
    assert image.content == (roots / "digits" / "0" / "digit_0000.png").read_bytes()
    assert image.headers["cache-control"].startswith("private")
    etag = image.headers["etag"]
    assert api.get(url + "/image", owner, headers={"If-None-Match": etag}).status_code == 304
    thumb = api.get(url + "/thumbnail", owner, params={"size": 64})
    assert thumb.status_code == 200
    assert thumb.headers["content-type"] == "image/webp"
    assert Image.open(io.BytesIO(thumb.content)).size == (64, 64)
    assert api.get(url + "/thumbnail", owner, params={"size": 65}).status_code == 400
    # Members see it; others do not; an item without a stored image has none.
    annotator = api.member(pid, "annotator")
    assert api.get(url + "/image", annotator).status_code == 200
    assert api.get(url + "/thumbnail", annotator).status_code == 200
    assert_error(api.get(url + "/image", api.person("stranger")), 404, "not_found")
    assert api.get(url + "/image").status_code == 401
    text_item = _items(api, owner, pid)["x0"]
    assert_error(api.get(f"/projects/{pid}/items/{text_item['id']}/image", owner), 404,
                 "not_found")
    other = api.project(owner, labels=list(range(10)))
    assert_error(api.get(f"/projects/{other}/items/{item['id']}/image", owner), 404,
                 "not_found")
    # Importing is the owners'.
    answer = api.post(f"/projects/{pid}/images/folder", annotator,
                      json={"path": str(roots / "digits")})
    assert_error(answer, 403, "forbidden")


def test_folder_refusals(api: Api, api_storage: Storage, roots: Path, tmp_path: Path) -> None:
    owner = api.person("owner")
    pid = api.project(owner, labels=list(range(10)))
    outside = api.post(f"/projects/{pid}/images/folder", owner, json={"path": str(tmp_path)})
    assert "outside" in assert_error(outside, 403, "forbidden")["message"]
    dotted = api.post(f"/projects/{pid}/images/folder", owner,
                      json={"path": f"{roots}/../{tmp_path.name}"})
    assert_error(dotted, 403, "forbidden")
    relative = api.post(f"/projects/{pid}/images/folder", owner, json={"path": "digits"})
    assert "absolute" in relative.text
    assert relative.status_code == 400
    missing = api.post(f"/projects/{pid}/images/folder", owner,
                       json={"path": str(roots / "missing")})
    assert missing.status_code == 400
    # A server with no roots (the default) reads no folder at all.
    with TestClient(create_app(storage=api_storage, settings=ServerSettings(
            project_creators="everyone")), raise_server_exceptions=False) as client:
        plain = Api(client, api_storage)
        refused = plain.post(f"/projects/{pid}/images/folder", owner,
                             json={"path": str(roots / "digits")})
        message = assert_error(refused, 403, "forbidden")["message"]
        assert "ACTIVELABEL_IMAGE_ROOTS" in message


def test_zip_and_list_uploads(api: Api, roots: Path) -> None:
    owner = api.person("owner")
    pid = api.project(owner, labels=list(range(10)))
    images, targets = digits()
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as zipped:
        for i in range(20, 25):
            zipped.writestr(f"{int(targets[i])}/z{i}.png", digit_png(images[i]))
        zipped.writestr("../slip.png", digit_png(images[0]))
    result = _job(api, api.post(f"/projects/{pid}/images/zip", owner, files={
        "file": ("d.zip", archive.getvalue(), "application/zip")},
        data={"labels_from_folders": "true", "split": "holdout"}))
    assert result["inserted"] == 5
    assert result["labels"] == 5
    assert "outside the archive" in result["rejected"][0]["reason"]
    listing = "\n".join(json.dumps({"image": str(p), "label": p.parent.name})
                        for p in sorted((roots / "digits").glob("1/*.png")))
    listed = _job(api, api.post(f"/projects/{pid}/images/list", owner, files={
        "file": ("l.jsonl", listing.encode(), "application/json")}))
    assert listed["inserted"] >= 1
    assert listed["rejected_count"] == 0
    wrong = api.post(f"/projects/{pid}/images/zip", owner, files={
        "file": ("d.csv", b"a,b\n", "text/csv")})
    assert "zip" in assert_error(wrong, 400, "invalid_input")["message"]
    assert api.post(f"/projects/{pid}/images/zip", owner, json={}).status_code == 400
