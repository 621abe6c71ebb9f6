"""The task queue: leases handed out by queue rank, never beyond the project's overlap.

An item counts against the overlap once per active lease (not released, not completed, not
expired) and once per annotator whose current revision carries a label. Claims are safe under
concurrent callers: on PostgreSQL candidate item rows are locked with ``FOR UPDATE SKIP LOCKED``
and the counts are re-read after the lock (a fresh snapshot); on SQLite the write transaction
(``BEGIN IMMEDIATE``) serialises claims.
"""

from __future__ import annotations

import math
import secrets
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import (
    ColumnElement,
    and_,
    case,
    exists,
    func,
    insert,
    literal,
    literal_column,
    select,
    update,
)
from sqlalchemy.orm import Session

from ._util import item_in_project
from .db import dialect_of, for_update_skip_locked
from .errors import InvalidInput, NotFound
from .models import (
    SPLITS,
    Annotation,
    Assignment,
    CalibrationItem,
    Item,
    ModelVersion,
    Round,
    RoundSelection,
    utcnow,
)

__all__ = [
    "MAX_TASKS",
    "OVERLAP_POLICIES",
    "OverlapPolicy",
    "Task",
    "active_lease_filter",
    "gold_due",
    "next_tasks",
    "release_task",
]

MAX_TASKS = 200
#: Gold items go to every annotator: their claims ignore the project's overlap.
GOLD_OVERLAP = 1_000_000
OVERLAP_POLICIES = ("all", "share", "uncertain")
#: Multiplier coprime to 100: ``row * _SPREAD % 100`` spreads a share evenly over the rows.
_SPREAD = 37
#: Extra candidates locked per claim attempt, for those a concurrent claim filled meanwhile.
_SLACK = 8
_ATTEMPTS = 4


@dataclass(frozen=True)
class Task:
    """An item leased to the caller until ``expires_at``; ``selection`` says why it was chosen
    (the latest round that ranked it), None for items not ranked by any round."""

    item: Item
    expires_at: datetime
    selection: RoundSelection | None
    #: The selecting round's number and the model version that scored the item, if any.
    round_number: int | None = None
    model_version: int | None = None


def active_lease_filter(now: datetime) -> ColumnElement[bool]:
    """Assignments still holding their item at ``now``."""
    return and_(Assignment.released_at.is_(None), Assignment.completed_at.is_(None),
                Assignment.expires_at > now)


def _check_args(n: int, lease_seconds: int, overlap: int, splits: Collection[str] | None) -> None:
    if not 1 <= n <= MAX_TASKS:
        raise InvalidInput(f"n must be between 1 and {MAX_TASKS}, got {n}")
    if lease_seconds < 1:
        raise InvalidInput(f"lease_seconds must be >= 1, got {lease_seconds}")
    if overlap < 1:
        raise InvalidInput(f"overlap must be >= 1, got {overlap}")
    if splits is not None and not set(splits) <= set(SPLITS):
        raise InvalidInput(f"splits must be among {', '.join(SPLITS)}, got {sorted(splits)}")


def next_tasks(session: Session, project_id: int, user_id: int, n: int, *,
               lease_seconds: int = 900, overlap: int = 1, now: datetime | None = None,
               splits: Collection[str] | None = None, gold_rate: float = 0.0,
               overlap_policy: str = "all", overlap_share: float = 1.0) -> list[Task]:
    """Up to ``n`` items leased to the user: first the user's own unexpired leases (renewed),
    then new items by ``queue_rank`` (ranked first, lowest rank first) and then ``row``.

    Skipped: items the user already labeled or holds, and items whose active leases plus
    current labels already reach ``overlap`` (items of a calibration session go to
    everyone). Fewer than ``n`` tasks means the queue is
    exhausted for this user, or (PostgreSQL, under contention) that the remaining items are
    being claimed by others right now: ask again. The caller commits.

    With ``gold_rate`` > 0, gold items are mixed in so that about that share of the user's
    tasks are gold (:func:`gold_due`), at random places among the others; gold items go to
    every annotator (no overlap limit) and other claims leave them out.

    ``overlap_policy`` says which items get ``overlap`` annotators (the others get one):
    ``all``; ``share`` (a fixed, spread-out ``overlap_share`` of the items, by row number);
    ``uncertain`` (the items a round put at the head of the queue: the strategy's most
    informative picks).
    """
    _check_args(n, lease_seconds, overlap, splits)
    policy = OverlapPolicy(overlap, overlap_policy, overlap_share)
    if not 0 <= gold_rate < 1:
        raise InvalidInput(f"gold_rate must be in [0, 1), got {gold_rate}")
    now = now or utcnow()
    expires = now + timedelta(seconds=lease_seconds)
    own = _renew_own(session, project_id, user_id, n, now, expires)
    new: list[int] = []
    if len(own) < n:
        need = n - len(own)
        gold = min(need, gold_due(session, project_id, user_id, need, gold_rate, now))
        gold_ids = (_claim(session, project_id, user_id, gold, now,
                           OverlapPolicy(GOLD_OVERLAP), {"gold"}, set(own), False)
                    if gold else [])
        others = (set(splits or SPLITS) - {"gold"}) if gold_rate > 0 else splits
        new = _claim(session, project_id, user_id, need - len(gold_ids), now, policy, others,
                     {*own, *gold_ids})
        new = _mix(new, gold_ids)
        if new:
            session.execute(insert(Assignment), [
                {"project_id": project_id, "item_id": i, "user_id": user_id,
                 "leased_at": now, "expires_at": expires} for i in new])
    return _tasks(session, [*own, *new], expires)


def _mix(items: list[int], gold: list[int]) -> list[int]:
    """``gold`` ids inserted at random places among ``items`` (so no position gives them away)."""
    out = list(items)
    for item_id in gold:
        out.insert(secrets.randbelow(len(out) + 1), item_id)
    return out


def gold_due(session: Session, project_id: int, user_id: int, n: int, gold_rate: float,
             now: datetime) -> int:
    """How many of the user's next ``n`` tasks should be gold to keep the user's share of gold
    at ``gold_rate``: ``round(rate * (labeled + held + n)) - gold labeled - gold held``."""
    if gold_rate <= 0:
        return 0
    base = (select(Item.split, func.count()).join(Annotation, Annotation.item_id == Item.id)
            .where(Annotation.project_id == project_id, Annotation.annotator_id == user_id,
                   Annotation.supersedes_id.is_(None)).group_by(Item.split))
    done = dict(session.execute(base).all())
    held = dict(session.execute(
        select(Item.split, func.count()).join(Assignment, Assignment.item_id == Item.id)
        .where(Assignment.project_id == project_id, Assignment.user_id == user_id,
               active_lease_filter(now)).group_by(Item.split)).all())
    total = sum(done.values()) + sum(held.values()) + n
    due = math.floor(gold_rate * total + 0.5) - done.get("gold", 0) - held.get("gold", 0)
    return max(0, min(n, due))


def _renew_own(session: Session, project_id: int, user_id: int, n: int, now: datetime,
               expires: datetime) -> list[int]:
    stmt = (select(Assignment.id, Assignment.item_id)
            .where(Assignment.project_id == project_id, Assignment.user_id == user_id,
                   active_lease_filter(now))
            .order_by(Assignment.leased_at, Assignment.id).limit(n))
    rows = session.execute(stmt).all()
    if rows:
        session.execute(update(Assignment).where(Assignment.id.in_([r.id for r in rows]))
                        .values(expires_at=expires).execution_options(synchronize_session=False))
    return list(dict.fromkeys(r.item_id for r in rows))


@dataclass(frozen=True)
class OverlapPolicy:
    """How many annotators an item needs: ``overlap`` for the items the policy picks, else 1."""

    overlap: int
    policy: str = "all"
    share: float = 1.0

    def __post_init__(self) -> None:
        if self.policy not in OVERLAP_POLICIES:
            raise InvalidInput(f"unknown overlap_policy {self.policy!r}: use one of "
                               f"{', '.join(OVERLAP_POLICIES)}")
        if not 0 <= self.share <= 1:
            raise InvalidInput(f"overlap_share must be in [0, 1], got {self.share}")

    def _picked(self, row: Any, rank: Any) -> Any:
        if self.policy == "share":
            return (row * _SPREAD) % 100 < round(self.share * 100)
        return rank.is_not(None)

    def expression(self) -> Any:
        """The number of annotators each item needs, as SQL over ``items``."""
        if self.policy == "all" or self.overlap == 1:
            return literal(self.overlap)
        return case((self._picked(Item.row, Item.queue_rank), self.overlap), else_=1)

    def of(self, row: int, rank: float | None) -> int:
        """The same for one item."""
        if self.policy == "all":
            return self.overlap
        if self.policy == "share":
            picked = (row * _SPREAD) % 100 < round(self.share * 100)
        else:
            picked = rank is not None
        return self.overlap if picked else 1


def _claim(session: Session, project_id: int, user_id: int, need: int, now: datetime,
           overlap: OverlapPolicy, splits: Collection[str] | None, seen: set[int],
           with_calibration: bool = True) -> list[int]:
    """Lock candidates, re-count them under the lock, keep those still below the overlap."""
    picked: list[int] = []
    serialised = dialect_of(session) == "sqlite"  # BEGIN IMMEDIATE: no claim runs meanwhile
    for _ in range(_ATTEMPTS):
        want = need - len(picked)
        slack = 0 if serialised else _SLACK
        candidates = _candidates(session, project_id, user_id, want + slack, now, overlap,
                                 splits, seen, with_calibration)
        if not candidates:
            break
        seen.update(candidates)
        if serialised:
            picked += candidates[:want]
        else:
            free = _still_free(session, user_id, candidates, now, overlap)
            picked += [i for i in candidates if i in free][:want]
        if len(picked) >= need:
            break
    return picked


def _mine(user_id: int) -> Any:
    """Items the user has labeled (any revision, withdrawn ones too)."""
    return exists().where(Annotation.item_id == Item.id, Annotation.annotator_id == user_id)


def _held(user_id: int, now: datetime) -> Any:
    """Items the user holds an active lease on."""
    return exists().where(Assignment.item_id == Item.id, Assignment.user_id == user_id,
                          active_lease_filter(now))


def _leased(now: datetime) -> Any:
    return exists().where(Assignment.item_id == Item.id, active_lease_filter(now))


def _lease_count(now: datetime) -> Any:
    return (select(func.count()).select_from(Assignment)
            .where(Assignment.item_id == Item.id, active_lease_filter(now))
            .correlate(Item).scalar_subquery())


def _below_overlap(now: datetime, overlap: OverlapPolicy) -> list[Any]:
    """Items whose active leases plus current labels are below what the policy needs."""
    if overlap.overlap == 1:
        # Reads the partial index of unlabeled items (ix_items_unlabeled_queue): finished
        # items are never visited. A literal, not a parameter: PostgreSQL's generic plan of a
        # prepared statement can use a partial index only when the query spells its predicate.
        return [Item.n_labels == literal_column("0"), ~_leased(now)]
    needed = overlap.expression()
    return [Item.n_labels < needed, _lease_count(now) + Item.n_labels < needed]


#: The passes of a claim: (filter, order). Items of a calibration session go to every annotator
#: whatever the overlap, so they come first; then ranked items by rank, then the rest by row.
#: Unranked items are ordered by (rank, row) too: rank is NULL there, so this is row order,
#: spelled as the queue indexes' order (PostgreSQL would otherwise walk the (project, row)
#: index past every finished item, misled by its even-spread estimate).
_PASSES = (
    ("calibration", (Item.queue_rank.is_(None), Item.queue_rank, Item.row)),
    ("ranked", (Item.queue_rank, Item.row)),
    ("unranked", (Item.queue_rank, Item.row)),
)


def _candidates(session: Session, project_id: int, user_id: int, limit: int, now: datetime,
                overlap: OverlapPolicy, splits: Collection[str] | None,
                seen: set[int], with_calibration: bool = True) -> list[int]:
    """Ids of up to ``limit`` items that look free (not the user's, not held by them, below
    the overlap), pass by pass (:data:`_PASSES`); locked on PostgreSQL."""
    dialect = dialect_of(session)
    common: list[Any] = [Item.project_id == project_id, ~_mine(user_id), ~_held(user_id, now)]
    if splits is not None:
        common.append(Item.split.in_(sorted(splits)))
    below = _below_overlap(now, overlap)
    found: list[int] = []
    for name, order in _PASSES:
        if name == "calibration":
            if not with_calibration:
                continue
            # Driven by the (few) calibration items, not by the pool.
            where = [*common, Item.id.in_(select(CalibrationItem.item_id))]
        else:
            where = [*common, *below, Item.queue_rank.is_not(None) if name == "ranked"
                     else Item.queue_rank.is_(None)]
        skip = seen | set(found)
        if skip:
            where.append(Item.id.not_in(sorted(skip)))
        stmt = select(Item.id).where(*where).order_by(*order).limit(limit - len(found))
        found += session.execute(for_update_skip_locked(stmt, dialect)).scalars().all()
        if len(found) >= limit:
            break
    return found


def _still_free(session: Session, user_id: int, item_ids: Sequence[int], now: datetime,
                overlap: OverlapPolicy) -> set[int]:
    """Of ``item_ids`` (locked by the caller), those below the overlap and not the user's,
    read in one fresh statement so that claims committed meanwhile are seen."""
    calibration = exists().where(CalibrationItem.item_id == Item.id)
    rows = session.execute(select(Item.id, Item.row, Item.queue_rank, Item.n_labels,
                                  _lease_count(now), _mine(user_id), _held(user_id, now),
                                  calibration)
                           .where(Item.id.in_(item_ids)))
    return {i for i, row, rank, labels, leases, is_mine, is_held, is_calibration in rows
            if not is_mine and not is_held
            and (is_calibration or leases + labels < overlap.of(row, rank))}


def _tasks(session: Session, item_ids: list[int], expires: datetime) -> list[Task]:
    """The items with why each was chosen (the latest round that ranked it), in one query."""
    if not item_ids:
        return []
    latest = (select(RoundSelection.item_id, func.max(RoundSelection.round_id).label("round_id"))
              .where(RoundSelection.item_id.in_(item_ids)).group_by(RoundSelection.item_id)
              .subquery())
    stmt = (select(Item, RoundSelection, Round.number, ModelVersion.version)
            .outerjoin(latest, latest.c.item_id == Item.id)
            .outerjoin(RoundSelection, and_(RoundSelection.item_id == Item.id,
                                            RoundSelection.round_id == latest.c.round_id))
            .outerjoin(Round, Round.id == RoundSelection.round_id)
            .outerjoin(ModelVersion, ModelVersion.id == RoundSelection.model_version_id)
            .where(Item.id.in_(item_ids)))
    found = {item.id: Task(item, expires, sel, number, version)
             for item, sel, number, version in session.execute(stmt)}
    return [found[i] for i in item_ids]


def release_task(session: Session, project_id: int, user_id: int, item_id: int, *,
                 now: datetime | None = None) -> None:
    """Give back the user's active lease on the item; NotFound when there is none."""
    item_in_project(session, project_id, item_id)
    now = now or utcnow()
    result = session.execute(
        update(Assignment).where(Assignment.item_id == item_id, Assignment.user_id == user_id,
                                 active_lease_filter(now))
        .values(released_at=now).execution_options(synchronize_session=False))
    if result.rowcount == 0:  # type: ignore[attr-defined]
        raise NotFound(f"user {user_id} holds no active lease on item {item_id}: it expired, "
                       "was completed, or was never handed out")
