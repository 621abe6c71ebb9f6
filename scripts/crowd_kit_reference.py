"""Write crowd-kit's Dawid-Skene answer on the planted crowd of tests/test_quality.py to
tests/data/dawid_skene_crowd_kit.json, the reference that test compares
activelabel.quality.DawidSkene with (crowd-kit pulls transformers and is no dependency of
activelabel, so the test reads the saved answer instead of running crowd-kit).

Made with crowd-kit 1.4.2, numpy 2.4.6, pandas 3.1.1 on Python 3.11. To regenerate (after a
change of the crowd, the parameters, or to check a new crowd-kit), from the repository root:

    python3 -m venv /tmp/crowdkit
    /tmp/crowdkit/bin/pip install crowd-kit==1.4.2 numpy pandas
    /tmp/crowdkit/bin/python scripts/crowd_kit_reference.py

Nothing of activelabel is imported: the crowd comes from tests/support/crowd.py (numpy only).
Floats are written with repr, so they read back bit for bit.
"""

from __future__ import annotations

import json
import sys
from importlib.metadata import version
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from crowdkit.aggregation import DawidSkene

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.support.crowd import planted_crowd  # noqa: E402  (after the path is set)

OUT = REPO / "tests" / "data" / "dawid_skene_crowd_kit.json"
#: The crowd and the EM of the test: 120 items, 4 annotators of accuracy 0.8 .. 0.5, 3 classes,
#: about 30 % of the labels dropped, a fixed 8 iterations (tol -inf: the stopping rules differ).
CROWD = {"seed": 1, "n_items": 120, "k": 3, "accuracy": [0.8, 0.7, 0.6, 0.5]}
KEEP = {"seed": 1, "fraction": 0.7}
N_ITER = 8


def crowd() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(items, workers, labels) of the planted crowd, with the dropped labels left out."""
    _, items, workers, labels = planted_crowd(
        seed=CROWD["seed"], n_items=CROWD["n_items"], k=CROWD["k"],
        accuracy=tuple(CROWD["accuracy"]))
    keep = np.random.default_rng(KEEP["seed"]).random(items.shape[0]) < KEEP["fraction"]
    return items[keep], workers[keep], labels[keep]


def reference() -> dict[str, Any]:
    items, workers, labels = crowd()
    frame = pd.DataFrame({"task": items, "worker": workers, "label": labels})
    ds = DawidSkene(n_iter=N_ITER, tol=-np.inf).fit(frame)
    classes = list(range(CROWD["k"]))
    tasks = np.unique(items)
    n_workers = len(CROWD["accuracy"])
    errors = [ds.errors_.loc[w].reindex(index=classes, columns=classes).fillna(0)
              .to_numpy().tolist() for w in range(n_workers)]
    return {
        "about": "crowd-kit's DawidSkene on the planted crowd of tests/test_quality.py; "
                 "made by scripts/crowd_kit_reference.py",
        "versions": {"crowd-kit": version("crowd-kit"), "numpy": np.__version__,
                     "pandas": pd.__version__},
        "crowd": CROWD,
        "keep": KEEP,
        "n_iter": N_ITER,
        "tol": "-inf",
        "items": items.tolist(),
        "workers": workers.tolist(),
        "labels": labels.tolist(),
        "tasks": tasks.tolist(),
        "task_labels": ds.labels_.loc[tasks].astype(int).tolist(),
        "task_probs": ds.probas_.loc[tasks, classes].to_numpy().tolist(),
        "errors": errors,
        "errors_layout": "errors[worker][given label][true label], labels never given: 0",
    }


def main() -> None:
    OUT.parent.mkdir(parents=True, exist_ok=True)
    lines = [f" {json.dumps(key)}: {json.dumps(value)}" for key, value in reference().items()]
    OUT.write_text("{\n" + ",\n".join(lines) + "\n}\n")  # one field a line
    print(f"wrote {OUT.relative_to(REPO)}")


if __name__ == "__main__":
    main()
