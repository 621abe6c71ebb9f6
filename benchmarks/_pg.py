"""A throwaway PostgreSQL schema for a benchmark run: created, used by URL, dropped."""

from __future__ import annotations

import uuid

from sqlalchemy import create_engine, text

__all__ = ["drop_schema", "pg_schema"]


def pg_schema(url: str) -> tuple[str, str]:
    """A new schema on the PostgreSQL server of ``url``; (URL using it, schema name)."""
    schema = f"al_bench_{uuid.uuid4().hex[:10]}"
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    engine.dispose()
    sep = "&" if "?" in url else "?"
    return f"{url}{sep}options=-csearch_path%3D{schema}", schema


def drop_schema(url: str, schema: str) -> None:
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
    engine.dispose()
