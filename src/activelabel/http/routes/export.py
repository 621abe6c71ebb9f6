"""Export: the project's labels with provenance, streamed as JSONL, CSV or Parquet, or as a
Label Studio JSON export, a Hugging Face dataset folder (zip) or spaCy-style JSONL."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.responses import StreamingResponse

from ...labeling.export import EXPORT_FORMATS, export_bundle, export_stream
from ...store import Forbidden, Role
from ..auth import Reader
from ..schemas import PathId

router = APIRouter(tags=["export"])


@router.get("/projects/{project_id}/export", response_class=StreamingResponse,
            responses={200: {"description": "The file, streamed.",
                             "content": {"application/x-ndjson": {}, "text/csv": {},
                                         "application/vnd.apache.parquet": {},
                                         "application/json": {}, "application/zip": {},
                                         "text/plain": {}}}})
def export(project_id: PathId, caller: Reader,
           format: Annotated[str, Query(description="jsonl, csv, parquet, labelstudio "
                                         "(Label Studio JSON), huggingface (a dataset "
                                         "folder with its card, zipped) or spacy "
                                         "(spaCy-style JSONL); for span projects also "
                                         "conll and spans_jsonl",
                                         pattern="^(" + "|".join(EXPORT_FORMATS) + ")$",
                                         )] = "jsonl",
           include_private: Annotated[bool, Query(description="Keep private fields "
                                                  "(owners only)")] = False,
           ) -> StreamingResponse:
    """One row per labeled item: data, consensus labels, every current annotation (who,
    when, how long) and provenance (round, strategy, score, model version). Reviewers and
    owners; ``include_private`` needs an owner."""
    _, role = caller.project(project_id, Role.REVIEWER)
    if include_private and role != Role.OWNER:
        raise Forbidden("include_private needs the owner role: leave it out to export "
                        "without the private fields")
    chunks, media_type, filename = export_stream(caller.storage, project_id, format,
                                                 include_private=include_private)
    return StreamingResponse(chunks, media_type=media_type, headers={
        "Content-Disposition": f'attachment; filename="{filename}"'})


@router.get("/projects/{project_id}/export/bundle", response_class=StreamingResponse,
            responses={200: {"description": "A zip file, streamed.",
                             "content": {"application/zip": {}}}})
def export_with_audit(project_id: PathId, caller: Reader,
                      include_private: Annotated[bool, Query(description="Keep private "
                                                             "fields")] = False,
                      ) -> StreamingResponse:
    """The labels with provenance together with the audit trail, the decision log and the
    guideline versions, as one zip (labels.jsonl, audit.jsonl, decisions.jsonl,
    versions.jsonl). Owners only (the audit trail is theirs to read)."""
    caller.project(project_id, Role.OWNER)
    # Check the project now (a 404 before the stream starts), then build while streaming.
    chunks = export_bundle(caller.storage, project_id, include_private=include_private)
    return StreamingResponse(chunks, media_type="application/zip", headers={
        "Content-Disposition": f'attachment; filename="project_{project_id}_bundle.zip"'})
