"""Blind answers: what an annotator chose before the model's suggestion showed.

Under ``suggestion_display`` after_answer an annotator's tasks carry no suggestion; the page
sends the labels chosen (not yet submitted) and gets the suggestion back. The first such
answer for an item is kept here, with the suggestion it brought, and never replaced: asking
again (with the same labels or others) keeps the first. With the label the annotator then
submitted, it tells how often answers change once the model's is seen (anchoring).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import and_, select
from sqlalchemy.orm import Session

from .db import dialect_of, insert_ignore
from .models import Annotation, BlindAnswer, utcnow

__all__ = ["BlindAnswerRow", "NewBlindAnswer", "blind_answers", "record_blind_answers"]


@dataclass(frozen=True)
class NewBlindAnswer:
    """A blind answer to keep: the item, the labels chosen (checked), and the suggestion they
    brought (its labels as a list, None when none showed; its model version)."""

    item_id: int
    labels: list[Any]
    suggested: list[Any] | None
    model_version: int | None


@dataclass(frozen=True)
class BlindAnswerRow:
    """A kept blind answer with the first label its annotator submitted for the item after
    it (None before any; a label submitted before the blind answer does not count)."""

    item_id: int
    user_id: int
    labels: list[Any]
    suggested: list[Any] | None
    model_version: int | None
    created_at: datetime
    submitted: list[Any] | None


def record_blind_answers(session: Session, project_id: int, user_id: int,
                         answers: Sequence[NewBlindAnswer], *,
                         now: datetime | None = None) -> int:
    """Keep each answer as the user's blind answer for its item, unless one is kept already
    (the first stays, whatever the labels now; two calls racing keep one). Returns how many
    were new. The items must be the project's (the caller checked them)."""
    first: dict[int, NewBlindAnswer] = {}
    for answer in answers:
        first.setdefault(answer.item_id, answer)
    if not first:
        return 0
    at = now or utcnow()
    rows = [{"project_id": project_id, "item_id": a.item_id, "user_id": user_id,
             "labels": list(a.labels), "suggested": None if a.suggested is None
             else list(a.suggested), "model_version": a.model_version, "created_at": at}
            for a in first.values()]
    stmt = insert_ignore(BlindAnswer, dialect_of(session), ("item_id", "user_id"))
    result = session.execute(stmt.returning(BlindAnswer.id), rows)
    return len(result.all())


def blind_answers(session: Session, project_id: int, *,
                  user_id: int | None = None) -> list[BlindAnswerRow]:
    """The project's blind answers (one user's with ``user_id``), by user then item, each
    with the first label its annotator submitted after it: the first revision of their own
    (not a reviewer's) carrying labels."""
    stmt = select(BlindAnswer).where(BlindAnswer.project_id == project_id)
    if user_id is not None:
        stmt = stmt.where(BlindAnswer.user_id == user_id)
    kept = list(session.execute(stmt.order_by(BlindAnswer.user_id, BlindAnswer.item_id))
                .scalars())
    if not kept:
        return []
    own = (select(Annotation.item_id, Annotation.annotator_id, Annotation.labels,
                  Annotation.created_at)
           .join(BlindAnswer, and_(BlindAnswer.item_id == Annotation.item_id,
                                   BlindAnswer.user_id == Annotation.annotator_id))
           .where(Annotation.project_id == project_id,
                  Annotation.user_id == Annotation.annotator_id,
                  Annotation.kind != "imported",
                  Annotation.labels.is_not(None),
                  Annotation.created_at >= BlindAnswer.created_at)
           .order_by(Annotation.id))
    if user_id is not None:
        own = own.where(Annotation.annotator_id == user_id)
    submitted: dict[tuple[int, int], list[Any]] = {}
    for item_id, annotator_id, labels, _ in session.execute(own):
        submitted.setdefault((item_id, annotator_id), labels)
    return [BlindAnswerRow(item_id=b.item_id, user_id=b.user_id, labels=list(b.labels),
                           suggested=b.suggested, model_version=b.model_version,
                           created_at=b.created_at,
                           submitted=submitted.get((b.item_id, b.user_id)))
            for b in kept]
