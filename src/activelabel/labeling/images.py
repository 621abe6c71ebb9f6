"""Images from files: a folder the server may read, a zip upload, or a list of paths or URLs.

Every image is read once, checked (size cap, Pillow opens, verifies and decodes it, at most
``max_pixels`` pixels, one of the formats browsers show) and copied into the project's data
folder under its SHA-256 (``arrays/project_<id>/images/<ab>/<sha256>.<ext>``), so the project
no longer depends on the source. The item's payload holds a reference instead of pixels::

    {"image": {"image_file": "<sha256>", "media_type": "image/png", "name": "3/a.png",
               "width": 64, "height": 64, "bytes": 412}}

A bad file is a rejected row naming the file; the good ones go in. What the server may read
is the admin's decision (:class:`ImageRules`, from the server's settings): folders and paths
only under the allowed roots (after resolving ``..`` and symbolic links), URLs only under the
allowed prefixes (no redirects, a timeout, a size cap). A zip's members are read into memory
(never extracted to a path taken from the archive), each under the per-file cap and all of
them under the per-zip cap, whatever sizes the archive declares.

Thumbnails (WebP, longest side ``size``) are made on first request and kept beside the
images. :func:`load_pixels` turns a stored image into the fixed-shape pixel array the image
featurizer reads.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import io
import os
import re
import warnings
import zipfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np
from sqlalchemy.orm import Session

from ..store import SPLITS, Forbidden, InvalidInput, Storage, enqueue_job, get_project, record_audit
from ..store.files import atomic_write
from ..store.models import Job

__all__ = [
    "DEFAULT_PIXEL_SHAPE",
    "IMAGE_IMPORTS",
    "MEDIA_TYPES",
    "THUMB_SIZES",
    "ImageRules",
    "allowed_folder",
    "enqueue_image_import",
    "forget_images",
    "image_path",
    "image_ref",
    "image_rows",
    "is_image_ref",
    "load_pixels",
    "store_image",
    "thumbnail",
    "url_allowed",
]

#: Import formats of this module (job payloads' ``format``).
IMAGE_IMPORTS = ("image_folder", "image_zip", "image_list")
#: Pillow format -> (media type, file extension): what browsers show.
MEDIA_TYPES = {"PNG": ("image/png", "png"), "JPEG": ("image/jpeg", "jpg"),
               "GIF": ("image/gif", "gif"), "WEBP": ("image/webp", "webp"),
               "BMP": ("image/bmp", "bmp")}
#: Thumbnail sizes (longest side, pixels) the API makes and caches.
THUMB_SIZES = (64, 128, 256, 512)
#: Shape of the pixels of a file image when the featurizer names none: 32 x 32 grey.
DEFAULT_PIXEL_SHAPE = (32, 32)
#: The annotator name of labels taken from the folder layout.
FOLDER_ANNOTATOR = "folder"
#: Threads storing images at once, and images read ahead (a zip's are held in memory).
IMPORT_THREADS = 4
IMPORT_WINDOW = 8
_SHA = re.compile(r"^[0-9a-f]{64}$")
_READ_CHUNK = 1 << 16


@dataclass(frozen=True)
class ImageRules:
    """What an image import may read: folders under ``roots``, URLs under ``url_prefixes``;
    at most ``max_file_bytes`` per file, ``max_zip_bytes`` unpacked per zip, ``max_pixels``
    per image; a URL answers within ``url_timeout_seconds``."""

    roots: tuple[str, ...] = ()
    url_prefixes: tuple[str, ...] = ()
    max_file_bytes: int = 50 << 20
    max_zip_bytes: int = 2 << 30
    max_pixels: int = 89_478_485  # Pillow's own decompression-bomb bound
    url_timeout_seconds: float = 10.0

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "roots": list(self.roots), "url_prefixes": list(self.url_prefixes)}

    @classmethod
    def from_dict(cls, value: Mapping[str, Any]) -> ImageRules:
        return cls(roots=tuple(value.get("roots") or ()),
                   url_prefixes=tuple(value.get("url_prefixes") or ()),
                   max_file_bytes=int(value.get("max_file_bytes", cls.max_file_bytes)),
                   max_zip_bytes=int(value.get("max_zip_bytes", cls.max_zip_bytes)),
                   max_pixels=int(value.get("max_pixels", cls.max_pixels)),
                   url_timeout_seconds=float(value.get("url_timeout_seconds",
                                                       cls.url_timeout_seconds)))


# ---- references and files ---------------------------------------------------------------------


def is_image_ref(value: Any) -> bool:
    """Whether ``value`` is a stored image's reference (what an import puts in the payload)."""
    return isinstance(value, Mapping) and isinstance(value.get("image_file"), str) \
        and bool(_SHA.match(value["image_file"]))


def images_dir(storage: Storage, project_id: int) -> Path:
    return storage.arrays.project_dir(project_id) / "images"


def image_path(storage: Storage, project_id: int, ref: Mapping[str, Any]) -> Path:
    """Where the image of ``ref`` is stored in the project (it may be gone: check)."""
    if not is_image_ref(ref):
        raise InvalidInput("not a stored image reference")
    sha = str(ref["image_file"])
    ext = next((e for t, e in MEDIA_TYPES.values() if t == ref.get("media_type")), "img")
    return images_dir(storage, project_id) / sha[:2] / f"{sha}.{ext}"


def image_ref(item_data: Mapping[str, Any], field: str) -> dict[str, Any]:
    """The image reference in the item's ``field``; NotFound-like InvalidInput otherwise."""
    value = item_data.get(field)
    if not is_image_ref(value):
        from ..store import NotFound

        raise NotFound(f"the item has no stored image in field {field!r}: image files are "
                       "served for items imported from image folders, zips or lists")
    return dict(value) if isinstance(value, Mapping) else {}


def _open_checked(data: bytes, max_pixels: int) -> Any:
    """The decoded Pillow image of ``data``; ValueError saying why it is not an image we take."""
    from PIL import Image, UnidentifiedImageError

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            probe = Image.open(io.BytesIO(data))
            width, height = probe.size
            if width * height > max_pixels:
                raise ValueError(f"{width}x{height} pixels is more than the {max_pixels:,} "
                                 "allowed (a decompression bomb, or an image to shrink first)")
            if probe.format not in MEDIA_TYPES:
                raise ValueError(f"format {probe.format} is not taken: use PNG, JPEG, GIF, "
                                 "WebP or BMP")
            probe.verify()
            image = Image.open(io.BytesIO(data))
            image.load()
    except ValueError:
        raise
    except (UnidentifiedImageError, Image.DecompressionBombError,
            Image.DecompressionBombWarning) as exc:
        raise ValueError(f"not an image Pillow can read ({exc})") from None
    except (OSError, SyntaxError, EOFError) as exc:
        raise ValueError(f"a damaged image ({exc})") from None
    return image


def store_image(storage: Storage, project_id: int, data: bytes, name: str,
                rules: ImageRules) -> dict[str, Any]:
    """Check ``data`` as an image and keep it under its SHA-256; its reference. ValueError
    (without the name: the caller adds it) when it is refused."""
    if len(data) > rules.max_file_bytes:
        raise ValueError(f"{len(data):,} bytes is more than the {rules.max_file_bytes:,} "
                         "allowed per image")
    if not data:
        raise ValueError("an empty file")
    image = _open_checked(data, rules.max_pixels)
    media_type, _ = MEDIA_TYPES[str(image.format)]
    sha = hashlib.sha256(data).hexdigest()
    ref = {"image_file": sha, "media_type": media_type, "name": name[-300:],
           "width": int(image.width), "height": int(image.height), "bytes": len(data)}
    target = image_path(storage, project_id, ref)
    if not target.exists():
        # FileExistsError: the same content, stored by another row meanwhile
        with contextlib.suppress(FileExistsError):
            atomic_write(target, lambda h: h.write(data), overwrite=False)
    return ref


def thumbnail(storage: Storage, project_id: int, ref: Mapping[str, Any], size: int) -> Path:
    """The WebP thumbnail (longest side at most ``size``) of a stored image, made once."""
    if size not in THUMB_SIZES:
        raise InvalidInput(f"thumbnail size {size} is not one of {list(THUMB_SIZES)}")
    source = image_path(storage, project_id, ref)
    target = images_dir(storage, project_id) / "thumbs" / f"{ref['image_file']}-{size}.webp"
    if target.exists():
        return target
    if not source.exists():
        from ..store import NotFound

        raise NotFound("the image file is gone from the data folder: import it again")
    from PIL import Image, ImageOps

    with Image.open(source) as opened:
        image = ImageOps.exif_transpose(opened)
        image = image.convert("RGBA" if "A" in image.getbands() or "transparency" in
                              image.info else "RGB")
        image.thumbnail((size, size), Image.Resampling.LANCZOS)
        atomic_write(target, lambda h: image.save(h, format="WEBP", quality=82))
    return target


def load_pixels(path: Path, shape: Sequence[int] | None) -> np.ndarray[Any, Any]:
    """The stored image at ``path`` resized to ``shape``: (H, W) grey or (H, W, 3) RGB, uint8
    (aspect ratio not kept: every image gets the same shape)."""
    from PIL import Image, ImageOps

    shape = tuple(int(s) for s in (shape or DEFAULT_PIXEL_SHAPE))
    if len(shape) not in (2, 3) or (len(shape) == 3 and shape[2] not in (1, 3)) \
            or min(shape) < 1 or shape[0] * shape[1] > 1 << 20:
        raise ValueError(f"image shape {list(shape)} must be [height, width] (grey) or "
                         "[height, width, 3] (RGB), at most 1,048,576 pixels")
    with Image.open(path) as opened:
        image = ImageOps.exif_transpose(opened)
        mode = "RGB" if len(shape) == 3 and shape[2] == 3 else "L"
        # Shrinking averages each target pixel's area (BOX); growing interpolates.
        shrink = shape[1] <= image.width and shape[0] <= image.height
        image = image.convert(mode).resize(
            (shape[1], shape[0]), Image.Resampling.BOX if shrink else Image.Resampling.BILINEAR)
        pixels = np.asarray(image, dtype=np.uint8)
    return pixels.reshape(shape)


# ---- what the server may read ------------------------------------------------------------------


def _under(path: Path, roots: Sequence[str]) -> bool:
    return any(path == Path(r).resolve() or path.is_relative_to(Path(r).resolve()) for r in roots)


def allowed_folder(folder: str, rules: ImageRules) -> Path:
    """The resolved folder when the rules allow reading it; Forbidden (403) or InvalidInput."""
    if not rules.roots:
        raise Forbidden("this server reads no image folders: its admin lists the folders it "
                        "may read in ACTIVELABEL_IMAGE_ROOTS; or upload a zip of the images")
    if not folder or not Path(folder).is_absolute():
        raise InvalidInput(f"folder {folder!r} must be an absolute path on the server")
    resolved = Path(folder).resolve()
    if not _under(resolved, rules.roots):
        raise Forbidden(f"folder {folder} is outside the folders this server may read "
                        f"({', '.join(rules.roots)}, set by ACTIVELABEL_IMAGE_ROOTS)")
    if not resolved.is_dir():
        raise InvalidInput(f"folder {folder} does not exist on the server or is not a folder")
    return resolved


def url_allowed(url: str, prefixes: Sequence[str]) -> bool:
    """Whether ``url`` (http or https) starts with one of ``prefixes`` at a boundary: the
    prefix ends with ``/``, or the URL goes on with ``/``, ``?`` or ``#`` (so
    ``https://a.example`` does not admit ``https://a.example.evil``)."""
    if not re.match(r"^https?://", url, re.IGNORECASE):
        return False
    for prefix in prefixes:
        if prefix and url.startswith(prefix) and (
                prefix.endswith("/") or len(url) == len(prefix) or url[len(prefix)] in "/?#"):
            return True
    return False


def _read_capped(handle: Any, cap: int, what: str) -> bytes:
    out = bytearray()
    while True:
        chunk = handle.read(_READ_CHUNK)
        if not chunk:
            return bytes(out)
        out += chunk
        if len(out) > cap:
            raise ValueError(f"{what} is more than the {cap:,} bytes allowed per image")


def _read_file(path: Path, rules: ImageRules) -> bytes:
    resolved = path.resolve()
    if not _under(resolved, rules.roots):
        raise ValueError("a link to a file outside the folders this server may read")
    if not resolved.is_file():
        raise ValueError("not a file (or it is gone)")
    if resolved.stat().st_size > rules.max_file_bytes:
        raise ValueError(f"{resolved.stat().st_size:,} bytes is more than the "
                         f"{rules.max_file_bytes:,} allowed per image")
    with resolved.open("rb") as handle:
        return _read_capped(handle, rules.max_file_bytes, "the file")


def _fetch(url: str, rules: ImageRules) -> bytes:
    import httpx

    if not url_allowed(url, rules.url_prefixes):
        raise ValueError("URL outside the prefixes this server may fetch (ACTIVELABEL_IMAGE_"
                         "URL_PREFIXES" + ("" if rules.url_prefixes else ", empty: none") + ")")
    try:
        with httpx.Client(timeout=rules.url_timeout_seconds, follow_redirects=False) as client, \
                client.stream("GET", url) as answer:
            if answer.status_code != 200:
                raise ValueError(f"the server answered {answer.status_code} (redirects are not "
                                 "followed: give the final URL)")
            declared = answer.headers.get("content-length")
            if declared and declared.isdigit() and int(declared) > rules.max_file_bytes:
                raise ValueError(f"{int(declared):,} bytes is more than the "
                                 f"{rules.max_file_bytes:,} allowed per image")
            out = bytearray()
            for chunk in answer.iter_bytes(_READ_CHUNK):
                out += chunk
                if len(out) > rules.max_file_bytes:
                    raise ValueError(f"more than the {rules.max_file_bytes:,} bytes allowed "
                                     "per image")
            return bytes(out)
    except httpx.TimeoutException:
        raise ValueError(f"no answer within {rules.url_timeout_seconds:g} s") from None
    except httpx.HTTPError as exc:
        raise ValueError(f"could not be fetched ({exc})") from None


# ---- rows ---------------------------------------------------------------------------------------

Parsed = tuple[int, Any, str | None]


def _row(ref: dict[str, Any], external_id: str, label: Any = None, annotator: str = "",
         extra: Mapping[str, Any] | None = None, split: Any = None) -> dict[str, Any]:
    row: dict[str, Any] = {"external_id": external_id, "data": {**(extra or {}), "image": ref}}
    if split not in (None, ""):
        row["split"] = split
    if label not in (None, ""):
        row["annotations"] = [{"labels": label if isinstance(label, list) else [label],
                               "annotator": annotator}]
    return row


def _folder_label(relative: PurePosixPath, labels: Sequence[Any]) -> tuple[Any, str | None]:
    """The label named by the file's first folder; an error when it names none of the
    project's labels (files at the top have no label)."""
    if len(relative.parts) < 2:
        return None, None
    name = relative.parts[0]
    for label in labels:
        if str(label) == name:
            return label, None
    return None, (f"folder {name!r} is not a label of the project ({', '.join(map(str, labels))}): "
                  "rename the folder, add the label, or import without labels from folders")


def _hidden(relative: PurePosixPath) -> bool:
    return any(part.startswith(".") or part == "__MACOSX" for part in relative.parts)


def _folder_files(root: Path) -> Iterator[tuple[PurePosixPath, Path]]:
    """Every file under ``root`` (hidden ones skipped), sorted: ``(relative, path)``. Links
    to folders are not followed; links to files are checked where the file is read."""
    for folder, dirs, files in os.walk(root, followlinks=False):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        base = Path(folder)
        linked = [d for d in dirs if (base / d).is_symlink()]  # reported, not followed
        for name in sorted([*files, *linked]):
            if name.startswith("."):
                continue
            path = base / name
            yield PurePosixPath(path.relative_to(root).as_posix()), path


Task = Callable[[], tuple[Any, "str | None"]]


def _task(storage: Storage, project_id: int, rules: ImageRules, name: str,
          read: Callable[[], bytes], external_id: str, label: Any = None, extra: Any = None,
          split: Any = None, annotator: str = FOLDER_ANNOTATOR) -> Task:
    """What reads, checks and stores one image (run on a thread): ``(row, None)`` or
    ``(None, "<name>: <reason>")``."""
    def run() -> tuple[Any, str | None]:
        try:
            ref = store_image(storage, project_id, read(), name, rules)
        except ValueError as exc:
            return None, f"{name}: {exc}"
        except OSError as exc:
            return None, f"{name}: cannot be read ({exc.strerror or exc})"
        return _row(ref, external_id, label, annotator, extra, split), None
    return run


def _failed(message: str) -> Task:
    return lambda: (None, message)


def _ordered(tasks: Iterator[tuple[int, Task]]) -> Iterator[Parsed]:
    """The tasks run on ``IMPORT_THREADS`` threads (reading, decoding and the fsync of each
    stored file overlap), their results yielded in the order of the lines."""
    from collections import deque
    from concurrent.futures import Future, ThreadPoolExecutor

    with ThreadPoolExecutor(IMPORT_THREADS, thread_name_prefix="images") as pool:
        pending: deque[tuple[int, Future[tuple[Any, str | None]]]] = deque()
        for line, task in tasks:
            pending.append((line, pool.submit(task)))
            while len(pending) >= IMPORT_WINDOW:
                done_line, future = pending.popleft()
                yield (done_line, *future.result())
        while pending:
            done_line, future = pending.popleft()
            yield (done_line, *future.result())


def _folder_rows(storage: Storage, project_id: int, payload: Mapping[str, Any],
                 rules: ImageRules, labels: Sequence[Any], skip: int
                 ) -> Iterator[tuple[int, Task]]:
    root = allowed_folder(str(payload["path"]), rules)
    by_folder = bool(payload.get("labels_from_folders"))
    for line, (relative, path) in enumerate(_folder_files(root), start=1):
        if line <= skip:
            continue
        if path.is_dir():
            yield line, _failed(f"{relative}: a link to a folder, not followed: import that "
                                "folder on its own")
            continue
        label, problem = _folder_label(relative, labels) if by_folder else (None, None)
        if problem is not None:
            yield line, _failed(f"{relative}: {problem}")
            continue
        yield line, _task(storage, project_id, rules, str(relative),
                          functools.partial(_read_file, path, rules), str(relative), label)


def _zip_rows(storage: Storage, project_id: int, payload: Mapping[str, Any],
              rules: ImageRules, labels: Sequence[Any], skip: int
              ) -> Iterator[tuple[int, Task]]:
    path = Path(str(payload["path"]))
    by_folder = bool(payload.get("labels_from_folders"))
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as exc:
        raise InvalidInput(f"{path.name} is not a zip file that can be read ({exc})") from None
    unpacked = 0
    with archive:
        members = sorted((m for m in archive.infolist() if not m.is_dir()),
                         key=lambda m: m.filename)
        line = 0
        for member in members:
            name = member.filename.replace("\\", "/")
            relative = PurePosixPath(name)
            escapes = relative.is_absolute() or ".." in relative.parts \
                or ":" in relative.parts[0]
            if not escapes and _hidden(relative):
                continue
            line += 1
            if line <= skip:
                unpacked += min(member.file_size, rules.max_file_bytes)
                continue
            if escapes:
                yield line, _failed(f"{name}: a path outside the archive (absolute or with ..)")
                continue
            if member.flag_bits & 0x1:
                yield line, _failed(f"{name}: encrypted: zip the images without a password")
                continue
            if unpacked >= rules.max_zip_bytes:
                yield line, _failed(f"{name}: the zip unpacks to more than the "
                                    f"{rules.max_zip_bytes:,} bytes allowed; split it")
                continue
            label, problem = _folder_label(relative, labels) if by_folder else (None, None)
            if problem is not None:
                yield line, _failed(f"{name}: {problem}")
                continue

            def read(m: zipfile.ZipInfo = member) -> bytes:
                nonlocal unpacked
                if m.file_size > rules.max_file_bytes:
                    raise ValueError(f"{m.file_size:,} bytes is more than the "
                                     f"{rules.max_file_bytes:,} allowed per image")
                cap = min(rules.max_file_bytes, rules.max_zip_bytes - unpacked)
                try:
                    with archive.open(m) as handle:
                        data = _read_capped(handle, cap, "the file once unpacked")
                except (zipfile.BadZipFile, OSError, EOFError) as exc:
                    raise ValueError(f"cannot be unpacked ({exc})") from None
                unpacked += len(data)
                return data

            try:  # read here, in order: the per-zip cap counts exactly
                data = read()
            except ValueError as exc:
                yield line, _failed(f"{name}: {exc}")
                continue
            yield line, _task(storage, project_id, rules, name, functools.partial(bytes, data),
                              name, label)


def _list_rows(storage: Storage, project_id: int, payload: Mapping[str, Any],
               rules: ImageRules, labels: Sequence[Any], skip: int
               ) -> Iterator[tuple[int, Task]]:
    from .imports import read_rows

    path = Path(str(payload["path"]))
    column = str(payload.get("column") or "image")
    fmt = "csv" if path.suffix.lower() == ".csv" else "jsonl"
    for line, raw, error in read_rows(path, fmt):
        if line <= skip:
            continue
        if error is not None:
            yield line, _failed(error)
            continue
        if not isinstance(raw, Mapping):
            yield line, _failed("row is not an object")
            continue
        source = raw.get(column)
        if not isinstance(source, str) or not source.strip():
            yield line, _failed(f"no path or URL in column {column!r}: name the column with "
                                "the images' paths or URLs")
            continue
        source = source.strip()
        external_id = str(raw.get("external_id") or raw.get("id") or source)[:500]
        label = raw.get("labels", raw.get("label"))
        extra = {k: v for k, v in raw.items()
                 if k not in (column, "external_id", "id", "split", "label", "labels")}
        if re.match(r"^[a-z][a-z0-9+.-]*://", source, re.IGNORECASE):
            def read(p: str = source) -> bytes:
                return _fetch(p, rules)
        else:
            if not rules.roots:
                yield line, _failed(f"{source}: this server reads no local files "
                                    "(ACTIVELABEL_IMAGE_ROOTS is empty)")
                continue
            if not Path(source).is_absolute():
                yield line, _failed(f"{source}: give an absolute path on the server, or a URL")
                continue

            def read(p: str = source) -> bytes:
                return _read_file(Path(p), rules)
        yield line, _task(storage, project_id, rules, source, read, external_id, label, extra,
                          raw.get("split"), annotator="list")


def image_rows(storage: Storage, project_id: int, payload: Mapping[str, Any],
               labels: Sequence[Any], skip: int = 0) -> Iterator[Parsed]:
    """``(line, canonical row, error)`` of an image import job's payload (``format`` one of
    :data:`IMAGE_IMPORTS`); lines up to ``skip`` (a resumed job's) are not read again."""
    rules = ImageRules.from_dict(payload.get("rules") or {})
    fmt = payload.get("format")
    readers = {"image_folder": _folder_rows, "image_zip": _zip_rows, "image_list": _list_rows}
    if fmt not in readers:
        raise InvalidInput(f"unknown image import {fmt!r}: one of {', '.join(IMAGE_IMPORTS)}")
    return _ordered(readers[str(fmt)](storage, project_id, payload, rules, labels, skip))


def enqueue_image_import(session: Session, project_id: int, fmt: str, source: str, *,
                         rules: ImageRules, requested_by: int | None, split: str | None = None,
                         labels_from_folders: bool = False, column: str = "image") -> Job:
    """Queue an image import: ``fmt`` ``image_folder`` (``source`` a folder on the server,
    checked against ``rules`` now and again when the job runs), ``image_zip`` or
    ``image_list`` (``source`` a saved upload: a zip, or a CSV / JSONL whose ``column``
    holds paths or URLs). The job keeps the rules it was allowed under."""
    get_project(session, project_id)
    if fmt not in IMAGE_IMPORTS:
        raise InvalidInput(f"unknown image import {fmt!r}: one of {', '.join(IMAGE_IMPORTS)}")
    if split is not None and split not in SPLITS:
        raise InvalidInput(f"split {split!r} is not one of {', '.join(SPLITS)}")
    if fmt == "image_folder":
        source = str(allowed_folder(source, rules))
    elif not Path(source).is_file():
        raise InvalidInput(f"{source} is not a saved upload: upload the file first")
    if fmt == "image_list":
        if Path(source).suffix.lower() not in (".csv", ".jsonl", ".ndjson"):
            raise InvalidInput(f"a list of images is a .csv or .jsonl file, not {Path(source).name}")
        if not column or len(column) > 200:
            raise InvalidInput("column must name the column of paths or URLs (1-200 characters)")
    payload: dict[str, Any] = {"path": source, "format": fmt, "split": split,
                               "requested_by": requested_by, "rules": rules.as_dict(),
                               "labels_from_folders": bool(labels_from_folders),
                               "column": column}
    job = enqueue_job(session, "import", payload, project_id=project_id)
    record_audit(session, "request", "import", job.id, project_id=project_id,
                 actor_id=requested_by, after=payload)
    return job


def forget_images(session: Session, storage: Storage, project_id: int,
                  refs: Sequence[Mapping[str, Any]]) -> int:
    """Delete the stored files (and thumbnails) of ``refs`` that no item of the project
    refers to any more (after a purge emptied their items); how many files went."""
    from sqlalchemy import String, cast, select

    from ..store.models import Item

    removed = 0
    for sha in sorted({str(r["image_file"]) for r in refs if is_image_ref(r)}):
        still = session.execute(select(Item.id).where(
            Item.project_id == project_id,
            cast(Item.data, String).like(f"%{sha}%")).limit(1)).first()
        if still is not None:
            continue  # the same content under another item
        folder = images_dir(storage, project_id)
        for path in [*(folder / sha[:2]).glob(f"{sha}.*"), *(folder / "thumbs").glob(f"{sha}-*")]:
            path.unlink(missing_ok=True)
            removed += 1
    return removed
