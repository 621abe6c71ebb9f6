"""Blind answers: the first answer for an (item, user) is kept, later ones are not, and each
is read back with the first label its annotator submitted after it."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from activelabel.store import (
    NewBlindAnswer,
    annotate,
    blind_answers,
    record_blind_answers,
    review,
)
from activelabel.store.models import BlindAnswer, Project, User, utcnow
from tests.support.projects import make_items, make_users


def test_the_first_answer_is_kept_and_later_ones_are_not(session: Session, project: Project,
                                                         owner: User) -> None:
    first, second = make_items(session, project.id, 2)
    [other] = make_users(session, 1, "blind")
    kept = record_blind_answers(session, project.id, owner.id, [
        NewBlindAnswer(first, ["pos"], ["neg"], 3),
        NewBlindAnswer(first, ["neutral"], ["neg"], 3),  # the same item again in one call
        NewBlindAnswer(second, ["neg"], None, None)])
    assert kept == 2
    # asked again, with other labels and another model: nothing replaced, nothing added
    assert record_blind_answers(session, project.id, owner.id, [
        NewBlindAnswer(first, ["neg"], ["pos"], 4), NewBlindAnswer(second, ["pos"], None, 4)
    ]) == 0
    # another user's answer for the same item is theirs
    assert record_blind_answers(session, project.id, other.id,
                                [NewBlindAnswer(first, ["neg"], ["neg"], 3)]) == 1
    rows = {(r.user_id, r.item_id): r for r in blind_answers(session, project.id)}
    assert len(rows) == 3
    assert (rows[owner.id, first].labels, rows[owner.id, first].suggested,
            rows[owner.id, first].model_version) == (["pos"], ["neg"], 3)
    assert (rows[owner.id, second].labels, rows[owner.id, second].suggested) == (["neg"], None)
    assert rows[other.id, first].labels == ["neg"]
    assert all(r.submitted is None for r in rows.values())
    assert [r.item_id for r in blind_answers(session, project.id, user_id=other.id)] == [first]
    assert session.execute(select(func.count()).select_from(BlindAnswer)).scalar_one() == 3


def test_a_blind_answer_reads_with_the_first_own_label_submitted_after_it(
        session: Session, project: Project, owner: User) -> None:
    a, b, c, d = make_items(session, project.id, 4)
    [reviewer] = make_users(session, 1, "rev")
    start = utcnow()
    later = start + timedelta(seconds=5)
    record_blind_answers(session, project.id, owner.id, [
        NewBlindAnswer(item, ["pos"], ["neg"], 1) for item in (a, b, c, d)], now=start)
    # a: changed to the model's label, then changed again: the first submission counts
    first = annotate(session, project.id, owner.id, a, ["neg"], now=later)
    annotate(session, project.id, owner.id, a, ["pos"], now=later + timedelta(seconds=1))
    # b: kept the blind answer; a reviewer's correction is not the annotator's answer
    kept = annotate(session, project.id, owner.id, b, ["pos"], now=later)
    review(session, project.id, reviewer.id, kept.id, accept=False, labels=["neutral"],
           now=later + timedelta(seconds=1))
    # c: labeled before the blind answer was given (only that label): not an answer after it
    annotate(session, project.id, owner.id, c, ["neutral"], now=start - timedelta(seconds=1))
    # d: never labeled
    rows = {r.item_id: r for r in blind_answers(session, project.id)}
    assert first.labels == ["neg"]
    assert {i: rows[i].submitted for i in (a, b, c, d)} == {
        a: ["neg"], b: ["pos"], c: None, d: None}
