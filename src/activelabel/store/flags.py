"""Flags: an annotator marks an item as ambiguous or broken; a reviewer resolves it."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from ._util import item_in_project
from .errors import Conflict, InvalidInput, NotFound
from .models import Flag, utcnow

__all__ = ["flag_item", "list_flags", "resolve_flag"]


def flag_item(session: Session, project_id: int, item_id: int, user_id: int,
              reason: str) -> Flag:
    item_in_project(session, project_id, item_id)
    if not reason.strip():
        raise InvalidInput("reason is empty: say what is wrong with the item")
    flag = Flag(project_id=project_id, item_id=item_id, user_id=user_id, reason=reason)
    session.add(flag)
    session.flush()
    return flag


def resolve_flag(session: Session, project_id: int, flag_id: int, user_id: int,
                 note: str | None = None, *, now: datetime | None = None) -> Flag:
    flag = session.get(Flag, flag_id)
    if flag is None or flag.project_id != project_id:
        raise NotFound(f"flag {flag_id} does not exist in project {project_id}")
    if flag.resolved_at is not None:
        raise Conflict(f"flag {flag_id} was already resolved by user {flag.resolved_by}")
    flag.resolved_at, flag.resolved_by, flag.resolution_note = now or utcnow(), user_id, note
    return flag


def list_flags(session: Session, project_id: int, *, unresolved_only: bool = True,
               item_id: int | None = None) -> list[Flag]:
    stmt = select(Flag).where(Flag.project_id == project_id).order_by(Flag.id)
    if unresolved_only:
        stmt = stmt.where(Flag.resolved_at.is_(None))
    if item_id is not None:
        stmt = stmt.where(Flag.item_id == item_id)
    return list(session.execute(stmt).scalars())
