"""Forecast coverage: how often the labels-to-target interval covers the labels a run needed.

Random sampling is simulated (:func:`activelabel.simulation.simulate`) on several sets, models
and feature settings; the learning curves are cached in ``benchmarks/out/forecast_curves/``.
On each curve :func:`activelabel.pace.forecast_labels` is fitted on the first ``k`` points
(k in --fit-points) and asked for the labels to a target a fraction (--targets) of the way from
the k-th point to where the run ended (both read on the 3-point running mean); the labels the
run needed are the first point of the running mean at the target. The table gives, per setting,
the share of intervals that cover the labels needed (the nominal level is 90%), the median
interval width over the point forecast, and the share of point forecasts within 25% of the
labels needed. "before" is the former interval (refits on the one fitted curve plus independent
normal noise of the residual spread), kept here for comparison; "after" is
:func:`forecast_labels` as it is; --floors also scores it with other values of
:data:`activelabel.pace.AUTOCORRELATION_FLOOR`. About 2.5 minutes to simulate (niced, 2 cores),
seconds once cached.

    ACTIVELABEL_SHARED_DATA=../shared/data nice -n 19 python benchmarks/forecast_coverage.py
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from activelabel import pace
from activelabel.datasets import Dataset, load_builtin, load_file
from activelabel.pace import _fits, _needed_all, forecast_labels
from activelabel.simulation import SimulationStep, simulate

DATA_DIR = Path(
    os.environ.get(
        "ACTIVELABEL_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"
    )
)
OUT = Path(__file__).resolve().parent / "out"
CACHE = OUT / "forecast_curves"
#: (seed size, batch size, budget) per set; clinc150 is cut to its first CLINC_INTENTS intents.
SETS: dict[str, tuple[int, int, int]] = {
    "sms_spam": (20, 20, 300),
    "ag_news": (20, 20, 300),
    "clinc150": (40, 20, 400),
    "digits": (20, 20, 300),
}
CLINC_INTENTS = 20
MODELS = ["logistic_regression", "naive_bayes"]


def load(name: str) -> Dataset:
    if name == "digits":
        return load_builtin("digits")
    if name == "ag_news":
        return load_file(DATA_DIR / "ag_news_test.jsonl")
    if name == "sms_spam":
        return load_file(DATA_DIR / "sms_spam.jsonl")
    # clinc150: the rows of the first CLINC_INTENTS intents (sorted by name), ~3,000 rows
    small = OUT / f"clinc150_{CLINC_INTENTS}.jsonl"
    if not small.exists():
        rows = [json.loads(line) for line in (DATA_DIR / "clinc150.jsonl").open()]
        keep = set(sorted({r["label"] for r in rows})[:CLINC_INTENTS])
        OUT.mkdir(parents=True, exist_ok=True)
        small.write_text("".join(json.dumps(r) + "\n" for r in rows if r["label"] in keep))
    return load_file(small)


def curves(name: str, model: str, feats: str, repeats: int) -> list[list[tuple[int, float]]]:
    """Learning curves of random sampling, one per repeat (cached)."""
    seed, batch, budget = SETS[name]
    key = f"{name}-{model}-{feats}-s{seed}-b{batch}-n{budget}-r{repeats}"
    path = CACHE / f"{key}.json"
    if path.exists():
        return [[(int(n), float(a)) for n, a in c] for c in json.loads(path.read_text())]
    ds = load(name)
    fs = (ds.features("text", char_ngrams=None, lsa_weight=None, sentence_weight=None)
          if feats == "words"
          else ds.features())
    got: dict[int, list[tuple[int, float]]] = {}

    def keep(step: SimulationStep) -> None:
        got.setdefault(step.repeat, []).append((step.n_labeled, step.accuracy))

    t0 = time.perf_counter()
    simulate(ds, strategies=["random"], seed_size=seed, batch_size=batch, budget=budget,
             repeats=repeats, random_state=0, model=model, features=fs, on_step=keep)
    print(f"  simulated {key} in {time.perf_counter() - t0:.0f} s", file=sys.stderr)
    out = [got[r] for r in sorted(got)]
    CACHE.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(out))
    return out


def before(n: np.ndarray, y: np.ndarray, target: float, *, n_boot: int = 200,
           level: float = 0.9, cap_factor: float = 100.0,
           random_state: int = 0) -> tuple[float, float, float]:
    """(point, low, high) of the former interval: refits on the one fitted curve plus iid
    normal noise of the residual spread (inf: out of reach)."""
    fit = _fits(n, y[None, :])[0]
    cap = cap_factor * float(n.max())
    point = float(_needed_all(fit[None, :], target, cap)[0])
    fitted = fit[0] - fit[1] * np.power(n, -fit[2])
    sigma = max(math.sqrt(float(np.sum((y - fitted) ** 2)) / max(n.shape[0] - 3, 1)), 1e-4)
    rng = np.random.default_rng(random_state)
    noisy = fitted[None, :] + rng.normal(0.0, sigma, size=(n_boot, n.shape[0]))
    d = np.minimum(_needed_all(_fits(n, noisy), target, cap), 2.0 * cap)
    tail = (1.0 - level) / 2.0
    lo, hi = (float(q) for q in np.quantile(d, [tail, 1.0 - tail]))
    top = float(n.max())
    lo = math.inf if lo > cap else max(math.ceil(lo), top)
    hi = math.inf if hi > cap else max(math.ceil(hi), top)
    if math.isfinite(point):
        point = max(math.ceil(point), top)
        lo, hi = min(lo, point), max(hi, point)
    return point, lo, hi


def after(n: np.ndarray, y: np.ndarray, target: float) -> tuple[float, float, float]:
    f = forecast_labels(n.tolist(), y.tolist(), target)
    return (math.inf if f.labels is None else float(f.labels),
            math.inf if f.low is None else float(f.low),
            math.inf if f.high is None else float(f.high))


Method = Callable[[np.ndarray, np.ndarray, float], tuple[float, float, float]]


def floored(floor: float) -> Method:
    """:func:`after` with another :data:`activelabel.pace.AUTOCORRELATION_FLOOR`."""

    def run(n: np.ndarray, y: np.ndarray, target: float) -> tuple[float, float, float]:
        kept = pace.AUTOCORRELATION_FLOOR
        pace.AUTOCORRELATION_FLOOR = floor
        try:
            return after(n, y, target)
        finally:
            pace.AUTOCORRELATION_FLOOR = kept

    return run


def score(rows: list[tuple[float, float, float, float]]) -> dict[str, Any]:
    """Of (needed, point, low, high) rows: the share of intervals covering the labels needed,
    the share open-ended (no upper end or no point forecast: "out of reach"), the median width
    over the point forecast of the closed ones, and the share of point forecasts within 25%
    of the labels needed."""
    cover = [lo <= need <= hi for need, _, lo, hi in rows]
    closed = [(hi - lo) / p for _, p, lo, hi in rows if math.isfinite(p) and math.isfinite(hi)]
    near = [math.isfinite(p) and abs(p - need) <= 0.25 * need for need, p, _, _ in rows]
    k = max(len(rows), 1)
    return {"n": len(rows), "coverage": sum(cover) / k, "open": 1 - len(closed) / k,
            "width": statistics.median(closed) if closed else math.nan,
            "within25": sum(near) / k}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--repeats", type=int, default=4)
    ap.add_argument("--fit-points", type=int, nargs="+", default=[6, 8, 10])
    ap.add_argument("--targets", type=float, nargs="+", default=[0.25, 0.5, 0.75])
    ap.add_argument("--sets", nargs="+", default=list(SETS))
    ap.add_argument("--floors", type=float, nargs="*", default=[0.0, 0.3, 0.7],
                    help="also score forecast_labels with these autocorrelation floors")
    ap.add_argument("--out", type=Path, default=OUT / "forecast_coverage.json")
    args = ap.parse_args(argv)
    methods: dict[str, Method] = {"before": before, "after": after}
    for floor in args.floors:
        methods[f"floor {floor:g}"] = floored(floor)
    table: list[dict[str, Any]] = []
    every: dict[str, list[tuple[float, float, float, float]]] = {m: [] for m in methods}
    for name in args.sets:
        for model in MODELS:
            for feats in (["default", "words"] if name != "digits" else ["default"]):
                runs = curves(name, model, feats, args.repeats)
                rows: dict[str, list[tuple[float, float, float, float]]] = {
                    m: [] for m in methods}
                for points in runs:
                    n = np.asarray([p[0] for p in points], dtype=float)
                    acc = np.asarray([p[1] for p in points])
                    smooth = np.convolve(acc, np.ones(3) / 3, mode="same")
                    smooth[[0, -1]] = acc[[0, -1]]
                    for k in args.fit_points:
                        if k >= n.shape[0] - 2 or smooth[-1] <= max(acc[:k]) + 1e-9:
                            continue
                        for frac in args.targets:
                            target = float(smooth[k - 1] + frac * (smooth[-1] - smooth[k - 1]))
                            if target <= acc[:k].max():
                                continue  # reached already: nothing to forecast
                            need = float(n[int(np.argmax(smooth >= target))])
                            for m, fn in methods.items():
                                p, lo, hi = fn(n[:k], acc[:k], target)
                                rows[m].append((need, p, lo, hi))
                row: dict[str, Any] = {"set": name, "model": model, "features": feats}
                for m in methods:
                    row[m] = score(rows[m])
                    every[m] += rows[m]
                table.append(row)
    total = {m: score(every[m]) for m in methods}
    head = (f"{'set':<9} {'model':<19} {'features':<8} {'n':>4}  {'covers':>13}  "
            f"{'open-ended':>13}  {'median width':>13}  {'point within':>12}")
    print(head)
    print(f"{'':<43}{'before  after':>13}  {'before  after':>13}  {'before  after':>13}  "
          f"{'25%':>12}")
    print("-" * len(head))

    def line(label: str, b: dict[str, Any], a: dict[str, Any]) -> str:
        return (f"{label:<38} {b['n']:>4}  {b['coverage']:>6.0%} {a['coverage']:>6.0%}  "
                f"{b['open']:>6.0%} {a['open']:>6.0%}  {b['width']:>6.2f} {a['width']:>6.2f}  "
                f"{a['within25']:>12.0%}")

    for r in table:
        print(line(f"{r['set']:<9} {r['model']:<19} {r['features']:<8}", r["before"],
                   r["after"]))
    print("-" * len(head))
    print(line("all", total["before"], total["after"]))
    if args.floors:
        print(f"\nall forecasts, after with another autocorrelation floor (after: "
              f"{pace.AUTOCORRELATION_FLOOR:g}):")
        for m in methods:
            if m.startswith("floor"):
                t = total[m]
                print(f"  {m:<10} covers {t['coverage']:>4.0%}  open-ended {t['open']:>4.0%}  "
                      f"median width {t['width']:.2f}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"rows": table, "all": total}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
