"""Governance records: guideline versions, the decision log, snapshots, calibration sessions,
and purging item payloads on request. Every change writes an audit event.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, Protocol, TypeVar

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from ._util import get_or_raise, item_in_project
from .audit import record_audit
from .errors import InvalidInput, NotFound
from .items import content_hash
from .models import (
    Annotation,
    Assignment,
    CalibrationItem,
    CalibrationSession,
    Decision,
    Item,
    ModelVersion,
    Project,
    ProjectVersion,
    Round,
    Snapshot,
    utcnow,
)

__all__ = [
    "LABELS_UPTO",
    "MAX_TOPIC",
    "add_decision",
    "create_calibration",
    "create_snapshot",
    "decisions_for_round",
    "get_calibration",
    "get_snapshot",
    "list_calibrations",
    "list_decisions",
    "list_project_versions",
    "list_snapshots",
    "models_trained_on",
    "purge_items",
    "record_project_version",
]

MAX_TOPIC = 100


def record_project_version(session: Session, project: Project,
                           author_id: int | None) -> ProjectVersion:
    """Store the project's current label set and guidelines as ``guidelines_version``."""
    version = ProjectVersion(project_id=project.id, version=project.guidelines_version,
                             labels=list(project.labels), guidelines=project.guidelines or "",
                             author_id=author_id)
    session.add(version)
    session.flush()
    return version


def list_project_versions(session: Session, project_id: int) -> list[ProjectVersion]:
    stmt = (select(ProjectVersion).where(ProjectVersion.project_id == project_id)
            .order_by(ProjectVersion.version))
    return list(session.execute(stmt).scalars())


def _next_round_number(session: Session, project_id: int) -> int:
    last = session.execute(select(func.max(Round.number)).where(
        Round.project_id == project_id)).scalar()
    return int(last or 0) + 1


def add_decision(session: Session, project_id: int, author_id: int | None, topic: str,
                 text: str, *, from_round: int | None = None) -> Decision:
    """Log why a strategy or rule was chosen; it applies from ``from_round`` (default: the next
    round to run)."""
    topic, text = topic.strip(), text.strip()
    if not topic or len(topic) > MAX_TOPIC:
        raise InvalidInput(f"topic must be 1-{MAX_TOPIC} characters, e.g. 'strategy' or "
                           "'consensus'")
    if not text:
        raise InvalidInput("text is empty: say what was decided and why")
    if from_round is not None and from_round < 1:
        raise InvalidInput(f"from_round is a round number (1, 2, ...), got {from_round}")
    decision = Decision(project_id=project_id, author_id=author_id, topic=topic, text=text,
                        from_round=from_round if from_round is not None
                        else _next_round_number(session, project_id))
    session.add(decision)
    session.flush()
    record_audit(session, "create", "decision", decision.id, project_id=project_id,
                 actor_id=author_id, after={"topic": topic, "text": text,
                                            "from_round": decision.from_round})
    return decision


def list_decisions(session: Session, project_id: int) -> list[Decision]:
    stmt = select(Decision).where(Decision.project_id == project_id).order_by(Decision.id)
    return list(session.execute(stmt).scalars())


class _Logged(Protocol):
    @property
    def id(self) -> int: ...
    @property
    def topic(self) -> str: ...
    @property
    def from_round(self) -> int | None: ...


LoggedT = TypeVar("LoggedT", bound=_Logged)


def decisions_for_round(decisions: Sequence[LoggedT], number: int) -> list[LoggedT]:
    """The decisions in force in round ``number``: per topic, the latest one logged from a round
    at or before it (``decisions`` as stored, or any objects with their id, topic and
    from_round)."""
    latest: dict[str, LoggedT] = {}
    for d in decisions:
        if (d.from_round or 1) <= number:
            latest[d.topic] = d
    return sorted(latest.values(), key=lambda d: d.id)


def create_snapshot(session: Session, project: Project, *, content_hash: str, path: str,
                    n_items: int, model_version: int | None, created_by: int | None,
                    note: str | None = None) -> Snapshot:
    snapshot = Snapshot(project_id=project.id, content_hash=content_hash, path=path,
                        n_items=n_items, model_version=model_version,
                        guidelines_version=project.guidelines_version, note=note,
                        created_by=created_by)
    session.add(snapshot)
    session.flush()
    record_audit(session, "create", "snapshot", snapshot.id, project_id=project.id,
                 actor_id=created_by, after={"content_hash": content_hash, "n_items": n_items,
                                             "model_version": model_version,
                                             "guidelines_version": project.guidelines_version})
    return snapshot


def get_snapshot(session: Session, project_id: int, snapshot_id: int) -> Snapshot:
    snapshot = session.get(Snapshot, snapshot_id)
    if snapshot is None or snapshot.project_id != project_id:
        raise NotFound(f"snapshot {snapshot_id} does not exist in project {project_id}: list "
                       "them with GET /projects/{id}/snapshots")
    return snapshot


def list_snapshots(session: Session, project_id: int) -> list[Snapshot]:
    stmt = select(Snapshot).where(Snapshot.project_id == project_id).order_by(Snapshot.id)
    return list(session.execute(stmt).scalars())


def create_calibration(session: Session, project_id: int, name: str, item_ids: Sequence[int],
                       created_by: int | None) -> CalibrationSession:
    """A calibration session over ``item_ids``: items every annotator is meant to label."""
    project = get_or_raise(session, Project, project_id)
    if not name.strip() or len(name) > 200:
        raise InvalidInput(f"name must be 1-200 characters, got {len(name)}")
    ids = list(dict.fromkeys(int(i) for i in item_ids))
    if len(ids) < 1:
        raise InvalidInput("a calibration session needs at least one item_id")
    for item_id in ids:
        item_in_project(session, project_id, item_id)
    cal = CalibrationSession(project_id=project_id, name=name.strip(),
                             guidelines_version=project.guidelines_version,
                             created_by=created_by)
    session.add(cal)
    session.flush()
    session.add_all([CalibrationItem(session_id=cal.id, item_id=i) for i in ids])
    session.flush()
    record_audit(session, "create", "calibration", cal.id, project_id=project_id,
                 actor_id=created_by, after={"name": cal.name, "items": len(ids)})
    return cal


def get_calibration(session: Session, project_id: int,
                    calibration_id: int) -> tuple[CalibrationSession, list[int]]:
    cal = session.get(CalibrationSession, calibration_id)
    if cal is None or cal.project_id != project_id:
        raise NotFound(f"calibration session {calibration_id} does not exist in project "
                       f"{project_id}: list them with GET /projects/{{id}}/calibrations")
    ids = list(session.execute(select(CalibrationItem.item_id).where(
        CalibrationItem.session_id == cal.id).order_by(CalibrationItem.item_id)).scalars())
    return cal, ids


def list_calibrations(session: Session, project_id: int) -> list[CalibrationSession]:
    stmt = (select(CalibrationSession).where(CalibrationSession.project_id == project_id)
            .order_by(CalibrationSession.id))
    return list(session.execute(stmt).scalars())


def purge_items(session: Session, project_id: int, item_ids: Sequence[int], *,
                actor_id: int | None, now: datetime | None = None) -> list[Item]:
    """Remove the payloads of the items on request (data becomes ``{}``, private fields go,
    ``purged_at`` set); annotations and the audit trail stay. Each purge writes an audit event
    naming the item and the fields removed (never their values). A purged item leaves the
    loop: its open leases end, the queue hands it out no more (:mod:`.queue`) and rounds
    neither pick it nor learn from it (``labeling.rounds``)."""
    ids = list(dict.fromkeys(int(i) for i in item_ids))
    if not ids:
        raise InvalidInput("give at least one item to purge (item_ids or external_ids)")
    items = [item_in_project(session, project_id, i) for i in ids]
    when = now or utcnow()
    for item in items:
        fields: list[Any] = sorted({*(item.data or {}), *(item.private or {})})
        # The hash of a short payload could be guessed back: it goes too.
        item.data, item.purged_at, item.content_hash = {}, when, content_hash({})
        item.private = None
        # out of the queue's order and the audit draws' (rounds leave it unranked)
        item.queue_rank = item.queue_key = None
        record_audit(session, "purge", "item", item.id, project_id=project_id,
                     actor_id=actor_id, before={"external_id": item.external_id,
                                                "fields": fields},
                     after={"external_id": item.external_id, "purged_at": when.isoformat()})
    session.execute(update(Assignment).where(Assignment.item_id.in_(ids),
                                             Assignment.released_at.is_(None),
                                             Assignment.completed_at.is_(None),
                                             Assignment.expires_at > when)
                    .values(expires_at=when).execution_options(synchronize_session=False))
    session.flush()
    return items


#: A model version's metrics key: the newest revision id of the project when its round was
#: recorded, an upper bound of the labels the round can have read.
LABELS_UPTO = "labels_upto"


def models_trained_on(session: Session, project_id: int,
                      item_ids: Sequence[int]) -> list[ModelVersion]:
    """The project's model versions with a stored file that may have been trained on labels
    of ``item_ids``: those whose round was recorded after the first label given to any of
    them (revision ids, never clocks: an imported label keeps its file's time), and those
    that did not record it (:data:`LABELS_UPTO`)."""
    if not item_ids:
        return []
    first = session.execute(select(func.min(Annotation.id)).where(
        Annotation.project_id == project_id,
        Annotation.item_id.in_([int(i) for i in item_ids]))).scalar_one_or_none()
    if first is None:
        return []
    stored = session.execute(select(ModelVersion).where(
        ModelVersion.project_id == project_id, ModelVersion.artifact_path.is_not(None)
    ).order_by(ModelVersion.version)).scalars()
    return [mv for mv in stored
            if not isinstance((mv.metrics or {}).get(LABELS_UPTO), int)
            or (mv.metrics or {})[LABELS_UPTO] >= first]
