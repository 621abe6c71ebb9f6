"""Helpers shared by the repository modules (not public)."""

from __future__ import annotations

from typing import Any, TypeVar

from sqlalchemy import select
from sqlalchemy.orm import Session

from .db import dialect_of, for_update
from .errors import NotFound
from .models import Base, Item, Project

__all__ = ["get_or_raise", "item_in_project", "item_missing", "lock_project"]

ModelT = TypeVar("ModelT", bound=Base)


def get_or_raise(session: Session, model: type[ModelT], key: Any, what: str | None = None) -> ModelT:
    """``session.get`` that raises NotFound naming the missing object."""
    obj = session.get(model, key)
    if obj is None:
        name = what or model.__tablename__.rstrip("s")
        raise NotFound(f"{name} {key} does not exist: check the id (list them first)")
    return obj


def lock_project(session: Session, project_id: int) -> Project:
    """Load the project, holding its row lock until commit on PostgreSQL (serialises per project
    writes such as imports and round numbering; SQLite's write transaction already does)."""
    stmt = for_update(select(Project).where(Project.id == project_id), dialect_of(session))
    project = session.execute(stmt).scalar_one_or_none()
    if project is None:
        raise NotFound(f"project {project_id} does not exist: check the id (list projects first)")
    return project


def item_missing(project_id: int, item_id: int) -> str:
    """What NotFound says of an item that is not in the project."""
    return (f"item {item_id} does not exist in project {project_id}: use an id returned by "
            "the items or tasks calls")


def item_in_project(session: Session, project_id: int, item_id: int) -> Item:
    item = session.get(Item, item_id)
    if item is None or item.project_id != project_id:
        raise NotFound(item_missing(project_id, item_id))
    return item
