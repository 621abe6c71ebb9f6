"""Projects may have the task ``spans`` (named entities: labels are character spans).

Only the check constraint on ``projects.task`` changes. PostgreSQL drops and re-creates it.
SQLite keeps constraints in the table's CREATE statement: the statement is rewritten in
place (SQLite's documented procedure for changes that leave the stored rows valid), since
copying the projects table would fire the cascades of every table that refers to it.

Revision ID: 0010
Revises: 0009
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op
from sqlalchemy import text

revision: str = '0010'
down_revision: str | None = '0009'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_OLD = "task IN ('classification', 'multilabel')"
_NEW = "task IN ('classification', 'multilabel', 'spans')"


def _sqlite_rewrite(before: str, after: str) -> None:
    conn = op.get_bind()
    sql = conn.execute(text("SELECT sql FROM sqlite_master WHERE type = 'table' AND "
                            "name = 'projects'")).scalar_one()
    if before not in sql:
        raise RuntimeError(f"projects table has no constraint {before!r} to change: {sql}")
    version = int(conn.execute(text("PRAGMA schema_version")).scalar_one())
    conn.execute(text("PRAGMA writable_schema = ON"))
    conn.execute(text("UPDATE sqlite_master SET sql = :sql WHERE type = 'table' AND "
                      "name = 'projects'"), {"sql": sql.replace(before, after)})
    conn.execute(text(f"PRAGMA schema_version = {version + 1}"))
    conn.execute(text("PRAGMA writable_schema = OFF"))


def _change(before: str, after: str) -> None:
    if op.get_bind().dialect.name == "sqlite":
        _sqlite_rewrite(before, after)
        return
    op.drop_constraint(op.f('ck_projects_task'), 'projects', type_='check')
    op.create_check_constraint(op.f('ck_projects_task'), 'projects', after)


def upgrade() -> None:
    _change(_OLD, _NEW)


def downgrade() -> None:
    if op.get_bind().execute(text("SELECT count(*) FROM projects WHERE task = 'spans'")
                             ).scalar_one():
        raise RuntimeError("span projects exist: delete them (or export them) before "
                           "downgrading below revision 0010")
    _change(_NEW, _OLD)
