"""Items: add a JSON list, page through them, one item with its history and provenance."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Query

from ...store import (
    MAX_ID,
    Role,
    Split,
    add_items,
    get_item,
    item_history,
    item_page,
    item_provenance,
    undo,
)
from ..auth import Reader, Writer
from ..schemas import (
    ItemDetail,
    ItemPage,
    ItemsAdded,
    PathId,
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
def post_items(project_id: PathId, rows: Rows, caller: Writer) -> ItemsAdded:
    """Add items. Bad rows are rejected with their position and the reason; rows whose
    external_id is already in the project are reported as duplicates, not added twice. The
    valid rows are stored even when others are rejected. Owners only."""
    caller.project(project_id, Role.OWNER)
    result = add_items(caller.session, project_id, rows)
    return ItemsAdded(
        inserted=result.inserted, duplicates=len(result.duplicates),
        rejected_count=len(result.rejected),
        rejected=[_report(e.index, e.reason, e.external_id)
                  for e in result.rejected[:MAX_REPORTED_ROWS]],
        duplicate_rows=[_report(e.index, e.reason, e.external_id)
                        for e in result.duplicates[:MAX_REPORTED_ROWS]])


@router.get("/projects/{project_id}/items", response_model=ItemPage)
def list_items(project_id: PathId, caller: Reader,
               split: Split | None = None,
               limit: Annotated[int, Query(ge=1, le=1000)] = 100,
               after: Annotated[int | None, Query(ge=0, le=MAX_ID, description="Last id of the previous "
                                                  "page")] = None) -> ItemPage:
    """Items by id, a page at a time (reviewers and owners)."""
    caller.project(project_id, Role.REVIEWER)
    items = item_page(caller.session, project_id, split=split, limit=limit, after=after)
    return ItemPage(items=[item_out(i) for i in items],
                    next_after=items[-1].id if len(items) == limit else None)


@router.get("/projects/{project_id}/items/{item_id}", response_model=ItemDetail)
def item(project_id: PathId, item_id: PathId, caller: Reader) -> ItemDetail:
    """One item with every revision of its labels (oldest first), the current ones, and the
    rounds that selected it (reviewers and owners)."""
    caller.project(project_id, Role.REVIEWER)
    found = get_item(caller.session, project_id, item_id)
    history = [revision_out(r) for r in item_history(caller.session, project_id, item_id)]
    current = [r for r in history if r.is_current and r.labels is not None]
    return ItemDetail(**item_out(found).model_dump(), history=history, current=current,
                      provenance=[ProvenanceOut(round_id=p.round_id, round=p.round, rank=p.rank,
                                                score=p.score, strategy=p.strategy,
                                                model_version=p.model_version)
                                  for p in item_provenance(caller.session, [item_id]).get(
                                      item_id, [])])


@router.post("/projects/{project_id}/items/{item_id}/undo", status_code=201,
             response_model=RevisionOut)
def undo_label(project_id: PathId, item_id: PathId, caller: Writer) -> RevisionOut:
    """Withdraw the caller's current label on the item (a new revision without labels; the
    history keeps the old one). Any member."""
    caller.project(project_id, Role.ANNOTATOR)
    return annotation_out(undo(caller.session, project_id, caller.user.id, item_id))
