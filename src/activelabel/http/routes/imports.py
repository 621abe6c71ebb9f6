"""File imports as background jobs, and the jobs themselves (progress, result).

The upload is parsed only after the caller is authenticated and checked as an owner: an
anonymous client cannot make the server spool a large file. The file is streamed to the
uploads folder (never held whole in memory) and a worker imports it.
"""

from __future__ import annotations

import json
import logging
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile

from ...labeling.imports import (
    FORMATS,
    enqueue_import,
    preview_import,
    save_mapping,
    save_upload,
    upload_path,
)
from ...labeling.mapping import check_mapping
from ...labeling.predictions import prediction_comparison
from ...labeling.vectors import import_vector_file
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
from ..auth import Caller, Reader, Writer
from ..schemas import (
    ImportMapping,
    ImportPreview,
    ImportRequest,
    JobAccepted,
    JobOut,
    PathId,
    PredictionComparison,
    VectorsStored,
    job_out,
)

router = APIRouter(tags=["imports and jobs"])
logger = logging.getLogger("activelabel.http")

_UPLOAD_DOC: dict[str, Any] = {
    "requestBody": {"required": True, "content": {"multipart/form-data": {"schema": {
        "type": "object", "required": ["file"], "properties": {
            "file": {"type": "string", "format": "binary",
                     "description": "A file of items; its name ends in one of "
                                    + ", ".join(sorted(FORMATS)) + " (the ending picks "
                                    "the reader; span formats for span projects)."},
            "split": {"type": "string", "enum": list(SPLITS),
                      "description": "Split of rows that name none (default pool)."},
            "mapping": {"type": "string",
                        "description": "The column mapping as JSON, "
                                       '{"columns": {"<column>": "<role>"}} (default: the '
                                       "project's saved mapping, else answer-like columns "
                                       "private and the rest content)."}}}}}}}


async def _form_file(request: Request) -> tuple[UploadFile, str | None]:
    upload, split, _mapping = await _form_fields(request)
    return upload, split


async def _form_fields(request: Request) -> tuple[UploadFile, str | None, str | None]:
    content_type = request.headers.get("content-type", "")
    if not content_type.startswith("multipart/form-data"):
        raise InvalidInput("send the file as multipart/form-data with a field named 'file' "
                           "(curl -F file=@items.jsonl ...)")
    form = await request.form(max_files=1, max_fields=10)
    upload, split, mapping = form.get("file"), form.get("split"), form.get("mapping")
    if isinstance(upload, UploadFile) and upload.filename and (
            split is None or isinstance(split, str)) and (
            mapping is None or isinstance(mapping, str)):
        return upload, (split or None), (mapping or None)
    await form.close()  # every file the form spooled: none is kept
    if not isinstance(upload, UploadFile) or not upload.filename:
        raise InvalidInput("no file in the form: send it in a field named 'file' with its "
                           "file name (curl -F file=@items.jsonl ...)")
    raise InvalidInput("split and mapping must be plain form fields")


def _mapping_field(text: str | None) -> dict[str, Any] | None:
    """The form's ``mapping`` field (JSON text), checked."""
    if text is None:
        return None
    try:
        return check_mapping(json.loads(text))
    except ValueError as exc:
        raise InvalidInput(f"mapping: {exc}") from None


def _enqueue(caller: Caller, project_id: int, upload: UploadFile,
             split: str | None, mapping: dict[str, Any] | None = None) -> JobAccepted:
    """Stream the upload to the uploads folder, then queue its job in a short transaction."""
    if split is not None and split not in SPLITS:
        raise InvalidInput(f"split {split!r} is not one of {', '.join(SPLITS)}")
    with _saved(caller, project_id, upload) as path, \
            caller.storage.sessions() as session, session.begin():
        job = enqueue_import(session, project_id, path, requested_by=caller.user.id,
                             split=split, mapping=mapping)
        return JobAccepted(job_id=job.id, status=job.status)


@contextmanager
def _saved(caller: Caller, project_id: int, upload: UploadFile) -> Iterator[Path]:
    """The upload saved to the uploads folder; removed again when what follows fails."""
    assert upload.filename is not None
    path = save_upload(caller.storage, project_id, upload.filename, upload.file)
    try:
        yield path
    except BaseException:
        path.unlink(missing_ok=True)
        raise


@router.post("/projects/{project_id}/imports", status_code=202, response_model=JobAccepted,
             openapi_extra=_UPLOAD_DOC)
async def post_import(project_id: PathId, request: Request, caller: Reader) -> JobAccepted:
    """Upload a JSONL, CSV or Parquet file of items; a background job imports it (poll
    ``GET /projects/{id}/jobs/{job_id}``: progress, then counts and rejected rows with line
    numbers). Owners only."""
    # The role is checked in a read session: no write lock is held while the file arrives.
    await run_in_threadpool(caller.project, project_id, Role.OWNER)
    upload, split, mapping = await _form_fields(request)
    try:
        return await run_in_threadpool(_enqueue, caller, project_id, upload, split,
                                       _mapping_field(mapping))
    finally:
        await upload.close()


def _save_and_preview(caller: Caller, project_id: int, upload: UploadFile) -> ImportPreview:
    with _saved(caller, project_id, upload) as path, caller.storage.read_sessions() as session:
        return ImportPreview(**preview_import(session, project_id, path))


@router.post("/projects/{project_id}/uploads", status_code=201, response_model=ImportPreview,
             openapi_extra=_UPLOAD_DOC)
async def post_upload(project_id: PathId, request: Request, caller: Reader) -> ImportPreview:
    """Upload a file to import after a look: the first rows, the columns found with sampled
    values, and the role proposed for each column with the reason (answer-like columns are
    never proposed as content). Import it with ``POST /projects/{id}/uploads/{upload}/import``
    and a mapping. Owners only."""
    await run_in_threadpool(caller.project, project_id, Role.OWNER)
    upload, _split, _mapping = await _form_fields(request)
    try:
        return await run_in_threadpool(_save_and_preview, caller, project_id, upload)
    finally:
        await upload.close()


@router.get("/projects/{project_id}/uploads/{upload}", response_model=ImportPreview)
def get_upload(project_id: PathId, upload: str, caller: Reader) -> ImportPreview:
    """The preview of a saved upload again (with the project's saved mapping); 404 for a
    name the project holds no upload under. Owners only."""
    caller.project(project_id, Role.OWNER)
    path = upload_path(caller.storage, project_id, upload)
    return ImportPreview(**preview_import(caller.session, project_id, path))


@router.post("/projects/{project_id}/uploads/{upload}/import", status_code=202,
             response_model=JobAccepted)
def import_upload(project_id: PathId, upload: str, body: ImportRequest,
                  caller: Writer) -> JobAccepted:
    """Import a saved upload with ``mapping`` (default: the project's saved mapping), which
    the project keeps for the next upload; 404 for a name the project holds no upload
    under. Owners only."""
    caller.project(project_id, Role.OWNER)
    path = upload_path(caller.storage, project_id, upload)
    mapping = None if body.mapping is None else body.mapping.model_dump()
    job = enqueue_import(caller.session, project_id, path, requested_by=caller.user.id,
                         split=body.split, mapping=mapping)
    return JobAccepted(job_id=job.id, status=job.status)


@router.get("/projects/{project_id}/import-mapping", response_model=ImportMapping | None)
def get_mapping(project_id: PathId, caller: Reader) -> ImportMapping | None:
    """The project's saved column mapping (null before the first mapped import)."""
    project, _ = caller.project(project_id, Role.OWNER)
    return None if not project.import_mapping else ImportMapping(**project.import_mapping)


@router.put("/projects/{project_id}/import-mapping", response_model=ImportMapping)
def put_mapping(project_id: PathId, body: ImportMapping, caller: Writer) -> ImportMapping:
    """Change the saved mapping the next uploads start from. Owners only."""
    caller.project(project_id, Role.OWNER)
    return ImportMapping(**save_mapping(caller.session, project_id, body.model_dump(),
                                        actor_id=caller.user.id))


def _store_vectors(caller: Caller, project_id: int, vectors: UploadFile,
                   ids: UploadFile | None) -> VectorsStored:
    assert vectors.filename is not None
    folder = caller.storage.location.uploads_dir / f"project_{int(project_id)}"
    folder.mkdir(parents=True, exist_ok=True)
    saved: list[Path] = []
    try:
        with tempfile.NamedTemporaryFile(dir=folder, suffix=Path(vectors.filename).suffix,
                                         delete=False) as out:
            saved.append(Path(out.name))
            shutil.copyfileobj(vectors.file, out, 1 << 20)
        ids_path = None
        if ids is not None:
            with tempfile.NamedTemporaryFile(dir=folder, suffix=".txt", delete=False) as out:
                saved.append(Path(out.name))
                shutil.copyfileobj(ids.file, out, 1 << 20)
            ids_path = saved[-1]
        return VectorsStored(**import_vector_file(caller.storage, project_id, saved[0],
                                                  ids_path))
    finally:
        for path in saved:
            path.unlink(missing_ok=True)


@router.post("/projects/{project_id}/vectors", response_model=VectorsStored,
             openapi_extra={"requestBody": {"required": True, "content": {
                 "multipart/form-data": {"schema": {
                     "type": "object", "required": ["file"], "properties": {
                         "file": {"type": "string", "format": "binary",
                                  "description": "A .npy array (items x dimensions) or a "
                                                 ".parquet file with external_id and vector."},
                         "ids": {"type": "string", "format": "binary",
                                 "description": "With a .npy: the external ids, one a line."},
                     }}}}}})
async def post_vectors(project_id: PathId, request: Request, caller: Reader) -> VectorsStored:
    """Store the project's own embeddings, aligned by external id: every vector is checked
    (dimension, finite values, known ids) and none is stored when one is wrong. The
    ``vectors`` featurizer then feeds them to the strategies and models. Owners only."""
    await run_in_threadpool(caller.project, project_id, Role.OWNER)
    if not request.headers.get("content-type", "").startswith("multipart/form-data"):
        raise InvalidInput("send the vectors as multipart/form-data: a field 'file' (and "
                           "'ids' with a .npy)")
    form = await request.form(max_files=2, max_fields=4)
    try:
        vectors, ids = form.get("file"), form.get("ids")
        if not isinstance(vectors, UploadFile) or not vectors.filename:
            raise InvalidInput("no file in the form: send the vectors in a field named 'file'")
        if ids is not None and not isinstance(ids, UploadFile):
            raise InvalidInput("ids must be a file: one external id a line")
        return await run_in_threadpool(_store_vectors, caller, project_id, vectors, ids)
    finally:
        await form.close()


@router.get("/projects/{project_id}/predictions/comparison", response_model=PredictionComparison)
def predictions_comparison(project_id: PathId, caller: Reader) -> PredictionComparison:
    """How the imported predictions compare with people's labels (reviewers and owners)."""
    caller.project(project_id, Role.REVIEWER)
    return PredictionComparison(**prediction_comparison(caller.session, project_id))


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
def project_job(project_id: PathId, job_id: PathId, caller: Reader) -> JobOut:
    """Same as ``GET /jobs/{job_id}``, for a job of this project."""
    caller.project(project_id)
    return _visible_job(caller, job_id, project_id)


@router.get("/projects/{project_id}/jobs", response_model=list[JobOut])
def jobs(project_id: PathId, caller: Reader,
         status: JobStatus | None = None,
         limit: Annotated[int, Query(ge=1, le=500)] = 50) -> list[JobOut]:
    """The project's jobs (imports, rounds), newest first (any member)."""
    caller.project(project_id)
    return [job_out(j) for j in list_jobs(caller.session, project_id=project_id, status=status,
                                          limit=limit)]
