"""Anchoring: how often annotators change their answer once the model's suggestion shows.

Under ``suggestion_display`` after_answer an annotator's first answer for an item, given
before the suggestion showed, is kept (:mod:`activelabel.store.blind`). Compared with the
first label the annotator submitted after it, per annotator: how many answers were blind, how
many were then submitted, how many of those changed, and, of the answers that differed from
the suggestion shown, how many were switched to it. Labels are compared as values, as in
:mod:`.quality` (a multilabel answer as its whole set).
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.orm import Session

from ..store import blind_answers, usernames
from .consensus import value_key

__all__ = ["AnnotatorAnchoring", "anchoring_report"]


@dataclass(frozen=True)
class AnnotatorAnchoring:
    user_id: int
    username: str
    #: Items answered before the suggestion showed.
    blind_answers: int
    #: Of those, items the annotator then submitted a label for.
    submitted: int
    #: Of those, items whose submitted label differs from the blind answer.
    changed: int
    changed_share: float | None
    #: Submitted items whose blind answer differed from the suggestion shown.
    disagreed_with_suggestion: int
    #: Of those, items whose submitted label is the suggestion's.
    switched_to_suggestion: int
    switched_share: float | None


def _share(part: int, whole: int) -> float | None:
    return part / whole if whole else None


def anchoring_report(session: Session, project_id: int) -> list[AnnotatorAnchoring]:
    """One row per annotator with a blind answer in the project, by username."""
    counts: dict[int, list[int]] = {}
    for row in blind_answers(session, project_id):
        c = counts.setdefault(row.user_id, [0, 0, 0, 0, 0])
        c[0] += 1
        if row.submitted is None:
            continue
        blind, given = value_key(row.labels), value_key(row.submitted)
        c[1] += 1
        c[2] += int(given != blind)
        if row.suggested is not None:
            model = value_key(row.suggested)
            if blind != model:
                c[3] += 1
                c[4] += int(given == model)
    names = usernames(session, list(counts))
    out = [AnnotatorAnchoring(
        user_id=uid, username=names.get(uid, str(uid)), blind_answers=n, submitted=sub,
        changed=changed, changed_share=_share(changed, sub), disagreed_with_suggestion=dis,
        switched_to_suggestion=switched, switched_share=_share(switched, dis))
        for uid, (n, sub, changed, dis, switched) in counts.items()]
    return sorted(out, key=lambda r: r.username)
