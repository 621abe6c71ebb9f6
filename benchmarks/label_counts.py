"""Accuracy at fixed label counts, and the share of random sampling's budget each loop needs.

Per dataset and repeat (same stratified split and k-means seed batch for every loop), the
oracle simulation runs random sampling and the default strategy with the default model and with
the previous default model (``OLD_MODEL``: scikit-learn's logistic regression, C=1, with an
intercept, sigmoid-calibrated once every class has 3 labels), beside a textbook loop written
here: TF-IDF (the same features), ``LogisticRegression()`` with scikit-learn's defaults, the
``k`` smallest margins by ``np.argpartition``, and its own random-sampling baseline. The table
gives mean test accuracy at 100, 300, 1,000 and 3,000 labels (where the budget reaches; linear
between evaluated points when a batch steps over a count) and the
share of the budget a loop needs to reach the accuracy random sampling with the same model
reaches at the full budget (the issue's bar: at most 0.6).

    python benchmarks/label_counts.py --repeats 2

``--featurizer sentence`` runs the same with sentence embeddings (the embeddings extra).
``digits`` and ``wnut17_type`` (tweets labeled by the type of the named entities they hold,
from the shared wnut17 span file, sentences whose entities share one type) were not used to
choose the default model's settings.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split

from activelabel import metrics
from activelabel.datasets import Dataset, load_builtin, load_file
from activelabel.features import FeatureSet
from activelabel.simulation import simulate
from activelabel.strategies import DEFAULT_STRATEGY, cold_start

DATA_DIR = Path(
    os.environ.get(
        "ACTIVELABEL_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"
    )
)
COUNTS = (100, 300, 1000, 3000)
MAX_SHARE = 0.60
#: The default model before issue 16, as ``make_model`` parameters.
OLD_MODEL: dict[str, Any] = {"C": 1.0, "fit_intercept": True, "class_weight": None,
                             "calibrate": "auto"}


@dataclass(frozen=True)
class Spec:
    """Budget counts every label, the seed batch included; ``max_rows`` subsamples the set
    (stratified) to keep a run short; ``old_budget`` caps the old model's (slow) runs."""

    seed_size: int
    batch_size: int
    budget: int
    max_rows: int | None = None
    old_budget: int | None = None
    held_out: bool = False


SPECS = {
    "clinc150": Spec(100, 200, 3000, max_rows=9000, old_budget=900),
    "ag_news": Spec(100, 200, 3000, old_budget=1100),
    "sms_spam": Spec(50, 50, 1000, old_budget=300),
    "wnut17_type": Spec(50, 50, 1000, old_budget=300, held_out=True),
    "digits": Spec(50, 50, 600, old_budget=300, held_out=True),
}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--datasets", default=",".join(SPECS))
    p.add_argument("--repeats", type=int, default=2)
    p.add_argument("--featurizer", default="auto", help="auto (TF-IDF for text) or sentence")
    p.add_argument("--no-old", action="store_true", help="skip the old default model")
    p.add_argument("--data-dir", type=Path, default=DATA_DIR)
    p.add_argument("--out", type=Path, default=None, help="write the results as JSON here")
    return p.parse_args(argv)


# ---- data ----------------------------------------------------------------------------------


def load(name: str, data_dir: Path) -> Dataset:
    if name == "digits":
        return load_builtin("digits")
    if name == "wnut17_type":
        return wnut17_type(data_dir / "wnut17.jsonl")
    files = {"sms_spam": "sms_spam.jsonl", "ag_news": "ag_news_test.jsonl",
             "clinc150": "clinc150.jsonl"}
    return load_file(data_dir / files[name])


def wnut17_type(path: Path) -> Dataset:
    """Sentences whose named entities all share one type, labeled by that type."""
    records, labels = [], []
    for line in path.read_text().splitlines():
        row = json.loads(line)
        types = {span["label"] for span in row["spans"]}
        if len(types) == 1:
            records.append({"text": row["text"]})
            labels.append(types.pop())
    classes = tuple(sorted(set(labels)))
    y = np.asarray([classes.index(label) for label in labels], dtype=np.intp)
    return Dataset("wnut17_type", "text", y, classes, records=records)


def subsample(ds: Dataset, max_rows: int | None) -> Dataset:
    if max_rows is None or len(ds) <= max_rows:
        return ds
    keep, _ = train_test_split(np.arange(len(ds)), train_size=max_rows, stratify=ds.y,
                               random_state=0)
    keep = np.sort(keep)
    assert ds.records is not None
    return Dataset(ds.name, ds.kind, ds.y[keep], ds.classes,
                   records=[ds.records[i] for i in keep], text_field=ds.text_field)


# ---- the textbook loop ---------------------------------------------------------------------


def textbook(feats: FeatureSet, y: np.ndarray, spec: Spec, repeat: int, acquire: str,
             n_classes: int) -> np.ndarray:
    """(n_points, 2) rows (n_labeled, accuracy): LogisticRegression() and argpartition margin
    (or uniform random picks), from the simulation's split and seed batch."""
    rs = repeat  # the simulation's random_state (0) + repeat
    idx = np.arange(y.shape[0])
    train, test = train_test_split(idx, test_size=0.3, stratify=y, random_state=rs)
    train, test = np.sort(train), np.sort(test)
    X_train, X_test = feats.X[train], feats.X[test]
    y_train, y_test = y[train], y[test]
    seed = cold_start(np.asarray(feats.embeddings)[train], spec.seed_size, random_state=rs)
    rng = np.random.default_rng([rs, zlib.crc32(acquire.encode())])
    labeled = np.zeros(train.shape[0], dtype=bool)
    labeled[np.asarray(seed)] = True
    stop = min(spec.budget, train.shape[0])
    rows = []
    while True:
        lab = np.flatnonzero(labeled)
        X_lab, X_pool, X_eval = X_train[lab], X_train, X_test
        if sp.issparse(X_lab):  # the same model on the columns the labels use: faster
            cols = np.unique(X_lab.tocsr().indices)
            X_lab, X_pool, X_eval = X_lab[:, cols], X_train[:, cols], X_test[:, cols]
        model = LogisticRegression(max_iter=1000).fit(X_lab, y_train[lab])
        rows.append((lab.shape[0], float(np.mean(model.predict(X_eval) == y_test))))
        if lab.shape[0] >= stop:
            return np.asarray(rows)
        pool = np.flatnonzero(~labeled)
        k = min(spec.batch_size, stop - lab.shape[0], pool.shape[0])
        if acquire == "random":
            picked = rng.choice(pool, k, replace=False)
        else:
            p = model.predict_proba(X_pool[pool])
            top2 = np.partition(p, -2, axis=1)[:, -2:] if p.shape[1] > 1 else np.ones((1, 2))
            margin = top2[:, 1] - top2[:, 0]
            picked = pool[np.argpartition(margin, k - 1)[:k]]
        labeled[picked] = True


# ---- one dataset ---------------------------------------------------------------------------


def curves_for(ds: Dataset, spec: Spec, args: argparse.Namespace) -> dict[str, np.ndarray]:
    """Mean (n_points, 2) curves (n_labeled, accuracy) per loop."""
    feats = ds.features(args.featurizer)
    common = {"seed_size": spec.seed_size, "batch_size": spec.batch_size,
              "repeats": args.repeats, "test_size": 0.3, "random_state": 0, "features": feats}
    out: dict[str, np.ndarray] = {}
    runs = [("default model", {}, spec.budget)]
    if not args.no_old:
        runs.append(("old model", OLD_MODEL, spec.old_budget or spec.budget))
    for label, params, budget in runs:
        t0 = time.perf_counter()
        result = simulate(ds, strategies=["random", DEFAULT_STRATEGY], budget=budget,
                          model_params=params, **common)
        for strategy, points in result.curves.items():
            out[f"{strategy}, {label}"] = np.asarray([(p.n_labeled, p.accuracy) for p in points])
        print(f"  {ds.name} {label}: {time.perf_counter() - t0:.0f} s", file=sys.stderr,
              flush=True)
    for acquire in ("random", "margin"):
        t0 = time.perf_counter()
        reps = [textbook(feats, ds.y, spec, r, acquire, ds.n_classes)
                for r in range(args.repeats)]
        n = min(r.shape[0] for r in reps)
        out[f"{acquire}, textbook"] = np.mean([r[:n] for r in reps], axis=0)
        print(f"  {ds.name} textbook {acquire}: {time.perf_counter() - t0:.0f} s",
              file=sys.stderr, flush=True)
    return out


def accuracy_at(curve: np.ndarray, n: int) -> float | None:
    """Accuracy at ``n`` labels, linear between the curve's points; None beyond it."""
    if n < curve[0, 0] or n > curve[-1, 0]:
        return None
    return float(np.interp(n, curve[:, 0], curve[:, 1]))


def share_of_budget(curve: np.ndarray, reference: np.ndarray) -> float | None:
    """Labels at which ``curve`` first reaches ``reference``'s last accuracy, over the latter's
    label count (None: never within the run)."""
    target = float(reference[-1, 1])
    n = metrics.labels_to_target(curve[:, 0], curve[:, 1], target - 1e-12)
    return None if n is None else n / float(reference[-1, 0])


def rows_for(name: str, curves: dict[str, np.ndarray]) -> list[dict[str, Any]]:
    out = []
    for loop, curve in curves.items():
        family = loop.split(", ", 1)[1]
        reference = curves[f"random, {family}"]
        out.append({"dataset": name, "loop": loop,
                    "accuracy": {n: accuracy_at(curve, n) for n in COUNTS},
                    "final": (int(curve[-1, 0]), float(curve[-1, 1])),
                    "share_of_random_budget": share_of_budget(curve, reference)})
    return out


def markdown(rows: list[dict[str, Any]], held_out: set[str]) -> str:
    head = " | ".join(f"acc. at {n:,}" for n in COUNTS)
    lines = [f"| dataset | strategy, model | {head} | random's full-budget acc. | "
             "share of random's budget |", "|---|---|" + "---:|" * (len(COUNTS) + 2)]
    for row in rows:
        cells = " | ".join("" if a is None else f"{a:.3f}" for a in row["accuracy"].values())
        family = row["loop"].split(", ", 1)[1]
        ref = next(r for r in rows if r["dataset"] == row["dataset"]
                   and r["loop"] == f"random, {family}")
        share = row["share_of_random_budget"]
        shown = "not reached" if share is None else f"{share:.2f}"
        if not row["loop"].startswith("random") and share is not None and share <= MAX_SHARE:
            shown = f"**{shown}**"
        name = row["dataset"] + (" (held out)" if row["dataset"] in held_out else "")
        lines.append(f"| {name} | {row['loop']} | {cells} | {ref['final'][1]:.3f} at "
                     f"{ref['final'][0]:,} | {shown} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    names = [n for n in args.datasets.split(",") if n]
    unknown = sorted(set(names) - set(SPECS))
    if unknown:
        raise SystemExit(f"error: unknown dataset {unknown}; choose from {', '.join(SPECS)}")
    started = time.perf_counter()
    rows: list[dict[str, Any]] = []
    for name in names:
        spec = SPECS[name]
        ds = load(name, args.data_dir)
        if args.featurizer == "sentence" and ds.kind != "text":
            continue
        ds = subsample(ds, spec.max_rows)
        rows += rows_for(name, curves_for(ds, spec, args))
        if args.out is not None:
            args.out.parent.mkdir(parents=True, exist_ok=True)
            args.out.write_text(json.dumps(rows, indent=2) + "\n")
    print(markdown(rows, {n for n, s in SPECS.items() if s.held_out}))
    print(f"\ntotal {time.perf_counter() - started:.0f} s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
