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

from activelabel.store.migration_ops import replace_check

revision: str = '0010'
down_revision: str | None = '0009'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_OLD = "task IN ('classification', 'multilabel')"
_NEW = "task IN ('classification', 'multilabel', 'spans')"


def upgrade() -> None:
    replace_check('projects', 'task', _OLD, _NEW)


def downgrade() -> None:
    if op.get_bind().execute(text("SELECT count(*) FROM projects WHERE task = 'spans'")
                             ).scalar_one():
        raise RuntimeError("span projects exist: delete them (or export them) before "
                           "downgrading below revision 0010")
    replace_check('projects', 'task', _NEW, _OLD)
