"""The task queue: leases handed out by queue rank, never beyond the project's overlap.

An item counts against the overlap once per active lease (not released, not completed, not
expired) and once per annotator whose current revision carries a label. Claims are safe under
concurrent callers: on PostgreSQL candidate item rows are locked with ``FOR UPDATE SKIP LOCKED``
and the counts are re-read after the lock (a fresh snapshot); on SQLite the write transaction
(``BEGIN IMMEDIATE``) serialises claims.
"""

from __future__ import annotations

import functools
import itertools
import math
import secrets
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

import numpy as np
from sqlalchemy import (
    BindParameter,
    ColumnElement,
    DateTime,
    Float,
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
    text,
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
    RoundStatus,
    utcnow,
)

__all__ = [
    "MAX_TASKS",
    "OVERLAP_POLICIES",
    "RANDOM_BASE",
    "SCORED_BASE",
    "OverlapPolicy",
    "Task",
    "active_lease_filter",
    "gold_due",
    "held_items",
    "next_tasks",
    "queue_keys",
    "release_task",
    "write_ranking",
    "write_ranking_locked_rows",
    "write_ranking_unleased",
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
#: Ranks at or above this are seeded random keys (``Item.queue_key``): the order before the
#: first model. A round writes positions below it. Keys are ``RANDOM_BASE + 40-bit hash``.
RANDOM_BASE = float(2 ** 50)
#: Ranks from this up to RANDOM_BASE: the pool ranked by the model's score behind a round's
#: batch (``SCORED_BASE + position``); below it, the round's batch itself (0..k-1).
SCORED_BASE = float(2 ** 40)
KEY_BITS = 40
_M64 = np.uint64(0xFFFFFFFFFFFFFFFF)


def queue_keys(seed: int, project_id: int, rows: Any) -> np.ndarray[Any, Any]:
    """Seeded random queue keys of item ``rows`` (float64, in ``[RANDOM_BASE, 2 * RANDOM_BASE)``):
    a splitmix64 hash of (seed, project, row), so a row's key never depends on the batch."""
    with np.errstate(over="ignore"):
        x = (np.asarray(rows, dtype=np.uint64)
             + np.uint64((seed * 0x9E3779B1 + project_id * 0x85EBCA77) & 0xFFFFFFFFFFFFFFFF))
        x = (x + np.uint64(0x9E3779B97F4A7C15)) & _M64
        x = ((x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)) & _M64
        x = ((x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)) & _M64
        x = x ^ (x >> np.uint64(31))
    return RANDOM_BASE + (x >> np.uint64(64 - KEY_BITS)).astype(np.float64)


#: Rows from which SQLite rewrites ranks with the queue's indexes dropped and rebuilt (one
#: sort instead of a random index update per row: 1M rows in seconds, not a minute).
REBUILD_FROM_ROWS = 20_000


def write_ranking(session: Session, project_id: int, rows: Any, ranks: Any) -> int:
    """``queue_rank = ranks[i]`` for the items at ``rows[i]``, in bulk. PostgreSQL: one
    ``UPDATE ... FROM unnest`` of two arrays. SQLite: ``executemany`` over the (project, row)
    index; from :data:`REBUILD_FROM_ROWS` rows, a temporary table joined by ``UPDATE ... FROM``
    with the indexes on ``queue_rank`` dropped and rebuilt in the same transaction (readers
    keep their snapshot). Returns the number of rows given. The caller commits."""
    row_list = np.asarray(rows, dtype=np.int64).tolist()
    rank_list = np.asarray(ranks, dtype=np.float64).tolist()
    if len(row_list) != len(rank_list):
        raise InvalidInput(f"{len(row_list)} rows for {len(rank_list)} ranks: give one each")
    if not row_list:
        return 0
    if dialect_of(session) == "postgresql":
        session.execute(text(
            "UPDATE items SET queue_rank = v.rank FROM unnest(CAST(:rows AS integer[]), "
            "CAST(:ranks AS double precision[])) AS v(row, rank) "
            "WHERE items.project_id = :pid AND items.row = v.row"),
            {"rows": row_list, "ranks": rank_list, "pid": project_id})
        return len(row_list)
    conn = session.connection()
    dbapi = conn.connection.dbapi_connection
    assert dbapi is not None
    cursor = dbapi.cursor()
    try:
        if len(row_list) < REBUILD_FROM_ROWS:
            cursor.executemany(
                "UPDATE items SET queue_rank = ? WHERE project_id = ? AND row = ?",
                list(zip(rank_list, itertools.repeat(project_id), row_list)))
            return len(row_list)
        cursor.execute("CREATE TEMP TABLE IF NOT EXISTS _ranks "
                       "(row INTEGER PRIMARY KEY, rank REAL NOT NULL)")
        cursor.execute("DELETE FROM _ranks")
        cursor.executemany("INSERT INTO _ranks VALUES (?, ?)",
                           list(zip(row_list, rank_list, strict=True)))
        indexes = [i for i in cast(Table, Item.__table__).indexes
                   if "queue_rank" in i.columns]
        for index in indexes:
            index.drop(conn)
        cursor.execute("UPDATE items SET queue_rank = _ranks.rank FROM _ranks "
                       "WHERE items.project_id = ? AND items.row = _ranks.row", (project_id,))
        for index in indexes:
            index.create(conn)
        cursor.execute("DELETE FROM _ranks")
    finally:
        cursor.close()
    return len(row_list)


_PG_RANKS = ("FROM unnest(CAST(:rows AS integer[]), CAST(:ranks AS double precision[])) "
             "AS v(row, rank) WHERE items.project_id = :pid AND items.row = v.row")


def _rank_params(project_id: int, rows: Any, ranks: Any) -> dict[str, Any]:
    row_list = np.asarray(rows, dtype=np.int64).tolist()
    rank_list = np.asarray(ranks, dtype=np.float64).tolist()
    if len(row_list) != len(rank_list):
        raise InvalidInput(f"{len(row_list)} rows for {len(rank_list)} ranks: give one each")
    return {"rows": row_list, "ranks": rank_list, "pid": project_id}


def write_ranking_unleased(session: Session, project_id: int, rows: Any, ranks: Any,
                           now: datetime) -> set[int]:
    """PostgreSQL: :func:`write_ranking` for the rows whose item nobody holds a lease on at
    ``now``; returns the rows written. The leased items are those an annotation is about to
    update (its label count): left out, a long ranking write never makes one wait."""
    params = _rank_params(project_id, rows, ranks)
    if not params["rows"]:
        return set()
    written = session.execute(text(
        f"UPDATE items SET queue_rank = v.rank {_PG_RANKS} AND NOT EXISTS (SELECT 1 FROM "
        "assignments a WHERE a.item_id = items.id AND a.released_at IS NULL "
        "AND a.completed_at IS NULL AND a.expires_at > :now) RETURNING items.row"),
        {**params, "now": now}).scalars()
    return {int(r) for r in written}


def write_ranking_locked_rows(session: Session, project_id: int, rows: Any, ranks: Any, *,
                              wait: bool) -> set[int]:
    """PostgreSQL: :func:`write_ranking` for the rows no other transaction holds locked
    (``wait=False``: ``FOR NO KEY UPDATE SKIP LOCKED``, an annotation in flight is not waited
    for) or for all of them (``wait=True``); returns the rows written."""
    params = _rank_params(project_id, rows, ranks)
    if not params["rows"]:
        return set()
    lock = "FOR NO KEY UPDATE OF items" + ("" if wait else " SKIP LOCKED")
    written = session.execute(text(
        "WITH locked AS (SELECT items.id, v.rank FROM items JOIN unnest(CAST(:rows AS "
        "integer[]), CAST(:ranks AS double precision[])) AS v(row, rank) ON items.row = v.row "
        f"WHERE items.project_id = :pid {lock}) "
        "UPDATE items SET queue_rank = locked.rank FROM locked WHERE items.id = locked.id "
        "RETURNING items.row"), params).scalars()
    return {int(r) for r in written}


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
    #: The latest finished round (id, number, model version): what wrote the queue's ranking.
    ranking_round: tuple[int, int, int | None] | None = None

    @property
    def ranked_by(self) -> str:
        """What put the item where it was: ``strategy`` (the latest round's batch),
        ``model_score`` (behind that batch, by the model's score), ``random`` (the seeded
        order before the first model), ``audit`` (drawn uniformly at random for the audit)."""
        if self.item.audit_drawn_at is not None and self.item.n_labels == 0:
            return "audit"
        return self.queue_ranked_by

    @property
    def queue_ranked_by(self) -> str:
        """What the item's queue rank says ranked it (:attr:`ranked_by` without audits)."""
        rank = self.item.queue_rank
        if rank is None or rank >= RANDOM_BASE:
            return "random"
        if rank >= SCORED_BASE:
            return "model_score"
        if self.selection is not None and self.ranking_round is not None \
                and self.selection.round_id == self.ranking_round[0]:
            return "strategy"
        return "random"


def active_lease_filter(now: datetime | ColumnElement[datetime]) -> ColumnElement[bool]:
    """Assignments still holding their item at ``now``."""
    return and_(Assignment.released_at.is_(None), Assignment.completed_at.is_(None),
                Assignment.expires_at > now)


def held_items(session: Session, project_id: int, user_id: int, *,
               limit: int = MAX_TASKS) -> list[int]:
    """The items leased to the user now (oldest lease first, at most ``limit``), without
    renewing them: what a labeling page may still show from its buffer."""
    rows = session.execute(
        select(Assignment.item_id)
        .where(Assignment.project_id == project_id, Assignment.user_id == user_id,
               active_lease_filter(utcnow()))
        .order_by(Assignment.leased_at, Assignment.id).limit(limit)).scalars()
    return list(dict.fromkeys(int(i) for i in rows))


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
               overlap_policy: str = "all", overlap_share: float = 1.0,
               audit_share: float = 0.0) -> list[Task]:
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
    informative picks, ranks below :data:`SCORED_BASE`).

    With ``audit_share`` > 0, each new task is, with that probability, an audit draw: an
    unlabeled pool item drawn uniformly at random (:func:`_draw_audit`), marked
    ``audit_drawn_at`` and put at a random place among the others.
    """
    _check_args(n, lease_seconds, overlap, splits)
    policy = OverlapPolicy(overlap, overlap_policy, overlap_share)
    if not 0 <= gold_rate < 1:
        raise InvalidInput(f"gold_rate must be in [0, 1), got {gold_rate}")
    if not 0 <= audit_share <= 0.5:
        raise InvalidInput(f"audit_share must be in [0, 0.5], got {audit_share}")
    now = now or utcnow()
    lease = _Lease(project_id, user_id, now, now + timedelta(seconds=lease_seconds))
    own, calibration = _renew_own(session, lease, n)
    new: list[int] = []
    if len(own) < n:
        need = n - len(own)
        gold = min(need, gold_due(session, project_id, user_id, need, gold_rate, now))
        audits = _audit_draws(need - gold, audit_share, splits)
        # On PostgreSQL the claim writes its leases itself, except with gold or audit draws:
        # those go among the others at random places, and a renewal hands leases back in the
        # order they were written, so then the leases are written once mixed.
        write = not gold and not audits and dialect_of(session) == "postgresql"
        gold_ids = (_claim(session, lease, gold, OverlapPolicy(GOLD_OVERLAP), {"gold"},
                           set(own), False, False) if gold else [])
        audit_ids = (_draw_audit(session, lease, audits, policy, {*own, *gold_ids})
                     if audits else [])
        others = (set(splits or SPLITS) - {"gold"}) if gold_rate > 0 else splits
        new = _claim(session, lease, need - len(gold_ids) - len(audit_ids), policy, others,
                     {*own, *gold_ids, *audit_ids}, calibration, write)
        if not write:
            new = _mix(_mix(new, gold_ids), audit_ids)
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


def _audit_draws(n: int, share: float, splits: Collection[str] | None) -> int:
    """How many of ``n`` new tasks are audit draws: each one with probability ``share``."""
    if share <= 0 or n <= 0 or (splits is not None and "pool" not in splits):
        return 0
    return sum(secrets.randbelow(1 << 30) < share * (1 << 30) for _ in range(n))


def _draw_audit(session: Session, lease: _Lease, n: int, overlap: OverlapPolicy,
                seen: set[int]) -> list[int]:
    """Up to ``n`` unlabeled pool items drawn uniformly at random, marked as audit draws.

    The queue keys are independent uniform draws written at import, so the first free item
    at or after a uniform threshold (wrapping around) is a uniformly random item of the
    unlabeled pool, found by the (project, queue_key) index of unlabeled items.
    """
    picked: list[int] = []
    for _ in range(n):
        threshold = RANDOM_BASE + secrets.randbelow(1 << KEY_BITS)
        for low in (threshold, 0.0):
            found = _claim(session, lease, 1, overlap, {"pool"}, {*seen, *picked}, False,
                           False, passes=("audit",), extra={"key_from": low})
            if found:
                picked += found
                break
    if picked:
        session.execute(update(Item).where(Item.id.in_(picked))
                        .values(audit_drawn_at=lease.now)
                        .execution_options(synchronize_session=False))
    return picked


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
              if shape == "share" else Item.queue_rank < SCORED_BASE)
    return case((picked, overlap), else_=1)


def _claim(session: Session, lease: _Lease, need: int, overlap: OverlapPolicy,
           splits: Collection[str] | None, seen: set[int], with_calibration: bool,
           write: bool, *, passes: tuple[str, ...] | None = None,
           extra: dict[str, Any] | None = None) -> list[int]:
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
                                 splits, seen, with_calibration, passes, extra)
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
    # a purged item (payload removed) is no task for anyone
    where: list[Any] = [Item.project_id == _PID, Item.purged_at.is_(None), ~_mine(), ~_held()]
    if by_split:
        where.append(Item.split.in_(bindparam("splits", expanding=True)))
    if skipping:
        where.append(Item.id.not_in(bindparam("skip", expanding=True)))
    if name == "calibration":  # driven by the (few) calibration items, not by the pool
        where.append(Item.id.in_(select(CalibrationItem.item_id)))
    elif name == "audit":  # unlabeled pool items from a random key on (ix_items_audit_draw)
        where += [Item.n_labels == literal_column("0"), ~exists().where(
            Assignment.item_id == Item.id, active_lease_filter(_NOW)),
            Item.queue_key >= bindparam("key_from", type_=Float)]
    else:
        where += _below_overlap(shape)
        if name != "queue":
            where.append(Item.queue_rank.is_not(None) if name == "ranked"
                         else Item.queue_rank.is_(None))
    order = (_CALIBRATION_ORDER if name == "calibration" else
             (Item.queue_key,) if name == "audit" else _QUEUE_ORDER)
    stmt = select(Item.id).where(*where).order_by(*order).limit(bindparam("limit"))
    return for_update_skip_locked(stmt, dialect)


def _candidates(session: Session, lease: _Lease, limit: int, overlap: OverlapPolicy,
                splits: Collection[str] | None, seen: set[int], with_calibration: bool,
                passes: tuple[str, ...] | None = None,
                extra: dict[str, Any] | None = None) -> list[int]:
    """Ids of up to ``limit`` items that look free (not the user's, not held by them, below
    the overlap), pass by pass (:data:`_QUEUE_PASSES`, or ``passes``); locked on
    PostgreSQL."""
    dialect = dialect_of(session)
    params = {**lease.params(), **overlap.params(), **(extra or {})}
    if splits is not None:
        params["splits"] = sorted(splits)
    found: list[int] = []
    passes = passes or _QUEUE_PASSES[dialect]
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
            .where(Item.id == func.any(candidates), Item.purged_at.is_(None), ~_mine(), ~_held(),
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
#: The project's latest finished round (what wrote the ranking) and its model.
_LAST = aliased(Round, name="ranking_round")
_LAST_MODEL = aliased(ModelVersion, name="ranking_model")


@functools.cache
def _tasks_query() -> Select[Item, RoundSelection, int, int, int, int, int, int]:
    ids: BindParameter[list[int]] = bindparam("ids", expanding=True)
    latest = (select(RoundSelection.item_id, func.max(RoundSelection.round_id).label("round_id"))
              .where(RoundSelection.item_id.in_(ids)).group_by(RoundSelection.item_id)
              .subquery())
    last_id = (select(Round.id).where(Round.project_id == Item.project_id,
                                      Round.status == RoundStatus.DONE)
               .order_by(Round.number.desc()).limit(1).correlate(Item).scalar_subquery())
    return (select(Item, RoundSelection, Round.number, ModelVersion.version, _ACTIVE.version,
                   _LAST.id, _LAST.number, _LAST_MODEL.version)
            .outerjoin(latest, latest.c.item_id == Item.id)
            .outerjoin(RoundSelection, and_(RoundSelection.item_id == Item.id,
                                            RoundSelection.round_id == latest.c.round_id))
            .outerjoin(Round, Round.id == RoundSelection.round_id)
            .outerjoin(ModelVersion, ModelVersion.id == RoundSelection.model_version_id)
            .outerjoin(_ACTIVE, and_(_ACTIVE.project_id == Item.project_id,
                                     _ACTIVE.is_active.is_(True)))
            .outerjoin(_LAST, _LAST.id == last_id)
            .outerjoin(_LAST_MODEL, _LAST_MODEL.id == _LAST.model_version_id)
            .where(Item.id.in_(ids)))


def _tasks(session: Session, item_ids: list[int], expires: datetime) -> list[Task]:
    """The items with why each was chosen (the latest round that ranked it), in one query."""
    if not item_ids:
        return []
    found = {item.id: Task(item, expires, sel, number, version, active,
                           None if last_id is None else (last_id, last_number, last_version))
             for item, sel, number, version, active, last_id, last_number, last_version
             in session.execute(_tasks_query(), {"ids": item_ids})}
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
