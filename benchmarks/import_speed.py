"""Import speed: ``--rows`` generated JSONL text rows through the import job, per database.

Writes a JSONL file of short texts (about 100 bytes a row), then for each backend runs
:func:`activelabel.labeling.imports.run_import` on a new project in a child process (so the
peak memory reported is that import's own) and prints seconds, rows per second and peak RSS.

    python benchmarks/import_speed.py                     # 1,000,000 rows, SQLite + PostgreSQL
    python benchmarks/import_speed.py --rows 100000 --backends sqlite
    python benchmarks/import_speed.py --pg postgresql+psycopg://postgres@127.0.0.1:5432/test

On PostgreSQL the run uses a new schema, dropped afterwards.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from _pg import drop_schema, pg_schema  # the folder of this script is on sys.path

DEFAULT_PG = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
WORDS = ("label", "queue", "model", "round", "pool", "item", "batch", "score", "text",
         "annotator", "review", "holdout", "gold", "import", "export", "worker", "schema",
         "vector", "margin", "entropy", "cluster")


def write_rows(path: Path, n: int, seed: int = 0) -> None:
    """``n`` JSONL rows ``{external_id, data: {text}}`` of 8-16 random words."""
    rng = random.Random(seed)
    with path.open("w") as out:
        for i in range(n):
            text = " ".join(rng.choices(WORDS, k=rng.randint(8, 16)))
            out.write(json.dumps({"external_id": f"row-{i}", "data": {"text": text}}) + "\n")


def child(file: Path, db_url: str | None, data_dir: Path) -> dict[str, Any]:
    """Import ``file`` into a new project; the figures of that one import."""
    from activelabel.labeling.imports import enqueue_import, run_import
    from activelabel.runtime.settings import resolve_location
    from activelabel.store import Storage, create_project

    storage = Storage(resolve_location(data_dir, db_url))
    with storage.sessions() as session, session.begin():
        project = create_project(session, f"bench-{uuid.uuid4().hex[:6]}", "classification",
                                 ["a", "b"])
        job = enqueue_import(session, project.id, file, requested_by=None)
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    start = time.perf_counter()
    reports: list[float] = []
    result = run_import(storage, job, progress=lambda _: reports.append(time.perf_counter()))
    seconds = time.perf_counter() - start
    storage.close()
    gaps = [b - a for a, b in itertools.pairwise(reports)]
    return {"seconds": seconds, "inserted": result["inserted"],
            "rejected": result["rejected_count"], "duplicates": result["duplicates"],
            "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            "rss_before_mb": rss_before / 1024, "progress_reports": len(reports),
            "min_progress_gap_s": min(gaps) if gaps else None}


def run_backend(backend: str, file: Path, rows: int, pg_url: str) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="al-import-") as folder:
        db_url, schema = (None, None) if backend == "sqlite" else pg_schema(pg_url)
        try:
            cmd = [sys.executable, __file__, "--child", str(file), "--data-dir", folder]
            if db_url:
                cmd += ["--db", db_url]
            done = subprocess.run(cmd, capture_output=True, text=True, check=False)
            if done.returncode != 0:
                raise SystemExit(f"{backend} import failed:\n{done.stderr}")
            figures: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
        finally:
            if schema:
                drop_schema(pg_url, schema)
    figures.update(backend=backend, rows=rows, rows_per_s=rows / figures["seconds"])
    return figures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--backends", default="sqlite,postgresql")
    parser.add_argument("--pg", default=os.environ.get("ACTIVELABEL_TEST_PG", DEFAULT_PG))
    parser.add_argument("--out", type=Path, help="also write the figures as JSON here")
    parser.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--data-dir", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--db", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(child(args.child, args.db, args.data_dir)))
        return 0
    if args.rows < 1:
        parser.error("--rows must be >= 1")
    with tempfile.TemporaryDirectory(prefix="al-import-data-") as folder:
        file = Path(folder) / "rows.jsonl"
        start = time.perf_counter()
        write_rows(file, args.rows)
        size_mb = file.stat().st_size / 1e6
        print(f"wrote {args.rows:,} rows ({size_mb:.0f} MB) in {time.perf_counter() - start:.1f} s",
              flush=True)
        results = [run_backend(b.strip(), file, args.rows, args.pg)
                   for b in args.backends.split(",") if b.strip()]
    print(f"{'backend':<11} {'rows':>10} {'seconds':>8} {'rows/s':>9} {'peak RSS MB':>12} "
          f"{'inserted':>10} {'progress':>9}")
    for r in results:
        print(f"{r['backend']:<11} {r['rows']:>10,} {r['seconds']:>8.1f} {r['rows_per_s']:>9,.0f} "
              f"{r['peak_rss_mb']:>12.0f} {r['inserted']:>10,} {r['progress_reports']:>9}")
    if args.out:
        args.out.write_text(json.dumps({"rows": args.rows, "results": results}, indent=2))
    bad = [r for r in results if r["inserted"] != args.rows]
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
