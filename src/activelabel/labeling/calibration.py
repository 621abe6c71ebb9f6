"""Calibration reports: on a set of items every annotator labels, who disagrees with whom.

For each item of the session: each annotator's current label and the guidelines version it
was made under, the majority, and whether all agree. For each pair of annotators: the items
both labeled, the share they agree on and Cohen's kappa. For each annotator: coverage of the
session and agreement with the majority of the others.
"""

from __future__ import annotations

from itertools import combinations
from typing import Any

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session

from .. import quality as q
from ..store import is_current_label, usernames
from ..store.governance import get_calibration
from ..store.models import Annotation, Project
from .consensus import value_key

__all__ = ["calibration_report"]


def _heads(session: Session, item_ids: list[int]) -> list[Annotation]:
    stmt = (select(Annotation).where(Annotation.item_id.in_(item_ids), is_current_label())
            .order_by(Annotation.item_id, Annotation.annotator_id))
    return list(session.execute(stmt).scalars())


def _pairs(by_item: dict[int, dict[str, Any]], people: list[str],
           values: list[Any]) -> list[dict[str, Any]]:
    index = {v: k for k, v in enumerate(values)}
    out = []
    for a, b in combinations(people, 2):
        shared = [(labels[a], labels[b]) for labels in by_item.values()
                  if a in labels and b in labels]
        if not shared:
            continue
        agree = sum(x == y for x, y in shared)
        matrix = np.asarray([[index[x] for x, _ in shared], [index[y] for _, y in shared]],
                            dtype=np.float64)
        kappas = q.cohen_kappa_pairs(matrix, max(len(values), 1), min_items=1)
        out.append({"a": a, "b": b, "n": len(shared), "agreement": agree / len(shared),
                    "kappa": kappas[0].kappa if kappas else None,
                    "disagree_on": [i for i, labels in by_item.items()
                                    if a in labels and b in labels and labels[a] != labels[b]]})
    return sorted(out, key=lambda p: (p["agreement"], p["a"], p["b"]))


def calibration_report(session: Session, project: Project, calibration_id: int
                       ) -> dict[str, Any]:
    cal, item_ids = get_calibration(session, project.id, calibration_id)
    heads = _heads(session, item_ids)
    names = usernames(session, {h.annotator_id for h in heads})
    values: list[Any] = list(project.labels)
    by_item: dict[int, dict[str, Any]] = {i: {} for i in item_ids}
    items: list[dict[str, Any]] = []
    grouped: dict[int, list[Annotation]] = {}
    for h in heads:
        grouped.setdefault(h.item_id, []).append(h)
    for item_id in item_ids:
        labels: list[dict[str, Any]] = []
        for h in grouped.get(item_id, []):
            name = names.get(h.annotator_id, str(h.annotator_id))
            key = value_key(h.labels or [])
            if key not in values:
                values.append(key)
            by_item[item_id][name] = key
            labels.append({"annotator": name, "labels": list(h.labels or []),
                           "guidelines_version": h.guidelines_version})
        distinct = {value_key(x["labels"]) for x in labels}
        items.append({"item_id": item_id, "labels": labels, "agree": len(distinct) <= 1,
                      "n": len(labels)})
    people = sorted({n for labels in by_item.values() for n in labels})
    annotators = [{"username": p, "labeled": sum(p in v for v in by_item.values()),
                   "of": len(item_ids),
                   "guidelines_versions": sorted({x["guidelines_version"] for it in items
                                                  for x in it["labels"]
                                                  if x["annotator"] == p
                                                  and x["guidelines_version"] is not None})}
                  for p in people]
    return {"id": cal.id, "name": cal.name, "guidelines_version": cal.guidelines_version,
            "n_items": len(item_ids), "items": items, "pairs": _pairs(by_item, people, values),
            "annotators": annotators,
            "disagreements": [it for it in items if not it["agree"]]}
