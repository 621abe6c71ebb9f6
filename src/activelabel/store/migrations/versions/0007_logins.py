"""Logins that end and are throttled: tokens may expire (at a time, or when unused for a
while), and wrong passwords are kept for a window so that repeated ones can be slowed down.

Revision ID: 0007
Revises: 0006
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0007'
down_revision: str | None = '0006'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column('api_tokens', sa.Column('expires_at', sa.DateTime(timezone=True),
                                          nullable=True))
    op.add_column('api_tokens', sa.Column('idle_seconds', sa.Integer(), nullable=True))
    op.create_table('login_failures',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('username', sa.String(length=64), nullable=False),
    sa.Column('address', sa.String(length=64), nullable=False),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_login_failures'))
    )
    op.create_index(op.f('ix_login_failures_username_at'), 'login_failures', ['username', 'at'],
                    unique=False)
    op.create_index(op.f('ix_login_failures_address_at'), 'login_failures', ['address', 'at'],
                    unique=False)


def downgrade() -> None:
    op.drop_index(op.f('ix_login_failures_address_at'), table_name='login_failures')
    op.drop_index(op.f('ix_login_failures_username_at'), table_name='login_failures')
    op.drop_table('login_failures')
    op.drop_column('api_tokens', 'idle_seconds')  # native on SQLite >= 3.35
    op.drop_column('api_tokens', 'expires_at')
