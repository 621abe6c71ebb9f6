"""Measure add_items on 1,000,000 small rows (not a test; run by hand).

    PYTHONPATH=src .venv/bin/python -m tests.store.bench_items [--rows N] [--backend sqlite|postgresql]
"""

from __future__ import annotations

import argparse
import tempfile
import time
import uuid
from pathlib import Path

from sqlalchemy import text

from activelabel.store import add_items, create_engine_for, create_project, migrate, session_factory
from tests.support.databases import PG_URL


def rows(n: int):  # type: ignore[no-untyped-def]
    for i in range(n):
        yield {"external_id": f"id-{i}", "data": {"text": f"short message number {i}"},
               "split": "holdout" if i % 10 == 0 else "pool"}


def bench(backend: str, n: int) -> float:
    schema = None
    if backend == "sqlite":
        folder = Path(tempfile.mkdtemp())
        engine = create_engine_for(f"sqlite:///{folder / 'bench.db'}")
    else:
        schema = f"al_bench_{uuid.uuid4().hex[:8]}"
        admin = create_engine_for(PG_URL)
        with admin.begin() as conn:
            conn.execute(text(f'CREATE SCHEMA "{schema}"'))
        engine = create_engine_for(f"{PG_URL}?options=-csearch_path%3D{schema}")
    try:
        migrate(engine)
        with session_factory(engine)() as s:
            project = create_project(s, "bench", "classification", ["a", "b"])
            s.commit()
            start, cpu = time.perf_counter(), time.process_time()
            result = add_items(s, project.id, rows(n))
            s.commit()
            seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
        assert result.inserted == n, result
        print(f"{backend}: {n:,} rows in {seconds:.1f} s wall ({cpu:.1f} s CPU in this process) "
              f"= {n / seconds:,.0f} rows/s")
        return seconds
    finally:
        engine.dispose()
        if schema is not None:
            with admin.begin() as conn:
                conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
            admin.dispose()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--backend", choices=["sqlite", "postgresql", "both"], default="both")
    args = parser.parse_args()
    for backend in (["sqlite", "postgresql"] if args.backend == "both" else [args.backend]):
        bench(backend, args.rows)


if __name__ == "__main__":
    main()
