"""The whole queue ordered after every round, and items imported later placed in it.

A round with a model writes a rank for every item of the project: its batch first (ranks
0..k-1, written with the selection), then every other item at ``SCORED_BASE + position``:
pool items by the model's margin (top two probabilities' gap, most uncertain first),
holdout and gold items at seeded random places among them. Before any model the queue
follows the random keys written at import (``Item.queue_key``). Items imported after a round
are scored by the active model in the import job and take the place their margin earns
(:func:`place_new_items`).
"""

from __future__ import annotations

import json
import pickle
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray
from sqlalchemy import select
from sqlalchemy.orm import Session

from ..store import Storage, active_model_version
from ..store.db import dialect_of
from ..store.files import atomic_write
from ..store.models import Item, Project, utcnow
from ..store.queue import (
    KEY_BITS,
    RANDOM_BASE,
    REBUILD_FROM_ROWS,
    SCORED_BASE,
    queue_keys,
    write_ranking,
    write_ranking_locked_rows,
    write_ranking_unleased,
)

__all__ = ["Ranking", "full_ranking", "margins", "place_new_items", "save_ranking_meta",
           "write_full_ranking"]

#: Rows whose margin is computed at once (bounds the temporaries on a large pool).
_CHUNK = 100_000
_META = "ranking.json"
#: Ranks written per transaction on PostgreSQL. Its UPDATE locks the rows it writes until the
#: commit: an annotation's label count on one of them waits, a claim skips them. 2,000 rows
#: are a few tens of milliseconds (a 20,000-row transaction held annotations ~0.5 s).
PG_WRITE_CHUNK = 2_000
#: Tries, ``_LEASED_PAUSE`` seconds apart, at the leased items' rows without waiting for the
#: annotations writing them; then one write that waits (the ranking always ends complete).
_LEASED_TRIES = 5
_LEASED_PAUSE = 0.02
#: SQLite: ranks written per transaction below ``REBUILD_FROM_ROWS``, and the pause after
#: each commit. SQLite has one write lock; the pause is longer than the gap between a
#: waiting writer's polls (``store.db.SQLITE_BEGIN_TRY_MS``), so the annotations that queued
#: up behind a chunk get the lock before the next one (one 20,000-row transaction held them
#: up 120-330 ms while rounds ran).
SQLITE_WRITE_CHUNK = 2_000
SQLITE_WRITE_PAUSE = 0.01
_MARGINS = "ranking_margins"


def margins(probs: NDArray[Any], multilabel: bool) -> NDArray[np.float64]:
    """Per row, the gap between the two most likely classes (multi-label: twice the least
    certain label's distance from 0.5); small = uncertain."""
    out = np.empty(probs.shape[0], dtype=np.float64)
    for start in range(0, probs.shape[0], _CHUNK):
        p = np.asarray(probs[start:start + _CHUNK], dtype=np.float64)
        if multilabel:
            out[start:start + p.shape[0]] = 2.0 * np.abs(p - 0.5).min(axis=1)
        elif p.shape[1] == 1:
            out[start:start + p.shape[0]] = 1.0
        else:
            top = -np.partition(-p, 1, axis=1)[:, :2]
            out[start:start + p.shape[0]] = top[:, 0] - top[:, 1]
    out[~np.isfinite(out)] = 1.0
    return out


@dataclass(frozen=True)
class Ranking:
    """Ranks of the items behind a round's batch: ``rows`` (array-store rows) get ``ranks``;
    ``sorted_margins`` are the ranked pool items' margins in queue order (for imports)."""

    rows: NDArray[np.int64]
    ranks: NDArray[np.float64]
    sorted_margins: NDArray[np.float64]
    batch: int


def queue_draws(seed: int, project_id: int, rows: Any) -> NDArray[np.float64]:
    """A seeded draw in [0, 1) per row (the rows' queue keys, scaled)."""
    return (queue_keys(seed, project_id, rows) - RANDOM_BASE) / float(2 ** KEY_BITS)


def seeded_order(values: NDArray[Any], rows: NDArray[Any], seed: int,
                 project_id: int) -> NDArray[np.intp]:
    """Positions of ``values`` in ascending order, equal values in a seeded random order (by
    the rows' queue keys) rather than the file's: a model of one class scores every item
    alike. Only the runs of equal values are sorted again (saturated margins make long ones
    on a large pool; a two-key sort of every row costs three times the one sort)."""
    order = np.argsort(values, kind="stable")
    ordered = values[order]
    same = ordered[1:] == ordered[:-1]
    if not same.any():
        return order
    tied = np.zeros(order.shape[0], dtype=bool)
    tied[1:] |= same
    tied[:-1] |= same
    at = np.flatnonzero(tied)
    run = order[at]  # runs stay in their places: sorted by value first, they do not mix
    order[at] = run[np.lexsort((queue_keys(seed, project_id, rows[run]), values[run]))]
    return order


def full_ranking(splits: NDArray[np.str_], batch_rows: NDArray[np.intp], probs: NDArray[Any],
                 *, multilabel: bool, seed: int, project_id: int,
                 left_out: NDArray[np.intp] | None = None) -> Ranking:
    """Every row outside ``batch_rows`` and ``left_out`` (purged items: no rank, no task)
    ranked behind the batch: pool rows by margin (ascending; equal margins in a seeded random
    order, not the file's: a model of one class scores every item alike), other splits at
    seeded random places. O(n log n), no n x n."""
    n = min(splits.shape[0], probs.shape[0])
    behind = np.ones(n, dtype=bool)
    for skip in (np.asarray(batch_rows, dtype=np.intp),
                 np.asarray(left_out if left_out is not None else [], dtype=np.intp)):
        behind[skip[skip < n]] = False
    batch_rows = np.asarray(batch_rows, dtype=np.intp)
    rows = np.flatnonzero(behind)
    pool = splits[rows] == "pool"
    m = margins(probs[rows[pool]], multilabel) if pool.any() else np.empty(0)
    frac = np.empty(rows.shape[0], dtype=np.float64)
    pool_order = seeded_order(m, rows[pool], seed, project_id)
    place = np.empty(pool_order.shape[0], dtype=np.float64)
    place[pool_order] = (np.arange(pool_order.shape[0]) + 0.5) / max(pool_order.shape[0], 1)
    frac[pool] = place
    others = rows[~pool]
    frac[~pool] = queue_draws(seed, project_id, others)
    order = np.argsort(frac, kind="stable")
    ranks = np.empty(rows.shape[0], dtype=np.float64)
    k = int(batch_rows.shape[0])
    ranks[order] = SCORED_BASE + k + np.arange(rows.shape[0], dtype=np.float64)
    return Ranking(rows.astype(np.int64), ranks, m[pool_order], k)


def write_full_ranking(storage: Storage, project_id: int, ranking: Ranking) -> None:
    """Write the ranks behind the batch (after the round's record, which wrote the batch).

    SQLite: transactions of :data:`SQLITE_WRITE_CHUNK` rows with a pause after each (from
    ``REBUILD_FROM_ROWS`` rows, one transaction that rebuilds the indexes, far faster on a
    large pool: :func:`write_ranking`). PostgreSQL: transactions
    of :data:`PG_WRITE_CHUNK` rows that leave out the items someone holds a lease on (those
    an annotation updates next); those few rows are written last, a row an annotation holds
    locked skipped and tried again, then waited for. Every row ends with its rank."""
    with storage.sessions() as session:
        postgres = dialect_of(session) == "postgresql"
    rows, ranks = ranking.rows, ranking.ranks
    if not postgres:
        step = rows.shape[0] if rows.shape[0] >= REBUILD_FROM_ROWS else SQLITE_WRITE_CHUNK
        for start in range(0, rows.shape[0], step):
            if start:
                time.sleep(SQLITE_WRITE_PAUSE)
            with storage.sessions() as session, session.begin():
                write_ranking(session, project_id, rows[start:start + step],
                              ranks[start:start + step])
        return
    left: list[NDArray[np.int64]] = []
    for start in range(0, rows.shape[0], PG_WRITE_CHUNK):
        part = rows[start:start + PG_WRITE_CHUNK]
        with storage.sessions() as session, session.begin():
            done = write_ranking_unleased(session, project_id, part,
                                          ranks[start:start + PG_WRITE_CHUNK], utcnow())
        if len(done) < part.shape[0]:
            left.append(start + np.flatnonzero(~np.isin(part, list(done))))
    if not left:
        return
    todo = np.concatenate(left)
    for attempt in range(_LEASED_TRIES + 1):
        with storage.sessions() as session, session.begin():
            done = write_ranking_locked_rows(session, project_id, rows[todo], ranks[todo],
                                             wait=attempt == _LEASED_TRIES)
        todo = todo[~np.isin(rows[todo], list(done))]
        if todo.shape[0] == 0 or attempt == _LEASED_TRIES:
            return  # rows still left on the waiting write: items no longer in the project
        time.sleep(_LEASED_PAUSE)


def save_ranking_meta(storage: Storage, project_id: int, ranking: Ranking,
                      round_number: int) -> None:
    """Keep what an import needs to place new items: the ranked margins and the ranking's
    shape (batch size, items behind it, the round that wrote it)."""
    storage.arrays.save(project_id, _MARGINS, ranking.sorted_margins)
    meta = {"batch": ranking.batch, "behind": int(ranking.rows.shape[0]),
            "round": int(round_number)}
    path = storage.arrays.project_dir(project_id) / _META
    atomic_write(path, lambda h: h.write(json.dumps(meta).encode()))


def _load_meta(storage: Storage, project_id: int) -> dict[str, Any] | None:
    try:
        meta: dict[str, Any] = json.loads(
            (storage.arrays.project_dir(project_id) / _META).read_text())
    except (OSError, ValueError):
        return None
    return meta


def place_new_items(storage: Storage, project_id: int, first_row: int) -> int:
    """Score the items from ``first_row`` on with the active model and give each the rank its
    margin earns in the current ranking (between the ranked items of nearest margin); other
    splits keep their random key. Returns how many items were placed (0 without a model, when
    the active model's features are no longer the cached ones, or when they read sentence
    vectors and more than ``INLINE_TEXTS`` items came: the next round ranks those)."""
    from ..features import TextFeaturizer, sentence_model_version
    from .featurize import (
        cached_fingerprint,
        cached_sentence_model,
        load_featurizer,
        pixel_reader,
        slim_record,
        transform_items,
    )
    from .sentences import INLINE_TEXTS, vectors_from_row

    meta = _load_meta(storage, project_id)
    sorted_margins = storage.arrays.load(project_id, _MARGINS, mmap=False)
    with storage.read_sessions() as session:
        project = session.get(Project, project_id)
        active = active_model_version(session, project_id)
        if project is None or active is None or not active.artifact_path or meta is None \
                or sorted_margins is None or sorted_margins.shape[0] == 0:
            return 0
        featurizer = load_featurizer(storage, project_id)
        if featurizer is None:
            return 0
        new = _new_pool_items(session, project_id, first_row)
        multilabel = project.task == "multilabel"
    if not new:
        return 0
    try:
        with open(active.artifact_path, "rb") as handle:
            artifact = pickle.load(handle)  # written by labeling.rounds
    except OSError:
        return 0
    if artifact.get("fingerprint") != cached_fingerprint(storage, project_id):
        return 0  # the cached featurizer is not the one the model was trained on
    if artifact.get("model") is None:
        return 0  # a model served elsewhere: the next round scores the new items
    vectors = None
    if isinstance(featurizer, TextFeaturizer) and getattr(featurizer, "sentence_weight_",
                                                          None):
        n_rows = new[-1][0] - first_row + 1  # every new row is embedded, the pool's read
        if n_rows > INLINE_TEXTS:  # would hold the import for minutes: the next round ranks
            return 0
        if cached_sentence_model(storage, project_id) != sentence_model_version():
            return 0  # the model read another model's vectors: the next round ranks them
        # embedded once: stored for the next build as well
        every = vectors_from_row(storage, project_id, first_row, n_rows, featurizer.field)
        vectors = every[np.asarray([row - first_row for row, _ in new], dtype=np.intp)]
    pixels = pixel_reader(storage, project_id, featurizer)
    records = [slim_record(featurizer, data, pixels) for _, data in new]
    X, _ = transform_items(featurizer, records, sentence_vectors=vectors)
    probs = np.asarray(artifact["model"].predict_proba(X), dtype=np.float64)
    m = margins(probs, multilabel)
    rows = np.asarray([row for row, _ in new], dtype=np.int64)
    position = margin_positions(sorted_margins, m,
                                queue_draws(int(meta.get("round", 0)), project_id, rows))
    ranks = SCORED_BASE + int(meta["batch"]) + position * int(meta["behind"]) - 0.5
    ranks = np.maximum(ranks, SCORED_BASE + int(meta["batch"]))  # behind the batch, never in it
    with storage.sessions() as session, session.begin():
        return write_ranking(session, project_id, rows, ranks)


def margin_positions(sorted_margins: NDArray[np.float64], m: NDArray[np.float64],
                     draw: NDArray[np.float64]) -> NDArray[np.float64]:
    """Where items of margins ``m`` go among the ranked ones (0 to 1): beside the nearest
    margin, and within a run of equal margins at the place ``draw`` (0 to 1, a seeded draw
    per item) says, not all at its head (a model of one class gives every item one margin:
    the new items would all go first, then by row, the file's order)."""
    lo = np.searchsorted(sorted_margins, m, side="left")
    hi = np.searchsorted(sorted_margins, m, side="right")
    return (lo + (hi - lo) * draw) / max(sorted_margins.shape[0], 1)


def _new_pool_items(session: Session, project_id: int,
                    first_row: int) -> list[tuple[int, dict[str, Any]]]:
    stmt = (select(Item.row, Item.data).where(Item.project_id == project_id,
                                              Item.row >= first_row, Item.split == "pool")
            .order_by(Item.row))
    return [(int(r), dict(d or {})) for r, d in session.execute(stmt)]
