"""Label efficiency: how many labels each strategy needs to reach 95% of full-data accuracy.

For each dataset the oracle simulation (:func:`activelabel.simulation.simulate`) runs every
strategy from the same seed batch on the same splits; the table gives the labels at which the
mean learning curve first reaches the target, the ratio to random sampling (lower is better),
and the per-repeat labels-to-target so the noise between repeats is visible. The paired
difference "default strategy minus margin" (same split, same seed, per repeat) says whether the
default is worse than plain margin by more than that noise.

    python benchmarks/label_efficiency.py --repeats 5 --out benchmarks/out/label_efficiency.json
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from activelabel.datasets import Dataset, load_builtin, load_file
from activelabel.simulation import SimulationResult, simulate
from activelabel.strategies import DEFAULT_STRATEGY

DATA_DIR = Path(
    os.environ.get(
        "ACTIVELABEL_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"
    )
)
BASE_STRATEGIES = ["random", "margin", "entropy", "cluster_margin", "badge", "kcenter"]
#: The issue's bar: the default strategy needs at most this fraction of random's labels.
MAX_RATIO_TO_RANDOM = 0.60


@dataclass(frozen=True)
class Spec:
    """How one dataset is simulated: budget counts all labels, the seed included."""

    name: str
    seed_size: int
    batch_size: int
    budget: int
    path: str | None = None  # file name in the shared data folder; None for scikit-learn's


SPECS = {
    "digits": Spec("digits", seed_size=20, batch_size=10, budget=300),
    "wine": Spec("wine", seed_size=3, batch_size=3, budget=45),
    "breast_cancer": Spec("breast_cancer", seed_size=4, batch_size=4, budget=80),
    "ag_news": Spec(
        "ag_news", seed_size=50, batch_size=50, budget=1250, path="ag_news_test.jsonl"
    ),
    "sms_spam": Spec("sms_spam", seed_size=20, batch_size=10, budget=320, path="sms_spam.jsonl"),
}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    default_strategies = ",".join(dict.fromkeys([*BASE_STRATEGIES, DEFAULT_STRATEGY]))
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--datasets", default=",".join(SPECS), help="comma-separated dataset names")
    p.add_argument("--strategies", default=default_strategies, help="comma-separated strategies")
    p.add_argument("--repeats", type=int, default=5, help="splits/seeds per dataset (default 5)")
    p.add_argument(
        "--budget",
        action="append",
        default=[],
        metavar="NAME=N",
        help="override a dataset's label budget, e.g. --budget digits=300 (repeatable)",
    )
    p.add_argument("--test-size", type=float, default=0.3)
    p.add_argument("--random-state", type=int, default=0)
    p.add_argument("--data-dir", type=Path, default=DATA_DIR, help="folder with the JSONL files")
    p.add_argument("--out", type=Path, default=None, help="write all results to this JSON file")
    return p.parse_args(argv)


def budgets(overrides: list[str]) -> dict[str, int]:
    out = {name: spec.budget for name, spec in SPECS.items()}
    for item in overrides:
        name, _, value = item.partition("=")
        if name not in SPECS or not value.isdigit():
            raise SystemExit(f"error: --budget wants NAME=N with NAME in {', '.join(SPECS)}")
        out[name] = int(value)
    return out


def load(spec: Spec, data_dir: Path) -> Dataset:
    if spec.path is None:
        return load_builtin(spec.name)
    return load_file(data_dir / spec.path)


def run_dataset(spec: Spec, budget: int, args: argparse.Namespace) -> SimulationResult:
    dataset = load(spec, args.data_dir)
    strategies = [s for s in args.strategies.split(",") if s]
    return simulate(
        dataset,
        strategies=strategies,
        seed_size=spec.seed_size,
        batch_size=spec.batch_size,
        budget=budget,
        repeats=args.repeats,
        test_size=args.test_size,
        random_state=args.random_state,
    )


# ---- summary -------------------------------------------------------------------------------


def spread(values: list[int | None]) -> str:
    """Per-repeat labels-to-target as "mean ± std (min-max)", or how many repeats reached it."""
    reached = [v for v in values if v is not None]
    if len(reached) < len(values):
        return f"{len(reached)}/{len(values)} reached"
    std = statistics.pstdev(reached) if len(reached) > 1 else 0.0
    return f"{statistics.mean(reached):.0f} ± {std:.0f} ({min(reached)}-{max(reached)})"


def ratio(n: int | None, n_random: int | None) -> float | None:
    return None if n is None or n_random is None else n / n_random


def summarize(result: SimulationResult) -> list[dict[str, Any]]:
    """One row per strategy: labels to target, ratio to random, per-repeat spread, AUC."""
    base = result.labels_to_target.get("random")
    rows = []
    for name, n in result.labels_to_target.items():
        rows.append(
            {
                "strategy": name,
                "labels_to_target": n,
                "ratio_to_random": ratio(n, base),
                "per_repeat": result.labels_to_target_per_repeat[name],
                "area_under_curve": result.area_under_curve[name],
                "final_accuracy": result.curves[name][-1].accuracy,
                "seconds": result.seconds[name],
            }
        )
    return rows


def paired_vs_margin(result: SimulationResult, name: str) -> dict[str, Any] | None:
    """Per-repeat labels-to-target of ``name`` minus margin's (same split, same seed)."""
    runs = result.labels_to_target_per_repeat
    if name not in runs or "margin" not in runs or name == "margin":
        return None
    pairs = [(a, b) for a, b in zip(runs[name], runs["margin"], strict=True)]
    diffs = [a - b for a, b in pairs if a is not None and b is not None]
    return {
        "differences": diffs,
        "mean": statistics.mean(diffs) if diffs else None,
        "std": statistics.pstdev(diffs) if len(diffs) > 1 else None,
        "margin_std": _std([b for _, b in pairs]),
        "repeats_compared": len(diffs),
    }


def _std(values: list[int | None]) -> float | None:
    reached = [v for v in values if v is not None]
    return statistics.pstdev(reached) if len(reached) > 1 else None


def fmt(value: float | int | None, pattern: str = "{}") -> str:
    return "not reached" if value is None else pattern.format(value)


def markdown_table(results: dict[str, SimulationResult]) -> str:
    lines = [
        "| dataset | target acc. | strategy | labels to target | ratio to random | "
        "per repeat: mean ± std (min-max) | AUC | final acc. |",
        "|---|---|---|---:|---:|---|---:|---:|",
    ]
    for ds, result in results.items():
        budget = result.config["budget"]
        for row in summarize(result):
            lines.append(
                f"| {ds} (budget {budget}) | {result.target:.3f} | {row['strategy']} | "
                f"{fmt(row['labels_to_target'])} | {fmt(row['ratio_to_random'], '{:.2f}')} | "
                f"{spread(row['per_repeat'])} | {row['area_under_curve']:.3f} | "
                f"{row['final_accuracy']:.3f} |"
            )
    return "\n".join(lines)


def verdict(results: dict[str, SimulationResult]) -> list[str]:
    """The issue's two checks for the default strategy, one line per dataset."""
    out = []
    for ds, result in results.items():
        n = result.labels_to_target.get(DEFAULT_STRATEGY)
        r = ratio(n, result.labels_to_target.get("random"))
        ok = "ok" if r is not None and r <= MAX_RATIO_TO_RANDOM else "MISSED"
        pair = paired_vs_margin(result, DEFAULT_STRATEGY)
        vs = "n/a"
        if pair and pair["mean"] is not None:
            vs = f"{pair['mean']:+.0f} labels vs margin (paired std {pair['std'] or 0:.0f})"
        out.append(
            f"- {ds}: {DEFAULT_STRATEGY} ratio to random {fmt(r, '{:.2f}')} "
            f"(bar <= {MAX_RATIO_TO_RANDOM:.2f}: {ok}); {vs}"
        )
    return out


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    limits = budgets(args.budget)
    names = [n for n in args.datasets.split(",") if n]
    unknown = [n for n in names if n not in SPECS]
    if unknown:
        raise SystemExit(f"error: unknown dataset {unknown}; choose from {', '.join(SPECS)}")
    results: dict[str, SimulationResult] = {}
    started = time.perf_counter()
    for name in names:
        t0 = time.perf_counter()
        results[name] = run_dataset(SPECS[name], limits[name], args)
        print(f"{name}: {time.perf_counter() - t0:.0f} s", file=sys.stderr, flush=True)
        if args.out is not None:
            write(args.out, results, args, time.perf_counter() - started)
    print(markdown_table(results))
    print()
    print("\n".join(verdict(results)))
    print(f"\ntotal {time.perf_counter() - started:.0f} s", file=sys.stderr)
    return 0


def write(
    path: Path, results: dict[str, SimulationResult], args: argparse.Namespace, seconds: float
) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    doc = {
        "command": " ".join(["python", "benchmarks/label_efficiency.py", *sys.argv[1:]]),
        "repeats": args.repeats,
        "default_strategy": DEFAULT_STRATEGY,
        "seconds": round(seconds, 1),
        "datasets": {
            name: {
                "summary": summarize(r),
                "default_minus_margin": paired_vs_margin(r, DEFAULT_STRATEGY),
                "result": r.to_dict(),
            }
            for name, r in results.items()
        },
    }
    path.write_text(json.dumps(doc, indent=2) + "\n")


if __name__ == "__main__":
    sys.exit(main())
