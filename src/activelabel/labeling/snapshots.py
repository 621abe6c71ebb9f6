"""Snapshots: freeze the labeled dataset to a hashed JSONL file, export it, restore it.

A snapshot file (``<data_dir>/snapshots/project_<id>/snapshot_<n>.jsonl``) holds one header
line (provenance: guidelines version, label set, model version, consensus method, content
hash) and one line per labeled item: external id, payload without private fields, consensus,
and each annotator's current labels. The consensus follows the project's ``consensus``
setting, as the rounds train (:mod:`.consensus`): majority vote (null on a tie), or
Dawid-Skene for a single-label project set to ``dawid_skene``; the header's
``consensus_method`` says which. ``content_hash`` is the SHA-256 of the item lines, so two snapshots of the same
labels have the same hash and a changed file is detected before it is served or restored.

Restoring re-applies the snapshot's labels as *new* revisions (a correction by the restoring
owner, with the reason ``restore snapshot N``) wherever an annotator's current label differs;
nothing is deleted, and labels made after the snapshot by others stay as they are.

A purge of payloads reaches the snapshots too (:func:`redact_snapshots`): a snapshot holding a
purged item is written again with that item's payload emptied (its labels kept), under a new
content hash recorded in the database, in the header (``redacted``, with the hash before)
and as an audit event; the old file is removed once the purge commits.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Collection, Iterator
from pathlib import Path
from typing import Any, BinaryIO

from sqlalchemy import select
from sqlalchemy.orm import Session

from ..store import (
    Conflict,
    Storage,
    active_model_version,
    annotate,
    current_labels,
    current_revision,
    record_audit,
    usernames,
)
from ..store._util import lock_project
from ..store.db import on_transaction_end
from ..store.files import atomic_write
from ..store.governance import create_snapshot, get_snapshot, list_snapshots
from ..store.models import Item, Project, Snapshot, utcnow
from .consensus import consensus_method, project_consensus

__all__ = ["read_snapshot", "redact_snapshots", "restore_snapshot", "take_snapshot"]


def _folder(storage: Storage, project_id: int) -> Path:
    return storage.location.data_dir / "snapshots" / f"project_{int(project_id)}"


def _lines(session: Session, project: Project) -> Iterator[dict[str, Any]]:
    found = current_labels(session, project.id)
    agreed = project_consensus(project, found)
    by_item: dict[int, list[Any]] = {}
    for cur in found:
        by_item.setdefault(cur.item_id, []).append(cur)
    names = usernames(session, {c.annotator_id for c in found})
    private = set(project.private_fields or [])
    ids = sorted(by_item)
    for start in range(0, len(ids), 1000):
        chunk = ids[start:start + 1000]
        items = session.execute(select(Item).where(Item.id.in_(chunk))
                                .order_by(Item.row)).scalars()
        for item in items:
            labels = by_item[item.id]
            yield {"item_id": item.id, "external_id": item.external_id, "split": item.split,
                   "data": {k: v for k, v in (item.data or {}).items() if k not in private},
                   "consensus": agreed.of(item.id),
                   "annotations": [{"annotator": names.get(c.annotator_id),
                                    "annotator_id": c.annotator_id, "labels": list(c.labels),
                                    "annotation_id": c.annotation_id} for c in labels]}


def _dump(line: dict[str, Any]) -> str:
    return json.dumps(line, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def take_snapshot(session: Session, storage: Storage, project: Project, *,
                  created_by: int | None, note: str | None = None) -> Snapshot:
    """Freeze the current labels of the project to a file and record it (the caller commits;
    a failed commit leaves an orphan file, never a record without its file). Each item's
    ``consensus`` is by the project's method, named in the header's ``consensus_method``
    (``majority`` or ``dawid_skene``; see the module doc)."""
    lock_project(session, project.id)  # not beside a purge of the project (its redaction)
    folder = _folder(storage, project.id)
    folder.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha256()
    count = 0
    fd, tmp = tempfile.mkstemp(prefix=".snapshot.", suffix=".tmp", dir=folder)
    body = Path(tmp)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            for line in _lines(session, project):
                text = _dump(line) + "\n"
                digest.update(text.encode())
                handle.write(text)
                count += 1
        model = active_model_version(session, project.id)
        content_hash = digest.hexdigest()
        number = len(list_snapshots(session, project.id)) + 1
        target = folder / f"snapshot_{number}_{content_hash[:12]}.jsonl"
        header = {"snapshot": {"project_id": project.id, "project": project.name,
                               "created_at": utcnow().isoformat(), "content_hash": content_hash,
                               "n_items": count, "labels": list(project.labels),
                               "task": project.task,
                               "guidelines_version": project.guidelines_version,
                               "consensus_method": consensus_method(project.task,
                                                                    project.settings or {}),
                               "model_version": None if model is None else model.version,
                               "note": note}}
        _with_header(body, target, _dump(header) + "\n")
    finally:
        body.unlink(missing_ok=True)
    return create_snapshot(session, project, content_hash=content_hash, path=str(target),
                           n_items=count, model_version=None if model is None
                           else model.version, created_by=created_by, note=note)


def _with_header(body: Path, target: Path, header: str) -> None:
    def write(out: BinaryIO) -> None:
        out.write(header.encode())
        with open(body, "rb") as src:
            shutil.copyfileobj(src, out)

    atomic_write(target, write)


def read_snapshot(snapshot: Snapshot) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """(header, item lines) of the snapshot's file, after checking its content hash."""
    path = Path(snapshot.path)
    if not path.exists():
        raise Conflict(f"the file of snapshot {snapshot.id} is missing ({path.name}): restore "
                       "it from a backup of the data folder")
    with open(path, encoding="utf-8") as handle:
        header = json.loads(handle.readline())
        digest = hashlib.sha256()
        lines = []
        for text in handle:
            digest.update(text.encode())
            lines.append(json.loads(text))
    if digest.hexdigest() != snapshot.content_hash:
        raise Conflict(f"snapshot {snapshot.id} does not match its content hash: the file was "
                       "changed after it was taken; it cannot be trusted")
    return dict(header.get("snapshot", {})), lines


def restore_snapshot(session: Session, project: Project, snapshot_id: int,
                     user_id: int) -> dict[str, int]:
    """Re-apply the snapshot's labels as new revisions where they differ (see module doc)."""
    snapshot = get_snapshot(session, project.id, snapshot_id)
    _, lines = read_snapshot(snapshot)
    restored = unchanged = missing = 0
    reason = f"restore snapshot {snapshot.id}"
    for line in lines:
        item = session.get(Item, int(line["item_id"]))
        if item is None or item.project_id != project.id:
            missing += len(line["annotations"])
            continue
        for ann in line["annotations"]:
            head = current_revision(session, item.id, int(ann["annotator_id"]))
            if head is None:
                missing += 1
                continue
            if head.labels == ann["labels"]:
                unchanged += 1
                continue
            annotate(session, project.id, user_id, item.id, ann["labels"], supersedes=head.id,
                     reason=reason)
            restored += 1
    return {"snapshot_id": snapshot.id, "restored": restored, "unchanged": unchanged,
            "missing": missing}


def _redacted_copy(snapshot: Snapshot,
                   item_ids: Collection[int]) -> tuple[Path, str, int] | None:
    """A new file of the snapshot with the payloads of ``item_ids`` emptied: (its path, its
    content hash, lines emptied); None when it holds no payload of theirs (one pass)."""
    path = Path(snapshot.path)
    digest = hashlib.sha256()
    emptied = 0
    fd, tmp = tempfile.mkstemp(prefix=".snapshot.", suffix=".tmp", dir=path.parent)
    body = Path(tmp)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out, open(path, encoding="utf-8") as src:
            header = json.loads(src.readline())
            for text in src:
                line = json.loads(text)
                if int(line["item_id"]) in item_ids and line.get("data"):
                    line["data"] = {}
                    text = _dump(line) + "\n"
                    emptied += 1
                digest.update(text.encode())
                out.write(text)
        if not emptied:
            return None
        content_hash = digest.hexdigest()
        info = header.setdefault("snapshot", {})
        info.setdefault("redacted", []).append({
            "at": utcnow().isoformat(), "items": emptied,
            "content_hash_before": snapshot.content_hash})
        info["content_hash"] = content_hash
        target = path.parent / f"{path.stem.rsplit('_', 1)[0]}_{content_hash[:12]}.jsonl"
        _with_header(body, target, _dump(header) + "\n")
    finally:
        body.unlink(missing_ok=True)
    return target, content_hash, emptied


def redact_snapshots(session: Session, project_id: int, item_ids: Collection[int], *,
                     actor_id: int | None) -> int:
    """Empty the payloads of ``item_ids`` (purged) in the project's snapshot files; the
    number of snapshots written again (see the module doc). Each one's new file is written
    before the session commits, and its record points to it: the old file is removed once the
    transaction commits, the new one if it does not, so the record always has its file. The
    caller holds the project's lock (:func:`~activelabel.store._util.lock_project`), as
    :func:`take_snapshot` does: two purges, or a purge and a snapshot, never interleave."""
    wanted = {int(i) for i in item_ids}
    changed = 0
    for snapshot in list_snapshots(session, project_id):
        path = Path(snapshot.path)
        copy = _redacted_copy(snapshot, wanted) if path.exists() else None
        if copy is None:
            continue
        target, content_hash, emptied = copy
        record_audit(session, "redact", "snapshot", snapshot.id, project_id=project_id,
                     actor_id=actor_id, before={"content_hash": snapshot.content_hash},
                     after={"content_hash": content_hash, "items_emptied": emptied})
        snapshot.content_hash, snapshot.path = content_hash, str(target)
        on_transaction_end(session, committed=functools.partial(path.unlink, missing_ok=True),
                           rolled_back=functools.partial(target.unlink, missing_ok=True))
        changed += 1
    session.flush()
    return changed
