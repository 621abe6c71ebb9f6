"""Every item has a place in the queue: a seeded random key written at import (the order
before the first model, and what audit draws sample by), and the time an item was drawn
for an audit (a uniformly random task whose label measures the model).

Existing items get a key from a multiplicative hash of their row and id; items without a
rank take their key as rank, so nothing is handed out in file order.

Revision ID: 0008
Revises: 0007
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0008'
down_revision: str | None = '0007'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

#: 2**50 + a 40-bit hash of (row, id): activelabel.store.queue.RANDOM_BASE and key width.
_BACKFILL = """
UPDATE items SET queue_key = 1125899906842624 +
    ((CAST(row AS BIGINT) * 2654435761 + CAST(id AS BIGINT) * 40503) % 1099511627776)
"""


def upgrade() -> None:
    op.add_column('items', sa.Column('queue_key', sa.Float(), nullable=True))
    op.add_column('items', sa.Column('audit_drawn_at', sa.DateTime(timezone=True),
                                     nullable=True))
    op.execute(_BACKFILL)
    op.execute("UPDATE items SET queue_rank = queue_key WHERE queue_rank IS NULL")
    op.create_index('ix_items_audit_draw', 'items', ['project_id', 'queue_key'],
                    unique=False, sqlite_where=sa.text('n_labels = 0'),
                    postgresql_where=sa.text('n_labels = 0'))


def downgrade() -> None:
    # 0007 reads any queue_rank as "picked by a round": the ranks behind the batch (from
    # 2**40) and the import keys (from 2**50) go back to none.
    op.execute("UPDATE items SET queue_rank = NULL WHERE queue_rank >= 1099511627776")
    op.drop_index('ix_items_audit_draw', table_name='items')
    op.drop_column('items', 'audit_drawn_at')
    op.drop_column('items', 'queue_key')
