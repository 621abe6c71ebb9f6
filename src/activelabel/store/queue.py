"""The task queue: leases handed out by queue rank, never beyond the project's overlap.

An item counts against the overlap once per active lease (not released, not completed, not
expired) and once per annotator whose current revision carries a label. Claims are safe under
concurrent callers: on PostgreSQL candidate item rows are locked with ``FOR UPDATE SKIP LOCKED``
and the counts are re-read after the lock (a fresh snapshot); on SQLite the write transaction
(``BEGIN IMMEDIATE``) serialises claims.
"""

from __future__ import annotations

import functools
import math
import secrets
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import (
    BindParameter,
    ColumnElement,
    DateTime,
    Integer,
    Select,
    Table,
    and_,
    bindparam,
    case,
    exists,
    func,
    insert,
    literal,
    literal_column,
    or_,
    select,
    true,
    update,
)
from sqlalchemy.dialects import postgresql
from sqlalchemy.orm import Session, aliased

from ._util import item_in_project
from .db import dialect_of, for_update_skip_locked
from .errors import InvalidInput, NotFound
from .models import (
    SPLITS,
    Annotation,
    Assignment,
    CalibrationItem,
    CalibrationSession,
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
    #: The project's active model version when the item was leased (what suggests a label).
    active_model_version: int | None = None


def active_lease_filter(now: datetime | ColumnElement[datetime]) -> ColumnElement[bool]:
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
    lease = _Lease(project_id, user_id, now, now + timedelta(seconds=lease_seconds))
    own, calibration = _renew_own(session, lease, n)
    new: list[int] = []
    if len(own) < n:
        need = n - len(own)
        gold = min(need, gold_due(session, project_id, user_id, need, gold_rate, now))
        # On PostgreSQL the claim writes its leases itself, except with gold: gold items go
        # among the others at random places, and a renewal hands leases back in the order
        # they were written, so then the leases are written once mixed.
        write = not gold and dialect_of(session) == "postgresql"
        gold_ids = (_claim(session, lease, gold, OverlapPolicy(GOLD_OVERLAP), {"gold"},
                           set(own), False, False) if gold else [])
        others = (set(splits or SPLITS) - {"gold"}) if gold_rate > 0 else splits
        new = _claim(session, lease, need - len(gold_ids), policy, others, {*own, *gold_ids},
                     calibration, write)
        if not write:
            new = _mix(new, gold_ids)
            if new:
                session.execute(insert(Assignment), [
                    {"project_id": project_id, "item_id": i, "user_id": user_id,
                     "leased_at": now, "expires_at": lease.expires} for i in new])
    return _tasks(session, [*own, *new], lease.expires)


@dataclass(frozen=True)
class _Lease:
    """Who leases, when, until when."""

    project_id: int
    user_id: int
    now: datetime
    expires: datetime

    def params(self) -> dict[str, Any]:
        return {"pid": self.project_id, "uid": self.user_id, "now": self.now,
                "expires": self.expires}


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


# The statements of a claim are built once (per shape) and take their values as parameters:
# ``pid`` (project), ``uid`` (user), ``now``, ``expires``, and per statement those named there.
_NOW = bindparam("now", type_=DateTime(timezone=True))
_UID = bindparam("uid", type_=Integer)
_PID = bindparam("pid", type_=Integer)


@functools.cache
def _own_query() -> Select[Any]:
    """The user's active leases, oldest first (at most ``limit``), beside whether the project
    has calibration sessions: one row per lease, or one row without a lease."""
    own = (select(Assignment.id, Assignment.item_id, Assignment.leased_at)
           .where(Assignment.project_id == _PID, Assignment.user_id == _UID,
                  active_lease_filter(_NOW))
           .order_by(Assignment.leased_at, Assignment.id).limit(bindparam("limit"))
           .subquery("own"))
    one = select(literal(1).label("one")).subquery("one")
    calibration = exists().where(CalibrationSession.project_id == _PID)
    return (select(calibration.label("calibration"), own.c.id, own.c.item_id)
            .select_from(one.outerjoin(own, true())).order_by(own.c.leased_at, own.c.id))


def _renew_own(session: Session, lease: _Lease, n: int) -> tuple[list[int], bool]:
    """The user's active leases (renewed until ``lease.expires``), and whether the project
    has calibration sessions (whose items every annotator gets first)."""
    rows = session.execute(_own_query(), {**lease.params(), "limit": n}).all()
    held = [r for r in rows if r.id is not None]
    if held:
        session.execute(update(Assignment).where(Assignment.id.in_([r.id for r in held]))
                        .values(expires_at=lease.expires)
                        .execution_options(synchronize_session=False))
    return list(dict.fromkeys(r.item_id for r in held)), bool(rows[0].calibration)


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

    @property
    def shape(self) -> str:
        """What the policy's SQL looks like: ``one`` (an overlap of 1), or the policy."""
        return "one" if self.overlap == 1 else self.policy

    def params(self) -> dict[str, Any]:
        """The values of the policy's SQL (:func:`_needed`)."""
        return {"overlap": self.overlap, "share_pct": round(self.share * 100)}


def _needed(shape: str) -> Any:
    """The number of annotators each item needs, as SQL over ``items`` (parameters
    ``overlap``, ``share_pct``)."""
    overlap = bindparam("overlap", type_=Integer)
    if shape in ("one", "all"):
        return overlap
    picked = ((Item.row * _SPREAD) % 100 < bindparam("share_pct", type_=Integer)
              if shape == "share" else Item.queue_rank.is_not(None))
    return case((picked, overlap), else_=1)


def _claim(session: Session, lease: _Lease, need: int, overlap: OverlapPolicy,
           splits: Collection[str] | None, seen: set[int], with_calibration: bool,
           write: bool) -> list[int]:
    """Lock candidates, keep those still below the overlap under the lock.

    With ``write`` (PostgreSQL only), the leases of the items kept are written by the
    statement that re-counts them; otherwise the caller writes them.
    """
    picked: list[int] = []
    dialect = dialect_of(session)
    serialised = dialect == "sqlite"  # BEGIN IMMEDIATE: no claim runs meanwhile
    for _ in range(_ATTEMPTS):
        want = need - len(picked)
        candidates = _candidates(session, lease, want + (0 if serialised else _SLACK), overlap,
                                 splits, seen, with_calibration)
        if not candidates:
            break
        seen.update(candidates)
        if serialised:
            picked += candidates[:want]
        else:
            picked += _still_free(session, lease, candidates, want, overlap, write)
        if len(picked) >= need:
            break
    return picked


def _mine() -> Any:
    """Items the user has labeled (any revision, withdrawn ones too)."""
    return exists().where(Annotation.item_id == Item.id, Annotation.annotator_id == _UID)


def _held() -> Any:
    """Items the user holds an active lease on."""
    return exists().where(Assignment.item_id == Item.id, Assignment.user_id == _UID,
                          active_lease_filter(_NOW))


def _lease_count() -> Any:
    return (select(func.count()).select_from(Assignment)
            .where(Assignment.item_id == Item.id, active_lease_filter(_NOW))
            .correlate(Item).scalar_subquery())


def _below_overlap(shape: str) -> list[Any]:
    """Items whose active leases plus current labels are below what the policy needs."""
    if shape == "one":
        # Reads the partial index of unlabeled items (ix_items_unlabeled_queue): finished
        # items are never visited. A literal, not a parameter: PostgreSQL's generic plan of a
        # prepared statement can use a partial index only when the query spells its predicate.
        leased = exists().where(Assignment.item_id == Item.id, active_lease_filter(_NOW))
        return [Item.n_labels == literal_column("0"), ~leased]
    needed = _needed(shape)
    return [Item.n_labels < needed, _lease_count() + Item.n_labels < needed]


#: The passes of a claim, in order. Items of a calibration session go to every annotator
#: whatever the overlap, so they come first (in projects that have calibration sessions);
#: then the queue: ranked items by rank, then the rest by row. PostgreSQL reads the queue in
#: one pass (ascending order puts NULL ranks last); SQLite puts them first, so it reads the
#: ranked items and the unranked ones in two. Unranked items are ordered by (rank, row) too:
#: rank is NULL there, so this is row order, spelled as the queue indexes' order (PostgreSQL
#: would otherwise walk the (project, row) index past every finished item, misled by its
#: even-spread estimate).
_QUEUE_ORDER = (Item.queue_rank, Item.row)
_CALIBRATION_ORDER = (Item.queue_rank.is_(None), *_QUEUE_ORDER)
_QUEUE_PASSES = {"postgresql": ("queue",), "sqlite": ("ranked", "unranked")}


@functools.cache
def _candidates_query(dialect: str, name: str, shape: str, by_split: bool,
                      skipping: bool) -> Select[Any]:
    """One pass of :func:`_candidates` (parameters ``limit``, ``splits``, ``skip`` and the
    policy's), locking what it reads on PostgreSQL."""
    where: list[Any] = [Item.project_id == _PID, ~_mine(), ~_held()]
    if by_split:
        where.append(Item.split.in_(bindparam("splits", expanding=True)))
    if skipping:
        where.append(Item.id.not_in(bindparam("skip", expanding=True)))
    if name == "calibration":  # driven by the (few) calibration items, not by the pool
        where.append(Item.id.in_(select(CalibrationItem.item_id)))
    else:
        where += _below_overlap(shape)
        if name != "queue":
            where.append(Item.queue_rank.is_not(None) if name == "ranked"
                         else Item.queue_rank.is_(None))
    order = _CALIBRATION_ORDER if name == "calibration" else _QUEUE_ORDER
    stmt = select(Item.id).where(*where).order_by(*order).limit(bindparam("limit"))
    return for_update_skip_locked(stmt, dialect)


def _candidates(session: Session, lease: _Lease, limit: int, overlap: OverlapPolicy,
                splits: Collection[str] | None, seen: set[int],
                with_calibration: bool) -> list[int]:
    """Ids of up to ``limit`` items that look free (not the user's, not held by them, below
    the overlap), pass by pass (:data:`_QUEUE_PASSES`); locked on PostgreSQL."""
    dialect = dialect_of(session)
    params = {**lease.params(), **overlap.params()}
    if splits is not None:
        params["splits"] = sorted(splits)
    found: list[int] = []
    passes = _QUEUE_PASSES[dialect]
    for name in ("calibration", *passes) if with_calibration else passes:
        skip = seen | set(found)
        stmt = _candidates_query(dialect, name, overlap.shape, splits is not None, bool(skip))
        found += session.execute(stmt, {**params, "skip": sorted(skip),
                                        "limit": limit - len(found)}).scalars().all()
        if len(found) >= limit:
            break
    return found


@functools.cache
def _still_free_query(shape: str, write: bool) -> Any:
    """Of the ``candidates`` (an array, locked by the caller), the first ``want`` (in array
    order) below the overlap and not the user's, read afresh; with ``write``, leased to the
    user by the same statement (PostgreSQL)."""
    candidates = bindparam("candidates", type_=postgresql.ARRAY(Integer))
    calibration = exists().where(CalibrationItem.item_id == Item.id)
    free = (select(_PID, Item.id, _UID, _NOW, bindparam("expires", type_=DateTime(timezone=True)))
            .where(Item.id == func.any(candidates), ~_mine(), ~_held(),
                   or_(calibration, _lease_count() + Item.n_labels < _needed(shape)))
            .order_by(func.array_position(candidates, Item.id)).limit(bindparam("want")))
    if not write:
        return free.with_only_columns(Item.id)
    table = cast(Table, Assignment.__table__)
    return (insert(table).from_select(
        ["project_id", "item_id", "user_id", "leased_at", "expires_at"], free)
        .returning(table.c.item_id))


def _still_free(session: Session, lease: _Lease, candidates: Sequence[int], want: int,
                overlap: OverlapPolicy, write: bool) -> list[int]:
    """The first ``want`` of ``candidates`` still free, read in one fresh statement so that
    claims committed meanwhile are seen; leased to the user too with ``write``."""
    order = {item_id: i for i, item_id in enumerate(candidates)}
    found = session.execute(_still_free_query(overlap.shape, write), {
        **lease.params(), **overlap.params(), "candidates": list(candidates),
        "want": want}).scalars().all()
    return sorted(found, key=order.__getitem__)


#: The active model of the item's project, for the tasks' suggestions.
_ACTIVE = aliased(ModelVersion, name="active_model")


@functools.cache
def _tasks_query() -> Select[Item, RoundSelection, int, int, int]:
    ids: BindParameter[list[int]] = bindparam("ids", expanding=True)
    latest = (select(RoundSelection.item_id, func.max(RoundSelection.round_id).label("round_id"))
              .where(RoundSelection.item_id.in_(ids)).group_by(RoundSelection.item_id)
              .subquery())
    return (select(Item, RoundSelection, Round.number, ModelVersion.version, _ACTIVE.version)
            .outerjoin(latest, latest.c.item_id == Item.id)
            .outerjoin(RoundSelection, and_(RoundSelection.item_id == Item.id,
                                            RoundSelection.round_id == latest.c.round_id))
            .outerjoin(Round, Round.id == RoundSelection.round_id)
            .outerjoin(ModelVersion, ModelVersion.id == RoundSelection.model_version_id)
            .outerjoin(_ACTIVE, and_(_ACTIVE.project_id == Item.project_id,
                                     _ACTIVE.is_active.is_(True)))
            .where(Item.id.in_(ids)))


def _tasks(session: Session, item_ids: list[int], expires: datetime) -> list[Task]:
    """The items with why each was chosen (the latest round that ranked it), in one query."""
    if not item_ids:
        return []
    found = {item.id: Task(item, expires, sel, number, version, active)
             for item, sel, number, version, active in session.execute(
                 _tasks_query(), {"ids": item_ids})}
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
