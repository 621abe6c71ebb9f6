"""File imports as background jobs, and the jobs themselves (progress, result).

The upload is parsed only after the caller is authenticated and checked as an owner: an
anonymous client cannot make the server spool a large file. The file is streamed to the
uploads folder (never held whole in memory) and a worker imports it.
"""

from __future__ import annotations

import logging
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile

from ...labeling.imports import enqueue_import, save_upload
from ...store import (
    SPLITS,
    InvalidInput,
    JobStatus,
    NotFound,
    Role,
    get_job,
    list_jobs,
    require_role,
)
from ..auth import Caller, Reader
from ..schemas import JobAccepted, JobOut, PathId, job_out

router = APIRouter(tags=["imports and jobs"])
logger = logging.getLogger("activelabel.http")

_UPLOAD_DOC: dict[str, Any] = {
    "requestBody": {"required": True, "content": {"multipart/form-data": {"schema": {
        "type": "object", "required": ["file"], "properties": {
            "file": {"type": "string", "format": "binary",
                     "description": "A .jsonl/.ndjson, .csv or .parquet file of items."},
            "split": {"type": "string", "enum": list(SPLITS),
                      "description": "Split of rows that name none (default pool)."}}}}}}}


async def _form_file(request: Request) -> tuple[UploadFile, str | None]:
    content_type = request.headers.get("content-type", "")
    if not content_type.startswith("multipart/form-data"):
        raise InvalidInput("send the file as multipart/form-data with a field named 'file' "
                           "(curl -F file=@items.jsonl ...)")
    form = await request.form(max_files=1, max_fields=10)
    upload, split = form.get("file"), form.get("split")
    if isinstance(upload, UploadFile) and upload.filename and (
            split is None or isinstance(split, str)):
        return upload, (split or None)
    await form.close()  # every file the form spooled: none is kept
    if not isinstance(upload, UploadFile) or not upload.filename:
        raise InvalidInput("no file in the form: send it in a field named 'file' with its "
                           "file name (curl -F file=@items.jsonl ...)")
    raise InvalidInput("split must be a plain form field: pool, holdout or gold")


def _enqueue(caller: Caller, project_id: int, upload: UploadFile,
             split: str | None) -> JobAccepted:
    """Stream the upload to the uploads folder, then queue its job in a short transaction."""
    if split is not None and split not in SPLITS:
        raise InvalidInput(f"split {split!r} is not one of {', '.join(SPLITS)}")
    assert upload.filename is not None
    path = save_upload(caller.storage, project_id, upload.filename, upload.file)
    try:
        with caller.storage.sessions() as session, session.begin():
            job = enqueue_import(session, project_id, path, requested_by=caller.user.id,
                                 split=split)
            return JobAccepted(job_id=job.id, status=job.status)
    except BaseException:
        path.unlink(missing_ok=True)
        raise


@router.post("/projects/{project_id}/imports", status_code=202, response_model=JobAccepted,
             openapi_extra=_UPLOAD_DOC)
async def post_import(project_id: int, request: Request, caller: Reader) -> JobAccepted:
    """Upload a JSONL, CSV or Parquet file of items; a background job imports it (poll
    ``GET /projects/{id}/jobs/{job_id}``: progress, then counts and rejected rows with line
    numbers). Owners only."""
    # The role is checked in a read session: no write lock is held while the file arrives.
    await run_in_threadpool(caller.project, project_id, Role.OWNER)
    upload, split = await _form_file(request)
    try:
        return await run_in_threadpool(_enqueue, caller, project_id, upload, split)
    finally:
        await upload.close()


def _visible_job(caller: Caller, job_id: PathId, project_id: int | None = None) -> JobOut:
    """The job when the caller may see it (a member of its project, or an admin), else 404."""
    try:
        job = get_job(caller.session, job_id)
    except NotFound:
        job = None
    hidden = (job is None or (project_id is not None and job.project_id != project_id)
              or (job.project_id is None and not caller.is_admin))
    if not hidden and job is not None and job.project_id is not None:
        try:
            require_role(caller.session, job.project_id, caller.user, Role.ANNOTATOR)
        except NotFound:
            hidden = True
    if hidden or job is None:
        raise NotFound(f"job {job_id} does not exist: list the jobs of the project "
                       "(GET /api/v1/projects/{id}/jobs)")
    return job_out(job)


@router.get("/jobs/{job_id}", response_model=JobOut)
def job(job_id: PathId, caller: Reader) -> JobOut:
    """A job's status, progress, result and error (members of its project)."""
    return _visible_job(caller, job_id)


@router.get("/projects/{project_id}/jobs/{job_id}", response_model=JobOut)
def project_job(project_id: int, job_id: PathId, caller: Reader) -> JobOut:
    """Same as ``GET /jobs/{job_id}``, for a job of this project."""
    caller.project(project_id)
    return _visible_job(caller, job_id, project_id)


@router.get("/projects/{project_id}/jobs", response_model=list[JobOut])
def jobs(project_id: int, caller: Reader,
         status: JobStatus | None = None,
         limit: Annotated[int, Query(ge=1, le=500)] = 50) -> list[JobOut]:
    """The project's jobs (imports, rounds), newest first (any member)."""
    caller.project(project_id)
    return [job_out(j) for j in list_jobs(caller.session, project_id=project_id, status=status,
                                          limit=limit)]
