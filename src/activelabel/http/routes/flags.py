"""Flags: any member marks an item as ambiguous or broken; reviewers list and resolve them."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from ...labeling.governance import resolve as resolve_flag
from ...store import MAX_ID, Role, flag_item, list_flags
from ..auth import Reader, Writer
from ..schemas import FlagIn, FlagOut, PathId, ResolveIn, flag_out

router = APIRouter(tags=["flags"])


@router.post("/projects/{project_id}/flags", status_code=201, response_model=FlagOut)
def post_flag(project_id: PathId, body: FlagIn, caller: Writer) -> FlagOut:
    """Flag an item with the reason (any member)."""
    caller.project(project_id)
    return flag_out(flag_item(caller.session, project_id, body.item_id, caller.user.id,
                              body.reason))


@router.get("/projects/{project_id}/flags", response_model=list[FlagOut])
def flags(project_id: PathId, caller: Reader,
          unresolved_only: bool = True,
          item_id: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None) -> list[FlagOut]:
    """Flags of the project (reviewers and owners see all, annotators their own)."""
    _, role = caller.project(project_id)
    found = list_flags(caller.session, project_id, unresolved_only=unresolved_only,
                       item_id=item_id)
    if not Role(role).at_least(Role.REVIEWER):
        found = [f for f in found if f.user_id == caller.user.id]
    return [flag_out(f) for f in found]


@router.post("/projects/{project_id}/flags/{flag_id}/resolve", response_model=FlagOut)
def resolve(project_id: PathId, flag_id: PathId, caller: Writer,
            body: ResolveIn | None = None) -> FlagOut:
    """Mark a flag resolved, with an optional note (reviewers and owners)."""
    caller.project(project_id, Role.REVIEWER)
    note = None if body is None else body.note
    return flag_out(resolve_flag(caller.session, project_id, flag_id, caller.user.id, note))
