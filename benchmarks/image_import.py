"""Images from files: the 1,797 scikit-learn digits rendered as 64 x 64 PNG files, imported
from a folder and from a zip, then rounds on their pixels (16 x 16 grey), per database.

The first 300 digits sit in folders named after their class (``labels/<digit>/``, imported
with labels from folders), the others in ``pool/``. Prints the seconds and images per
second of each import, the first round (features built: every PNG decoded and resized)
and a second one (features cached), with the holdout accuracy on 200 digits.

    python benchmarks/image_import.py                      # SQLite and PostgreSQL
    python benchmarks/image_import.py --backends sqlite
"""

from __future__ import annotations

import argparse
import io
import sys
import tempfile
import time
import zipfile
from pathlib import Path
from typing import Any

from _pg import drop_schema, pg_schema  # the folder of this script is on sys.path

DEFAULT_PG = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
LABELED, HOLDOUT = 300, 200


def render(root: Path) -> int:
    """The digits as PNG files under ``root``; how many."""
    import numpy as np
    from PIL import Image
    from sklearn.datasets import load_digits

    bunch = load_digits()
    for i, (image, target) in enumerate(zip(bunch.images, bunch.target, strict=True)):
        grey = (255 - np.clip(image / 16.0, 0, 1) * 255).astype(np.uint8)
        big = np.kron(grey, np.ones((8, 8), dtype=np.uint8))
        part = "labels" if i < LABELED else "holdout" if i < LABELED + HOLDOUT else "pool"
        folder = root / part / str(int(target)) if part != "pool" else root / part
        folder.mkdir(parents=True, exist_ok=True)
        out = io.BytesIO()
        Image.fromarray(big, mode="L").save(out, format="PNG")
        (folder / f"digit_{i:04d}.png").write_bytes(out.getvalue())
    return len(bunch.images)


def run(backend: str, root: Path, db_url: str | None, data_dir: Path) -> dict[str, Any]:
    from activelabel.labeling.images import ImageRules, enqueue_image_import
    from activelabel.labeling.imports import run_import, save_upload
    from activelabel.labeling.remote_model import ModelHosts
    from activelabel.labeling.rounds import request_round, run_round
    from activelabel.runtime.settings import resolve_location
    from activelabel.store import Storage, create_project
    from activelabel.store.models import Job

    storage = Storage(resolve_location(data_dir, db_url))
    rules = ImageRules(roots=(str(root),))

    def project(name: str) -> int:
        with storage.sessions() as session, session.begin():
            return create_project(session, name, "classification", list(range(10)), settings={
                "featurizer": "image", "featurizer_params": {"field": "image",
                                                             "shape": [16, 16]},
                "batch_size": 50, "model": "logistic_regression"}).id

    def job(pid: int, fmt: str, source: str, **kw: Any) -> dict[str, Any]:
        with storage.sessions() as session, session.begin():
            job_id = enqueue_image_import(session, pid, fmt, source, rules=rules,
                                          requested_by=None, **kw).id
        with storage.sessions() as session:
            row = session.get(Job, job_id)
        assert row is not None
        return run_import(storage, row, progress=lambda _: None)

    def round_(pid: int) -> tuple[float, Any]:
        with storage.sessions() as session, session.begin():
            rnd, _ = request_round(session, pid, requested_by=None, reason="manual")
            job_id = rnd.job_id
        with storage.sessions() as session:
            row = session.get(Job, job_id)
        assert row is not None
        start = time.perf_counter()
        result = run_round(storage, row, progress=lambda _: None, model_hosts=ModelHosts())
        return time.perf_counter() - start, result["metrics"]["accuracy"]

    out: dict[str, Any] = {"backend": backend}
    pid = project("folder")
    start = time.perf_counter()
    results = [job(pid, "image_folder", str(root / "labels"), labels_from_folders=True),
               job(pid, "image_folder", str(root / "holdout"), labels_from_folders=True,
                   split="holdout"),
               job(pid, "image_folder", str(root / "pool"))]
    out["folder_seconds"] = time.perf_counter() - start
    out["inserted"] = sum(r["inserted"] for r in results)
    out["first_round_seconds"], out["accuracy"] = round_(pid)
    out["second_round_seconds"], _ = round_(pid)

    archive = data_dir / "digits.zip"
    with zipfile.ZipFile(archive, "w") as zipped:
        for path in sorted(root.rglob("*.png")):
            zipped.write(path, path.relative_to(root).as_posix())
    pid = project("zip")
    start = time.perf_counter()
    with archive.open("rb") as stream:
        saved = save_upload(storage, pid, "digits.zip", stream)
    zipped_result = job(pid, "image_zip", str(saved))
    out["zip_seconds"] = time.perf_counter() - start
    out["zip_inserted"] = zipped_result["inserted"]
    storage.close()
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backends", nargs="+", default=["sqlite", "postgresql"])
    parser.add_argument("--pg", default=DEFAULT_PG)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "png"
        start = time.perf_counter()
        n = render(root)
        print(f"rendered {n} digit PNGs in {time.perf_counter() - start:.1f} s")
        print("| backend | images | folder import s | images/s | zip import s | images/s "
              "| first round s | second round s | holdout accuracy |")
        print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
        for backend in args.backends:
            data_dir = Path(tmp) / f"data-{backend}"
            if backend == "postgresql":
                url, schema = pg_schema(args.pg)
            else:
                url, schema = None, ""
            try:
                r = run(backend, root, url, data_dir)
            finally:
                if schema:
                    drop_schema(args.pg, schema)
            print(f"| {backend} | {r['inserted']} | {r['folder_seconds']:.1f} | "
                  f"{r['inserted'] / r['folder_seconds']:.0f} | {r['zip_seconds']:.1f} | "
                  f"{r['zip_inserted'] / r['zip_seconds']:.0f} | "
                  f"{r['first_round_seconds']:.1f} | {r['second_round_seconds']:.1f} | "
                  f"{r['accuracy']:.3f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
