"""Images from files: folder, zip and list imports (paths and URLs), every refusal, the
stored files, and a round on file images."""

from __future__ import annotations

import io
import json
import os
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image
from sqlalchemy import select

from activelabel.labeling.featurize import ensure_features
from activelabel.labeling.images import (
    ImageRules,
    allowed_folder,
    enqueue_image_import,
    image_path,
    is_image_ref,
    load_pixels,
    thumbnail,
    url_allowed,
)
from activelabel.labeling.imports import save_upload
from activelabel.store import Forbidden, InvalidInput, Storage
from activelabel.store.models import Item
from tests.support.images import digit_png, digits, serve_folder, write_digit_folder
from tests.support.projects import new_project, request_and_run_round, run_job

DIGITS = list(range(10))


def _run(storage: Storage, project_id: int, fmt: str, source: str, rules: ImageRules,
         **kw: Any) -> dict[str, Any]:
    with storage.sessions() as session, session.begin():
        job_id = enqueue_image_import(session, project_id, fmt, source, rules=rules,
                                      requested_by=None, **kw).id
    return run_job(storage, job_id)


def _items(storage: Storage, project_id: int) -> dict[str, Item]:
    with storage.read_sessions() as session:
        return {i.external_id: i for i in session.execute(
            select(Item).where(Item.project_id == project_id)).scalars()}


def _reasons(result: dict[str, Any]) -> list[str]:
    return [r["reason"] for r in result["rejected"]]


def test_folder_import_copies_checked_images_and_labels_from_folders(
        engine_storage: Storage, tmp_path: Path) -> None:
    root = tmp_path / "allowed"
    folder = root / "digits"
    write_digit_folder(folder, 20)
    (folder / "3" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\nnot really")
    (folder / "notes.txt").write_text("not an image")
    (folder / ".DS_Store").write_bytes(b"hidden")
    (folder / "cats").mkdir()
    (folder / "cats" / "c.png").write_bytes(digit_png(digits()[0][0]))
    outside = tmp_path / "secret.png"
    outside.write_bytes(digit_png(digits()[0][1]))
    os.symlink(outside, folder / "2" / "link.png")
    os.symlink(tmp_path, folder / "looped")
    seeded = new_project(engine_storage, labels=DIGITS)
    rules = ImageRules(roots=(str(root),))
    result = _run(engine_storage, seeded.project_id, "image_folder", str(folder), rules,
                  labels_from_folders=True, split="pool")
    assert result["inserted"] == 20, result["rejected"]
    assert result["labels"] == 20
    reasons = _reasons(result)
    assert len(reasons) == 5, reasons
    assert any(r.startswith("looped: a link to a folder") for r in reasons)
    assert any(r.startswith("3/broken.png: ") and "damaged" in r for r in reasons)
    assert any(r.startswith("notes.txt: ") and "not an image" in r for r in reasons)
    assert any(r.startswith("cats/c.png: ") and "not a label" in r for r in reasons)
    assert any(r.startswith("2/link.png: ") and "outside" in r for r in reasons)
    items = _items(engine_storage, seeded.project_id)
    ref = items["0/digit_0000.png"].data["image"]
    assert is_image_ref(ref)
    assert ref["media_type"] == "image/png"
    assert (ref["width"], ref["height"]) == (64, 64)
    stored = image_path(engine_storage, seeded.project_id, ref)
    assert stored.read_bytes() == (folder / "0" / "digit_0000.png").read_bytes()
    assert stored.name.startswith(ref["image_file"])
    # Importing it again doubles nothing; without labels from folders cats/c.png goes in.
    again = _run(engine_storage, seeded.project_id, "image_folder", str(folder), rules)
    assert again["inserted"] == 1
    assert again["duplicates"] == 20
    assert again["rejected_count"] == 4


def test_folder_refusals(engine_storage: Storage, tmp_path: Path) -> None:
    root = tmp_path / "allowed"
    (root / "inner").mkdir(parents=True)
    (tmp_path / "other").mkdir()
    seeded = new_project(engine_storage, labels=DIGITS)
    with pytest.raises(Forbidden, match="ACTIVELABEL_IMAGE_ROOTS"):
        allowed_folder(str(root), ImageRules())  # the default: no folder at all
    rules = ImageRules(roots=(str(root),))
    with pytest.raises(Forbidden, match="outside"):
        allowed_folder(str(tmp_path / "other"), rules)
    with pytest.raises(Forbidden, match="outside"):
        allowed_folder(f"{root}/../other", rules)
    os.symlink(tmp_path / "other", root / "escape")
    with pytest.raises(Forbidden, match="outside"):
        allowed_folder(str(root / "escape"), rules)
    with pytest.raises(InvalidInput, match="absolute"):
        allowed_folder("allowed/inner", rules)
    with pytest.raises(InvalidInput, match="does not exist"):
        allowed_folder(str(root / "missing"), rules)
    assert allowed_folder(str(root / "inner"), rules) == (root / "inner").resolve()
    with engine_storage.sessions() as session, session.begin(), \
            pytest.raises(Forbidden):
        enqueue_image_import(session, seeded.project_id, "image_folder", str(tmp_path),
                             rules=rules, requested_by=None)


def _zip(entries: dict[str, bytes]) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, data in entries.items():
            archive.writestr(name, data)
    return out.getvalue()


def _png(width: int, height: int) -> bytes:
    out = io.BytesIO()
    Image.new("L", (width, height), 255).save(out, format="PNG")
    return out.getvalue()


def test_zip_import_is_slip_and_bomb_safe(engine_storage: Storage) -> None:
    images, targets = digits()
    entries = {f"{int(targets[i])}/d{i}.png": digit_png(images[i]) for i in range(6)}
    entries.update({"../evil.png": digit_png(images[7]), "/abs.png": digit_png(images[8]),
                    "big.png": _png(1100, 1000),  # 1.1 M pixels: over this test's cap
                    "large.bmp": b"B" * 30_000,  # over the per-file byte cap
                    "junk.png": b"garbage", "__MACOSX/._d0.png": b"x",
                    "photo.tiff": _tiff()})
    seeded = new_project(engine_storage, labels=DIGITS)
    path = save_upload(engine_storage, seeded.project_id, "digits.zip",
                       io.BytesIO(_zip(entries)))
    rules = ImageRules(max_file_bytes=25_000, max_pixels=1_000_000)
    result = _run(engine_storage, seeded.project_id, "image_zip", str(path), rules,
                  labels_from_folders=True)
    assert result["inserted"] == 6, result["rejected"]
    assert result["labels"] == 6
    reasons = {r.split(": ", 1)[0]: r for r in _reasons(result)}
    assert set(reasons) == {"../evil.png", "/abs.png", "big.png", "large.bmp", "junk.png",
                            "photo.tiff"}, reasons
    assert "outside the archive" in reasons["../evil.png"]
    assert "outside the archive" in reasons["/abs.png"]
    assert "pixels" in reasons["big.png"]
    assert "25,000 allowed" in reasons["large.bmp"]
    assert "not an image" in reasons["junk.png"]
    assert "TIFF is not taken" in reasons["photo.tiff"]
    # A zip that unpacks past the per-zip cap: the files past it are rejected rows.
    small = ImageRules(max_zip_bytes=len(entries["0/d0.png"]) * 2 + 10)
    path = save_upload(engine_storage, seeded.project_id, "more.zip", io.BytesIO(_zip(
        {f"x{i}.png": digit_png(images[20 + i]) for i in range(5)})))
    capped = _run(engine_storage, seeded.project_id, "image_zip", str(path), small)
    assert 1 <= capped["inserted"] <= 3
    assert any("unpacks to more" in r or "once unpacked" in r for r in _reasons(capped))
    assert capped["inserted"] + capped["rejected_count"] == 5


def _tiff() -> bytes:
    out = io.BytesIO()
    Image.new("L", (4, 4), 0).save(out, format="TIFF")
    return out.getvalue()


def test_list_of_paths_and_urls(engine_storage: Storage, tmp_path: Path) -> None:
    root = tmp_path / "allowed"
    paths = write_digit_folder(root, 4)
    web = tmp_path / "web"
    served = write_digit_folder(web, 3)
    (web / "big.png").write_bytes(_png(400, 400) + b"\0" * 60_000)
    outside = tmp_path / "outside.png"
    outside.write_bytes(digit_png(digits()[0][5]))
    seeded = new_project(engine_storage, labels=DIGITS)
    with serve_folder(web) as base:
        rows = [{"external_id": "p0", "image": str(paths[0]), "label": "0", "note": "kept"},
                {"image": str(paths[1]), "split": "holdout"},
                {"image": str(outside)},
                {"image": "allowed/relative.png"},
                {"image": base + served[0].relative_to(web).as_posix(), "label": 0},
                {"image": base + "missing.png"},
                {"image": base + "big.png"},
                {"image": "http://127.0.0.2:9/elsewhere.png"},
                {"picture": "no image column"}]
        listing = "\n".join(json.dumps(r) for r in rows).encode()
        path = save_upload(engine_storage, seeded.project_id, "list.jsonl", io.BytesIO(listing))
        rules = ImageRules(roots=(str(root),), url_prefixes=(base,), max_file_bytes=50_000,
                           url_timeout_seconds=5)
        result = _run(engine_storage, seeded.project_id, "image_list", str(path), rules)
    assert result["inserted"] == 3, result["rejected"]
    assert result["labels"] == 2
    lines = {r["line"]: r["reason"] for r in result["rejected"]}
    assert sorted(lines) == [3, 4, 6, 7, 8, 9]
    assert "outside the folders" in lines[3]
    assert "absolute path" in lines[4]
    assert "404" in lines[6]
    assert "50,000" in lines[7]
    assert "outside the prefixes" in lines[8]
    assert "no path or URL in column 'image'" in lines[9]
    items = _items(engine_storage, seeded.project_id)
    assert items["p0"].data["note"] == "kept"
    assert is_image_ref(items["p0"].data["image"])
    assert items[str(paths[1])].split == "holdout"
    # Without URL prefixes and roots nothing is read.
    none = _run(engine_storage, seeded.project_id, "image_list", str(path), ImageRules())
    assert none["inserted"] == 0
    assert none["rejected_count"] == len(rows)


def test_url_allowed_needs_a_boundary() -> None:
    prefixes = ("https://img.example.com", "http://127.0.0.1:8000/pics/")
    assert url_allowed("https://img.example.com/a.png", prefixes)
    assert not url_allowed("https://img.example.com.evil.net/a.png", prefixes)
    assert not url_allowed("https://img.example.com@evil.net/a.png", prefixes)
    assert url_allowed("http://127.0.0.1:8000/pics/a.png", prefixes)
    assert not url_allowed("http://127.0.0.1:8000/other/a.png", prefixes)
    assert not url_allowed("file:///etc/passwd", ("file:///",))
    assert not url_allowed("https://img.example.com/a.png", ())


def test_thumbnail_and_pixels(engine_storage: Storage, tmp_path: Path) -> None:
    write_digit_folder(tmp_path / "d", 2)
    seeded = new_project(engine_storage, labels=DIGITS)
    _run(engine_storage, seeded.project_id, "image_folder", str(tmp_path / "d"),
         ImageRules(roots=(str(tmp_path),)))
    ref = _items(engine_storage, seeded.project_id)["0/digit_0000.png"].data["image"]
    thumb = thumbnail(engine_storage, seeded.project_id, ref, 64)
    assert thumb == thumbnail(engine_storage, seeded.project_id, ref, 64)  # cached
    with Image.open(thumb) as opened:
        assert opened.format == "WEBP"
        assert max(opened.size) == 64
    with pytest.raises(InvalidInput, match="size"):
        thumbnail(engine_storage, seeded.project_id, ref, 300)
    pixels = load_pixels(image_path(engine_storage, seeded.project_id, ref), (8, 8))
    assert pixels.shape == (8, 8)
    assert pixels.dtype == np.uint8
    expected = 255 - np.clip(digits()[0][0] / 16.0, 0, 1) * 255
    assert np.abs(pixels.astype(float) - expected).max() < 2  # 8x8 blocks back to 8x8
    assert load_pixels(image_path(engine_storage, seeded.project_id, ref), (4, 6, 3)).shape \
        == (4, 6, 3)


@pytest.mark.slow
def test_a_round_on_file_images(engine_storage: Storage, tmp_path: Path) -> None:
    """Digits as PNG files, labels from folders for 300 of them: a round trains on the
    resized pixels and scores the pool."""
    write_digit_folder(tmp_path / "labeled", 300)
    pool = tmp_path / "pool"
    images, _ = digits()
    for i in range(300, 600):
        (pool / f"p{i}.png").parent.mkdir(parents=True, exist_ok=True)
        (pool / f"p{i}.png").write_bytes(digit_png(images[i]))
    seeded = new_project(engine_storage, labels=DIGITS, settings={
        "featurizer": "image", "featurizer_params": {"field": "image", "shape": [16, 16]},
        "batch_size": 20, "model": "logistic_regression"})
    rules = ImageRules(roots=(str(tmp_path),))
    first = _run(engine_storage, seeded.project_id, "image_folder", str(tmp_path / "labeled"),
                 rules, labels_from_folders=True)
    assert first["labels"] == 300
    _run(engine_storage, seeded.project_id, "image_folder", str(pool), rules)
    holdout = tmp_path / "holdout"
    for i in range(600, 700):
        (holdout / str(digits()[1][i])).mkdir(parents=True, exist_ok=True)
        (holdout / str(digits()[1][i]) / f"h{i}.png").write_bytes(digit_png(images[i]))
    _run(engine_storage, seeded.project_id, "image_folder", str(holdout), rules,
         labels_from_folders=True, split="holdout")
    feats = ensure_features(engine_storage, seeded.project_id)
    assert feats.X.shape == (700, 256)
    assert float(feats.X.min()) >= 0.0
    assert float(feats.X.max()) <= 1.0
    result = request_and_run_round(engine_storage, seeded.project_id)
    assert result["metrics"]["n_train"] == 300
    assert result["selected"] == 20
    assert result["metrics"]["n_holdout"] == 100
    assert result["metrics"]["accuracy"] > 0.8  # 16 x 16 grey pixels of the PNGs


def test_own_vectors_match_image_items_by_path(engine_storage: Storage, tmp_path: Path) -> None:
    """The team's own embeddings of the files, keyed by each file's path in the folder."""
    from activelabel.labeling.vectors import import_vector_file

    paths = write_digit_folder(tmp_path / "d", 8)
    seeded = new_project(engine_storage, labels=DIGITS, settings={"featurizer": "vectors"})
    _run(engine_storage, seeded.project_id, "image_folder", str(tmp_path / "d"),
         ImageRules(roots=(str(tmp_path),)))
    ids = [p.relative_to(tmp_path / "d").as_posix() for p in paths]
    vectors = np.arange(len(ids) * 5, dtype=np.float32).reshape(len(ids), 5)
    np.save(tmp_path / "v.npy", vectors)
    (tmp_path / "ids.txt").write_text("\n".join(ids))
    stored = import_vector_file(engine_storage, seeded.project_id, tmp_path / "v.npy",
                                tmp_path / "ids.txt")
    assert stored["stored"] == 8
    feats = ensure_features(engine_storage, seeded.project_id)
    by_row = {i.row: i.external_id for i in _items(engine_storage, seeded.project_id).values()}
    row = next(r for r, ext in by_row.items() if ext == ids[3])
    assert feats.X.shape == (8, 5)
    assert np.allclose(feats.X[row], vectors[3])


def test_purge_removes_the_image_files_of_its_items(engine_storage: Storage,
                                                    tmp_path: Path) -> None:
    from activelabel.labeling.governance import purge

    paths = write_digit_folder(tmp_path / "d", 3)
    (tmp_path / "d" / "copy.png").write_bytes(paths[1].read_bytes())  # same content twice
    seeded = new_project(engine_storage, labels=DIGITS)
    rules = ImageRules(roots=(str(tmp_path),))
    _run(engine_storage, seeded.project_id, "image_folder", str(tmp_path / "d"), rules)
    items = _items(engine_storage, seeded.project_id)
    gone, shared = items["0/digit_0000.png"], items["1/digit_0001.png"]
    gone_file = image_path(engine_storage, seeded.project_id, gone.data["image"])
    shared_file = image_path(engine_storage, seeded.project_id, shared.data["image"])
    thumb = thumbnail(engine_storage, seeded.project_id, gone.data["image"], 64)
    with engine_storage.sessions() as session, session.begin():
        purge(session, engine_storage, seeded.project_id, item_ids=[gone.id, shared.id],
              external_ids=[], actor_id=seeded.owner_id)
    assert not gone_file.exists()
    assert not thumb.exists()
    assert shared_file.exists()  # copy.png still shows it


def test_a_text_featurizer_on_image_items_says_what_to_set(engine_storage: Storage,
                                                           tmp_path: Path) -> None:
    write_digit_folder(tmp_path / "d", 3)
    seeded = new_project(engine_storage, labels=DIGITS)  # the default featurizer: text
    _run(engine_storage, seeded.project_id, "image_folder", str(tmp_path / "d"),
         ImageRules(roots=(str(tmp_path),)))
    with pytest.raises(ValueError, match="featurizer to image"):
        ensure_features(engine_storage, seeded.project_id)
