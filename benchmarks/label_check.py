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

``--cuts`` asks instead what a stricter cut would flag on top of cleanlab's, for the server's
checker only: a label flagged only where the likeliest other label is at least 5 (or 10) times
as likely as the one given, or the one given is at most 0.05 (0.1) likely; with ``--data`` on
ag_news or sms_spam as well (``--pool`` texts drawn from the set).

    python benchmarks/label_check.py --cuts --noise 0.05 --labels 700,1500
    python benchmarks/label_check.py --cuts --noise 0.05 --labels 300,1000 --data ag_news_test --pool 4000
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


def load_pool(data: str = "clinc150", pool: int | None = None
              ) -> tuple[list[str], np.ndarray, list[str]]:
    """The set's texts (clinc150: its training split), ``pool`` of them drawn at random."""
    texts, labels = [], []
    with (SHARED / f"{data}.jsonl").open(encoding="utf-8") as handle:
        for line in handle:
            row = json.loads(line)
            if row.get("split", "train") == "train":
                texts.append(row["text"])
                labels.append(row["label"])
    if pool is not None and pool < len(texts):
        keep = np.random.default_rng(0).permutation(len(texts))[:pool]
        texts, labels = [texts[i] for i in keep], [labels[i] for i in keep]
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


def _labeled(X: Any, y: np.ndarray, n_classes: int, n_labels: int, noise: float,
             seed: int) -> tuple[Any, np.ndarray, np.ndarray]:
    """``n_labels`` random pool items, ``noise`` of them flipped to another class, of the
    classes given twice or more (as the check): features, given labels, which are flips."""
    rng = np.random.default_rng(seed)
    rows = rng.choice(y.shape[0], size=n_labels, replace=False)
    given = y[rows].copy()
    flipped = rng.random(n_labels) < noise
    given[flipped] = (given[flipped] + rng.integers(1, n_classes, flipped.sum())) % n_classes
    counts = np.bincount(given, minlength=n_classes)
    keep = np.isin(given, np.flatnonzero(counts >= 2))
    return X[rows[keep]], given[keep], flipped[keep]


def cuts(X: Any, y: np.ndarray, n_classes: int, n_labels: int, noise: float,
         seed: int) -> dict[str, tuple[int, int, int]]:
    """Per cut: (flagged, flips flagged, flips) of the server's checker."""
    Xk, yk, fk = _labeled(X, y, n_classes, n_labels, noise, seed)
    probs = q.out_of_sample_probs(Xk, yk, n_classes, random_state=seed,
                                  make=issue_model(settings_of({}), n_classes))
    probs = q.with_temperature(probs, q.fit_temperature(probs, yk))
    flagged = np.zeros(yk.shape[0], dtype=bool)
    flagged[q.find_label_issues(yk, probs).indices] = True
    given = probs[np.arange(yk.shape[0]), yk]
    other = probs.copy()
    other[np.arange(yk.shape[0]), yk] = -1.0
    odds = other.max(axis=1) / np.maximum(given, 1e-12)
    out = {"cleanlab's (the check)": flagged,
           "and another label 5x as likely": flagged & (odds >= 5),
           "and another label 10x as likely": flagged & (odds >= 10),
           "and the one given at most 0.1 likely": flagged & (given <= 0.1),
           "and the one given at most 0.05 likely": flagged & (given <= 0.05)}
    return {k: (int(m.sum()), int((m & fk).sum()), int(fk.sum())) for k, m in out.items()}


def run(X: Any, y: np.ndarray, n_classes: int, n_labels: int, noise: float,
        seed: int) -> list[dict[str, Any]]:
    Xk, yk, fk = _labeled(X, y, n_classes, n_labels, noise, seed)
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
    parser.add_argument("--labels", default="700", help="comma-separated label counts")
    parser.add_argument("--noise", default="0,0.1", help="comma-separated shares of flips")
    parser.add_argument("--data", default="clinc150",
                        choices=["clinc150", "ag_news_test", "sms_spam"])
    parser.add_argument("--pool", type=int, default=None, help="texts drawn from the set")
    parser.add_argument("--cuts", action="store_true",
                        help="stricter cuts on top of cleanlab's, the server's checker only")
    args = parser.parse_args()
    if not args.cuts and "," in args.labels:
        parser.error("--labels takes one count without --cuts (the checkers' table has no "
                     "column for it)")
    texts, y, classes = load_pool(args.data, args.pool)
    start = time.perf_counter()
    X = make_featurizer("text").fit_transform(texts).X
    sizes = [int(x) for x in args.labels.split(",")]
    print(f"{args.data}: {len(texts)} texts, {len(classes)} classes, features {X.shape} "
          f"in {time.perf_counter() - start:.0f} s; {sizes} random labels a repeat")
    if args.cuts:
        print("| labels | flips | cut | flagged | flips flagged | precision | recall |")
        print("|---|---|---|---|---|---|---|")
        for noise in (float(x) for x in args.noise.split(",")):
            for n_labels in sizes:
                sums: dict[str, np.ndarray] = {}
                for seed in range(args.repeats):
                    for name, counts in cuts(X, y, len(classes), n_labels, noise, seed).items():
                        sums[name] = sums.get(name, np.zeros(3)) + counts
                for name, (flagged, hits, flips) in sums.items():
                    print(f"| {n_labels} | {noise:.0%} | {name} | {flagged / args.repeats:.1f} | "
                          f"{hits / args.repeats:.1f} of {flips / args.repeats:.1f} | "
                          f"{hits / max(flagged, 1):.2f} | {hits / max(flips, 1):.2f} |")
        return
    print("| flips | checker | check s | out-of-fold accuracy | flagged | flips flagged | "
          "flips in the first 20 |")
    print("|---|---|---|---|---|---|---|")
    for noise in (float(x) for x in args.noise.split(",")):
        results: dict[str, list[dict[str, Any]]] = {}
        for seed in range(args.repeats):
            for r in run(X, y, len(classes), sizes[0], noise, seed):
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
