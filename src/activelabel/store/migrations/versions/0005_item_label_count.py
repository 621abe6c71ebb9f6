"""Items count their current labels, and the queue has an index of unlabeled items.

Claiming a task used to count each candidate's current labels in correlated subqueries and to
walk past every finished item in queue order, so it slowed down with every label. The count
now lives on the item (kept by every revision written) and items nobody has labeled have a
partial index: with an overlap of 1 the queue reads only those.

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0005'
down_revision: str | None = '0004'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

#: Current revisions (nobody supersedes them) that carry a label, per item.
_BACKFILL = """
UPDATE items SET n_labels = (
    SELECT count(*) FROM annotations AS a
    WHERE a.item_id = items.id AND a.labels IS NOT NULL
      AND NOT EXISTS (SELECT 1 FROM annotations AS b WHERE b.supersedes_id = a.id))
WHERE EXISTS (SELECT 1 FROM annotations AS c WHERE c.item_id = items.id)
"""


def upgrade() -> None:
    op.add_column('items', sa.Column('n_labels', sa.Integer(), server_default=sa.text('0'),
                                     nullable=False))
    op.execute(_BACKFILL)
    op.create_index('ix_items_unlabeled_queue', 'items', ['project_id', 'queue_rank', 'row'],
                    unique=False, sqlite_where=sa.text('n_labels = 0'),
                    postgresql_where=sa.text('n_labels = 0'))


def downgrade() -> None:
    op.drop_index('ix_items_unlabeled_queue', table_name='items')
    op.drop_column('items', 'n_labels')  # native on SQLite >= 3.35 (no table rebuild)
