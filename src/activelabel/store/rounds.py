"""Rounds (train, score, select), their selections (provenance) and model versions."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import (
    ColumnElement,
    Select,
    Table,
    bindparam,
    func,
    insert,
    select,
    text,
    update,
)
from sqlalchemy.orm import Session

from ._util import lock_project
from .db import dialect_of
from .errors import Conflict, InvalidInput, NotFound
from .models import Item, ModelVersion, Round, RoundSelection, RoundStatus, utcnow
from .queue import SCORED_BASE

#: Statuses of a round that is still to finish.
PENDING_STATUSES = (RoundStatus.QUEUED, RoundStatus.RUNNING)

__all__ = [
    "PENDING_STATUSES",
    "Provenance",
    "activate_model_version",
    "active_model_version",
    "create_model_version",
    "create_round",
    "fail_round",
    "finish_round",
    "get_model_version",
    "get_round",
    "item_provenance",
    "last_finished_round",
    "last_finished_round_id",
    "latest_round",
    "list_models",
    "list_rounds",
    "model_version_numbers",
    "record_selection",
    "round_selections",
    "selection_rows",
    "start_round",
]


def create_round(session: Session, project_id: int, *, strategy: str, batch_size: int,
                 job_id: int | None = None) -> Round:
    """New queued round numbered after the project's last one (1, 2, ...)."""
    if batch_size < 1:
        raise InvalidInput(f"batch_size must be >= 1, got {batch_size}")
    lock_project(session, project_id)
    last = session.execute(select(func.max(Round.number)).where(
        Round.project_id == project_id)).scalar()
    rnd = Round(project_id=project_id, number=(last or 0) + 1, status=RoundStatus.QUEUED,
                strategy=strategy, batch_size=batch_size, job_id=job_id)
    session.add(rnd)
    session.flush()
    return rnd


def get_round(session: Session, project_id: int, round_id: int) -> Round:
    rnd = session.get(Round, round_id)
    if rnd is None or rnd.project_id != project_id:
        raise NotFound(f"round {round_id} does not exist in project {project_id}: list the rounds")
    return rnd


def list_rounds(session: Session, project_id: int) -> list[Round]:
    stmt = select(Round).where(Round.project_id == project_id).order_by(Round.number)
    return list(session.execute(stmt).scalars())


def start_round(session: Session, project_id: int, round_id: int, *,
                now: datetime | None = None) -> Round:
    rnd = get_round(session, project_id, round_id)
    if rnd.status != RoundStatus.QUEUED:
        raise Conflict(f"round {round_id} is {rnd.status}, only a queued round can start")
    rnd.status, rnd.started_at = RoundStatus.RUNNING, now or utcnow()
    return rnd


def finish_round(session: Session, project_id: int, round_id: int, *,
                 model_version_id: int | None = None, n_labels_used: int | None = None,
                 label_watermark: int | None = None,
                 metrics: Mapping[str, Any] | None = None, gain: Mapping[str, Any] | None = None,
                 timings: Mapping[str, float] | None = None,
                 now: datetime | None = None) -> Round:
    """Mark the round done with its results; ``timings`` holds train_s, score_s, select_s;
    ``label_watermark`` is the newest revision id the round read (see
    :func:`~activelabel.store.annotations.count_labeled_since`)."""
    rnd = get_round(session, project_id, round_id)
    if rnd.status not in PENDING_STATUSES:
        raise Conflict(f"round {round_id} is already {rnd.status}")
    rnd.status, rnd.finished_at = RoundStatus.DONE, now or utcnow()
    rnd.model_version_id, rnd.n_labels_used = model_version_id, n_labels_used
    rnd.label_watermark = label_watermark
    rnd.metrics = None if metrics is None else dict(metrics)
    rnd.gain = None if gain is None else dict(gain)
    rnd.timings = None if timings is None else dict(timings)
    return rnd


def fail_round(session: Session, project_id: int, round_id: int, error: str, *,
               now: datetime | None = None) -> Round:
    rnd = get_round(session, project_id, round_id)
    rnd.status, rnd.finished_at, rnd.error = RoundStatus.FAILED, now or utcnow(), error
    return rnd


def record_selection(session: Session, project_id: int, round_id: int, item_ids: Sequence[int],
                     scores: Sequence[float | None] | None = None, *,
                     model_version_id: int | None = None, strategy: str | None = None) -> int:
    """Store why each item was picked (rank = position in ``item_ids``, best first) and make
    this ranking the head of the queue: the items get ``queue_rank = rank``, those of an
    earlier batch get their import key back (``Item.queue_key``)."""
    rnd = get_round(session, project_id, round_id)
    ids = [int(i) for i in item_ids]
    if scores is not None and len(scores) != len(ids):
        raise InvalidInput(f"scores has {len(scores)} entries for {len(ids)} items; give one each")
    if len(set(ids)) != len(ids):
        raise InvalidInput("item_ids repeat an item; a round selects each item once")
    _check_items(session, project_id, ids)
    dialect = dialect_of(session)
    # Only the items leaving the ranking are cleared, and each ranked item is written once:
    # the rows this locks are those annotators label right now, so the fewer and the shorter
    # the better (an annotation's label count waits for them).
    if ids:
        given = [None] * len(ids) if scores is None else list(scores)
        session.execute(insert(RoundSelection), [
            {"round_id": round_id, "item_id": i, "rank": rank,
             "score": None if score is None else float(score),
             "strategy": strategy or rnd.strategy, "model_version_id": model_version_id}
            for rank, (i, score) in enumerate(zip(ids, given, strict=True))])
    # The items leaving the batch go back to their import key (a round with a model then
    # writes the whole ranking behind the batch): one parameter however long the batch is.
    chosen = select(RoundSelection.item_id).where(RoundSelection.round_id == round_id)
    session.execute(update(Item).where(Item.project_id == project_id,
                                       Item.queue_rank < SCORED_BASE, Item.id.not_in(chosen))
                    .values(queue_rank=Item.queue_key)
                    .execution_options(synchronize_session=False))
    if ids:
        _write_ranks(session, ids, dialect)
    session.expire_all()
    return len(ids)


def _write_ranks(session: Session, ids: list[int], dialect: str) -> None:
    """``queue_rank = position in ids`` for the items, skipping those already there."""
    ranks = [float(r) for r in range(len(ids))]
    if dialect == "postgresql":  # one statement, not one per item
        session.execute(text(
            "UPDATE items SET queue_rank = v.rank FROM unnest(CAST(:ids AS integer[]), "
            "CAST(:ranks AS double precision[])) AS v(id, rank) "
            "WHERE items.id = v.id AND items.queue_rank IS DISTINCT FROM v.rank"),
            {"ids": ids, "ranks": ranks})
        return
    table = cast(Table, Item.__table__)
    stmt = (update(table).where(table.c.id == bindparam("b_id"),
                                table.c.queue_rank.is_distinct_from(bindparam("b_rank")))
            .values(queue_rank=bindparam("b_rank")))
    session.connection().execute(stmt, [{"b_id": i, "b_rank": r}
                                        for i, r in zip(ids, ranks, strict=True)])


def _check_items(session: Session, project_id: int, ids: list[int]) -> None:
    found = 0
    for start in range(0, len(ids), 5000):
        chunk = ids[start:start + 5000]
        found += session.execute(select(func.count()).select_from(Item).where(
            Item.project_id == project_id, Item.id.in_(chunk))).scalar_one()
    if found != len(ids):
        raise InvalidInput(f"{len(ids) - found} of {len(ids)} item ids are not in project "
                           f"{project_id}: select among the project's items")


def round_selections(session: Session, round_id: int) -> list[RoundSelection]:
    stmt = select(RoundSelection).where(RoundSelection.round_id == round_id).order_by(
        RoundSelection.rank)
    return list(session.execute(stmt).scalars())


def selection_rows(session: Session, round_id: int,
                   limit: int | None = None) -> list[tuple[int, str, int, float | None, str,
                                                           int | None]]:
    """The first ``limit`` selections of a round by rank as plain rows, one query: item id,
    external id, rank, score, strategy, model version number (None once the model is gone)."""
    stmt = (select(RoundSelection.item_id, Item.external_id, RoundSelection.rank,
                   RoundSelection.score, RoundSelection.strategy, ModelVersion.version)
            .join(Item, Item.id == RoundSelection.item_id)
            .outerjoin(ModelVersion, ModelVersion.id == RoundSelection.model_version_id)
            .where(RoundSelection.round_id == round_id)
            .order_by(RoundSelection.rank, RoundSelection.item_id).limit(limit))
    return list(session.execute(stmt).all())


def create_model_version(session: Session, project_id: int, *, round_id: int | None = None,
                         parent_id: int | None = None, artifact_path: str | None = None,
                         training_set_hash: str | None = None, n_train: int = 0,
                         metrics: Mapping[str, Any] | None = None) -> ModelVersion:
    """New (inactive) model version numbered after the project's last one."""
    lock_project(session, project_id)
    last = session.execute(select(func.max(ModelVersion.version)).where(
        ModelVersion.project_id == project_id)).scalar()
    model = ModelVersion(project_id=project_id, version=(last or 0) + 1, round_id=round_id,
                         parent_id=parent_id, artifact_path=artifact_path,
                         training_set_hash=training_set_hash, n_train=n_train,
                         metrics=None if metrics is None else dict(metrics), is_active=False)
    session.add(model)
    session.flush()
    return model


def get_model_version(session: Session, project_id: int, version: int) -> ModelVersion:
    stmt = select(ModelVersion).where(ModelVersion.project_id == project_id,
                                      ModelVersion.version == version)
    model = session.execute(stmt).scalar_one_or_none()
    if model is None:
        raise NotFound(f"model version {version} does not exist in project {project_id}: "
                       "list the models")
    return model


def activate_model_version(session: Session, project_id: int, version: int) -> ModelVersion:
    """Make ``version`` the project's only active model (rollback = activate an older one)."""
    lock_project(session, project_id)
    model = get_model_version(session, project_id, version)
    session.execute(update(ModelVersion).where(ModelVersion.project_id == project_id,
                                               ModelVersion.is_active.is_(True))
                    .values(is_active=False).execution_options(synchronize_session="fetch"))
    session.flush()
    model.is_active = True
    session.flush()
    return model


def active_model_version(session: Session, project_id: int) -> ModelVersion | None:
    stmt = select(ModelVersion).where(ModelVersion.project_id == project_id,
                                      ModelVersion.is_active.is_(True))
    return session.execute(stmt).scalar_one_or_none()


def list_models(session: Session, project_id: int) -> list[ModelVersion]:
    stmt = select(ModelVersion).where(ModelVersion.project_id == project_id).order_by(
        ModelVersion.version)
    return list(session.execute(stmt).scalars())


def last_finished_round_id(project_id: int | ColumnElement[int]) -> Select[int]:
    """The id of the project's latest finished round, as a query to embed in others."""
    return (select(Round.id).where(Round.project_id == project_id, Round.status == RoundStatus.DONE)
            .order_by(Round.number.desc()).limit(1))


def last_finished_round(session: Session, project_id: int) -> Round | None:
    """The project's latest finished round (the ranking being served), or None."""
    return session.execute(select(Round).where(
        Round.id.in_(last_finished_round_id(project_id)))).scalar_one_or_none()


@dataclass(frozen=True)
class Provenance:
    """Why an item was selected: the round (id and number), its rank and score there, the
    strategy and the model version that scored it (None once the model is gone)."""

    item_id: int
    round_id: int
    round: int
    rank: int
    score: float | None
    strategy: str
    model_version: int | None


def item_provenance(session: Session, item_ids: Sequence[int]) -> dict[int, list[Provenance]]:
    """Item id -> every round selection of the item, oldest round first (one query per
    thousand items). The last entry is why the item is where it is now."""
    out: dict[int, list[Provenance]] = {}
    ids = list(item_ids)
    for start in range(0, len(ids), 1000):
        stmt = (select(RoundSelection.item_id, RoundSelection.round_id, Round.number,
                       RoundSelection.rank, RoundSelection.score, RoundSelection.strategy,
                       ModelVersion.version)
                .join(Round, Round.id == RoundSelection.round_id)
                .outerjoin(ModelVersion, ModelVersion.id == RoundSelection.model_version_id)
                .where(RoundSelection.item_id.in_(ids[start:start + 1000]))
                .order_by(RoundSelection.item_id, Round.number))
        for row in session.execute(stmt):
            out.setdefault(int(row[0]), []).append(Provenance(*row))
    return out


def model_version_numbers(session: Session, project_id: int) -> dict[int, int]:
    """Model version id -> version number, for every model version of the project."""
    stmt = select(ModelVersion.id, ModelVersion.version).where(
        ModelVersion.project_id == project_id)
    return {int(i): int(v) for i, v in session.execute(stmt)}


def latest_round(session: Session, project_id: int, *,
                 statuses: Sequence[str] | None = None) -> Round | None:
    """The project's round with the highest number, among ``statuses`` when given."""
    stmt = select(Round).where(Round.project_id == project_id)
    if statuses is not None:
        stmt = stmt.where(Round.status.in_(list(statuses)))
    return session.execute(stmt.order_by(Round.number.desc()).limit(1)).scalar_one_or_none()
