"""Rounds record the newest revision they read, so "labels since the last round" is cheap.

Counting every label of the project after each annotation (to decide when the next round is
due) grew with the labels; counting only the revisions after the round's watermark does not.
Rounds finished before this migration have no watermark: for them the count falls back to
all labels minus the labels the round used.

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0004'
down_revision: str | None = '0003'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column('rounds', sa.Column('label_watermark', sa.Integer(), nullable=True))


def downgrade() -> None:
    op.drop_column('rounds', 'label_watermark')  # native on SQLite >= 3.35 (no table rebuild)
