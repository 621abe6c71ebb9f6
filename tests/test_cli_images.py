"""``activelabel import`` of images: a folder (labels from subfolders), a zip, a list."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import pytest
from sqlalchemy import func, select

from activelabel.store import Storage, create_project, create_user
from activelabel.store.models import Item
from tests.support.images import write_digit_folder
from tests.test_cli_service import Cli, backend, cli, data_dir, storage  # noqa: F401

__all__: list[str] = []


@pytest.fixture
def digits_project(storage: Storage) -> int:  # noqa: F811
    with storage.sessions() as session, session.begin():
        owner = create_user(session, "owner")
        return create_project(session, "digits", "classification", list(range(10)),
                              settings={"featurizer": "image"}, created_by=owner.id).id


def _count(storage: Storage, project_id: int) -> int:  # noqa: F811
    with storage.read_sessions() as session:
        return int(session.execute(select(func.count()).select_from(Item).where(
            Item.project_id == project_id)).scalar_one())


@pytest.mark.slow
def test_import_a_folder_a_zip_and_a_list_of_images(cli: Cli, digits_project: int,  # noqa: F811
                                                    storage: Storage, tmp_path: Path) -> None:  # noqa: F811
    paths = write_digit_folder(tmp_path / "digits", 15)
    (tmp_path / "digits" / "5" / "bad.png").write_bytes(b"not an image")
    code, out, err = cli("import", "digits", tmp_path / "digits", "--labels-from-folders",
                         "--wait")
    assert code == 0, err
    assert "15 inserted, 0 duplicates, 1 rejected" in out
    assert "15 existing labels" in out
    assert "5/bad.png: " in out
    archive = tmp_path / "more.zip"
    with zipfile.ZipFile(archive, "w") as zipped:
        for path in paths[:3]:
            zipped.write(path, f"z/{path.name}")
    code, out, err = cli("import", "digits", archive, "--images", "--wait")
    assert code == 0, err
    assert "3 inserted" in out
    listing = tmp_path / "list.jsonl"
    listing.write_text("\n".join(json.dumps({"file": str(p), "external_id": f"l{i}"})
                                 for i, p in enumerate(paths[:4])))
    code, out, err = cli("import", "digits", listing, "--images", "--column", "file", "--wait")
    assert code == 0, err
    assert "4 inserted" in out
    assert _count(storage, digits_project) == 22
    code, _, err = cli("import", "digits", tmp_path / "nothing.txt", "--images")
    assert code == 2
    assert "not a folder" in err


@pytest.mark.slow
def test_demo_images_imports_the_digits_as_png_files(cli: Cli, storage: Storage,  # noqa: F811
                                                     data_dir: Path) -> None:  # noqa: F811
    code, out, err = cli("demo", "--images", "--password", "demo-password-1")
    assert code == 0, err
    assert '"Digits demo (PNG files)" (created): 1797 items, 300 holdout items labeled' in out
    assert "done" in out
    assert len(list((data_dir / "demo-images").rglob("*.png"))) == 1797
    code, out, err = cli("demo", "--images")
    assert code == 0, err
    assert "(already there): 1797 items" in out
