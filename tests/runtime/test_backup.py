"""Backups: a running server's database and data files in one file, restored into a fresh data
folder with the same labels, rounds and arrays; a damaged backup and a target that already
holds projects are refused."""

from __future__ import annotations

import json
import tarfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sqlalchemy import Engine, text

from activelabel.labeling.export import export_rows
from activelabel.labeling.rounds import request_round
from activelabel.runtime import backup as backup_module
from activelabel.runtime.backup import make_backup, restore_backup
from activelabel.store import DataLocation, InvalidInput, Storage, list_rounds
from activelabel.store.db import default_url
from tests.support.processes import run_cli
from tests.support.projects import label_rows, new_project, run_job, text_rows


@pytest.fixture
def target(backend: str, request: pytest.FixtureRequest, fresh_storage: Storage,
           tmp_path: Path) -> Iterator[DataLocation]:
    """Where to restore: a new data folder, and (PostgreSQL) a new empty database whose
    search path names the same schema as the source's."""
    folder = tmp_path / "restored"
    if backend == "sqlite":
        yield DataLocation(folder.resolve(), default_url(folder))
        return
    admin: Engine = request.getfixturevalue("pg_admin")
    name = f"al_restore_{uuid.uuid4().hex[:10]}"
    with admin.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    source = fresh_storage.location.db_url
    base, _, query = source.partition("?")
    url = base.rsplit("/", 1)[0] + f"/{name}" + (f"?{query}" if query else "")
    try:
        yield DataLocation(folder.resolve(), url)
    finally:
        with admin.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def _worked_project(storage: Storage) -> int:
    seeded = new_project(storage, labels=["a", "b"], rows=text_rows(40))
    label_rows(storage, seeded, list(range(10)), ["a", "b"] * 5)
    with storage.sessions() as session, session.begin():
        rnd, _ = request_round(session, seeded.project_id, requested_by=None, reason="test")
        job_id = rnd.job_id
    assert job_id is not None
    run_job(storage, job_id)
    return seeded.project_id


def test_a_backup_restores_into_a_fresh_folder_with_everything(
        fresh_storage: Storage, target: DataLocation, tmp_path: Path) -> None:
    pid = _worked_project(fresh_storage)
    info = make_backup(fresh_storage, tmp_path / "backup.tar.gz")
    assert info.files >= 3  # the database, arrays, a model version
    restored = restore_backup(tmp_path / "backup.tar.gz", target)
    assert restored.revision == info.revision
    opened = Storage(target)
    try:
        assert list(export_rows(opened, pid)) == list(export_rows(fresh_storage, pid))
        with opened.read_sessions() as a, fresh_storage.read_sessions() as b:
            assert [r.metrics for r in list_rounds(a, pid)] == [
                r.metrics for r in list_rounds(b, pid)]
        source = fresh_storage.arrays.load(pid, "probs", mmap=False)
        copied = opened.arrays.load(pid, "probs", mmap=False)
        assert source is not None
        assert copied is not None
        assert (source == copied).all()
    finally:
        opened.close()
    with pytest.raises(InvalidInput, match="already holds projects"):
        restore_backup(tmp_path / "backup.tar.gz", target)


def test_a_damaged_backup_is_refused_and_restores_nothing(
        fresh_storage: Storage, tmp_path: Path, backend: str) -> None:
    if backend != "sqlite":
        pytest.skip("the checksum check is the same for both databases: checked on SQLite")
    _worked_project(fresh_storage)
    good = tmp_path / "good.tar.gz"
    make_backup(fresh_storage, good)
    bad = tmp_path / "bad.tar.gz"
    with tarfile.open(good, "r:gz") as src, tarfile.open(bad, "w:gz") as dst:
        for member in src.getmembers():
            data = src.extractfile(member)
            if member.name.startswith("arrays/") and member.name.endswith(".npy"):
                content = b"not the array" + (data.read() if data else b"")[13:]
                member.size = len(content)
                import io

                dst.addfile(member, io.BytesIO(content))
            else:
                dst.addfile(member, data)
    folder = tmp_path / "restored"
    with pytest.raises(InvalidInput, match="damaged"):
        restore_backup(bad, DataLocation(folder.resolve(), default_url(folder)))
    assert not (folder / "arrays").exists()
    with pytest.raises(InvalidInput, match="exists"):
        make_backup(fresh_storage, good)


@pytest.mark.slow
def test_backup_and_restore_from_the_command_line(tmp_path: Path) -> None:
    data = tmp_path / "data"
    assert run_cli("demo", "--password", "pw-123456", data_dir=data, timeout=180
                   ).returncode == 0
    out = tmp_path / "demo.tar.gz"
    made = run_cli("backup", "--out", out, data_dir=data)
    assert made.returncode == 0, made.stderr
    assert "sqlite database" in made.stdout
    again = run_cli("restore", out, data_dir=tmp_path / "copy")
    assert again.returncode == 0, again.stderr
    listed = run_cli("project", "list", data_dir=tmp_path / "copy")
    assert "Digits demo" in listed.stdout
    refused = run_cli("restore", out, data_dir=tmp_path / "copy")
    assert refused.returncode == 2
    assert "already holds projects" in refused.stderr


def _data_file(storage: Storage, folder: str, suffix: str) -> Path:
    found = sorted(p for p in (storage.location.data_dir / folder).rglob(f"*{suffix}")
                   if p.is_file())
    assert found, f"no {suffix} file under {folder}/"
    return found[0]


def test_a_file_the_server_replaces_during_the_backup_goes_in_whole(
        fresh_storage: Storage, tmp_path: Path, backend: str,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A round replaces its arrays (a new file renamed over the old): one replaced between the
    backup's checksum and its copy made a backup that restore refused as damaged."""
    if backend != "sqlite":
        pytest.skip("the data files are the same for both databases: checked on SQLite")
    pid = _worked_project(fresh_storage)
    before = fresh_storage.arrays.load(pid, "probs", mmap=False)
    assert before is not None
    probs = _data_file(fresh_storage, "arrays", "probs.npy")
    original = tarfile.TarFile.gettarinfo

    def replaced_first(archive: tarfile.TarFile, name: Any = None, arcname: Any = None,
                       fileobj: Any = None) -> tarfile.TarInfo:
        if str(arcname).endswith(probs.name) and probs.exists():
            newer = probs.with_name(probs.name + ".new")
            with newer.open("wb") as handle:
                np.save(handle, before + 1.0)
            newer.replace(probs)  # what the server does: write aside, rename over
        return original(archive, name, arcname, fileobj)

    monkeypatch.setattr(tarfile.TarFile, "gettarinfo", replaced_first)
    out = tmp_path / "backup.tar.gz"
    make_backup(fresh_storage, out)
    monkeypatch.undo()
    folder = tmp_path / "restored"
    location = DataLocation(folder.resolve(), default_url(folder))
    restore_backup(out, location)
    opened = Storage(location)
    try:
        copied = opened.arrays.load(pid, "probs", mmap=False)
        assert copied is not None
        assert (copied == before).all()  # the version the backup opened, whole
    finally:
        opened.close()


def test_a_file_the_server_removes_during_the_backup_is_left_out_and_named(
        fresh_storage: Storage, tmp_path: Path, backend: str,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A purge removes a span model's file, a deleted project its arrays: a file listed and
    then removed is left out (it made the backup fail), named in the manifest and the answer."""
    if backend != "sqlite":
        pytest.skip("the data files are the same for both databases: checked on SQLite")
    pid = _worked_project(fresh_storage)
    model = _data_file(fresh_storage, "models", "")
    listed = backup_module._files

    def listed_then_removed(data_dir: Path) -> Iterator[Path]:
        files = list(listed(data_dir))
        model.unlink()
        yield from files

    monkeypatch.setattr(backup_module, "_files", listed_then_removed)
    out = tmp_path / "backup.tar.gz"
    info = make_backup(fresh_storage, out)
    name = str(model.relative_to(fresh_storage.location.data_dir))
    assert info.skipped == (name,)
    with tarfile.open(out, "r:gz") as archive:
        manifest = json.loads(archive.extractfile("manifest.json").read())  # type: ignore[union-attr]
        assert name not in archive.getnames()
    assert manifest["skipped"] == [name]
    assert name not in manifest["files"]
    folder = tmp_path / "restored"
    location = DataLocation(folder.resolve(), default_url(folder))
    restore_backup(out, location)
    opened = Storage(location)
    try:
        assert list(export_rows(opened, pid)) == list(export_rows(fresh_storage, pid))
    finally:
        opened.close()


def test_a_backup_that_fails_leaves_no_file_behind(
        fresh_storage: Storage, tmp_path: Path, backend: str,
        monkeypatch: pytest.MonkeyPatch) -> None:
    if backend != "sqlite":
        pytest.skip("the archive is written the same way for both databases: checked on SQLite")
    _worked_project(fresh_storage)
    calls = []
    add = backup_module._add_file

    def disk_full(archive: tarfile.TarFile, name: str, path: Path) -> str | None:
        calls.append(name)
        if len(calls) == 3:
            raise OSError(28, "No space left on device")
        return add(archive, name, path)

    monkeypatch.setattr(backup_module, "_add_file", disk_full)
    out = tmp_path / "backups"
    out.mkdir()
    with pytest.raises(OSError, match="No space"):
        make_backup(fresh_storage, out / "backup.tar.gz")
    assert list(out.iterdir()) == []
