"""The review queue's label check on many classes with few labels each: the project's own model
against a plain logistic regression, out of fold on the same features.

The pool is clinc150's training texts (151 intents), featurized as a text project's are
(``make_featurizer("text")``). Each repeat labels ``--labels`` pool items drawn at random (as
a run's first rounds leave them: a few labels an intent, unevenly), flips ``--noise`` of them
to another intent, and asks each checker for cleanlab's label issues over the out-of-fold
probabilities (:func:`activelabel.quality.out_of_sample_probs`: five folds; an earlier
checkout took fewer when the rarest intent was smaller), the server's check also temperature
scaled (:func:`activelabel.quality.fit_temperature`). The table gives the time of the check, the out-of-fold accuracy
against the given labels, the labels flagged, and how many of them (and of the first 20 the
queue shows) are flips.

    python benchmarks/label_check.py --repeats 3
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.linear_model import LogisticRegression

from activelabel import quality as q
from activelabel.features import make_featurizer
from activelabel.labeling.quality import issue_model
from activelabel.store import settings_of

SHARED = Path(os.environ.get(
    "ACTIVELABEL_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))


def load_pool() -> tuple[list[str], np.ndarray, list[str]]:
    texts, labels = [], []
    with (SHARED / "clinc150.jsonl").open(encoding="utf-8") as handle:
        for line in handle:
            row = json.loads(line)
            if row["split"] == "train":
                texts.append(row["text"])
                labels.append(row["label"])
    classes = sorted(set(labels))
    return texts, np.searchsorted(classes, labels), classes


def checkers(n_classes: int) -> dict[str, dict[str, Any]]:
    model = issue_model(settings_of({}), n_classes)
    out: dict[str, dict[str, Any]] = {
        "plain logistic regression": {"estimator": LogisticRegression(max_iter=1000)},
        # what the server's check trains for a project of the default settings
        "the project's model": {"make": model},
    }
    if hasattr(q, "fit_temperature"):  # (an earlier checkout has none)
        out["the project's model, temperature scaled"] = {"make": model, "scaled": True}
    return out


def run(X: Any, y: np.ndarray, n_classes: int, n_labels: int, noise: float,
        seed: int) -> list[dict[str, Any]]:
    rng = np.random.default_rng(seed)
    rows = rng.choice(y.shape[0], size=n_labels, replace=False)
    given = y[rows].copy()
    flipped = rng.random(n_labels) < noise
    given[flipped] = (given[flipped] + rng.integers(1, n_classes, flipped.sum())) % n_classes
    counts = np.bincount(given, minlength=n_classes)
    keep = np.isin(given, np.flatnonzero(counts >= 2))  # as the check: classes of 2 or more
    Xk, yk, fk = X[rows[keep]], given[keep], flipped[keep]
    out = []
    for name, how in checkers(n_classes).items():
        start = time.perf_counter()
        how = dict(how)
        scaled = how.pop("scaled", False)
        probs = q.out_of_sample_probs(Xk, yk, n_classes, random_state=seed, **how)
        if scaled:  # as the server's check (activelabel.labeling.quality)
            probs = q.with_temperature(probs, q.fit_temperature(probs, yk))
        issues = q.find_label_issues(yk, probs)
        seconds = time.perf_counter() - start
        ranked = np.asarray(issues.indices, dtype=np.intp)
        out.append({"checker": name, "seconds": seconds,
                    "oof_accuracy": float((probs.argmax(axis=1) == yk).mean()),
                    "flagged": int(ranked.size), "flips": int(fk.sum()),
                    "flagged_flips": int(fk[ranked].sum()),
                    "top20_flips": int(fk[ranked[:20]].sum())})
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--labels", type=int, default=700)
    parser.add_argument("--noise", default="0,0.1", help="comma-separated shares of flips")
    args = parser.parse_args()
    texts, y, classes = load_pool()
    start = time.perf_counter()
    X = make_featurizer("text").fit_transform(texts).X
    print(f"{len(texts)} texts, {len(classes)} intents, features {X.shape} "
          f"in {time.perf_counter() - start:.0f} s; {args.labels} random labels a repeat")
    print("| flips | checker | check s | out-of-fold accuracy | flagged | flips flagged | "
          "flips in the first 20 |")
    print("|---|---|---|---|---|---|---|")
    for noise in (float(x) for x in args.noise.split(",")):
        results: dict[str, list[dict[str, Any]]] = {}
        for seed in range(args.repeats):
            for r in run(X, y, len(classes), args.labels, noise, seed):
                results.setdefault(r["checker"], []).append(r)
        for name, rs in results.items():
            def mean(key: str, rs: list[dict[str, Any]] = rs) -> float:
                return float(np.mean([r[key] for r in rs]))
            flips = mean("flips")
            print(f"| {noise:.0%} ({flips:.0f}) | {name} | {mean('seconds'):.1f} | "
                  f"{mean('oof_accuracy'):.3f} | {mean('flagged'):.0f} | "
                  f"{mean('flagged_flips'):.0f} | {mean('top20_flips'):.1f} |")


if __name__ == "__main__":
    main()
