"""Mapped import: ``--rows`` rows with a label column and ``--dim``-dimensional vectors.

Writes a Parquet file (``id``, ``text``, ``label``, ``vec``: a list of float32), then for each
backend imports it into a new project with the mapping ``id`` -> external id, ``text`` ->
content, ``label`` -> existing label, ``vec`` -> vector, in a child process (so the peak memory
is that import's own), and prints seconds, rows per second, peak RSS and what was stored.

    python benchmarks/import_mapped.py                      # 1,000,000 rows, 384 dims, SQLite
    python benchmarks/import_mapped.py --rows 100000 --backends sqlite,postgresql
    python benchmarks/import_mapped.py --rows 100000 --again   # labels for items already in

With ``--again`` the file goes in first with its labels kept private, and the figures are
those of the same file imported again with the mapping: no item inserted, every row's label
added to the item already in (each checked against the item's content).

On PostgreSQL the run uses a new schema, dropped afterwards.
"""

from __future__ import annotations

import argparse
import json
import os
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
MAPPING = {"columns": {"id": "external_id", "text": "content", "label": "label",
                       "vec": "vector"}}
#: ``--again``'s first import: the labels kept private.
PRIVATE = {"columns": {**MAPPING["columns"], "label": "private"}}
CHUNK = 50_000


def write_rows(path: Path, n: int, dim: int, seed: int = 0) -> None:
    """``n`` rows ``{id, text, label, vec}`` written chunk by chunk."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    rng = np.random.default_rng(seed)
    schema = pa.schema([("id", pa.string()), ("text", pa.string()), ("label", pa.string()),
                        ("vec", pa.list_(pa.float32()))])
    with pq.ParquetWriter(path, schema) as writer:
        for start in range(0, n, CHUNK):
            k = min(CHUNK, n - start)
            vectors = rng.standard_normal((k, dim), dtype=np.float32)
            flat = pa.array(vectors.reshape(-1), type=pa.float32())
            offsets = pa.array(np.arange(0, (k + 1) * dim, dim, dtype=np.int32))
            ids = [f"row-{i}" for i in range(start, start + k)]
            writer.write_table(pa.table({
                "id": ids, "text": [f"text of row {i}" for i in range(start, start + k)],
                "label": ["spam" if i % 5 == 0 else "ham" for i in range(start, start + k)],
                "vec": pa.ListArray.from_arrays(offsets, flat)}, schema=schema))


def child(file: Path, db_url: str | None, data_dir: Path, again: bool = False
          ) -> dict[str, Any]:
    """Import ``file`` into a new project with the mapping; the figures of that one import
    (with ``again``, of the second import, the first having kept the labels private)."""
    from activelabel.labeling.imports import enqueue_import, run_import
    from activelabel.runtime.settings import resolve_location
    from activelabel.store import Storage, create_project

    storage = Storage(resolve_location(data_dir, db_url))
    with storage.sessions() as session, session.begin():
        project = create_project(session, f"bench-{uuid.uuid4().hex[:6]}", "classification",
                                 ["ham", "spam"])
        job = enqueue_import(session, project.id, file, requested_by=None,
                             mapping=PRIVATE if again else MAPPING)
    if again:
        run_import(storage, job, progress=lambda _: None)
        with storage.sessions() as session, session.begin():
            job = enqueue_import(session, project.id, file, requested_by=None,
                                 mapping=MAPPING)
    start = time.perf_counter()
    result = run_import(storage, job, progress=lambda _: None)
    seconds = time.perf_counter() - start
    storage.close()
    return {"seconds": seconds, "inserted": result["inserted"], "labels": result["labels"],
            "duplicates": result["duplicates"],
            "vectors": result["vectors"], "rejected": result["rejected_count"],
            "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def run_backend(backend: str, file: Path, rows: int, pg_url: str, again: bool = False
                ) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="al-import-") as folder:
        db_url, schema = (None, None) if backend == "sqlite" else pg_schema(pg_url)
        try:
            cmd = [sys.executable, __file__, "--child", str(file), "--data-dir", folder]
            if db_url:
                cmd += ["--db", db_url]
            if again:
                cmd.append("--again")
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
    parser.add_argument("--dim", type=int, default=384)
    parser.add_argument("--backends", default="sqlite")
    parser.add_argument("--pg", default=os.environ.get("ACTIVELABEL_TEST_PG", DEFAULT_PG))
    parser.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--data-dir", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--db", help=argparse.SUPPRESS)
    parser.add_argument("--again", action="store_true",
                        help="time the file imported a second time, its labels kept private "
                             "the first: labels added to the items already in")
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(child(args.child, args.db, args.data_dir, args.again)))
        return 0
    if args.rows < 1 or args.dim < 1:
        parser.error("--rows and --dim must be >= 1")
    with tempfile.TemporaryDirectory(prefix="al-import-data-") as folder:
        file = Path(folder) / "rows.parquet"
        start = time.perf_counter()
        write_rows(file, args.rows, args.dim)
        print(f"wrote {args.rows:,} rows x {args.dim} dims ({file.stat().st_size / 1e6:.0f} MB "
              f"Parquet) in {time.perf_counter() - start:.1f} s", flush=True)
        results = [run_backend(b.strip(), file, args.rows, args.pg, args.again)
                   for b in args.backends.split(",") if b.strip()]
    print(f"{'backend':<11} {'rows':>10} {'dims':>5} {'seconds':>8} {'rows/s':>8} "
          f"{'peak RSS MB':>12} {'items':>10} {'labels':>10} {'vectors':>10}")
    for r in results:
        print(f"{r['backend']:<11} {r['rows']:>10,} {args.dim:>5} {r['seconds']:>8.1f} "
              f"{r['rows_per_s']:>8,.0f} {r['peak_rss_mb']:>12.0f} {r['inserted']:>10,} "
              f"{r['labels']:>10,} {r['vectors']:>10,}")
    if args.again:  # nothing inserted, every label added to the item already in
        bad = [r for r in results if r["inserted"] or r["duplicates"] != args.rows
               or r["labels"] != args.rows]
    else:
        bad = [r for r in results if r["inserted"] != args.rows or r["vectors"] != args.rows]
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
