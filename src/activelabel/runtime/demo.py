"""The demo deployment: an admin user and a project over scikit-learn's handwritten digits.

Each item carries the 8x8 grey image twice: ``image`` (pixel values 0-16, what the image
featurizer reads) and ``png`` (a data URL the labeling page shows as a picture). The true digit
is never stored on pool items; 300 holdout items are labeled by the admin so that every round
reports holdout accuracy. The cold-start round runs at once, so the queue is ready when the
server starts. ``activelabel demo --images`` makes ``Digits demo (PNG files)`` instead: the
digits written as PNG files and imported from that folder (holdout labels from the folder
names), the way a team's own images come in. Running the demo again changes nothing that exists (no duplicate items, labels
or rounds).
"""

from __future__ import annotations

import base64
import os
import secrets
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy.orm import Session

from ..store import (
    Storage,
    add_items,
    annotate,
    count_items,
    create_project,
    create_user,
    get_project_by_name,
    get_round,
    get_user_by_name,
    item_ids_for_rows,
    latest_round,
    set_password,
)
from ..store.models import Project, RoundStatus, User

__all__ = ["DEMO_ADMIN", "DEMO_FILES_PROJECT", "DEMO_PROJECT", "HOLDOUT_SIZE", "DemoResult", "create_demo", "png_data_url"]

DEMO_PROJECT = "Digits demo"
DEMO_FILES_PROJECT = "Digits demo (PNG files)"
DEMO_ADMIN = "admin"
HOLDOUT_SIZE = 300
LOGIN_FILE = "demo-login.txt"
#: Each pixel of the 8x8 image becomes a SCALE x SCALE block in the PNG.
SCALE = 4
GUIDELINES = ("Which digit (0-9) is written in the picture? Pick the digit you would read; "
              "flag the item when it could honestly be two digits.")
SETTINGS: dict[str, Any] = {"featurizer": "image", "featurizer_params": {"field": "image"},
                            "batch_size": 20, "retrain_every_labels": 20}
#: The PNG files (64 x 64) read back as 16 x 16 grey pixels.
FILES_SETTINGS: dict[str, Any] = {**SETTINGS, "featurizer_params": {"field": "image",
                                                                    "shape": [16, 16]}}


@dataclass(frozen=True)
class DemoResult:
    """What the demo created or found: the project, the login, and the seed round."""

    project_id: int
    username: str
    password: str | None
    created_project: bool
    created_user: bool
    items: int
    holdout_labeled: int
    round_id: int | None
    round_status: str | None


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(
        ">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def png_bytes(image: np.ndarray[Any, Any], max_value: float = 16.0, scale: int = SCALE) -> bytes:
    """A grey image (H, W) as a PNG file, ink dark on white, each pixel scale x scale."""
    grey = 255 - np.clip(np.asarray(image, dtype=np.float64) / max_value, 0, 1) * 255
    pixels = np.kron(grey.round().astype(np.uint8), np.ones((scale, scale), dtype=np.uint8))
    height, width = pixels.shape
    raw = b"".join(b"\x00" + pixels[y].tobytes() for y in range(height))
    return (b"\x89PNG\r\n\x1a\n"
            + _chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0))
            + _chunk(b"IDAT", zlib.compress(raw, 9)) + _chunk(b"IEND", b""))


def png_data_url(image: np.ndarray[Any, Any], max_value: float = 16.0, scale: int = SCALE) -> str:
    """A grey image (H, W) as a ``data:image/png;base64,...`` URL, ink dark on white."""
    return "data:image/png;base64," + base64.b64encode(
        png_bytes(image, max_value, scale)).decode("ascii")


def _digits() -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any], np.ndarray[Any, Any]]:
    """(images (n, 8, 8) ints, targets, holdout mask) with a fixed random holdout."""
    from sklearn.datasets import load_digits

    bunch = load_digits()
    images = np.asarray(bunch.images, dtype=np.int64)
    rng = np.random.default_rng(0)
    holdout = np.zeros(len(images), dtype=bool)
    holdout[rng.choice(len(images), size=HOLDOUT_SIZE, replace=False)] = True
    return images, np.asarray(bunch.target), holdout


def _login(session: Session, folder: Path, password: str | None) -> tuple[User, str | None, bool]:
    """The admin user (created when missing) and its password when known."""
    path = folder / LOGIN_FILE
    user = get_user_by_name(session, DEMO_ADMIN)
    created = user is None
    if user is None:
        password = password or secrets.token_urlsafe(12)
        user = create_user(session, DEMO_ADMIN, password, is_admin=True)
    elif password is not None:
        set_password(session, user.id, password)
    if password is not None:
        path.write_text(f"{DEMO_ADMIN}\n{password}\n")
        os.chmod(path, 0o600)
        return user, password, created
    lines = path.read_text().splitlines() if path.exists() else []
    return user, (lines[1] if len(lines) > 1 else None), created


def _project(session: Session, admin: User, files: bool = False) -> tuple[Project, bool]:
    name = DEMO_FILES_PROJECT if files else DEMO_PROJECT
    found = get_project_by_name(session, name)
    if found is not None:
        return found, False
    project = create_project(session, name, "classification",
                             [str(d) for d in range(10)], guidelines=GUIDELINES,
                             settings=FILES_SETTINGS if files else SETTINGS,
                             created_by=admin.id)
    return project, True


def _fill(session: Session, project_id: int, admin_id: int) -> int:
    """Add the digits (once) and label the holdout as the admin (once); returns holdout labels."""
    images, targets, holdout = _digits()
    if count_items(session, project_id) == 0:
        rows = [{"external_id": f"digit-{i:04d}",
                 "data": {"image": images[i].tolist(), "png": png_data_url(images[i])},
                 "split": "holdout" if holdout[i] else "pool"} for i in range(len(images))]
        add_items(session, project_id, rows)
    rows_holdout = np.flatnonzero(holdout).tolist()
    ids = item_ids_for_rows(session, project_id, rows_holdout)
    for row, item_id in zip(rows_holdout, ids, strict=True):
        annotate(session, project_id, admin_id, item_id, [str(int(targets[row]))],
                 client_key=f"demo-holdout-{row}")
    return len(ids)


def _seed_round(storage: Storage, project_id: int, admin_id: int) -> tuple[int, int | None]:
    """The round that gives the queue its seed batch: an existing one, else a new one."""
    from ..labeling.rounds import request_round

    with storage.sessions() as session, session.begin():
        latest = latest_round(session, project_id,
                              statuses=[s for s in RoundStatus if s != RoundStatus.FAILED])
        if latest is None:
            latest, _ = request_round(session, project_id, requested_by=admin_id,
                                      reason="cold_start")
        return latest.id, latest.job_id


def _fill_files(storage: Storage, project_id: int) -> int:
    """The digits as PNG files in ``<data folder>/demo-images`` (holdout in folders named
    after their digit), imported as image files (once); returns the holdout labels."""
    from ..labeling.images import ImageRules, enqueue_image_import
    from .server import run_job_inline

    images, targets, holdout = _digits()
    with storage.read_sessions() as session:
        if count_items(session, project_id) > 0:
            return int(holdout.sum())
    root = storage.location.data_dir / "demo-images"
    for i in range(len(images)):
        folder = root / "holdout" / str(int(targets[i])) if holdout[i] else root / "pool"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"digit-{i:04d}.png").write_bytes(png_bytes(images[i], scale=8))
    rules = ImageRules(roots=(str(root),))
    for part, split in (("holdout", "holdout"), ("pool", None)):
        with storage.sessions() as session, session.begin():
            job = enqueue_image_import(session, project_id, "image_folder", str(root / part),
                                       rules=rules, requested_by=None, split=split,
                                       labels_from_folders=split == "holdout")
            job_id = job.id
        run_job_inline(storage, job_id)
    return int(holdout.sum())


def create_demo(storage: Storage, *, password: str | None = None,
                run_round: bool = True, files: bool = False) -> DemoResult:
    """Create (or find) the demo admin, project, items and holdout labels; run the seed round.

    With ``files`` the project is ``Digits demo (PNG files)``: the digits written as PNG
    files and imported from that folder, as a team's own images would be."""
    from .server import run_job_inline

    if files:
        with storage.sessions() as session, session.begin():
            admin, known_password, created_user = _login(session, storage.location.data_dir,
                                                          password)
            project, created_project = _project(session, admin, files=True)
            project_id, admin_id = project.id, admin.id
        labeled = _fill_files(storage, project_id)
        with storage.read_sessions() as session:
            items = count_items(session, project_id)
        round_id, job_id = _seed_round(storage, project_id, admin_id)
        if run_round and job_id is not None:
            run_job_inline(storage, job_id)
        with storage.read_sessions() as session:
            status = get_round(session, project_id, round_id).status
        return DemoResult(project_id, DEMO_ADMIN, known_password, created_project,
                          created_user, items, labeled, round_id, status)
    with storage.sessions() as session, session.begin():
        admin, known_password, created_user = _login(session, storage.location.data_dir, password)
        project, created_project = _project(session, admin)
        labeled = _fill(session, project.id, admin.id)
        items = count_items(session, project.id)
        project_id, admin_id = project.id, admin.id
    round_id, job_id = _seed_round(storage, project_id, admin_id)
    if run_round and job_id is not None:
        run_job_inline(storage, job_id)
    with storage.read_sessions() as session:
        status = get_round(session, project_id, round_id).status
    return DemoResult(project_id, DEMO_ADMIN, known_password, created_project, created_user,
                      items, labeled, round_id, status)
