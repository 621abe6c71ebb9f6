"""What an import brings with its items: existing labels as ``imported`` revisions with their
provenance, and a model's predictions.

An imported label is the root of its annotator's chain on an item (a new one, or one already
in whose annotator has not labeled it yet), so the invariants of :mod:`.annotations` hold: one
chain root per (item, annotator), append-only, and the item's label count kept. The
annotator is the user the file names when one has that name; a name that is no user is kept
as text (``source_annotator``) and its labels go to a disabled
account ``imported:<name>`` that cannot log in, one per name, so two people's labels of one
item stay two labels (what agreement and consensus count).
"""

from __future__ import annotations

import json
import time
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Table, exists, func, select, update
from sqlalchemy.orm import Session

from .db import bind_value, bulk_insert, dialect_of, insert_ignore
from .models import Annotation, Item, Prediction, User, utcnow

__all__ = [
    "IMPORTED_PREFIX",
    "ImportedLabel",
    "ImportedPrediction",
    "add_imported_labels",
    "add_labels_to_known_items",
    "add_predictions",
    "import_annotators",
    "prediction_rows",
    "predictions_of",
]

#: Accounts that hold the imported labels of annotators who are not users.
IMPORTED_PREFIX = "imported:"
_NAME_LIMIT = 64


@dataclass(frozen=True)
class ImportedLabel:
    """One existing label of an item: its labels, who gave it (the file's name, or None)
    and when (None: the time of the import)."""

    item_id: int
    labels: list[Any]
    annotator: str | None
    created_at: datetime | None


@dataclass(frozen=True)
class ImportedPrediction:
    item_id: int
    labels: list[Any]
    score: float | None
    model: str | None


def _account_name(name: str | None) -> str:
    return (IMPORTED_PREFIX + (name or "unnamed"))[:_NAME_LIMIT]


def import_annotators(session: Session, names: Collection[str | None]) -> dict[str | None, int]:
    """The user id each annotator name's labels go to: the user of that name, else the
    ``imported:<name>`` account (made disabled, without password, when missing); None (the
    file names nobody) goes to ``imported:unnamed``."""
    wanted = set(names)
    out: dict[str | None, int] = {}
    real = [n for n in wanted if n]
    for start in range(0, len(real), 1000):
        stmt = select(User.username, User.id).where(User.username.in_(real[start:start + 1000]))
        out.update({str(n): int(i) for n, i in session.execute(stmt)})
    missing = {_account_name(n): n for n in wanted if n not in out}
    if missing:
        dialect = dialect_of(session)
        now = utcnow()
        for account in missing:
            session.execute(insert_ignore(User, dialect, ["username"]).values(
                username=account, password_hash=None, is_admin=False, disabled=True,
                created_at=now))
        stmt = select(User.username, User.id).where(User.username.in_(list(missing)))
        for account, user_id in session.execute(stmt):
            out[missing[str(account)]] = int(user_id)
    return out


_LABEL_COLUMNS = ("project_id", "item_id", "annotator_id", "user_id", "kind", "labels",
                  "source_job_id", "source_annotator", "created_at")


def add_imported_labels(session: Session, project_id: int, job_id: int | None,
                        labels: Sequence[ImportedLabel]) -> int:
    """Store each label as the root ``imported`` revision of its annotator's chain on its
    item (new items: nobody has labeled them) and count it on the item; returns how many.
    Two labels of one item by one annotator must have been refused before (the chain root
    is unique)."""
    if not labels:
        return 0
    accounts = import_annotators(session, {x.annotator for x in labels})
    return _insert_labels(session, project_id, job_id, labels, accounts)


def add_labels_to_known_items(session: Session, project_id: int, job_id: int | None,
                              labels: Sequence[ImportedLabel]) -> int:
    """Store labels a file brings for items already in the project (the caller has checked
    the items take them): each as the root of its annotator's chain where that annotator
    has none on the item yet; returns how many went in. A label whose annotator labeled the
    item already (a person, an earlier import of the same file, an earlier row) is left out,
    also when that person's label is committed while this runs (the chain root's unique
    index: nothing is inserted for it, the import goes on), so nothing is doubled or
    superseded."""
    if not labels:
        return 0
    accounts = import_annotators(session, {x.annotator for x in labels})
    table = cast(Table, Annotation.__table__)
    now = utcnow()
    seen: set[tuple[int, int]] = set()
    rows: list[dict[str, Any]] = []
    for x in labels:
        key = (x.item_id, accounts[x.annotator])
        if key in seen:  # the same annotator twice in the file: the first row's
            continue
        seen.add(key)
        rows.append({"project_id": project_id, "item_id": x.item_id,
                     "annotator_id": key[1], "user_id": key[1], "kind": "imported",
                     "labels": list(x.labels), "source_job_id": job_id,
                     "source_annotator": x.annotator,
                     "created_at": now if x.created_at is None else x.created_at})
    added: dict[int, int] = {}
    stmt = insert_ignore(table, dialect_of(session)).returning(table.c.item_id)
    for start in range(0, len(rows), 1000):
        for item_id in session.execute(stmt, rows[start:start + 1000]).scalars():
            added[int(item_id)] = added.get(int(item_id), 0) + 1
    _count_labels(session, added)
    return sum(added.values())


def _insert_labels(session: Session, project_id: int, job_id: int | None,
                   labels: Sequence[ImportedLabel], accounts: Mapping[str | None, int]) -> int:
    """Insert each label as an ``imported`` chain root and count it on its item."""
    column = cast(Table, Annotation.__table__).c.created_at
    now = bind_value(session, column, utcnow())
    rows = [(project_id, x.item_id, accounts[x.annotator], accounts[x.annotator], "imported",
             json.dumps(x.labels), job_id, x.annotator,
             now if x.created_at is None else bind_value(session, column, x.created_at))
            for x in labels]
    bulk_insert(session, cast(Table, Annotation.__table__), _LABEL_COLUMNS, rows)
    counts: dict[int, int] = {}
    for x in labels:
        counts[x.item_id] = counts.get(x.item_id, 0) + 1
    _count_labels(session, counts)
    return len(rows)


def _count_labels(session: Session, counts: Mapping[int, int]) -> None:
    """Add each item's new labels (item id -> how many) to its label count."""
    by_count: dict[int, list[int]] = {}
    for item_id, n in counts.items():
        by_count.setdefault(n, []).append(item_id)
    for n, ids in by_count.items():
        for start in range(0, len(ids), 5000):
            session.execute(update(Item).where(Item.id.in_(ids[start:start + 5000]))
                            .values(n_labels=Item.n_labels + n)
                            .execution_options(synchronize_session=False))


_PREDICTION_COLUMNS = ("project_id", "item_id", "labels", "score", "model", "source_job_id",
                       "created_at")


#: A project found to hold no imported prediction is not asked again for this long by this
#: process: ``tasks/next`` asks on every call until a project's first model, and most projects
#: have none. Predictions this process stores show at once, another's (the worker's import)
#: within this time.
NO_PREDICTIONS_RECHECK_S = 5.0
_none_until: dict[tuple[int, int], float] = {}


def add_predictions(session: Session, project_id: int, job_id: int | None,
                    predictions: Sequence[ImportedPrediction]) -> int:
    """Store the imported predictions; returns how many."""
    if not predictions:
        return 0
    _none_until.pop((id(session.get_bind()), project_id), None)
    now = bind_value(session, cast(Table, Prediction.__table__).c.created_at, utcnow())
    rows = [(project_id, p.item_id, json.dumps(p.labels), p.score, p.model, job_id, now)
            for p in predictions]
    bulk_insert(session, cast(Table, Prediction.__table__), _PREDICTION_COLUMNS, rows)
    return len(rows)


def predictions_of(session: Session, project_id: int, item_ids: Sequence[int]
                   ) -> dict[int, Prediction]:
    """The newest imported prediction of each of ``item_ids`` that has one (no query for a
    project lately found to hold none: :data:`NO_PREDICTIONS_RECHECK_S`)."""
    out: dict[int, Prediction] = {}
    key = (id(session.get_bind()), project_id)
    if _none_until.get(key, 0.0) > time.monotonic():
        return out
    ids = list(dict.fromkeys(int(i) for i in item_ids))
    for start in range(0, len(ids), 1000):
        stmt = (select(Prediction).where(Prediction.project_id == project_id,
                                         Prediction.item_id.in_(ids[start:start + 1000]))
                .order_by(Prediction.id))
        for prediction in session.execute(stmt).scalars():
            out[prediction.item_id] = prediction
    if not out and not session.execute(
            select(exists().where(Prediction.project_id == project_id))).scalar():
        _none_until[key] = time.monotonic() + NO_PREDICTIONS_RECHECK_S
    return out


def prediction_rows(session: Session, project_id: int) -> list[tuple[int, int, list[Any],
                                                                       float | None]]:
    """``(item id, row, labels, score)`` of the newest prediction of every predicted item,
    by row: what a cold start reads as priors and the dashboard compares with people."""
    newest = (select(func.max(Prediction.id)).where(Prediction.project_id == project_id)
              .group_by(Prediction.item_id))
    stmt = (select(Prediction.item_id, Item.row, Prediction.labels, Prediction.score)
            .join(Item, Item.id == Prediction.item_id)
            .where(Prediction.id.in_(newest)).order_by(Item.row))
    return [(int(i), int(r), list(labels or []), s) for i, r, labels, s in session.execute(stmt)]


def imported_counts(session: Session, project_id: int) -> Mapping[str, int]:
    """How many imported labels and predictions the project holds."""
    labels = session.execute(select(func.count()).select_from(Annotation).where(
        Annotation.project_id == project_id, Annotation.kind == "imported")).scalar_one()
    predictions = session.execute(select(func.count()).select_from(Prediction).where(
        Prediction.project_id == project_id)).scalar_one()
    return {"labels": int(labels), "predictions": int(predictions)}
