"""Jobs may be of the kind ``label_check`` (the review queue's label check, run by a worker
instead of on the review request).

Only the check constraint on ``jobs.kind`` changes (see revision 0010 for how).

Revision ID: 0013
Revises: 0012
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op
from sqlalchemy import text

from activelabel.store.migration_ops import replace_check

revision: str = '0013'
down_revision: str | None = '0012'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_OLD = "kind IN ('round', 'import')"
_NEW = "kind IN ('round', 'import', 'label_check')"


def upgrade() -> None:
    replace_check('jobs', 'kind', _OLD, _NEW)


def downgrade() -> None:
    # a label check's result is derived from the labels (kept in the project's folder, the
    # review queue asks for it again): its jobs can go
    op.get_bind().execute(text("DELETE FROM jobs WHERE kind = 'label_check'"))
    replace_check('jobs', 'kind', _NEW, _OLD)
