"""Pools beyond one machine: score and select on Ray against the single-process path, and what
restricting candidates to nearest neighbours of labeled items costs in labels.

``timing`` writes a synthetic pool of N items (32 float32 features, 4 Gaussian blobs) as
Parquet shards of ``--shard-rows`` rows under ``benchmarks/out/scale`` (block by block: the
pool is never in memory whole), fits a logistic regression on 2,000 labeled items, then times
selecting a batch of ``--k`` by ``--strategy``, each in a fresh process:

- one process: every shard read into one array (what a round holds), scored in chunks of
  50,000 rows and the strategy run over the whole pool, as a round in the worker does;
- Ray with 1 and 2 workers (a local Ray of that many CPUs): :func:`activelabel.scale.
  score_and_select`, one task per shard; the first call starts the workers, the second runs
  on warm ones.

Each row reports seconds and peak resident memory: of the process, or of each Ray worker (the
highest of them, and the same for a fresh worker that has loaded the code but no shard).

``efficiency`` runs the labeling loop on a shared dataset (AG News, 7,600 texts) with the
scale code in one process: a batch of 20 a round by cluster-margin over every unlabeled item,
or over the ``--neighbors`` nearest neighbours (faiss HNSW, per shard) of each labeled item
only, and random sampling; test accuracy at fixed label budgets, averaged over repeats.

    python benchmarks/scale.py timing --sizes 1000000
    python benchmarks/scale.py timing --sizes 10000000 --workers 2
    python benchmarks/scale.py efficiency --repeats 3
"""

from __future__ import annotations

import argparse
import json
import os
import pickle
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
OUT = HERE / "out" / "scale"
DATA_DIR = Path(os.environ.get("ACTIVELABEL_SHARED_DATA",
                               HERE.parents[1] / "shared" / "data"))
DIMS, CLASSES, TRAIN = 32, 4, 2000
WRITE_BLOCK = 1_000_000


def _centers() -> np.ndarray:
    return np.random.default_rng(0).normal(0, 1.5, size=(CLASSES, DIMS))


def _blobs(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = rng.integers(CLASSES, size=n)
    X = (_centers()[y] + rng.normal(size=(n, DIMS))).astype(np.float32)
    return X, y


def make_pool(n: int, shard_rows: int) -> Path:
    """The pool's shard folder, written once per size (block by block)."""
    from activelabel.scale import write_shards

    folder = OUT / f"pool-{n}-{shard_rows}"
    if (folder / "complete").is_file():
        return folder
    for start in range(0, n, WRITE_BLOCK):
        stop = min(start + WRITE_BLOCK, n)
        X, _ = _blobs(stop - start, seed=1 + start // WRITE_BLOCK)
        write_shards(folder, X, rows=np.arange(start, stop), shard_rows=shard_rows,
                     start_index=start // shard_rows)
    (folder / "complete").write_text(str(n))
    return folder


def make_model() -> Path:
    from activelabel.models import make_model as build

    path = OUT / "model.pkl"
    if not path.is_file():
        X, y = _blobs(TRAIN, seed=99)
        model = build("logistic_regression", classes=list(range(CLASSES)), random_state=0)
        path.write_bytes(pickle.dumps(model.fit(X, y)))
    return path


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


# ---- children: one fresh process per measurement ---------------------------------------------


def child_single(spec: dict[str, Any]) -> dict[str, Any]:
    """A round's path in one process: the whole pool in memory, scored and selected."""
    from activelabel.scale import list_shards, read_shard, strategy_probs
    from activelabel.strategies import get_strategy

    model = pickle.loads(Path(spec["model"]).read_bytes())
    start = time.perf_counter()
    X = np.concatenate([read_shard(p).X for p in list_shards(spec["pool"])])
    read_s = time.perf_counter() - start
    start = time.perf_counter()
    probs = np.concatenate([np.asarray(model.predict_proba(X[s:s + 50_000]), np.float32)
                            for s in range(0, X.shape[0], 50_000)])
    sel = get_strategy(spec["strategy"]).query(
        spec["k"], probs=strategy_probs(probs, False), embeddings=X, random_state=0)
    return {"read_s": read_s, "seconds": time.perf_counter() - start,
            "selected": len(sel), "peak_mb": _peak_mb()}


def _fresh_worker_mb() -> float:
    import pyarrow.parquet  # noqa: F401  (what a map task loads, before any shard)
    import sklearn.linear_model  # noqa: F401

    import activelabel.scale.pool  # noqa: F401

    return _peak_mb()


def child_ray(spec: dict[str, Any]) -> dict[str, Any]:
    """The map and reduce on a local Ray of ``workers`` CPUs, called twice."""
    import ray

    from activelabel.scale import ScaleQuery, score_and_select

    model = pickle.loads(Path(spec["model"]).read_bytes())
    ray.init(num_cpus=spec["workers"], include_dashboard=False, log_to_driver=False)
    fresh = ray.get(ray.remote(num_cpus=1)(_fresh_worker_mb).remote())
    labeled = None
    if spec.get("neighbors"):
        labeled, _ = _blobs(1000, seed=7)
    q = ScaleQuery(spec["strategy"], spec["k"], model, labeled_embeddings=labeled,
                   n_neighbors=spec.get("neighbors"), seed=0)
    calls = []
    for _ in range(2):
        start = time.perf_counter()
        result = score_and_select(spec["pool"], q, executor="ray")
        calls.append(time.perf_counter() - start)
    peaks = result.peak_rss_mb_per_worker()
    ray.shutdown()
    return {"first_s": calls[0], "seconds": calls[1], "selected": int(result.rows.shape[0]),
            "workers_used": len(peaks), "worker_peak_mb": max(peaks.values()),
            "fresh_worker_mb": fresh, "driver_peak_mb": _peak_mb(),
            "scored": int(sum(s.n_scored for s in result.shards))}


def _run_child(kind: str, spec: dict[str, Any]) -> dict[str, Any]:
    # Ray lowers its workers' priority (nice 15) by default: on a busy machine they would
    # then get less CPU than the one-process path; the comparison runs both at nice 0.
    env = {**os.environ, "RAY_worker_niceness": "0"}
    done = subprocess.run([sys.executable, __file__, "_child", kind, json.dumps(spec)],
                          capture_output=True, text=True, check=False, timeout=3600, env=env)
    if done.returncode != 0:
        raise SystemExit(f"{kind} child failed:\n{done.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def timing(args: argparse.Namespace) -> list[dict[str, Any]]:
    OUT.mkdir(parents=True, exist_ok=True)
    model = make_model()
    rows: list[dict[str, Any]] = []
    for n in args.sizes:
        start = time.perf_counter()
        pool = make_pool(n, args.shard_rows)
        print(f"pool of {n:,} items ready in {pool} ({time.perf_counter() - start:.1f} s)",
              flush=True)
        spec = {"pool": str(pool), "model": str(model), "strategy": args.strategy, "k": args.k}
        if not args.no_single:
            rows.append({"n": n, "path": "one process", **_run_child("single", spec)})
            _print_row(rows[-1])
        for w in args.workers:
            rows.append({"n": n, "path": f"Ray, {w} worker{'s' * (w > 1)}",
                         **_run_child("ray", {**spec, "workers": w})})
            _print_row(rows[-1])
        if args.neighbors:
            w = max(args.workers)
            rows.append({"n": n, "path": f"Ray, {w} workers, {args.neighbors} neighbours",
                         **_run_child("ray", {**spec, "workers": w,
                                              "neighbors": args.neighbors})})
            _print_row(rows[-1])
    return rows


def _print_row(r: dict[str, Any]) -> None:
    if "worker_peak_mb" in r:
        print(f"| {r['n']:,} | {r['path']} | {r['seconds']:.1f} (first call {r['first_s']:.1f}) "
              f"| {r['worker_peak_mb']:.0f} per worker (fresh worker {r['fresh_worker_mb']:.0f})"
              f"; driver {r['driver_peak_mb']:.0f} |", flush=True)
    else:
        print(f"| {r['n']:,} | {r['path']} | {r['seconds']:.1f} (+ {r['read_s']:.1f} reading "
              f"the shards) | {r['peak_mb']:.0f} |", flush=True)


# ---- label efficiency of the restriction -----------------------------------------------------

BUDGETS = (100, 200, 400, 800)


def _ag_news() -> tuple[list[str], np.ndarray]:
    path = DATA_DIR / "ag_news_test.jsonl"
    if not path.is_file():
        raise SystemExit(f"{path} not found: set ACTIVELABEL_SHARED_DATA to the shared data")
    texts, labels = [], []
    with path.open() as handle:
        for line in handle:
            row = json.loads(line)
            texts.append(row["text"])
            labels.append(row["label"])
    return texts, np.asarray(labels)


def _curve(folder: Path, X: Any, E: np.ndarray, y: np.ndarray, test: tuple[Any, np.ndarray],
           classes: list[str], seed_rows: np.ndarray, strategy: str, neighbors: int | None,
           batch: int, repeat: int) -> tuple[list[float], float]:
    from activelabel.models import make_model as build
    from activelabel.scale import ScaleQuery, score_and_select

    labeled = seed_rows.copy()
    accuracies, shares = [], []
    for budget in range(labeled.shape[0], max(BUDGETS) + 1, batch):
        model = build("logistic_regression", classes=classes, random_state=repeat)
        model.fit(X[labeled], y[labeled])
        if budget in BUDGETS:
            accuracies.append(float((model.predict(test[0]) == test[1]).mean()))
        if budget == max(BUDGETS):
            break
        q = ScaleQuery(strategy, batch, model, exclude=np.sort(labeled).astype(np.int64),
                       labeled_embeddings=E[labeled], n_neighbors=neighbors,
                       seed=repeat * 1000 + budget)
        got = score_and_select(folder, q, executor="local")
        scored = sum(s.n_scored for s in got.shards)
        shares.append(scored / (E.shape[0] - labeled.shape[0]))
        labeled = np.concatenate([labeled, got.rows])
    return accuracies, float(np.mean(shares))


def efficiency(args: argparse.Namespace) -> list[dict[str, Any]]:
    import tempfile

    from activelabel.features import TextFeaturizer
    from activelabel.scale import write_shards
    from activelabel.strategies import cold_start

    texts, labels = _ag_news()
    classes = sorted(set(labels.tolist()))
    feats = TextFeaturizer(sentence_weight=None).fit_transform(texts)  # as measured
    configs = [("random", None), (args.strategy, None),
               *((args.strategy, k) for k in args.neighbors_list)]
    results: dict[tuple[str, int | None], list[tuple[list[float], float]]] = {}
    for repeat in range(args.repeats):
        rng = np.random.default_rng(repeat)
        order = rng.permutation(len(texts))
        test_rows, pool_rows = order[:1600], order[1600:]
        X, E, y = feats.X[pool_rows], feats.embeddings[pool_rows], labels[pool_rows]
        test = (feats.X[test_rows], labels[test_rows])
        seed_rows = np.asarray(cold_start(E, 20, random_state=repeat), dtype=np.intp)
        with tempfile.TemporaryDirectory() as tmp:
            write_shards(tmp, X, embeddings=E, shard_rows=args.shard_rows_efficiency)
            for strategy, k in configs:
                start = time.perf_counter()
                results.setdefault((strategy, k), []).append(_curve(
                    Path(tmp), X, E, y, test, classes, seed_rows, strategy, k, 20, repeat))
                print(f"repeat {repeat} {strategy} neighbours={k}: "
                      f"{results[(strategy, k)][-1][0]} ({time.perf_counter() - start:.0f} s)",
                      flush=True)
    rows = []
    print("\n| strategy | candidates | " + " | ".join(f"{b} labels" for b in BUDGETS)
          + " | share of the pool scored |")
    print("|---|---|" + "---|" * len(BUDGETS) + "---|")
    for (strategy, k), runs in results.items():
        means = [statistics.mean(r[0][i] for r in runs) for i in range(len(BUDGETS))]
        share = statistics.mean(r[1] for r in runs)
        rows.append({"strategy": strategy, "neighbors": k, "accuracy": means,
                     "per_repeat": [r[0] for r in runs], "scored_share": share})
        where = "all unlabeled" if k is None else f"{k} neighbours of each labeled item"
        print(f"| {strategy} | {where} | " + " | ".join(f"{a:.3f}" for a in means)
              + f" | {share:.0%} |")
    return rows


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="mode", required=True)
    t = sub.add_parser("timing", help="score and select: one process against Ray")
    t.add_argument("--sizes", type=lambda s: [int(x) for x in s.split(",")],
                   default=[1_000_000])
    t.add_argument("--workers", type=lambda s: [int(x) for x in s.split(",")], default=[1, 2])
    t.add_argument("--shard-rows", type=int, default=250_000)
    t.add_argument("--strategy", default="cluster_margin")
    t.add_argument("--k", type=int, default=100)
    t.add_argument("--neighbors", type=int, default=None,
                   help="also time candidate restriction to this many neighbours")
    t.add_argument("--no-single", action="store_true", help="skip the one-process path")
    t.add_argument("--out", type=Path, default=None, help="JSON of the rows")
    e = sub.add_parser("efficiency", help="label efficiency with and without restriction")
    e.add_argument("--repeats", type=int, default=3)
    e.add_argument("--strategy", default="cluster_margin")
    e.add_argument("--neighbors-list", type=lambda s: [int(x) for x in s.split(",")],
                   default=[5, 20])
    e.add_argument("--shard-rows-efficiency", type=int, default=2000)
    e.add_argument("--out", type=Path, default=None, help="JSON of the rows")
    c = sub.add_parser("_child")
    c.add_argument("kind")
    c.add_argument("spec")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.mode == "_child":
        spec = json.loads(args.spec)
        out = child_single(spec) if args.kind == "single" else child_ray(spec)
        print(json.dumps(out))
        return 0
    print(f"load average at start: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores",
          flush=True)
    rows = timing(args) if args.mode == "timing" else efficiency(args)
    print(f"load average at end: {os.getloadavg()[0]:.1f}", flush=True)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps({"mode": args.mode, "rows": rows}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
