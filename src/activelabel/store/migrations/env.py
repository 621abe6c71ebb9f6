"""Alembic environment: runs on the connection handed over by ``activelabel.store.db.migrate``."""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine

from activelabel.store.models import Base

config = context.config
target_metadata = Base.metadata


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is None:  # `alembic -x url=...` from a shell, for writing new revisions
        url = context.get_x_argument(as_dictionary=True).get("url")
        if not url:
            raise SystemExit("pass -x url=sqlite:///path/to/activelabel.db (or a PostgreSQL URL)")
        from activelabel.store.db import create_engine_for

        engine = create_engine_for(url) if url else create_engine(url)
        with engine.begin() as conn:
            _run(conn)
        return
    _run(connection)


def _run(connection: object) -> None:
    context.configure(
        connection=connection,  # type: ignore[arg-type]
        target_metadata=target_metadata,
        render_as_batch=True,  # SQLite alters tables by copying them
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    raise SystemExit("offline (--sql) migrations are not supported; run them on a database")
run_migrations_online()
