"""Governance: guideline versions, the decision log, snapshots, calibration sessions, purging
item payloads, and the audit trail as a file."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import FileResponse, StreamingResponse

from ...labeling import governance as gov
from ...labeling.calibration import calibration_report
from ...labeling.governance import DecisionView, audit_trail, decision_views, version_views
from ...labeling.snapshots import read_snapshot, take_snapshot
from ...store import Role
from ...store.governance import (
    add_decision,
    create_calibration,
    get_calibration,
    get_snapshot,
    list_calibrations,
    list_decisions,
    list_snapshots,
)
from ..auth import Reader, Writer
from ..schemas import (
    CalibrationIn,
    CalibrationOut,
    DecisionIn,
    DecisionOut,
    PathId,
    ProjectVersionOut,
    PurgeIn,
    PurgeOut,
    RestoreOut,
    SnapshotIn,
    SnapshotOut,
    audit_out,
    snapshot_out,
)

router = APIRouter(tags=["governance"])


def decision_outs(decisions: list[DecisionView]) -> list[DecisionOut]:
    return [DecisionOut(**d.model_dump()) for d in decisions]


@router.get("/projects/{project_id}/versions", response_model=list[ProjectVersionOut])
def versions(project_id: PathId, caller: Reader) -> list[ProjectVersionOut]:
    """Every version of the label set and guidelines, oldest first (any member)."""
    caller.project(project_id)
    return [ProjectVersionOut(**v.model_dump()) for v in version_views(caller.session,
                                                                        project_id)]


@router.post("/projects/{project_id}/decisions", status_code=201, response_model=DecisionOut)
def post_decision(project_id: PathId, body: DecisionIn, caller: Writer) -> DecisionOut:
    """Log why a strategy or rule was chosen, from which round on. Owners only."""
    caller.project(project_id, Role.OWNER)
    decision = add_decision(caller.session, project_id, caller.user.id, body.topic, body.text,
                            from_round=body.from_round)
    return decision_outs(decision_views(caller.session, [decision]))[0]


@router.get("/projects/{project_id}/decisions", response_model=list[DecisionOut])
def decisions(project_id: PathId, caller: Reader) -> list[DecisionOut]:
    """The decision log, oldest first (reviewers and owners)."""
    caller.project(project_id, Role.REVIEWER)
    return decision_outs(decision_views(caller.session, list_decisions(caller.session,
                                                                    project_id)))


@router.post("/projects/{project_id}/snapshots", status_code=201, response_model=SnapshotOut)
def post_snapshot(project_id: PathId, caller: Writer,
                  body: SnapshotIn | None = None) -> SnapshotOut:
    """Freeze the current labels (consensus and each annotator's) with their provenance to a
    hashed file. Owners only."""
    project, _ = caller.project(project_id, Role.OWNER)
    return snapshot_out(take_snapshot(caller.session, caller.storage, project,
                                       created_by=caller.user.id,
                                       note=None if body is None else body.note))


@router.get("/projects/{project_id}/snapshots", response_model=list[SnapshotOut])
def snapshots(project_id: PathId, caller: Reader) -> list[SnapshotOut]:
    """The project's snapshots, oldest first (reviewers and owners)."""
    caller.project(project_id, Role.REVIEWER)
    return [snapshot_out(s) for s in list_snapshots(caller.session, project_id)]


@router.get("/projects/{project_id}/snapshots/{snapshot_id}/export",
            response_class=FileResponse,
            responses={200: {"content": {"application/x-ndjson": {}}}})
def export_snapshot(project_id: PathId, snapshot_id: PathId, caller: Reader) -> FileResponse:
    """The snapshot's JSONL file (header line, then one line per item), after checking its
    content hash. Reviewers and owners."""
    caller.project(project_id, Role.REVIEWER)
    snapshot = get_snapshot(caller.session, project_id, snapshot_id)
    read_snapshot(snapshot)
    return FileResponse(Path(snapshot.path), media_type="application/x-ndjson",
                        filename=f"project_{project_id}_snapshot_{snapshot_id}.jsonl")


@router.post("/projects/{project_id}/snapshots/{snapshot_id}/restore",
             response_model=RestoreOut)
def restore(project_id: PathId, snapshot_id: PathId, caller: Writer) -> RestoreOut:
    """Re-apply the snapshot's labels as new revisions wherever they differ now; nothing is
    deleted. Owners only."""
    project, _ = caller.project(project_id, Role.OWNER)
    return RestoreOut(**gov.restore(caller.session, project, snapshot_id, caller.user.id))


@router.post("/projects/{project_id}/items/purge", response_model=PurgeOut)
def purge(project_id: PathId, body: PurgeIn, caller: Writer) -> PurgeOut:
    """Remove the payloads of items on request (data becomes ``{}``); their annotations stay
    and each purge is an audit event. Cached features are dropped (rebuilt without the
    payloads by the next round), snapshots redacted, and a span project's model files that
    may have learned from the items removed (a round is queued when the active one goes).
    Owners only."""
    caller.project(project_id, Role.OWNER)
    items = gov.purge(caller.session, caller.storage, project_id, item_ids=body.item_ids,
                  external_ids=body.external_ids, actor_id=caller.user.id)
    return PurgeOut(purged=[i.id for i in items])


@router.get("/projects/{project_id}/audit/export", response_class=StreamingResponse,
            responses={200: {"content": {"application/x-ndjson": {}}}})
def audit_export(project_id: PathId, caller: Reader) -> StreamingResponse:
    """The whole audit trail of the project as JSONL, oldest first. Owners only."""
    caller.project(project_id, Role.OWNER)

    def chunks() -> Iterator[str]:
        for event in audit_trail(caller.storage, project_id):
            row = audit_out(event).model_dump(mode="json", exclude={"actor"})
            yield json.dumps(row, sort_keys=True) + "\n"

    return StreamingResponse(chunks(), media_type="application/x-ndjson", headers={
        "Content-Disposition": f'attachment; filename="project_{project_id}_audit.jsonl"'})


@router.post("/projects/{project_id}/calibrations", status_code=201,
             response_model=CalibrationOut)
def post_calibration(project_id: PathId, body: CalibrationIn, caller: Writer) -> CalibrationOut:
    """A calibration session: items every annotator labels (they skip the overlap limit in the
    queue). Owners only."""
    caller.project(project_id, Role.OWNER)
    cal = create_calibration(caller.session, project_id, body.name, body.item_ids,
                             caller.user.id)
    _, ids = get_calibration(caller.session, project_id, cal.id)
    return CalibrationOut(id=cal.id, name=cal.name, guidelines_version=cal.guidelines_version,
                          item_ids=ids, created_at=cal.created_at)


@router.get("/projects/{project_id}/calibrations", response_model=list[CalibrationOut])
def calibrations(project_id: PathId, caller: Reader) -> list[CalibrationOut]:
    """Calibration sessions, oldest first (reviewers and owners)."""
    caller.project(project_id, Role.REVIEWER)
    out = []
    for cal in list_calibrations(caller.session, project_id):
        _, ids = get_calibration(caller.session, project_id, cal.id)
        out.append(CalibrationOut(id=cal.id, name=cal.name, item_ids=ids,
                                  guidelines_version=cal.guidelines_version,
                                  created_at=cal.created_at))
    return out


@router.get("/projects/{project_id}/calibrations/{calibration_id}")
def calibration(project_id: PathId, calibration_id: PathId, caller: Reader) -> dict[str, object]:
    """Where annotators disagree on the session's items, and with whom: per item the labels
    and the guidelines version each annotator saw, per pair the agreement. Reviewers and
    owners."""
    project, _ = caller.project(project_id, Role.REVIEWER)
    return calibration_report(caller.session, project, calibration_id)
