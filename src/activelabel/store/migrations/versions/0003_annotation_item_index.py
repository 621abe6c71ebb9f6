"""Index annotations by (item, annotator): the queue counts each candidate item's labels.

Without it every count of an item's current labels scans the annotations table (the partial
chain-root index only covers chain roots), so claiming a task slowed down with every label.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = '0003'
down_revision: str | None = '0002'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index(op.f('ix_annotations_item_id_annotator_id'), 'annotations',
                    ['item_id', 'annotator_id'], unique=False)


def downgrade() -> None:
    op.drop_index(op.f('ix_annotations_item_id_annotator_id'), table_name='annotations')
