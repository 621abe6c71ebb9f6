"""The queue's full ranking: time to write a rank for every item after a round, and the
next-task latency before (seeded random keys from import) and after (the ranking).

For each pool size a fresh database (SQLite file, or a new PostgreSQL schema with --pg) gets
the items (minimal payloads, keys as an import writes them), then: the ranking computed from
random 4-class probabilities (``labeling.ranking.full_ranking``: batch of 100, the rest by
margin), written in one transaction (``store.queue.write_ranking``), and ``next_tasks``
(10 tasks, one annotator, rolled back) timed 30 times before and after.

    python benchmarks/queue_order.py                         # 100k and 1M on SQLite
    python benchmarks/queue_order.py --sizes 100000 --pg     # PostgreSQL too
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any, cast

import numpy as np
from sqlalchemy import Table, text

from activelabel.labeling.ranking import full_ranking
from activelabel.store import create_engine_for, create_project, create_user, migrate
from activelabel.store.db import bind_value, bulk_insert, session_factory
from activelabel.store.models import Item, utcnow
from activelabel.store.queue import next_tasks, queue_keys, write_ranking

PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
BATCH = 100
CHUNK = 50_000
COLUMNS = ("project_id", "external_id", "data", "split", "content_hash", "row", "created_at",
           "queue_key", "queue_rank")


def _fill(session: Any, project_id: int, n: int) -> None:
    created = bind_value(session, Item.__table__.c.created_at, utcnow())
    for start in range(0, n, CHUNK):
        rows = np.arange(start, min(n, start + CHUNK))
        keys = queue_keys(0, project_id, rows).tolist()
        bulk_insert(session, cast(Table, Item.__table__), COLUMNS, [(project_id, f"x{r}", "{}", "pool", "0" * 64, int(r), created,
                               k, k) for r, k in zip(rows.tolist(), keys, strict=True)])


def _latency(factory: Any, project_id: int, user_id: int, repeats: int = 30) -> float:
    """Median milliseconds of a 10-task claim (rolled back, so the queue stays as it is)."""
    times = []
    for _ in range(repeats):
        with factory() as session:
            start = time.perf_counter()
            next_tasks(session, project_id, user_id, 10)
            times.append(time.perf_counter() - start)
            session.rollback()
    return 1000 * statistics.median(times)


def run(url: str, n: int, label: str) -> dict[str, Any]:
    engine = create_engine_for(url)
    migrate(engine)
    factory = session_factory(engine)
    with factory() as session, session.begin():
        project = create_project(session, f"bench-{uuid.uuid4().hex[:6]}", "classification",
                                 ["a", "b", "c", "d"])
        user = create_user(session, f"u{uuid.uuid4().hex[:6]}")
        pid, uid = project.id, user.id
    start = time.perf_counter()
    with factory() as session, session.begin():
        _fill(session, pid, n)
    fill_s = time.perf_counter() - start
    if engine.dialect.name == "postgresql":
        with engine.begin() as conn:
            conn.execute(text("ANALYZE items"))
    before = _latency(factory, pid, uid)
    rng = np.random.default_rng(0)
    probs = rng.dirichlet(np.ones(4), size=n).astype(np.float32)
    splits = np.full(n, "pool")
    start = time.perf_counter()
    ranking = full_ranking(splits, np.arange(BATCH), probs, multilabel=False, seed=0,
                           project_id=pid)
    rank_s = time.perf_counter() - start
    start = time.perf_counter()
    with factory() as session, session.begin():
        write_ranking(session, pid, np.arange(BATCH), np.arange(BATCH, dtype=np.float64))
        write_ranking(session, pid, ranking.rows, ranking.ranks)
    write_s = time.perf_counter() - start
    after = _latency(factory, pid, uid)
    engine.dispose()
    return {"db": label, "items": n, "insert_s": fill_s, "rank_s": rank_s, "write_s": write_s,
            "before_ms": before, "after_ms": after}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--pg", action="store_true", help="also on PostgreSQL (PG_URL)")
    args = parser.parse_args()
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for n in args.sizes:
            results.append(run(f"sqlite:///{Path(tmp) / f'q{n}.db'}", n, "sqlite"))
            if args.pg:
                schema = f"bench_{uuid.uuid4().hex[:8]}"
                admin = create_engine_for(PG_URL)
                with admin.begin() as conn:
                    conn.execute(text(f'CREATE SCHEMA "{schema}"'))
                try:
                    results.append(run(f"{PG_URL}?options=-csearch_path%3D{schema}", n,
                                       "postgresql"))
                finally:
                    with admin.begin() as conn:
                        conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
                    admin.dispose()
    print("| database | items | rank (numpy) s | write s | next 10 tasks before ms "
          "| after ms |")
    print("|---|---|---|---|---|---|")
    for r in results:
        print(f"| {r['db']} | {r['items']:,} | {r['rank_s']:.2f} | {r['write_s']:.2f} | "
              f"{r['before_ms']:.1f} | {r['after_ms']:.1f} |")


if __name__ == "__main__":
    main()
