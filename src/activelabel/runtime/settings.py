"""Where a server keeps its data: flags, then environment variables, then a per-user folder.

``ACTIVELABEL_DATA_DIR`` and ``ACTIVELABEL_DB`` are read here and nowhere else; every command
(``serve``, ``worker``, ``demo``, ...) resolves its :class:`~activelabel.store.DataLocation`
with :func:`resolve_location`.
"""

from __future__ import annotations

import os
from pathlib import Path

from ..store.db import default_url
from ..store.storage import DataLocation, Storage

__all__ = ["ENV_DATA_DIR", "ENV_DB", "open_storage", "resolve_location", "user_data_dir"]

ENV_DATA_DIR = "ACTIVELABEL_DATA_DIR"
ENV_DB = "ACTIVELABEL_DB"


def user_data_dir() -> Path:
    """``$XDG_DATA_HOME/activelabel``, else ``~/.local/share/activelabel``."""
    base = os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share"
    return Path(base) / "activelabel"


def resolve_location(data_dir: str | Path | None = None, db: str | None = None) -> DataLocation:
    """Flag values first, then ``ACTIVELABEL_DATA_DIR`` / ``ACTIVELABEL_DB``, then defaults
    (the per-user folder, SQLite inside it). The folder is created."""
    folder = data_dir or os.environ.get(ENV_DATA_DIR) or user_data_dir()
    path = Path(folder).expanduser().resolve()
    if path.exists() and not path.is_dir():
        raise ValueError(f"data directory {path} is a file: pass a folder with --data-dir")
    path.mkdir(parents=True, exist_ok=True)
    url = db or os.environ.get(ENV_DB) or default_url(path)
    return DataLocation(data_dir=path, db_url=url)


def open_storage(data_dir: str | Path | None = None, db: str | None = None) -> Storage:
    """The storage of :func:`resolve_location` opened (and migrated)."""
    return Storage(resolve_location(data_dir, db))
