"""The opened storage of a data folder: the migrated database and the array store beside it.

A :class:`DataLocation` names where the data lives (a folder and a database URL); a
:class:`Storage` is that location opened: an engine (migrated on open), session factories and
the per-project :class:`~activelabel.store.arrays.ArrayStore`. The server's API processes, its
workers and the command line each open one and share nothing else.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import Engine, text
from sqlalchemy.orm import Session, sessionmaker

from .arrays import ArrayStore
from .db import create_engine_for, migrate, session_factory

__all__ = ["DataLocation", "Storage"]


@dataclass(frozen=True)
class DataLocation:
    """Where a server keeps its data: ``data_dir`` (arrays, models, uploads, snapshots) and
    the database at ``db_url`` (by default SQLite inside ``data_dir``)."""

    data_dir: Path
    db_url: str

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

    def __init__(self, location: DataLocation, *, run_migrations: bool = True) -> None:
        self.location = location
        self.engine: Engine = create_engine_for(location.db_url)
        if run_migrations:
            migrate(self.engine)
        self.sessions: sessionmaker[Session] = session_factory(self.engine)
        #: Sessions for long reads (a round loading labels): never take SQLite's write lock.
        self.read_sessions: sessionmaker[Session] = session_factory(self.engine, readonly=True)
        self.arrays = ArrayStore(location.arrays_dir)
        for folder in (location.uploads_dir, location.models_dir):
            folder.mkdir(parents=True, exist_ok=True)

    def ping(self) -> None:
        """One round trip to the database; raises SQLAlchemyError when it does not answer."""
        with self.read_sessions() as session:
            session.execute(text("SELECT 1"))

    def close(self) -> None:
        self.engine.dispose()
