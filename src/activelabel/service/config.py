"""Where the service keeps its data: flags, then environment variables, then a per-user folder."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from ..store import ArrayStore, create_engine_for, migrate, session_factory
from ..store.db import default_url

ENV_DATA_DIR = "ACTIVELABEL_DATA_DIR"
ENV_DB = "ACTIVELABEL_DB"


def user_data_dir() -> Path:
    """``$XDG_DATA_HOME/activelabel``, else ``~/.local/share/activelabel``."""
    base = os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share"
    return Path(base) / "activelabel"


@dataclass(frozen=True)
class Settings:
    """Resolved storage locations. ``db_url`` is SQLite inside ``data_dir`` unless given."""

    data_dir: Path
    db_url: str

    @classmethod
    def resolve(cls, data_dir: str | Path | None = None, db: str | None = None) -> Settings:
        """Flag values first, then ``ACTIVELABEL_DATA_DIR`` / ``ACTIVELABEL_DB``, then defaults."""
        folder = data_dir or os.environ.get(ENV_DATA_DIR) or user_data_dir()
        path = Path(folder).expanduser().resolve()
        if path.exists() and not path.is_dir():
            raise ValueError(f"data directory {path} is a file: pass a folder with --data-dir")
        path.mkdir(parents=True, exist_ok=True)
        url = db or os.environ.get(ENV_DB) or default_url(path)
        return cls(data_dir=path, db_url=url)

    @property
    def arrays_dir(self) -> Path:
        return self.data_dir / "arrays"

    @property
    def uploads_dir(self) -> Path:
        return self.data_dir / "uploads"

    @property
    def models_dir(self) -> Path:
        return self.data_dir / "models"

    def safe_db_url(self) -> str:
        """The database URL with any password hidden, for printing."""
        head, sep, tail = self.db_url.partition("://")
        if "@" in tail and ":" in tail.split("@", 1)[0]:
            user = tail.split("@", 1)[0].split(":", 1)[0]
            return f"{head}{sep}{user}:***@{tail.split('@', 1)[1]}"
        return self.db_url


class Storage:
    """An opened, migrated database plus the array store: what the API, worker and CLI share."""

    def __init__(self, settings: Settings, *, run_migrations: bool = True) -> None:
        self.settings = settings
        self.engine: Engine = create_engine_for(settings.db_url)
        if run_migrations:
            migrate(self.engine)
        self.sessions: sessionmaker[Session] = session_factory(self.engine)
        #: Sessions for long reads (a round loading labels): never take SQLite's write lock.
        self.read_sessions: sessionmaker[Session] = session_factory(self.engine, readonly=True)
        self.arrays = ArrayStore(settings.arrays_dir)
        for folder in (settings.uploads_dir, settings.models_dir):
            folder.mkdir(parents=True, exist_ok=True)

    def close(self) -> None:
        self.engine.dispose()
