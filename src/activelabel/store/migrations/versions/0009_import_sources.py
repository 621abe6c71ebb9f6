"""What an import brings besides items: existing labels with their provenance (an
``imported`` revision kind, the import job and the file's annotator name), model predictions
(a ``predictions`` table), fields kept private with each item, and the project's column
mapping of flat files.

Revision ID: 0009
Revises: 0008
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from activelabel.store.migration_ops import replace_check

revision: str = '0009'
down_revision: str | None = '0008'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_OLD_KINDS = "kind IN ('label', 'correction', 'review_accept', 'review_reject', 'undo')"
_NEW_KINDS = ("kind IN ('label', 'correction', 'review_accept', 'review_reject', 'undo', "
              "'imported')")


def upgrade() -> None:
    op.add_column('projects', sa.Column('import_mapping', sa.JSON(), nullable=True))
    op.add_column('items', sa.Column('private', sa.JSON(), nullable=True))
    # A plain id (no foreign key): added in place, with no table rebuild on SQLite, whose
    # annotations refer to themselves.
    op.add_column('annotations', sa.Column('source_job_id', sa.Integer(), nullable=True))
    op.add_column('annotations', sa.Column('source_annotator', sa.String(length=255),
                                           nullable=True))
    replace_check('annotations', 'kind', _OLD_KINDS, _NEW_KINDS)
    op.create_table(
        'predictions',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('project_id', sa.Integer(), nullable=False),
        sa.Column('item_id', sa.Integer(), nullable=False),
        sa.Column('labels', sa.JSON(), nullable=False),
        sa.Column('score', sa.Float(), nullable=True),
        sa.Column('model', sa.String(length=200), nullable=True),
        sa.Column('source_job_id', sa.Integer(), nullable=True),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['item_id'], ['items.id'],
                                name=op.f('fk_predictions_item_id_items'), ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['project_id'], ['projects.id'],
                                name=op.f('fk_predictions_project_id_projects'),
                                ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['source_job_id'], ['jobs.id'],
                                name=op.f('fk_predictions_source_job_id_jobs'),
                                ondelete='SET NULL'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_predictions')),
    )
    op.create_index(op.f('ix_predictions_item_id'), 'predictions', ['item_id'], unique=False)
    op.create_index(op.f('ix_predictions_project_id_id'), 'predictions', ['project_id', 'id'],
                    unique=False)


def downgrade() -> None:
    op.drop_index(op.f('ix_predictions_project_id_id'), table_name='predictions')
    op.drop_index(op.f('ix_predictions_item_id'), table_name='predictions')
    op.drop_table('predictions')
    # Before 0009 there is no imported kind: imported labels stay, as labels.
    op.execute("UPDATE annotations SET kind = 'label' WHERE kind = 'imported'")
    replace_check('annotations', 'kind', _NEW_KINDS, _OLD_KINDS)
    op.drop_column('annotations', 'source_annotator')
    op.drop_column('annotations', 'source_job_id')
    op.drop_column('items', 'private')
    op.drop_column('projects', 'import_mapping')
