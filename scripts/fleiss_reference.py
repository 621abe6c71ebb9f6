"""Write tests/data/fleiss_reference.json: statsmodels' Fleiss' kappa on a set of count tables.

activelabel computes Fleiss' kappa in numpy (activelabel.quality.fleiss_kappa) and does not
depend on statsmodels; this script, run once in a throwaway environment that has it, records
the reference values the test compares against::

    python3 -m venv /tmp/sm && /tmp/sm/bin/pip install statsmodels
    /tmp/sm/bin/python scripts/fleiss_reference.py

Every case is a (n_items, n_classes) table of label counts. statsmodels needs the same number
of raters on every item, so for a table with varying raters the reference is statsmodels on the
rows activelabel keeps (the most common number of raters, at least 2), how many is stored as
``reference_rows``. ``kappa`` is null where statsmodels returns NaN (every label in one class:
activelabel reports 1.0 there, perfect observed agreement).
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import statsmodels
from statsmodels.stats.inter_rater import fleiss_kappa

OUT = Path(__file__).resolve().parents[1] / "tests" / "data" / "fleiss_reference.json"

WIKI = [[0, 0, 0, 0, 14], [0, 2, 6, 4, 2], [0, 0, 3, 5, 6], [0, 3, 9, 2, 0], [2, 2, 8, 1, 1],
        [7, 7, 0, 0, 0], [3, 2, 6, 3, 0], [2, 5, 3, 2, 2], [6, 5, 2, 1, 0], [0, 2, 2, 3, 7]]


def random_table(rng: np.random.Generator, n_items: int, n_classes: int, n_raters: Any,
                 skew: float = 1.0) -> list[list[int]]:
    """Each item's raters draw classes from a shared skewed distribution plus an item bias."""
    raters = np.broadcast_to(np.asarray(n_raters), (n_items,))
    base = rng.dirichlet(np.full(n_classes, skew))
    rows = []
    for r in raters:
        p = 0.5 * base + 0.5 * rng.dirichlet(np.full(n_classes, 0.3))
        rows.append(rng.multinomial(int(r), p).tolist())
    return rows


def modal_rows(table: np.ndarray) -> np.ndarray:
    per_item = table.sum(axis=1)
    multi = per_item[per_item >= 2]
    values, freq = np.unique(multi, return_counts=True)
    return table[per_item == values[np.argmax(freq)]]


def cases() -> list[tuple[str, list[list[int]]]]:
    rng = np.random.default_rng(20240611)
    out: list[tuple[str, list[list[int]]]] = [
        ("wikipedia: 10 items, 14 raters, 5 classes", WIKI),
        ("by hand: kappa 1/3", [[2, 0], [0, 2], [1, 1]]),
        ("perfect agreement over three classes", [[3, 0, 0], [0, 3, 0], [0, 0, 3], [3, 0, 0]]),
        ("every label in one class", [[4, 0, 0], [4, 0, 0], [4, 0, 0]]),
        ("systematic disagreement: kappa -1", [[1, 1], [1, 1], [1, 1], [1, 1]]),
        ("two raters, binary, mostly agreeing", [[2, 0]] * 30 + [[0, 2]] * 15 + [[1, 1]] * 5),
        ("a class nobody used", [[2, 1, 0], [0, 3, 0], [1, 2, 0], [3, 0, 0]]),
    ]
    for n_items, n_classes, n_raters, skew in [(20, 2, 2, 1.0), (50, 3, 3, 0.5), (100, 5, 4, 2.0),
                                               (200, 10, 5, 1.0), (1000, 4, 7, 0.2)]:
        out.append((f"random: {n_items} items, {n_classes} classes, {n_raters} raters",
                    random_table(rng, n_items, n_classes, n_raters, skew)))
    for n_items, n_classes in [(60, 3), (300, 6)]:
        raters = rng.integers(1, 6, size=n_items)
        out.append((f"random, 1-5 raters per item: {n_items} items, {n_classes} classes",
                    random_table(rng, n_items, n_classes, raters)))
    out.append(("varying raters, items with one label left out",
                [[1, 0], [0, 1], [3, 0], [2, 1], [1, 2], [0, 3], [2, 0]]))
    return out


def main() -> None:
    entries = []
    for name, table in cases():
        rows = modal_rows(np.asarray(table, dtype=np.int64))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # 0/0 when one class has every label
            kappa = float(fleiss_kappa(rows, method="fleiss"))
        entry: dict[str, Any] = {"name": name, "table": table,
                                 "kappa": None if np.isnan(kappa) else kappa}
        if rows.shape[0] != len(table):
            entry["reference_rows"] = rows.shape[0]
        entries.append(entry)
    doc = {"statsmodels": statsmodels.__version__, "numpy": np.__version__,
           "function": "statsmodels.stats.inter_rater.fleiss_kappa(rows, method='fleiss')",
           "cases": entries}
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(doc, separators=(",", ":")) + "\n")
    print(f"wrote {len(entries)} cases to {OUT}")


if __name__ == "__main__":
    main()
