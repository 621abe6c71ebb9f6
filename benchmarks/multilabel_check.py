"""Finding a multi-label project's wrong label sets: cleanlab's multi-label confident learning
against the project's model being sure of a label left out.

The pool is wnut17's first ``--items`` training tweets, each labeled with the set of entity
types its spans name (64% name none), featurized as a text project's are
(``make_featurizer("text")``). Each repeat leaves "person" out of ``--missed`` sets that hold
it (the common multi-label error: a label forgotten) and asks three checks which sets to
review:

- cleanlab's ``multilabel_classification.filter.find_label_issues`` (ranked by
  self-confidence) over out-of-fold per-label probabilities of the project's model (five
  folds, the labels alone, uncalibrated, as the label check trains it);
- the review queue's label check: the same out-of-fold model sure (at least 0.9) of a label
  the set leaves out (:func:`activelabel.quality.find_missing_labels`), surest first;
- the model trained on every label, as the active model is (the review queue's "model
  disagrees" for multi-label projects: sure of a label left out, or sure a given one does
  not apply), ranked the same way.

The table gives, per check, the sets flagged, how many of the first ``--missed`` flagged are
the missed ones, and how many are in all (means over the repeats).

    python benchmarks/multilabel_check.py --repeats 3
"""

from __future__ import annotations

import argparse
import json
import os
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from activelabel import quality as q
from activelabel.features import make_featurizer
from activelabel.labeling.quality import issue_model
from activelabel.labeling.review import SURE_LABEL
from activelabel.store import settings_of

SHARED = Path(os.environ.get(
    "ACTIVELABEL_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))
TYPES = ["person", "location", "group", "corporation", "product", "creative-work"]


def load_pool(n: int) -> tuple[list[str], np.ndarray]:
    texts, sets = [], []
    with (SHARED / "wnut17.jsonl").open(encoding="utf-8") as handle:
        for line in handle:
            row = json.loads(line)
            if row["split"] == "train":
                texts.append(row["text"])
                sets.append({s["label"] for s in row["spans"]})
            if len(texts) == n:
                break
    Y = np.zeros((len(texts), len(TYPES)), dtype=np.int8)
    for i, labels in enumerate(sets):
        Y[i, [TYPES.index(x) for x in labels]] = 1
    return texts, Y


def new_model(seed: int) -> Any:
    """The project's default model over the types, as the label check trains it."""
    return issue_model(settings_of({"random_state": seed}), len(TYPES), multilabel=True)()


def cleanlab_order(Y: np.ndarray, probs: np.ndarray) -> np.ndarray:
    from cleanlab.multilabel_classification.filter import find_label_issues

    present = np.flatnonzero(Y.any(axis=0))
    lists = [list(np.flatnonzero(row)) for row in Y[:, present]]
    return np.asarray(find_label_issues(lists, probs[:, present], n_jobs=1,
                                        return_indices_ranked_by="self_confidence"))


def sure_either_way(Y: np.ndarray, probs: np.ndarray) -> np.ndarray:
    """Sets where the model is sure of a label left out or sure a given one does not apply,
    surest first (the review queue's "model disagrees")."""
    score = np.maximum(np.where(Y == 0, probs, 0.0), np.where(Y == 1, 1.0 - probs, 0.0))
    best = score.max(axis=1)
    flagged = np.flatnonzero(best >= SURE_LABEL)
    return flagged[np.argsort(-best[flagged], kind="stable")]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--items", type=int, default=1200)
    parser.add_argument("--missed", type=int, default=30)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    texts, Y = load_pool(args.items)
    X = make_featurizer("text").fit_transform([{"text": t} for t in texts]).X
    named = np.flatnonzero(Y[:, 0])
    totals: dict[str, np.ndarray] = {}
    for seed in range(args.repeats):
        missed = np.random.default_rng(seed).choice(named, args.missed, replace=False)
        noisy = Y.copy()
        noisy[missed, 0] = 0
        oof = q.multilabel_out_of_sample_probs(X, noisy, partial(new_model, seed),
                                               random_state=seed)
        fitted = new_model(seed).fit(X, noisy).predict_proba(X)
        orders = {
            "cleanlab multi-label, out of fold (not adopted)": cleanlab_order(noisy, oof),
            "out of fold, sure of a label left out (the label check)":
                q.find_missing_labels(noisy, oof)[0],
            "the active model, sure either way (model disagrees)": sure_either_way(noisy,
                                                                                   fitted),
        }
        hit = set(missed.tolist())
        for name, order in orders.items():
            row = np.array([len(order), len(set(order[:args.missed].tolist()) & hit),
                            len(set(order.tolist()) & hit)], dtype=float)
            totals[name] = totals.get(name, 0) + row
    labeled = int(Y.any(axis=1).sum())
    print(f"{args.items} wnut17 tweets ({labeled} naming a type), 'person' left out of "
          f"{args.missed} sets, {args.repeats} repeats (means)\n")
    print(f"| check | sets flagged | missed among the first {args.missed} | missed in all |")
    print("|---|---|---|---|")
    for name, total in totals.items():
        flagged, first, found = total / args.repeats
        print(f"| {name} | {flagged:.0f} | {first:.1f} | {found:.1f} |")


if __name__ == "__main__":
    main()
