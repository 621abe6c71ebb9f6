"""Blind answers: the labels an annotator chose before the model's suggestion showed (the
first ``tasks/suggestions`` call for an item under ``suggestion_display`` after_answer), kept
beside the suggestion that call showed, so that a project can tell how often answers change
once the model's is seen.

Revision ID: 0012
Revises: 0011
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0012'
down_revision: str | None = '0011'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        'blind_answers',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('project_id', sa.Integer(), nullable=False),
        sa.Column('item_id', sa.Integer(), nullable=False),
        sa.Column('user_id', sa.Integer(), nullable=False),
        sa.Column('labels', sa.JSON(), nullable=False),
        sa.Column('suggested', sa.JSON(), nullable=True),
        sa.Column('model_version', sa.Integer(), nullable=True),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['item_id'], ['items.id'],
                                name=op.f('fk_blind_answers_item_id_items'), ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['project_id'], ['projects.id'],
                                name=op.f('fk_blind_answers_project_id_projects'),
                                ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['user_id'], ['users.id'],
                                name=op.f('fk_blind_answers_user_id_users'), ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_blind_answers')),
        sa.UniqueConstraint('item_id', 'user_id', name=op.f('uq_blind_answers_item_id_user_id')),
    )
    op.create_index(op.f('ix_blind_answers_project_id_user_id'), 'blind_answers',
                    ['project_id', 'user_id'], unique=False)


def downgrade() -> None:
    op.drop_index(op.f('ix_blind_answers_project_id_user_id'), table_name='blind_answers')
    op.drop_table('blind_answers')
