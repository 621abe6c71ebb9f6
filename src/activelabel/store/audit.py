"""Append-only audit trail: who did what to which object, with the state before and after.

There is deliberately no function that updates or deletes audit rows.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from .errors import InvalidInput
from .models import AuditEvent

__all__ = ["audit_after", "list_audit", "record_audit"]


def record_audit(session: Session, action: str, entity: str, entity_id: Any = None, *,
                 project_id: int | None = None, actor_id: int | None = None,
                 before: Mapping[str, Any] | None = None,
                 after: Mapping[str, Any] | None = None) -> AuditEvent:
    """Append one event, e.g. ``record_audit(s, "activate", "model_version", 3, ...)``."""
    if not action or not entity:
        raise InvalidInput("action and entity must be non-empty, e.g. 'create' and 'project'")
    event = AuditEvent(action=action, entity=entity,
                       entity_id=None if entity_id is None else str(entity_id),
                       project_id=project_id, actor_id=actor_id,
                       before=None if before is None else dict(before),
                       after=None if after is None else dict(after))
    session.add(event)
    session.flush()
    return event


def list_audit(session: Session, *, project_id: int | None = None, entity: str | None = None,
               entity_id: Any = None, actor_id: int | None = None, before_id: int | None = None,
               limit: int = 100) -> list[AuditEvent]:
    """Events newest first; page with ``before_id`` = the last id of the previous page."""
    if not 1 <= limit <= 1000:
        raise InvalidInput(f"limit must be between 1 and 1000, got {limit}")
    stmt = select(AuditEvent).order_by(AuditEvent.id.desc()).limit(limit)
    if project_id is not None:
        stmt = stmt.where(AuditEvent.project_id == project_id)
    if entity is not None:
        stmt = stmt.where(AuditEvent.entity == entity)
    if entity_id is not None:
        stmt = stmt.where(AuditEvent.entity_id == str(entity_id))
    if actor_id is not None:
        stmt = stmt.where(AuditEvent.actor_id == actor_id)
    if before_id is not None:
        stmt = stmt.where(AuditEvent.id < before_id)
    return list(session.execute(stmt).scalars())


def audit_after(session: Session, project_id: int, after_id: int = 0, *,
                limit: int = 1000) -> list[AuditEvent]:
    """The project's events after id ``after_id``, oldest first: page through the whole
    trail by passing the last id of the previous page."""
    stmt = (select(AuditEvent).where(AuditEvent.project_id == project_id,
                                     AuditEvent.id > after_id)
            .order_by(AuditEvent.id).limit(limit))
    return list(session.execute(stmt).scalars())
