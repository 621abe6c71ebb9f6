"""Governance over a project: who wrote each decision and version, removing item payloads on
request, re-applying a snapshot, the audit trail read whole, gold answers and flags resolved (each
such change an audit event)."""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from pydantic import BaseModel
from sqlalchemy.orm import Session

from ..store import (
    InvalidInput,
    Storage,
    audit_after,
    item_ids_by_external_id,
    record_audit,
    resolve_flag,
    set_gold,
    usernames,
)
from ..store._util import item_in_project, lock_project
from ..store.db import on_transaction_end, truncate_wal
from ..store.governance import list_project_versions, models_trained_on, purge_items
from ..store.models import AuditEvent, Decision, Flag, Item, Project, Split
from . import sentences
from .featurize import new_purge_stamp
from .images import forget_images, is_image_ref
from .rounds import queued_rerank, request_training
from .snapshots import redact_snapshots, restore_snapshot
from .vectors import purge_vectors

__all__ = [
    "AUDIT_PAGE",
    "DecisionView",
    "VersionView",
    "audit_trail",
    "decision_views",
    "purge",
    "resolve",
    "restore",
    "set_gold_answers",
    "version_views",
]

#: Audit events read per query when the whole trail is read.
AUDIT_PAGE = 1000


class DecisionView(BaseModel):
    """A logged decision with its author's username."""

    id: int
    topic: str
    text: str
    from_round: int | None
    author: str | None
    created_at: datetime


def decision_views(session: Session, decisions: Sequence[Decision]) -> list[DecisionView]:
    """Decisions with their authors' usernames."""
    names = usernames(session, {d.author_id for d in decisions})
    return [DecisionView(id=d.id, topic=d.topic, text=d.text, from_round=d.from_round,
                         author=names.get(d.author_id or 0), created_at=d.created_at)
            for d in decisions]


class VersionView(BaseModel):
    """A version of the label set and guidelines with its author's username."""

    version: int
    labels: list[Any]
    guidelines: str
    author: str | None
    created_at: datetime


def version_views(session: Session, project_id: int) -> list[VersionView]:
    """Every version of the label set and guidelines, oldest first, with its author."""
    found = list_project_versions(session, project_id)
    names = usernames(session, {v.author_id for v in found})
    return [VersionView(version=v.version, labels=list(v.labels), guidelines=v.guidelines,
                        author=names.get(v.author_id or 0), created_at=v.created_at)
            for v in found]


def purge(session: Session, storage: Storage, project_id: int, *, item_ids: Sequence[int],
          external_ids: Sequence[str], actor_id: int) -> list[Item]:
    """Remove the payloads of the items given by id or external id (each purge an audit
    event) and drop the project's cached features, which the next round rebuilds without them.

    Snapshots are redacted, user vectors blanked and the purge stamp renewed before the
    session commits; once it has committed the stamp is renewed again and the stored sentence
    vectors of the purged rows are blanked: a build that read the payloads before the commit
    keeps nothing, and no model trained before the purge is taken for one of the rebuilt
    features. A span project's model files that may have learned from the items' labels are
    removed (a span model keeps the words of the sentences it trained on; a round is queued
    to train one without them), and a SQLite database's write-ahead log, which still holds
    the old payloads, is folded into the file (whose freed space SQLite overwrites) once the
    purge commits (:func:`fold_wal`)."""
    project = lock_project(session, project_id)  # one purge or snapshot of the project at a time
    ids = list(item_ids)
    if external_ids:
        found = item_ids_by_external_id(session, project_id, external_ids)
        unknown = [e for e in external_ids if e not in found]
        if unknown:
            raise InvalidInput(f"{len(unknown)} external_ids are not items of project "
                               f"{project_id} (first: {unknown[:5]})")
        ids += [found[e] for e in external_ids]
    found_items = [item_in_project(session, project_id, int(i)) for i in ids]
    images = [value for item in found_items for value in (item.data or {}).values()
              if is_image_ref(value)]
    # what a span model may have learned: the labels of items purged now (not again), which
    # rounds train on (the holdout's only measure)
    learned = [item.id for item in found_items
               if item.purged_at is None and item.split != Split.HOLDOUT]
    items = purge_items(session, project_id, ids, actor_id=actor_id)
    session.flush()
    forget_images(session, storage, project_id, images)  # image files go with their items
    redact_snapshots(session, project_id, [item.id for item in items], actor_id=actor_id)
    rows = [item.row for item in items]
    new_purge_stamp(storage, project_id)
    purge_vectors(storage, project_id, rows)
    if project.task == "spans":
        _forget_span_models(session, storage, project_id, learned, actor_id)
    if storage.engine.dialect.name == "sqlite":  # before the commit: a crash after it
        (storage.location.data_dir / WAL_PENDING).touch()  # leaves the worker its work

    def committed() -> None:
        new_purge_stamp(storage, project_id)
        try:
            # after the commit: a build that read a text before it finds the blank row (its
            # key is the empty text's) and keeps it, and a rolled back purge blanks nothing
            sentences.purge_rows(storage, project_id, rows)
        finally:
            fold_wal(storage)

    on_transaction_end(session, committed=committed, rolled_back=lambda: None)
    return items


#: Set in a model version's metrics when a purge removed its file.
FORGOTTEN = "removed_by_purge"


def _forget_span_models(session: Session, storage: Storage, project_id: int,
                        item_ids: Sequence[int], actor_id: int) -> None:
    """Remove the files of the span model versions that may have learned from labels of
    ``item_ids`` (each an audit event ``forget``). The versions stay in the history, marked
    :data:`FORGOTTEN` (no rollback to them). When the active one is among them, a round is
    queued to train a model without the purged items. The files go at once, not at the
    commit: a crash in between leaves no copy behind, and should the purge roll back, a
    version whose file is gone only cannot score again (the next round trains a new one)."""
    forgotten: set[int] = set()
    active = False
    for mv in models_trained_on(session, project_id, item_ids):
        Path(str(mv.artifact_path)).unlink(missing_ok=True)
        mv.artifact_path = None
        mv.metrics = {**(mv.metrics or {}), FORGOTTEN: "trained on labels of purged items"}
        record_audit(session, "forget", "model_version", mv.id, project_id=project_id,
                     actor_id=actor_id, after={"version": mv.version,
                                               "reason": "trained on labels of purged items"})
        forgotten.add(mv.version)
        active = active or mv.is_active
    # a queued rollback to one of them would fail: it trains instead
    if active or queued_rerank(session, project_id) in forgotten:
        request_training(session, project_id, requested_by=actor_id, reason="purge",
                         not_versions=forgotten, active_gone=active)


log = logging.getLogger("activelabel.governance")

#: A file the purge leaves when SQLite's write-ahead log could not be emptied at once: the
#: worker tries again (:func:`fold_wal`).
WAL_PENDING = "wal-fold-pending"


def fold_wal(storage: Storage) -> bool:
    """Fold a SQLite database's write-ahead log into the file and empty it
    (:func:`~activelabel.store.db.truncate_wal`), or leave :data:`WAL_PENDING` in the data
    folder for the worker to try again; True when done (always on PostgreSQL)."""
    marker = storage.location.data_dir / WAL_PENDING
    try:
        done = truncate_wal(storage.engine)
    except Exception:  # never the purge's failure: the worker tries again
        log.exception("emptying the write-ahead log failed; the worker tries again")
        done = False
    if done:
        marker.unlink(missing_ok=True)
    elif storage.engine.dialect.name == "sqlite":
        marker.touch()
    return done


def wal_fold_pending(storage: Storage) -> bool:
    """Whether a purge left the write-ahead log to fold (:func:`fold_wal`)."""
    return (storage.location.data_dir / WAL_PENDING).exists()


def restore(session: Session, project: Project, snapshot_id: int,
            actor_id: int) -> dict[str, int]:
    """Re-apply a snapshot's labels as new revisions where they differ (see
    :func:`~activelabel.labeling.snapshots.restore_snapshot`), with an audit event."""
    result = restore_snapshot(session, project, snapshot_id, actor_id)
    record_audit(session, "restore", "snapshot", snapshot_id, project_id=project.id,
                 actor_id=actor_id, after=result)
    return result


def audit_trail(storage: Storage, project_id: int) -> Iterator[AuditEvent]:
    """Every audit event of the project, oldest first, read a page at a time with a read
    session of its own (so a long trail streams in bounded memory)."""
    last = 0
    while True:
        with storage.read_sessions() as session:
            page = audit_after(session, project_id, last, limit=AUDIT_PAGE)
            session.expunge_all()
        yield from page
        if len(page) < AUDIT_PAGE:
            return
        last = page[-1].id


def set_gold_answers(session: Session, project_id: int, actor_id: int,
                     answers: Sequence[tuple[int, list[Any] | None]]) -> list[Item]:
    """Set the known answers of gold items (``None`` returns an item to the pool), each an
    audit event."""
    out = []
    for item_id, labels in answers:
        item = set_gold(session, project_id, item_id, labels)
        record_audit(session, "set_gold", "item", item.id, project_id=project_id,
                     actor_id=actor_id, after={"gold_labels": item.gold_labels})
        out.append(item)
    return out


def resolve(session: Session, project_id: int, flag_id: int, actor_id: int,
            note: str | None) -> Flag:
    """Mark a flag resolved with an optional note the annotator sees, with an audit event."""
    flag = resolve_flag(session, project_id, flag_id, actor_id, note)
    record_audit(session, "resolve", "flag", flag.id, project_id=project_id,
                 actor_id=actor_id, before={"item_id": flag.item_id, "reason": flag.reason},
                 after={"note": note})
    return flag
