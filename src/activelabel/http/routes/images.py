"""Images stored as files: importing a folder, a zip or a list of paths or URLs, and serving an
item's image and its thumbnail.

Imports are owners' and run as jobs (``GET /projects/{id}/jobs/{job_id}``: counts, and the
rejected files with their names and reasons). The image and the thumbnail are served to any
member of the item's project with the stored media type, an ``ETag`` (the file's SHA-256) and
``Cache-Control: private``: the content of a stored image never changes.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import FileResponse
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile

from ...labeling.images import (
    THUMB_SIZES,
    enqueue_image_import,
    image_path,
    image_ref,
    thumbnail,
)
from ...labeling.imports import save_upload
from ...store import SPLITS, InvalidInput, NotFound, Role, get_item
from ..auth import Caller, Reader, Writer
from ..schemas import ImageFolderRequest, JobAccepted, PathId

router = APIRouter(tags=["images"])

#: A week: a stored image's content never changes (its name is its SHA-256).
CACHE_SECONDS = 7 * 24 * 3600

def _form_doc(extensions: tuple[str, ...]) -> dict[str, Any]:
    """The multipart body of an upload whose file name ends in one of ``extensions``."""
    return {"requestBody": {"required": True, "content": {"multipart/form-data": {"schema": {
        "type": "object", "required": ["file"], "properties": {
            "file": {"type": "string", "format": "binary",
                     "description": "Its name ends in " + " or ".join(extensions) + "."},
            "split": {"type": "string", "enum": list(SPLITS)},
            "labels_from_folders": {"type": "string", "enum": ["true", "false"]},
            "column": {"type": "string"}}}}}}}


_ZIP = (".zip",)
_LIST = (".csv", ".jsonl", ".ndjson")


@router.post("/projects/{project_id}/images/folder", status_code=202, response_model=JobAccepted)
def import_folder(project_id: PathId, body: ImageFolderRequest, caller: Writer) -> JobAccepted:
    """Import every image of a folder on the server (subfolders included, hidden files
    skipped); each is copied into the project's data folder. Only under the folders the
    server's admin allows (ACTIVELABEL_IMAGE_ROOTS; none: 403). Owners only."""
    caller.project(project_id, Role.OWNER)
    job = enqueue_image_import(caller.session, project_id, "image_folder", body.path,
                               rules=caller.settings.image_rules(),
                               requested_by=caller.user.id, split=body.split,
                               labels_from_folders=body.labels_from_folders)
    return JobAccepted(job_id=job.id, status=job.status)


async def _form(request: Request, suffixes: tuple[str, ...]
                ) -> tuple[UploadFile, str | None, bool, str]:
    if not request.headers.get("content-type", "").startswith("multipart/form-data"):
        raise InvalidInput("send the file as multipart/form-data in a field named 'file'")
    form = await request.form(max_files=1, max_fields=10)
    upload = form.get("file")
    fields = {k: form.get(k) for k in ("split", "labels_from_folders", "column")}
    if not isinstance(upload, UploadFile) or not upload.filename or any(
            v is not None and not isinstance(v, str) for v in fields.values()):
        await form.close()
        raise InvalidInput("send the file in a field named 'file' (with its name); split, "
                           "labels_from_folders and column are plain fields")
    if not upload.filename.lower().endswith(suffixes):
        await form.close()
        raise InvalidInput(f"{upload.filename} is not a {' or '.join(suffixes)} file")
    flag = str(fields["labels_from_folders"] or "false").lower()
    if flag not in ("true", "false", "1", "0"):
        await form.close()
        raise InvalidInput("labels_from_folders is true or false")
    return (upload, str(fields["split"]) if fields["split"] else None, flag in ("true", "1"),
            str(fields["column"] or "image"))


def _enqueue_upload(caller: Caller, project_id: int, fmt: str, upload: UploadFile,
                    split: str | None, by_folder: bool, column: str) -> JobAccepted:
    assert upload.filename is not None
    path = save_upload(caller.storage, project_id, upload.filename, upload.file)
    try:
        with caller.storage.sessions() as session, session.begin():
            job = enqueue_image_import(session, project_id, fmt, str(path),
                                       rules=caller.settings.image_rules(),
                                       requested_by=caller.user.id, split=split,
                                       labels_from_folders=by_folder, column=column)
            return JobAccepted(job_id=job.id, status=job.status)
    except BaseException:
        path.unlink(missing_ok=True)
        raise


async def _upload_import(project_id: int, request: Request, caller: Caller, fmt: str,
                         suffixes: tuple[str, ...]) -> JobAccepted:
    await run_in_threadpool(caller.project, project_id, Role.OWNER)
    upload, split, by_folder, column = await _form(request, suffixes)
    try:
        return await run_in_threadpool(_enqueue_upload, caller, project_id, fmt, upload, split,
                                       by_folder, column)
    finally:
        await upload.close()


@router.post("/projects/{project_id}/images/zip", status_code=202, response_model=JobAccepted,
             openapi_extra=_form_doc(_ZIP))
async def import_zip(project_id: PathId, request: Request, caller: Reader) -> JobAccepted:
    """Upload a zip of images (folders inside name labels with ``labels_from_folders``);
    every image is checked and stored, a bad one is a rejected row with its name. Owners
    only."""
    return await _upload_import(project_id, request, caller, "image_zip", _ZIP)


@router.post("/projects/{project_id}/images/list", status_code=202, response_model=JobAccepted,
             openapi_extra=_form_doc(_LIST))
async def import_list(project_id: PathId, request: Request, caller: Reader) -> JobAccepted:
    """Upload a CSV or JSONL whose ``column`` (default ``image``) holds a path on the server
    (under ACTIVELABEL_IMAGE_ROOTS) or a URL (under ACTIVELABEL_IMAGE_URL_PREFIXES); other
    columns: ``external_id``, ``split``, ``label``, the rest shown beside the image. Owners
    only."""
    return await _upload_import(project_id, request, caller, "image_list", _LIST)


def _served(request: Request, path: Any, media_type: str, etag: str) -> Response:
    headers = {"Cache-Control": f"private, max-age={CACHE_SECONDS}, immutable",
               "ETag": f'"{etag}"'}
    if request.headers.get("if-none-match") == headers["ETag"]:
        return Response(status_code=304, headers=headers)
    return FileResponse(path, media_type=media_type, headers=headers)


Field = Annotated[str, Query(min_length=1, max_length=200, description="The payload field "
                                                                        "holding the image.")]


@router.get("/projects/{project_id}/items/{item_id}/image", response_class=Response,
            responses={200: {"content": {"image/*": {}}}, 304: {"description": "Not modified"}})
def item_image(project_id: PathId, item_id: PathId, request: Request, caller: Reader,
               field: Field = "image") -> Response:
    """The item's stored image as imported (any member of the project)."""
    caller.project(project_id, Role.ANNOTATOR)
    ref = image_ref(get_item(caller.session, project_id, item_id).data or {}, field)
    path = image_path(caller.storage, project_id, ref)
    if not path.is_file():
        raise NotFound("the image file is gone from the data folder: import it again")
    return _served(request, path, str(ref["media_type"]), str(ref["image_file"]))


@router.get("/projects/{project_id}/items/{item_id}/thumbnail", response_class=Response,
            responses={200: {"content": {"image/webp": {}}}, 304: {"description": "Not modified"}})
def item_thumbnail(project_id: PathId, item_id: PathId, request: Request, caller: Reader,
                   field: Field = "image",
                   size: Annotated[int, Query(description="Longest side in pixels: "
                                              + ", ".join(map(str, THUMB_SIZES)))] = 256
                   ) -> Response:
    """A WebP thumbnail of the item's image, made on first request and kept (any member)."""
    caller.project(project_id, Role.ANNOTATOR)
    ref = image_ref(get_item(caller.session, project_id, item_id).data or {}, field)
    path = thumbnail(caller.storage, project_id, ref, size)
    return _served(request, path, "image/webp", f"{ref['image_file']}-{size}")
