"""How large cluster-margin's candidate pool should be: the share of random sampling's budget
(``benchmarks/label_counts.py``'s measure) with the default candidate factor (10 x the batch),
a factor of 3, a factor capped at a tenth of the unlabeled pool (between 2 and 10), and plain
margin, on the label-count sets and budgets.

    python benchmarks/candidate_pool.py --datasets ag_news,sms_spam --repeats 2
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import label_counts as lc
from activelabel.simulation import simulate
from activelabel.strategies import STRATEGIES
from activelabel.strategies.hybrid import ClusterMargin


class ClusterMargin3(ClusterMargin):
    """Candidates: 3 x the batch."""

    name = "cluster_margin_x3"

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(candidate_factor=3.0, **kwargs)


class ClusterMarginCapped(ClusterMargin):
    """Candidates: 10 x the batch, at most a tenth of the unlabeled pool (at least 2 x)."""

    name = "cluster_margin_capped"

    def query(self, k: int, *, probs: Any = None, **kwargs: Any) -> Any:
        n = np.asarray(probs).shape[0]
        self.candidate_factor = max(2.0, min(10.0, 0.1 * n / max(k, 1)))
        return super().query(k, probs=probs, **kwargs)


LOOPS = ("random", "cluster_margin", ClusterMargin3.name, ClusterMarginCapped.name, "margin")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--datasets", default=",".join(lc.SPECS))
    p.add_argument("--repeats", type=int, default=2)
    args = p.parse_args(argv)
    STRATEGIES[ClusterMargin3.name] = ClusterMargin3
    STRATEGIES[ClusterMarginCapped.name] = ClusterMarginCapped
    print("| dataset | " + " | ".join(LOOPS[1:]) + " |")
    print("|---|" + "---:|" * (len(LOOPS) - 1))
    for name in args.datasets.split(","):
        spec = lc.SPECS[name]
        ds = lc.subsample(lc.load(name, lc.DATA_DIR), spec.max_rows)
        result = simulate(ds, strategies=list(LOOPS), seed_size=spec.seed_size,
                          batch_size=spec.batch_size, budget=spec.budget,
                          repeats=args.repeats, test_size=0.3, random_state=0,
                          features=ds.features("auto"))
        curves = {s: np.asarray([(q.n_labeled, q.accuracy) for q in points])
                  for s, points in result.curves.items()}
        shares = [lc.share_of_budget(curves[s], curves["random"]) for s in LOOPS[1:]]
        print(f"| {name} | " + " | ".join("not reached" if s is None else f"{s:.2f}"
                                        for s in shares) + " |", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
