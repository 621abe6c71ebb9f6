"""Quality and governance: review reasons, gold answers, purges, versions, decisions,
snapshots, calibration sessions.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0002'
down_revision: str | None = '0001'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _created() -> sa.Column[object]:
    return sa.Column('created_at', sa.DateTime(timezone=True), nullable=False)


def upgrade() -> None:
    op.add_column('annotations', sa.Column('reason', sa.Text(), nullable=True))
    op.add_column('annotations', sa.Column('guidelines_version', sa.Integer(), nullable=True))
    op.add_column('items', sa.Column('gold_labels', sa.JSON(), nullable=True))
    op.add_column('items', sa.Column('purged_at', sa.DateTime(timezone=True), nullable=True))

    op.create_table('project_versions',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('project_id', sa.Integer(), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('labels', sa.JSON(), nullable=False),
    sa.Column('guidelines', sa.Text(), nullable=False),
    sa.Column('author_id', sa.Integer(), nullable=True),
    _created(),
    sa.ForeignKeyConstraint(['author_id'], ['users.id'], name=op.f('fk_project_versions_author_id_users'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['project_id'], ['projects.id'], name=op.f('fk_project_versions_project_id_projects'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_project_versions')),
    sa.UniqueConstraint('project_id', 'version', name=op.f('uq_project_versions_project_id_version'))
    )
    op.create_table('decisions',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('project_id', sa.Integer(), nullable=False),
    sa.Column('author_id', sa.Integer(), nullable=True),
    sa.Column('topic', sa.String(length=100), nullable=False),
    sa.Column('text', sa.Text(), nullable=False),
    sa.Column('from_round', sa.Integer(), nullable=True),
    _created(),
    sa.ForeignKeyConstraint(['author_id'], ['users.id'], name=op.f('fk_decisions_author_id_users'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['project_id'], ['projects.id'], name=op.f('fk_decisions_project_id_projects'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_decisions'))
    )
    op.create_index(op.f('ix_decisions_project_id_id'), 'decisions', ['project_id', 'id'], unique=False)
    op.create_table('snapshots',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('project_id', sa.Integer(), nullable=False),
    sa.Column('content_hash', sa.String(length=64), nullable=False),
    sa.Column('model_version', sa.Integer(), nullable=True),
    sa.Column('guidelines_version', sa.Integer(), nullable=False),
    sa.Column('n_items', sa.Integer(), nullable=False),
    sa.Column('note', sa.Text(), nullable=True),
    sa.Column('path', sa.String(length=1000), nullable=False),
    sa.Column('created_by', sa.Integer(), nullable=True),
    _created(),
    sa.ForeignKeyConstraint(['created_by'], ['users.id'], name=op.f('fk_snapshots_created_by_users'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['project_id'], ['projects.id'], name=op.f('fk_snapshots_project_id_projects'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_snapshots'))
    )
    op.create_index(op.f('ix_snapshots_project_id_id'), 'snapshots', ['project_id', 'id'], unique=False)
    op.create_table('calibration_sessions',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('project_id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('guidelines_version', sa.Integer(), nullable=False),
    sa.Column('created_by', sa.Integer(), nullable=True),
    _created(),
    sa.ForeignKeyConstraint(['created_by'], ['users.id'], name=op.f('fk_calibration_sessions_created_by_users'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['project_id'], ['projects.id'], name=op.f('fk_calibration_sessions_project_id_projects'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_calibration_sessions'))
    )
    op.create_index(op.f('ix_calibration_sessions_project_id_id'), 'calibration_sessions', ['project_id', 'id'], unique=False)
    op.create_table('calibration_items',
    sa.Column('session_id', sa.Integer(), nullable=False),
    sa.Column('item_id', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['item_id'], ['items.id'], name=op.f('fk_calibration_items_item_id_items'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['session_id'], ['calibration_sessions.id'], name=op.f('fk_calibration_items_session_id_calibration_sessions'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('session_id', 'item_id', name=op.f('pk_calibration_items'))
    )
    op.create_index(op.f('ix_calibration_items_item_id'), 'calibration_items', ['item_id'], unique=False)


def downgrade() -> None:
    op.drop_table('calibration_items')
    op.drop_table('calibration_sessions')
    op.drop_table('snapshots')
    op.drop_table('decisions')
    op.drop_table('project_versions')
    with op.batch_alter_table('items') as batch:
        batch.drop_column('purged_at')
        batch.drop_column('gold_labels')
    with op.batch_alter_table('annotations') as batch:
        batch.drop_column('guidelines_version')
        batch.drop_column('reason')
