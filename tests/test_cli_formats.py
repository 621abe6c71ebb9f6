"""``activelabel import`` of a Label Studio export and ``activelabel export`` in the tool
formats, in process."""

from __future__ import annotations

import json
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from activelabel.cli import main
from activelabel.runtime.settings import resolve_location
from activelabel.store import Storage, create_project, create_user
from tests.support.databases import BACKENDS
from tests.support.projects import Seeded, label_rows

DATA = Path(__file__).resolve().parent / "data" / "formats"


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def _cli(capsys: pytest.CaptureFixture[str], storage: Storage, *args: str | Path
         ) -> tuple[int, str, str]:
    location = storage.location
    capsys.readouterr()
    code = main([*map(str, args), "--data-dir", str(location.data_dir), "--db", location.db_url])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def storage(db_url: str, tmp_path: Path) -> Iterator[Storage]:
    opened = Storage(resolve_location(tmp_path / "data", db_url))
    yield opened
    opened.close()


@pytest.mark.slow
def test_import_a_label_studio_export_and_export_every_format(
        storage: Storage, capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    with storage.sessions() as session, session.begin():
        owner = create_user(session, "owner")
        session.flush()
        pid = create_project(session, "reviews", "classification", ["Positive", "Negative"],
                             created_by=owner.id).id
    code, out, err = _cli(capsys, storage, "import", "reviews",
                          DATA / "labelstudio_export.json", "--wait")
    assert code == 0, err
    assert "done: 3 inserted" in out, out
    label_rows(storage, Seeded(pid, owner.id), [0, 1], ["Positive", "Negative"])
    for name, fmt in (("tasks.json", "labelstudio"), ("dataset.zip", "huggingface"),
                      ("lines.jsonl", "spacy")):
        args: list[str | Path] = ["export", "reviews", "--out", tmp_path / name]
        if fmt == "spacy":
            args += ["--format", "spacy"]
        code, out, err = _cli(capsys, storage, *args)
        assert code == 0, err
        assert f"({fmt}," in out
    tasks = json.loads((tmp_path / "tasks.json").read_text())
    # The file's own labels came in (101: two annotators, 105: one; 102's was skipped), beside
    # the two labels given here.
    assert [t["meta"]["external_id"] for t in tasks] == ["101", "102", "105"]
    assert [len(t["annotations"]) for t in tasks] == [3, 1, 1]
    with zipfile.ZipFile(tmp_path / "dataset.zip") as bundle:
        assert "README.md" in bundle.namelist()
    lines = [json.loads(x) for x in (tmp_path / "lines.jsonl").read_text().splitlines()]
    assert [x["label"] for x in lines] == ["Positive", "Negative", "Negative"]  # by majority
