"""Backups of a whole server's data, and restoring one into a fresh data folder.

A backup is one ``.tar.gz``: ``manifest.json`` (what it holds: the version, the database kind
and migration revision, when, a SHA-256 per file), the database (SQLite: a consistent copy
made with SQLite's online backup API while the server runs; PostgreSQL: ``pg_dump``'s custom
format, of the schema the server uses) and the data folder's files that are not in the
database: arrays (features, probabilities), model versions, snapshots, attached simulations.
Upload spools (``uploads/``) are transient and left out.

The server keeps running meanwhile: each file is opened once and its checksum taken from the
bytes written into the archive, so a file the server replaces meanwhile (it writes a new file
and renames it over the old) goes in whole, old or new, and matches its checksum; a file it
removes after the listing (a purge, a deleted project) is left out and named in the manifest's
``skipped``.

Restoring checks every file against the manifest, refuses a target that already holds
projects, restores the database (SQLite: the file; PostgreSQL: ``pg_restore`` into the
target database, which must be empty), puts the files back, and migrates the schema forward
when the backup came from an older version.
"""

from __future__ import annotations

import hashlib
import io
import json
import shutil
import sqlite3
import subprocess
import tarfile
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from sqlalchemy.engine import make_url

from .. import __version__
from ..store import DataLocation, InvalidInput, Storage, create_engine_for, migrate
from ..store.db import backend_of, holds_projects, schema_revision

__all__ = ["FOLDERS", "BackupInfo", "make_backup", "restore_backup"]

#: Folders of the data folder kept in a backup (beside the database).
FOLDERS = ("arrays", "models", "snapshots", "simulations")
MANIFEST = "manifest.json"
SQLITE_FILE = "database.sqlite"
PG_FILE = "database.pgdump"


@dataclass(frozen=True)
class BackupInfo:
    path: Path
    database: str
    revision: str | None
    files: int
    bytes: int
    #: Files listed but removed by the server before they could be read (make_backup only).
    skipped: tuple[str, ...] = ()


class _HashingReader(io.RawIOBase):
    """A binary file read through, every byte read fed to ``digest``."""

    def __init__(self, handle: io.BufferedReader, digest: Any) -> None:
        self._handle, self._digest = handle, digest

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        chunk = self._handle.read(size)
        self._digest.update(chunk)
        return chunk


def _add_file(archive: tarfile.TarFile, name: str, path: Path) -> str | None:
    """Add ``path`` as ``name``: one open, so the bytes archived are the ones hashed even when
    the file is replaced meanwhile; its SHA-256, or None when it is gone."""
    try:
        handle = path.open("rb")
    except FileNotFoundError:
        return None
    with handle:
        info = archive.gettarinfo(arcname=name, fileobj=handle)  # the open file's size
        digest = hashlib.sha256()
        archive.addfile(info, _HashingReader(handle, digest))
    return digest.hexdigest()


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def _pg_args(url: str) -> tuple[list[str], str | None]:
    """libpq connection arguments of a SQLAlchemy PostgreSQL URL, and the schema its
    ``search_path`` option names (None: the default)."""
    parsed = make_url(url)
    args = ["--host", parsed.host or "localhost", "--port", str(parsed.port or 5432),
            "--username", parsed.username or "postgres", "--dbname", parsed.database or ""]
    options = parse_qs(urlsplit(url).query).get("options", [""])[0]
    schema = None
    for part in unquote(options).split():
        if part.startswith("-csearch_path="):
            schema = part.split("=", 1)[1].split(",")[0]
    return args, schema


def _pg_env(url: str) -> dict[str, str]:
    import os

    password = make_url(url).password
    env = dict(os.environ)
    if password:
        env["PGPASSWORD"] = str(password)
    return env


def _run(command: list[str], env: dict[str, str] | None = None) -> None:
    done = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
    if done.returncode != 0:
        tool = Path(command[0]).name
        raise InvalidInput(f"{tool} failed: {done.stderr.strip()[:500]}")


def _dump_database(storage: Storage, folder: Path) -> str:
    """The database into ``folder``; its file name."""
    url = storage.location.db_url
    if backend_of(url) == "sqlite":
        source_path = make_url(url).database
        target = folder / SQLITE_FILE
        source = sqlite3.connect(f"file:{source_path}?mode=ro", uri=True)
        copy = sqlite3.connect(target)
        try:
            source.backup(copy)  # consistent while others write
        finally:
            copy.close()
            source.close()
        return SQLITE_FILE
    if shutil.which("pg_dump") is None:
        raise InvalidInput("pg_dump is not installed: install PostgreSQL's client tools "
                           "(Debian: postgresql-client) of the server's major version")
    args, schema = _pg_args(url)
    _run(["pg_dump", "--format=custom", "--no-owner", "--no-privileges",
          *(["--schema", schema] if schema else []), *args,
          "--file", str(folder / PG_FILE)], env=_pg_env(url))
    return PG_FILE


def _files(data_dir: Path) -> Iterator[Path]:
    for name in FOLDERS:
        root = data_dir / name
        if root.is_dir():
            yield from sorted(p for p in root.rglob("*") if p.is_file()
                              and not p.name.endswith(".tmp"))


def make_backup(storage: Storage, out: Path, *, overwrite: bool = False) -> BackupInfo:
    """Write a backup of ``storage`` (database and data files) to ``out`` (a .tar.gz)."""
    if out.exists() and not overwrite:
        raise InvalidInput(f"{out} exists: pass --force to overwrite it, or another --out")
    location = storage.location
    with tempfile.TemporaryDirectory(prefix="activelabel-backup-") as tmp:
        folder = Path(tmp)
        db_file = _dump_database(storage, folder)
        entries = {db_file: folder / db_file}
        entries.update({str(p.relative_to(location.data_dir)): p
                        for p in _files(location.data_dir)})
        digests: dict[str, str] = {}
        skipped: list[str] = []
        partial = out.with_name(out.name + ".part")
        try:
            with tarfile.open(partial, "w:gz") as archive:
                for name, path in entries.items():
                    digest = _add_file(archive, name, path)
                    if digest is None:
                        skipped.append(name)
                    else:
                        digests[name] = digest
                manifest: dict[str, Any] = {
                    "activelabel": __version__, "database": backend_of(location.db_url),
                    "database_file": db_file, "revision": schema_revision(location.db_url),
                    "created_at": datetime.now(timezone.utc).isoformat(),
                    "files": digests, "skipped": skipped}
                data = json.dumps(manifest, indent=1, sort_keys=True).encode()
                info = tarfile.TarInfo(MANIFEST)
                info.size, info.mtime = len(data), int(datetime.now(timezone.utc).timestamp())
                archive.addfile(info, io.BytesIO(data))
        except BaseException:
            partial.unlink(missing_ok=True)  # no half-written backup left behind
            raise
        partial.replace(out)
    return BackupInfo(out, manifest["database"], manifest["revision"], len(digests),
                      out.stat().st_size, tuple(skipped))


def _read_manifest(archive: tarfile.TarFile) -> dict[str, Any]:
    try:
        member = archive.extractfile(MANIFEST)
    except KeyError:
        member = None
    if member is None:
        raise InvalidInput("not an activelabel backup: no manifest.json inside")
    manifest: dict[str, Any] = json.loads(member.read())
    return manifest


def restore_backup(backup: Path, location: DataLocation) -> BackupInfo:
    """Restore ``backup`` into ``location`` (a fresh data folder and an empty database)."""
    if not backup.is_file():
        raise InvalidInput(f"no backup file {backup}")
    if holds_projects(location.db_url):
        raise InvalidInput(f"the database at {location.safe_db_url()} already holds projects: "
                           "restore into a new data folder (and an empty database)")
    with tempfile.TemporaryDirectory(prefix="activelabel-restore-") as tmp, \
            tarfile.open(backup, "r:gz") as archive:
        manifest = _read_manifest(archive)
        folder = Path(tmp)
        archive.extractall(folder, filter="data")
        for name, digest in manifest["files"].items():
            path = folder / name
            if not path.is_file() or _sha256(path) != digest:
                raise InvalidInput(f"the backup is damaged: {name} does not match its "
                                   "checksum; nothing was restored")
        kind = backend_of(location.db_url)
        if kind != manifest["database"]:
            raise InvalidInput(f"the backup holds a {manifest['database']} database; restore "
                               f"it into one of the same kind (--db), not {kind}")
        _restore_database(folder / manifest["database_file"], location)
        for name in manifest["files"]:
            if name == manifest["database_file"]:
                continue
            target = location.data_dir / name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(folder / name, target)
    engine = create_engine_for(location.db_url)
    try:
        migrate(engine)  # a backup of an older version: its schema moves forward
    finally:
        engine.dispose()
    return BackupInfo(backup, manifest["database"], manifest.get("revision"),
                      len(manifest["files"]), backup.stat().st_size)


def _restore_database(dump: Path, location: DataLocation) -> None:
    url = location.db_url
    if backend_of(url) == "sqlite":
        target = Path(str(make_url(url).database))
        target.parent.mkdir(parents=True, exist_ok=True)
        for suffix in ("", "-wal", "-shm"):
            Path(f"{target}{suffix}").unlink(missing_ok=True)
        shutil.copy2(dump, target)
        return
    if shutil.which("pg_restore") is None:
        raise InvalidInput("pg_restore is not installed: install PostgreSQL's client tools")
    args, _ = _pg_args(url)
    _run(["pg_restore", "--no-owner", "--no-privileges", "--exit-on-error", *args,
          str(dump)], env=_pg_env(url))
