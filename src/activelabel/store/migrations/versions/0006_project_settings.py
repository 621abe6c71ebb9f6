"""Project settings as their declaration says: every stored value valid, every default there.

Versions before the settings' declaration (``activelabel.store.settings.ProjectSettings``)
accepted values that break a round or the queue (an unknown featurizer, leases of years,
parameters a featurizer does not take). Each project's settings are rewritten once with such
values replaced by their defaults and every missing setting filled in; each project whose
settings changed gets an audit event with the settings before and after and what was replaced.

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timezone

import sqlalchemy as sa
from alembic import op

revision: str = '0006'
down_revision: str | None = '0005'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_projects = sa.table('projects', sa.column('id', sa.Integer), sa.column('settings', sa.JSON))
_audit = sa.table('audit_events', sa.column('project_id', sa.Integer),
                  sa.column('actor_id', sa.Integer), sa.column('action', sa.String),
                  sa.column('entity', sa.String), sa.column('entity_id', sa.String),
                  sa.column('before', sa.JSON), sa.column('after', sa.JSON),
                  sa.column('created_at', sa.DateTime(timezone=True)))


def upgrade() -> None:
    from activelabel.store.settings import normalize_settings

    bind = op.get_bind()
    now = datetime.now(timezone.utc)
    for project_id, stored in bind.execute(sa.select(_projects.c.id, _projects.c.settings)):
        typed, replaced = normalize_settings(stored or {})
        settings = typed.model_dump(mode='json')
        if settings == stored:
            continue
        bind.execute(sa.update(_projects).where(_projects.c.id == project_id)
                     .values(settings=settings))
        bind.execute(sa.insert(_audit).values(
            project_id=project_id, actor_id=None, action='normalize', entity='project',
            entity_id=str(project_id), before={'settings': stored},
            after={'settings': settings, 'replaced': replaced}, created_at=now))


def downgrade() -> None:
    pass  # the rewritten settings are valid for the versions before this one too
