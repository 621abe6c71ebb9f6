"""Items: add a JSON list, page through them, one item with its history and provenance."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, Query
from sqlalchemy import select

from ...store import add_items, get_item, item_history, undo
from ...store.models import Item, ModelVersion, Round, RoundSelection
from ..auth import Caller, Reader, Writer
from ..schemas import (
    ItemDetail,
    ItemPage,
    ItemsAdded,
    ProvenanceOut,
    RevisionOut,
    RowReport,
    annotation_out,
    item_out,
    revision_out,
)

router = APIRouter(tags=["items"])

#: Rows one POST may carry; larger sets go through a file import (POST .../imports).
MAX_ROWS_PER_REQUEST = 20_000
#: Rejected / duplicate rows listed in an answer (all are counted).
MAX_REPORTED_ROWS = 1000

Rows = Annotated[list[Any], Body(max_length=MAX_ROWS_PER_REQUEST, description=(
    "Items `{external_id, data: {...}, split?: pool|holdout|gold}`; at most "
    f"{MAX_ROWS_PER_REQUEST} per request (import a file for more)."))]


def _report(index: int, reason: str, external_id: str | None) -> RowReport:
    return RowReport(line=index + 1, index=index, reason=reason, external_id=external_id)


@router.post("/projects/{project_id}/items", response_model=ItemsAdded)
def post_items(project_id: int, rows: Rows, caller: Writer) -> ItemsAdded:
    """Add items. Bad rows are rejected with their position and the reason; rows whose
    external_id is already in the project are reported as duplicates, not added twice. The
    valid rows are stored even when others are rejected. Owners only."""
    caller.project(project_id, "owner")
    result = add_items(caller.session, project_id, rows)
    return ItemsAdded(
        inserted=result.inserted, duplicates=len(result.duplicates),
        rejected_count=len(result.rejected),
        rejected=[_report(e.index, e.reason, e.external_id)
                  for e in result.rejected[:MAX_REPORTED_ROWS]],
        duplicate_rows=[_report(e.index, e.reason, e.external_id)
                        for e in result.duplicates[:MAX_REPORTED_ROWS]])


@router.get("/projects/{project_id}/items", response_model=ItemPage)
def list_items(project_id: int, caller: Reader,
               split: Literal["pool", "holdout", "gold"] | None = None,
               limit: Annotated[int, Query(ge=1, le=1000)] = 100,
               after: Annotated[int | None, Query(ge=0, description="Last id of the previous "
                                                  "page")] = None) -> ItemPage:
    """Items by id, a page at a time (reviewers and owners)."""
    caller.project(project_id, "reviewer")
    stmt = select(Item).where(Item.project_id == project_id).order_by(Item.id).limit(limit)
    if split is not None:
        stmt = stmt.where(Item.split == split)
    if after is not None:
        stmt = stmt.where(Item.id > after)
    items = list(caller.session.execute(stmt).scalars())
    return ItemPage(items=[item_out(i) for i in items],
                    next_after=items[-1].id if len(items) == limit else None)


def _provenance(caller: Caller, item_id: int) -> list[ProvenanceOut]:
    stmt = (select(RoundSelection, Round.number, ModelVersion.version)
            .join(Round, Round.id == RoundSelection.round_id)
            .outerjoin(ModelVersion, ModelVersion.id == RoundSelection.model_version_id)
            .where(RoundSelection.item_id == item_id).order_by(Round.number))
    return [ProvenanceOut(round_id=sel.round_id, round=number, rank=sel.rank, score=sel.score,
                          strategy=sel.strategy, model_version=version)
            for sel, number, version in caller.session.execute(stmt)]


@router.get("/projects/{project_id}/items/{item_id}", response_model=ItemDetail)
def item(project_id: int, item_id: int, caller: Reader) -> ItemDetail:
    """One item with every revision of its labels (oldest first), the current ones, and the
    rounds that selected it (reviewers and owners)."""
    caller.project(project_id, "reviewer")
    found = get_item(caller.session, project_id, item_id)
    history = [revision_out(r) for r in item_history(caller.session, project_id, item_id)]
    current = [r for r in history if r.is_current and r.labels is not None]
    return ItemDetail(**item_out(found).model_dump(), history=history, current=current,
                      provenance=_provenance(caller, item_id))


@router.post("/projects/{project_id}/items/{item_id}/undo", status_code=201,
             response_model=RevisionOut)
def undo_label(project_id: int, item_id: int, caller: Writer) -> RevisionOut:
    """Withdraw the caller's current label on the item (a new revision without labels; the
    history keeps the old one). Any member."""
    caller.project(project_id, "annotator")
    return annotation_out(undo(caller.session, project_id, caller.user.id, item_id))
