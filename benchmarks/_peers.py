"""Peer adapters and the measuring side of ``benchmarks/query_speed.py``.

Each method is an adapter that loads the synthetic pool written by ``query_speed.py``, builds
whatever its library needs around it (outside the timed region), then times exactly one query
of ``k`` items. ``query_speed.py`` starts one worker per Python environment::

    python benchmarks/_peers.py serve main|peers

which imports that environment's libraries once and then forks a fresh process for every
measurement (so each one's memory and CPU time are its own, and import time is not counted).
For debugging, one method can be measured directly; it prints one ``RESULT {json}`` line::

    python benchmarks/_peers.py METHOD DATA_DIR K [TIMEOUT_SECONDS]

The pool directory holds ``embeddings.npy`` (n, d) float32, ``probs.npy`` (n, c) float32,
``committee.npy`` (n_members, n, c) float32, ``labeled.npy`` (n_labeled, d) float32 and
``labeled_y.npy`` (n_labeled,) int64.

Where a peer insists on a classifier, it gets :class:`FixedProbs`-style stand-ins whose
``predict_proba`` returns the synthetic ``probs`` as they are, so every library scores the same
numbers and only the query step is timed. small-text's query strategies are called through their
public ``query`` method with the pool array standing in for its dataset (it only indexes it).
"""

from __future__ import annotations

import contextlib
import gc
import json
import os
import signal
import sys
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

__all__ = [
    "COMMITTEE_STRATEGIES",
    "METHODS",
    "PEER_LIBRARIES",
    "PRELOAD",
    "Method",
    "activelabel_method",
    "measure",
    "measure_forked",
    "peak_rss_mb",
    "serve",
]

#: activelabel strategies whose ``probs`` are a committee's (n_members, n_pool, n_classes).
COMMITTEE_STRATEGIES = frozenset({"vote_entropy", "bald"})
#: Libraries that run in the peer environment (benchmarks/.venv-peers).
PEER_LIBRARIES = ("modAL", "small-text", "scikit-activeml")

Query = Callable[[], Any]
Data = dict[str, np.ndarray]


@dataclass(frozen=True)
class Method:
    """One row family of the table: a library's way of picking ``k`` items.

    ``family`` names the activelabel strategy it is compared with; ``needs`` lists the pool
    arrays the adapter loads (names of ``.npy`` files without the suffix).
    """

    key: str
    library: str
    label: str
    family: str
    needs: tuple[str, ...]


def activelabel_method(strategy: str) -> Method:
    """The :class:`Method` for ``activelabel.select(strategy, ...)``."""
    needs = ("committee",) if strategy in COMMITTEE_STRATEGIES else ("probs", "embeddings", "labeled")
    return Method(f"activelabel:{strategy}", "activelabel", strategy, strategy, needs)


_P, _E, _L = "probs", "embeddings", "labeled"

#: Every non-activelabel method, by key. The numpy bound runs in the main environment.
METHODS: dict[str, Method] = {
    m.key: m
    for m in [
        Method("numpy:margin_bound", "numpy", "partition + argpartition (margin)", "margin", (_P,)),
        Method("modAL:uncertainty_sampling", "modAL", "uncertainty_sampling", "least_confidence", (_P, _E, _L)),
        Method("modAL:margin_sampling", "modAL", "margin_sampling", "margin", (_P, _E, _L)),
        Method("modAL:entropy_sampling", "modAL", "entropy_sampling", "entropy", (_P, _E, _L)),
        Method("modAL:ranked_batch", "modAL", "uncertainty_batch_sampling (ranked batch)", "cluster_margin", (_P, _E, _L)),
        Method("small-text:LeastConfidence", "small-text", "LeastConfidence", "least_confidence", (_P, _E)),
        Method("small-text:BreakingTies", "small-text", "BreakingTies", "margin", (_P, _E)),
        Method("small-text:PredictionEntropy", "small-text", "PredictionEntropy", "entropy", (_P, _E)),
        Method("small-text:GreedyCoreset", "small-text", "GreedyCoreset", "kcenter", (_E, _L)),
        Method("small-text:EmbeddingKMeans", "small-text", "EmbeddingKMeans", "kmeans", (_E, _L)),
        Method("scikit-activeml:margin", "scikit-activeml", "UncertaintySampling(margin_sampling)", "margin", (_P, _E, _L)),
        Method("scikit-activeml:CoreSet", "scikit-activeml", "CoreSet", "kcenter", (_E, _L)),
        Method("scikit-activeml:TypiClust", "scikit-activeml", "TypiClust", "typiclust", (_E, _L)),
    ]
}


# ---- adapters: build the library's inputs, return the zero-argument query to time ----------


def _numpy_bound(d: Data, k: int) -> Query:
    probs = d["probs"]

    def run() -> np.ndarray:
        top2 = np.partition(probs, probs.shape[1] - 2, axis=1)[:, -2:]
        margins = top2[:, 1] - top2[:, 0]
        idx = np.argpartition(margins, k - 1)[:k]
        return idx[np.argsort(margins[idx], kind="stable")]

    return run


def _activelabel(strategy: str) -> Callable[[Data, int], Query]:
    def prepare(d: Data, k: int) -> Query:
        import activelabel

        if strategy in COMMITTEE_STRATEGIES:
            kwargs = {"probs": d["committee"]}
        else:
            kwargs = {"probs": d["probs"], "embeddings": d["embeddings"],
                      "labeled_embeddings": d["labeled"]}
        return lambda: activelabel.select(strategy, k, random_state=0, **kwargs)

    return prepare


class _FixedProbs:
    """A prefit 'classifier' whose predict_proba returns the pool's synthetic probs."""

    def __init__(self, probs: np.ndarray) -> None:
        self.probs = probs
        self.classes_ = np.arange(probs.shape[1])

    def fit(self, X: Any, y: Any = None) -> _FixedProbs:
        return self

    def predict_proba(self, X: Any) -> np.ndarray:
        if X.shape[0] != self.probs.shape[0]:
            raise ValueError(f"asked for {X.shape[0]} rows, the pool has {self.probs.shape[0]}")
        return self.probs


def _modal(fn_name: str) -> Callable[[Data, int], Query]:
    def prepare(d: Data, k: int) -> Query:
        from modAL.batch import uncertainty_batch_sampling
        from modAL.models import ActiveLearner
        from modAL.uncertainty import entropy_sampling, margin_sampling, uncertainty_sampling

        fns = {"uncertainty_sampling": uncertainty_sampling, "margin_sampling": margin_sampling,
               "entropy_sampling": entropy_sampling, "ranked_batch": uncertainty_batch_sampling}
        fn = fns[fn_name]
        learner = ActiveLearner(estimator=_FixedProbs(d["probs"]), X_training=d["labeled"],
                                y_training=d["labeled_y"])
        return lambda: fn(learner, d["embeddings"], n_instances=k)[0]

    return prepare


def _small_text(cls_name: str) -> Callable[[Data, int], Query]:
    def prepare(d: Data, k: int) -> Query:
        from small_text.query_strategies import strategies
        from small_text.query_strategies.coresets import GreedyCoreset

        n = d["embeddings"].shape[0]
        if cls_name in {"GreedyCoreset", "EmbeddingKMeans"}:
            # The dataset is the pool followed by the labeled rows; embeddings aligned to it.
            x = np.concatenate([d["embeddings"], d["labeled"]])
            labeled = np.arange(n, x.shape[0])
            strategy = GreedyCoreset() if cls_name == "GreedyCoreset" else strategies.EmbeddingKMeans()
            return lambda: strategy.query(None, x, np.arange(n), labeled, d["labeled_y"], n=k,
                                          embeddings=x, pbar=None)
        strategy = getattr(strategies, cls_name)()
        clf = _FixedProbs(d["probs"])
        empty = np.empty(0, dtype=np.int64)
        return lambda: strategy.query(clf, d["embeddings"], np.arange(n), empty, empty, n=k)

    return prepare


def _skactiveml(cls_name: str) -> Callable[[Data, int], Query]:
    def prepare(d: Data, k: int) -> Query:
        from skactiveml.pool import CoreSet, TypiClust, UncertaintySampling

        x = np.concatenate([d["embeddings"], d["labeled"]])
        n = d["embeddings"].shape[0]
        y = np.full(x.shape[0], np.nan)
        y[n:] = d["labeled_y"]
        if cls_name == "margin":
            qs = UncertaintySampling(method="margin_sampling", random_state=0)
            clf = _skactiveml_fixed(d["probs"])
            return lambda: qs.query(x, y, clf, fit_clf=False, batch_size=k)
        qs = CoreSet(random_state=0) if cls_name == "CoreSet" else TypiClust(random_state=0)
        return lambda: qs.query(x, y, batch_size=k)

    return prepare


def _skactiveml_fixed(probs: np.ndarray) -> Any:
    from skactiveml.base import SkactivemlClassifier

    class FixedProbsClassifier(SkactivemlClassifier):  # type: ignore[misc]
        def fit(self, X: Any, y: Any, sample_weight: Any = None) -> FixedProbsClassifier:
            return self

        def predict_proba(self, X: Any) -> np.ndarray:
            return _FixedProbs(probs).predict_proba(X)

    clf = FixedProbsClassifier(classes=np.arange(probs.shape[1]))
    clf.classes_ = np.arange(probs.shape[1])
    return clf


_ADAPTERS: dict[str, Callable[[Data, int], Query]] = {
    "numpy:margin_bound": _numpy_bound,
    **{f"modAL:{f}": _modal(f) for f in
       ("uncertainty_sampling", "margin_sampling", "entropy_sampling", "ranked_batch")},
    **{f"small-text:{c}": _small_text(c) for c in
       ("LeastConfidence", "BreakingTies", "PredictionEntropy", "GreedyCoreset", "EmbeddingKMeans")},
    **{f"scikit-activeml:{c}": _skactiveml(c) for c in ("margin", "CoreSet", "TypiClust")},
}


# ---- measurement -----------------------------------------------------------------------------


def _proc_status_kb(field: str) -> int | None:
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def _reset_peak_rss() -> bool:
    """Reset the kernel's peak-RSS mark (VmHWM) so the next reading is this call's own peak."""
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
    except OSError:
        return False
    return True


def peak_rss_mb() -> float:
    """Peak resident set size of this process in MB (VmHWM, else ru_maxrss)."""
    kb = _proc_status_kb("VmHWM")
    if kb is None:
        import resource

        kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return kb / 1024


def _check_indices(idx: Any, n: int, k: int) -> np.ndarray:
    arr = np.asarray(idx).astype(np.int64).ravel()
    if arr.shape[0] != k or np.unique(arr).shape[0] != k or arr.min() < 0 or arr.max() >= n:
        raise AssertionError(
            f"expected {k} distinct pool indices in [0, {n}), got {arr.shape[0]} "
            f"({np.unique(arr).shape[0]} distinct, range {arr.min()}..{arr.max()})"
        )
    return arr


def _load(data_dir: Path, method: Method) -> Data:
    names = set(method.needs)
    if method.library in {"modAL", "scikit-activeml", "small-text"}:
        names.add("labeled_y")
    return {name: np.load(data_dir / f"{name}.npy") for name in sorted(names)}


def measure(key: str, data_dir: Path, k: int, timeout: float | None = None) -> dict[str, Any]:
    """Load the pool, prepare ``key``'s query, then time one call and take its peak memory.

    Peak extra memory is the resident-set high-water mark during the call (reset just before
    it) minus the resident set just before it, so loaded data and imports are not counted.
    With ``timeout``, the kernel ends the process (SIGALRM, default action) if the call runs
    longer, even inside C code that never returns to the interpreter.
    """
    if key.startswith("activelabel:"):
        method = activelabel_method(key.split(":", 1)[1])
        prepare = _activelabel(method.family)
    else:
        method, prepare = METHODS[key], _ADAPTERS[key]
    data = _load(data_dir, method)
    n = next(iter(v.shape[-2] for name, v in data.items() if name in {"probs", "committee", "embeddings"}))
    query = prepare(data, k)
    gc.collect()
    gc.disable()
    exact_peak = _reset_peak_rss()
    rss_before = (_proc_status_kb("VmRSS") or 0) / 1024 if exact_peak else peak_rss_mb()
    if timeout:
        signal.signal(signal.SIGALRM, signal.SIG_DFL)
        signal.setitimer(signal.ITIMER_REAL, timeout)
    wall0, cpu0 = time.perf_counter(), time.process_time()
    result = query()
    cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
    signal.setitimer(signal.ITIMER_REAL, 0)
    peak = peak_rss_mb()
    _check_indices(result, n, k)
    return {"key": key, "n": n, "k": k, "wall_s": wall, "cpu_s": cpu,
            "extra_mb": max(0.0, peak - rss_before), "rss_before_mb": rss_before,
            "peak_exact": exact_peak}


#: Modules a worker imports once, before it forks a process per measurement.
PRELOAD = {
    "main": ("activelabel", "sklearn.cluster"),
    "peers": ("modAL.batch", "modAL.models", "modAL.uncertainty", "small_text.query_strategies",
              "skactiveml.base", "skactiveml.pool", "sklearn.cluster", "sklearn.metrics"),
}


def measure_forked(key: str, data_dir: Path, k: int, timeout: float) -> dict[str, Any]:
    """Run :func:`measure` in a freshly forked process so its memory and CPU are its own.

    The child ends itself at ``timeout`` seconds into the call; the parent also kills it if no
    answer comes within ``timeout`` plus a minute for loading.
    """
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:  # child: never returns
        os.close(read_fd)
        os.dup2(2, 1)  # library output must not reach the parent's answer channel
        try:
            payload = {"status": "ok", **measure(key, data_dir, k, timeout)}
        except BaseException as exc:
            payload = {"status": "error", "error": f"{type(exc).__name__}: {exc}"[:300]}
        with os.fdopen(write_fd, "w") as fh:
            fh.write(json.dumps(payload))
        os._exit(0)
    os.close(write_fd)
    text = _read_until(read_fd, timeout + 60, pid)
    _, status = os.waitpid(pid, 0)
    if os.WIFSIGNALED(status):
        sig = os.WTERMSIG(status)
        if sig in (signal.SIGALRM, signal.SIGKILL) and not text:
            return {"status": "timeout"}
        return {"status": "error", "error": f"killed by signal {sig}"}
    return dict(json.loads(text)) if text else {"status": "error", "error": "no answer"}


def _read_until(fd: int, seconds: float, pid: int) -> str:
    """Everything the child writes to ``fd``; SIGKILL it if it takes over ``seconds``."""
    import select

    deadline, parts = time.monotonic() + seconds, list[bytes]()
    with os.fdopen(fd, "rb") as fh:
        while True:
            left = deadline - time.monotonic()
            ready, _, _ = select.select([fh], [], [], max(left, 0))
            if not ready:
                os.kill(pid, signal.SIGKILL)
                return ""
            chunk = os.read(fh.fileno(), 65536)
            if not chunk:
                return b"".join(parts).decode()
            parts.append(chunk)


def serve(env_name: str) -> int:
    """Worker loop: preload this environment's libraries, then one forked measurement per line.

    Each stdin line is ``{"key", "data_dir", "k", "timeout"}``; each answer one JSON line.
    """
    import importlib

    for module in PRELOAD[env_name]:
        with contextlib.suppress(ImportError):  # the measurement that needs it reports it
            importlib.import_module(module)
    print(json.dumps({"status": "ready"}), flush=True)
    for line in sys.stdin:
        req = json.loads(line)
        res = measure_forked(req["key"], Path(req["data_dir"]), int(req["k"]), float(req["timeout"]))
        print(json.dumps(res), flush=True)
    return 0


def main(argv: list[str]) -> int:
    """``_peers.py serve main|peers`` (worker) or ``_peers.py METHOD DATA_DIR K [TIMEOUT]``."""
    warnings.simplefilter("ignore")
    os.environ.setdefault("TQDM_DISABLE", "1")
    if len(argv) == 2 and argv[0] == "serve":
        return serve(argv[1])
    if len(argv) not in (3, 4):
        print(__doc__, file=sys.stderr)
        return 2
    timeout = float(argv[3]) if len(argv) == 4 else None
    result = measure(argv[0], Path(argv[1]), int(argv[2]), timeout)
    print("RESULT " + json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
