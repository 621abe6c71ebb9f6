"""Query speed: every activelabel strategy against a numpy lower bound and peer libraries.

For each pool size a deterministic synthetic pool is written once under ``benchmarks/out/pools``
(64-dim float32 embeddings from a 10-blob Gaussian mixture, probs = softmax of a random linear map
of the embeddings, a 5-member committee, 100 labeled rows). Every measurement then runs in its
own process (``benchmarks/_peers.py``) with one BLAS/OpenMP thread, and reports wall seconds, CPU
seconds and peak extra memory of the one query call. activelabel and the numpy bound run in this
interpreter's environment; modAL, small-text and scikit-activeml in ``benchmarks/.venv-peers``
(create it with ``bash benchmarks/setup_peers.sh``).

    python benchmarks/query_speed.py                      # all sizes, all strategies, peers
    python benchmarks/query_speed.py --sizes 10000 --no-peers
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import select
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _peers import (  # found through the sys.path line above
    COMMITTEE_STRATEGIES,
    METHODS,
    PEER_LIBRARIES,
    Method,
    activelabel_method,
)

__all__ = ["ALL_STRATEGIES", "Row", "Worker", "main", "make_pool", "run_benchmark"]

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
PEER_PYTHON = HERE / ".venv-peers" / "bin" / "python"
POOLS_DIR = HERE / "out" / "pools"

#: activelabel's strategy names, used when ``activelabel.strategies.STRATEGIES`` is not importable.
ALL_STRATEGIES = ("random", "least_confidence", "margin", "entropy", "kcenter", "kmeans", "typiclust",
                  "density", "cluster_margin", "badge", "vote_entropy", "bald")
UNCERTAINTY = frozenset({"least_confidence", "margin", "entropy"})
N_FEATURES, N_CLASSES, N_MEMBERS, N_LABELED, N_BLOBS = 64, 10, 5, 100, 10
GEN_CHUNK = 65_536
THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")
#: Seconds allowed beyond --timeout for a worker to start or a measurement to load its data.
WORKER_GRACE_S = 120

#: Peers whose cost at a size is known (measured here at 100k, extrapolated) to exceed the
#: default timeout; skipped there unless --run-slow or a smaller size of the same run says
#: otherwise. Key -> (from size, estimated seconds, why).
KNOWN_SLOW: dict[str, tuple[int, float, str]] = {
    "small-text:GreedyCoreset": (
        1_000_000, 1100.0,
        "110 s at 100k; its distance array is re-concatenated once per 100-row batch per pick"),
    "small-text:PredictionEntropy": (
        1_000_000, 360.0, "36 s at 100k, linear: scipy's entropy applied row by row"),
    "scikit-activeml:TypiClust": (
        1_000_000, 300.0, "18 s at 100k; full KMeans with n_labeled + k clusters over the pool"),
}

#: Targets for activelabel at 1M (seconds) and everywhere (MB).
TARGET_UNCERTAINTY_RATIO = 1.5
TARGET_KCENTER_S = 5.0
TARGET_OTHER_DIVERSITY_S = 15.0
TARGET_MEMORY_MB = 2048.0
TARGET_SIZE = 1_000_000


@dataclass
class Row:
    """One (method, size) measurement; ``status`` is ok, timeout, skipped or error.

    ``note`` says why a row has no figures; ``cell`` is the short form shown in the table.
    """

    key: str
    library: str
    label: str
    family: str
    n: int
    status: str = "ok"
    wall_s: float | None = None
    cpu_s: float | None = None
    extra_mb: float | None = None
    ratio: float | None = None
    growth: float | None = None
    note: str = ""
    cell: str = ""
    runs: list[dict[str, Any]] = field(default_factory=list)


# ---- synthetic pool ----------------------------------------------------------------------------


def make_pool(n: int, out_dir: Path, *, seed: int = 0) -> Path:
    """Write the synthetic pool of ``n`` rows to ``out_dir`` (cached; returns the directory).

    Files: embeddings (n, 64) float32, probs (n, 10) float32, committee (5, n, 10) float32,
    labeled (100, 64) float32, labeled_y (100,) int64. Rows are generated chunk by chunk from
    per-chunk seeds, so memory stays flat and the result depends only on ``n`` and ``seed``.
    """
    if (out_dir / "meta.json").exists():
        return out_dir
    tmp = out_dir.with_name(f"{out_dir.name}.tmp{os.getpid()}")  # concurrent runs do not collide
    tmp.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    centers = rng.normal(0.0, 2.0, (N_BLOBS, N_FEATURES))
    weights = rng.normal(0.0, 1.0 / math.sqrt(N_FEATURES), (N_FEATURES, N_CLASSES))
    member_w = weights + rng.normal(0.0, 0.5 / math.sqrt(N_FEATURES), (N_MEMBERS, N_FEATURES, N_CLASSES))
    emb_out = _open(tmp / "embeddings.npy", (n, N_FEATURES))
    probs_out = _open(tmp / "probs.npy", (n, N_CLASSES))
    comm_out = _open(tmp / "committee.npy", (N_MEMBERS, n, N_CLASSES))
    for i, start in enumerate(range(0, n, GEN_CHUNK)):
        stop = min(start + GEN_CHUNK, n)
        emb, _ = _blob_rows(np.random.default_rng([seed, i + 1]), centers, stop - start)
        emb_out[start:stop] = emb
        probs_out[start:stop] = _softmax(emb @ weights)
        for m in range(N_MEMBERS):
            comm_out[m, start:stop] = _softmax(emb @ member_w[m])
    labeled, labeled_y = _blob_rows(np.random.default_rng([seed, 0]), centers, N_LABELED)
    np.save(tmp / "labeled.npy", labeled.astype(np.float32))
    np.save(tmp / "labeled_y.npy", labeled_y.astype(np.int64))
    for arr in (emb_out, probs_out, comm_out):
        arr.flush()
    del emb_out, probs_out, comm_out
    (tmp / "meta.json").write_text(json.dumps({"n": n, "seed": seed}))
    try:
        tmp.rename(out_dir)
    except OSError:  # another run finished the same pool first; theirs is identical
        shutil.rmtree(tmp)
    return out_dir


def _open(path: Path, shape: tuple[int, ...]) -> np.memmap[Any, np.dtype[np.float32]]:
    return np.lib.format.open_memmap(path, mode="w+", dtype=np.float32, shape=shape)


def _blob_rows(
    rng: np.random.Generator, centers: np.ndarray, rows: int
) -> tuple[np.ndarray, np.ndarray]:
    """``rows`` points of the Gaussian mixture (unit variance around each center), and blob ids."""
    blob = rng.integers(0, centers.shape[0], rows)
    return centers[blob] + rng.standard_normal((rows, centers.shape[1])), blob


def _softmax(logits: np.ndarray) -> np.ndarray:
    z = np.exp(logits - logits.max(axis=1, keepdims=True))
    return (z / z.sum(axis=1, keepdims=True)).astype(np.float32)


# ---- running one measurement --------------------------------------------------------------------


def _child_env() -> dict[str, str]:
    env = dict(os.environ)
    env.update({var: "1" for var in THREAD_VARS})
    env["TQDM_DISABLE"] = "1"
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO / "src"), env.get("PYTHONPATH")) if p)
    return env


class Worker:
    """A ``_peers.py serve`` process for one Python environment, started on first use.

    It imports the environment's libraries once and forks a fresh process per measurement.
    """

    def __init__(self, python: Path | str, env_name: str) -> None:
        self.python, self.env_name = str(python), env_name
        self.proc: subprocess.Popen[str] | None = None

    def measure(self, key: str, data_dir: Path, k: int, timeout: float) -> dict[str, Any]:
        """One measurement of ``key``; a worker that stops answering is killed and restarted."""
        if self.proc is None or self.proc.poll() is not None:
            self._start()
        assert self.proc is not None
        assert self.proc.stdin is not None
        req = {"key": key, "data_dir": str(data_dir), "k": k, "timeout": timeout}
        self.proc.stdin.write(json.dumps(req) + "\n")
        self.proc.stdin.flush()
        line = self._readline(timeout + WORKER_GRACE_S)
        if line is None:
            self.close()
            return {"status": "timeout"}
        return dict(json.loads(line))

    def _start(self) -> None:
        cmd = [self.python, str(HERE / "_peers.py"), "serve", self.env_name]
        self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                                     env=_child_env(), start_new_session=True)
        if self._readline(WORKER_GRACE_S) is None:
            self.close()
            raise RuntimeError(f"benchmark worker {cmd} did not start")

    def _readline(self, seconds: float) -> str | None:
        assert self.proc is not None
        assert self.proc.stdout is not None
        ready, _, _ = select.select([self.proc.stdout], [], [], seconds)
        line = self.proc.stdout.readline() if ready else ""
        return line or None

    def close(self) -> None:
        """End the worker (and any measurement it is running)."""
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
        self.proc = None


def measure_row(row: Row, worker: Worker, data_dir: Path, args: argparse.Namespace) -> Row:
    """Run ``row``'s method up to ``--repeats`` times (once if a call takes over 30 s).

    Keeps the call with the least CPU time, and the least peak extra memory of all calls.
    """
    for attempt in range(args.repeats):
        res = worker.measure(row.key, data_dir, args.k, args.timeout)
        row.runs.append(res)
        if res["status"] != "ok":
            row.status = res["status"]
            row.note = res.get("error", f"killed after {args.timeout:g} s")
            row.cell = f"> {args.timeout:g} s" if row.status == "timeout" else "error"
            return row
        if attempt == 0 or res["cpu_s"] < (row.cpu_s or math.inf):
            row.wall_s, row.cpu_s = res["wall_s"], res["cpu_s"]
        row.extra_mb = min(row.extra_mb or math.inf, res["extra_mb"])
        if res["wall_s"] > 30:
            break
    return row


# ---- the plan -----------------------------------------------------------------------------------


def activelabel_strategies() -> tuple[list[str], str | None]:
    """Strategy names from ``activelabel.strategies.STRATEGIES``, or the documented list and why."""
    sys.path.insert(0, str(REPO / "src"))
    try:
        from activelabel.strategies import STRATEGIES
    except Exception as exc:  # any import failure means the rows cannot run
        return list(ALL_STRATEGIES), f"activelabel not importable ({type(exc).__name__}: {exc})"
    finally:
        sys.path.pop(0)
    return list(STRATEGIES), None


def plan_methods(strategies: Sequence[str], peers: bool) -> list[Method]:
    """activelabel rows for ``strategies``, the numpy bound, and peers of the same families."""
    methods = [activelabel_method(s) for s in strategies]
    families = set(strategies)
    for method in METHODS.values():
        if method.library == "numpy" or (peers and method.family in families):
            methods.append(method)
    return methods


def skip_reason(
    method: Method, n: int, done: list[Row], args: argparse.Namespace
) -> tuple[str, str] | None:
    """Why ``method`` is not run at size ``n`` as (table cell, note); None: run it.

    Skipped: a method that timed out at a smaller size; one whose time at the largest smaller
    size, scaled linearly (a lower bound for anything superlinear), exceeds the timeout; a peer
    in :data:`KNOWN_SLOW` at that size.
    """
    if args.run_slow:
        return None
    earlier = [r for r in done if r.key == method.key and r.n < n]
    if any(r.status == "timeout" or r.cell.startswith(">") for r in earlier):
        return f"> {args.timeout:g} s", f"not run: over {args.timeout:g} s at a smaller size"
    ran = [r for r in earlier if r.status == "ok" and r.wall_s is not None]
    if ran:  # measured figures take precedence over the known estimates
        last = max(ran, key=lambda r: r.n)
        assert last.wall_s is not None
        estimate = last.wall_s * n / last.n
        if estimate <= args.timeout:
            return None
        return (f"> {args.timeout:g} s (est.)",
                f"not run: est. >= {estimate:.0f} s, linear from {last.wall_s:.1f} s at {last.n:,}")
    slow = KNOWN_SLOW.get(method.key)
    if slow and n >= slow[0] and slow[1] > args.timeout:
        return f"> {args.timeout:g} s (est.)", f"not run: est. ~{slow[1]:g} s ({slow[2]})"
    return None


def run_benchmark(args: argparse.Namespace) -> tuple[list[Row], list[str]]:
    """Measure every planned (method, size); return the rows and notes for the reader."""
    names, problem = activelabel_strategies()
    notes = [problem] if problem else []
    wanted = names if args.strategies == "all" else _split(args.strategies)
    unknown = sorted(set(wanted) - set(names))
    if unknown:
        raise SystemExit(f"unknown strategies {unknown}; choose from {', '.join(names)}")
    peers = args.peers and PEER_PYTHON.exists()
    if args.peers and not peers:
        notes.append(f"peer environment {PEER_PYTHON.parent.parent} is missing: create it with "
                     "`bash benchmarks/setup_peers.sh`; running activelabel and numpy only")
    methods = plan_methods(wanted, peers)
    workers = {"main": Worker(sys.executable, "main"), "peers": Worker(PEER_PYTHON, "peers")}
    try:
        rows = _run_plan(methods, workers, problem, args)
    finally:
        for worker in workers.values():
            worker.close()
    _derive(rows)
    return rows, notes


def _run_plan(methods: list[Method], workers: dict[str, Worker], problem: str | None,
              args: argparse.Namespace) -> list[Row]:
    rows: list[Row] = []
    for n in sorted(args.sizes):
        data_dir = make_pool(n, POOLS_DIR / f"n{n}-seed{args.seed}", seed=args.seed)
        for method in methods:
            row = Row(method.key, method.library, method.label, method.family, n)
            reason = skip_reason(method, n, rows, args)
            if problem and method.library == "activelabel":
                row.status, row.note, row.cell = "error", "activelabel not importable", "error"
            elif reason:
                row.status, (row.cell, row.note) = "skipped", reason
            else:
                worker = workers["peers" if method.library in PEER_LIBRARIES else "main"]
                measure_row(row, worker, data_dir, args)
            rows.append(row)
            _progress(row, len(rows), len(methods) * len(args.sizes))
    return rows


def _progress(row: Row, i: int, total: int) -> None:
    took = f"{row.wall_s:.3f} s" if row.status == "ok" else f"{row.cell}: {row.note}"
    print(f"[{i:>3}/{total}] n={row.n:>9,} {row.library:<15} {row.label:<30} {took}",
          file=sys.stderr, flush=True)


def _derive(rows: list[Row]) -> None:
    """Fill the CPU-time ratio to the numpy bound (same size) and the growth exponent ``b`` of
    CPU time ~ n**b from the previous size (only where that time exceeds 50 ms)."""
    bound: dict[int, float] = {r.n: r.cpu_s for r in rows
                               if r.library == "numpy" and r.status == "ok" and r.cpu_s}
    prev: dict[str, Row] = {}
    for r in sorted(rows, key=lambda r: r.n):
        if r.status == "ok" and r.cpu_s is not None:
            if bound.get(r.n):
                r.ratio = r.cpu_s / bound[r.n]
            p = prev.get(r.key)
            if p is not None and p.cpu_s and r.cpu_s > 0 and p.cpu_s > 0.05:
                r.growth = math.log(r.cpu_s / p.cpu_s) / math.log(r.n / p.n)
            prev[r.key] = r


# ---- reading the results -----------------------------------------------------------------------


def target_verdict(row: Row) -> str:
    """'ok' / 'MISS ...' against the issue's targets for activelabel rows ('' for others)."""
    if row.library != "activelabel":
        return ""
    if row.status != "ok":
        return "MISS" if row.status == "timeout" else ""
    misses = []
    if row.extra_mb is not None and row.extra_mb >= TARGET_MEMORY_MB:
        misses.append(f"mem >= {TARGET_MEMORY_MB:g} MB")
    limit = _time_target(row)
    if row.n >= TARGET_SIZE and limit:
        value, bound, unit = limit
        if value is not None and value > bound:
            misses.append(f"> {bound:g}{unit}")
    return "MISS " + ", ".join(misses) if misses else "ok"


def _time_target(row: Row) -> tuple[float | None, float, str] | None:
    if row.family in UNCERTAINTY:
        return row.ratio, TARGET_UNCERTAINTY_RATIO, "x numpy"
    if row.family == "kcenter":
        return row.cpu_s, TARGET_KCENTER_S, " s"
    if row.family in {"random"} | COMMITTEE_STRATEGIES:
        return None
    return row.cpu_s, TARGET_OTHER_DIVERSITY_S, " s"


HEADER = ("size", "strategy", "method", "library", "wall s", "CPU s", "peak extra MB",
          "x numpy (CPU)", "growth", "target")


def table_rows(rows: Iterable[Row]) -> list[tuple[str, ...]]:
    """Display cells, ordered by size, then strategy family, then activelabel / numpy / peers."""
    lib_order = {"activelabel": 0, "numpy": 1}
    fam_order = {f: i for i, f in enumerate(ALL_STRATEGIES)}
    ordered = sorted(rows, key=lambda r: (r.n, fam_order.get(r.family, 99), r.family,
                                          lib_order.get(r.library, 2), r.library, r.label))
    return [_cells(r) for r in ordered]


def _cells(r: Row) -> tuple[str, ...]:
    def num(v: float | None, fmt: str) -> str:
        return "" if v is None else format(v, fmt)

    time_cell = num(r.wall_s, ".3f") if r.status == "ok" else r.cell
    return (f"{r.n:,}", r.family, r.label, r.library, time_cell, num(r.cpu_s, ".3f"),
            num(r.extra_mb, ".0f"), num(r.ratio, ".1f"), num(r.growth, ".2f"), target_verdict(r))


def row_notes(rows: Iterable[Row]) -> list[str]:
    """One line per row without figures, saying why."""
    return [f"n={r.n:,} {r.library} {r.label}: {r.note}" for r in rows if r.status != "ok"]


def print_table(rows: list[Row], notes: list[str], k: int) -> None:
    """A rich table when rich is installed, else aligned plain text."""
    cells = table_rows(rows)
    try:
        from rich.console import Console
        from rich.table import Table
    except ImportError:
        widths = [max(len(c[i]) for c in [HEADER, *cells]) for i in range(len(HEADER))]
        for line in [HEADER, *cells]:
            print("  ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)).rstrip())
    else:
        table = Table(title=f"Query speed, k={k}, one thread per call")
        for i, h in enumerate(HEADER):
            table.add_column(h, justify="right" if 4 <= i <= 8 else "left")
        for line in cells:
            table.add_row(*line)
        Console(width=200).print(table)
    for note in [*row_notes(rows), *notes]:
        print(f"note: {note}")


def markdown_table(rows: list[Row]) -> str:
    """The table as GitHub markdown (for docs/benchmarks.md)."""
    lines = ["| " + " | ".join(HEADER) + " |", "|" + "---|" * len(HEADER)]
    lines += ["| " + " | ".join(c.replace("|", "/") for c in line) + " |" for line in table_rows(rows)]
    return "\n".join(lines)


def machine_info() -> dict[str, Any]:
    """CPU, core count, Python, numpy and its BLAS (as threadpoolctl sees it, if installed)."""
    cpu = platform.processor()
    try:
        with open("/proc/cpuinfo") as fh:
            cpu = next((ln.split(":", 1)[1].strip() for ln in fh if ln.startswith("model name")), cpu)
    except OSError:
        pass
    info: dict[str, Any] = {"cpu": cpu, "cores": os.cpu_count(), "python": platform.python_version(),
                            "numpy": np.__version__, "threads_per_call": 1,
                            "OPENBLAS_CORETYPE": os.environ.get("OPENBLAS_CORETYPE")}
    try:
        from threadpoolctl import threadpool_info

        info["blas"] = [{k: p.get(k) for k in ("internal_api", "version", "architecture")}
                        for p in threadpool_info()]
    except ImportError:
        pass
    return info


# ---- command line -------------------------------------------------------------------------------


def _split(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--sizes", default="10000,100000,1000000",
                   type=lambda s: [int(x) for x in _split(s)], help="pool sizes, comma-separated")
    p.add_argument("--strategies", default="all",
                   help="activelabel strategies (comma-separated); peers of the same family follow")
    p.add_argument("--peers", action=argparse.BooleanOptionalAction, default=True,
                   help="also run modAL, small-text, scikit-activeml from benchmarks/.venv-peers")
    p.add_argument("--repeats", type=int, default=1,
                   help="calls per measurement, best reported (calls over 30 s run once)")
    p.add_argument("--timeout", type=float, default=180.0, help="seconds allowed per call")
    p.add_argument("--run-slow", action="store_true",
                   help="also run peers known to exceed the timeout at a size")
    p.add_argument("-k", type=int, default=100, help="items picked per query")
    p.add_argument("--seed", type=int, default=0, help="seed of the synthetic pool")
    p.add_argument("--out", type=Path, default=None, help="write rows and machine info as JSON")
    p.add_argument("--markdown", action="store_true", help="also print the table as markdown")
    args = p.parse_args(argv)
    if args.repeats < 1 or args.k < 1 or args.timeout <= 0 or not args.sizes:
        p.error("--repeats and -k must be >= 1, --timeout > 0, and --sizes non-empty")
    if min(args.sizes) <= args.k:
        p.error(f"every size must exceed k={args.k}, got sizes {args.sizes}")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    started = time.perf_counter()
    rows, notes = run_benchmark(args)
    print_table(rows, notes, args.k)
    if args.markdown:
        print(markdown_table(rows))
    print(f"total wall time {time.perf_counter() - started:.0f} s")
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        payload = {"machine": machine_info(), "k": args.k, "sizes": args.sizes,
                   "timeout_s": args.timeout, "notes": notes, "rows": [asdict(r) for r in rows]}
        args.out.write_text(json.dumps(payload, indent=2))
    return 0 if all(r.status != "error" for r in rows) else 1


if __name__ == "__main__":
    raise SystemExit(main())
