"""Model versions as owners manage them: activating one (a rollback) re-ranks the queue."""

from __future__ import annotations

from sqlalchemy.orm import Session

from ..store import Conflict, activate_model_version, active_model_version, record_audit
from ..store.models import ModelVersion, Round
from ..store.rounds import get_model_version
from .governance import FORGOTTEN
from .rounds import request_rerank

__all__ = ["activate_version"]


def activate_version(session: Session, project_id: int, version: int,
                     actor_id: int) -> tuple[ModelVersion, Round, bool]:
    """Make ``version`` the active model (an audit event with the version before) and queue a
    round that re-scores the pool with it and re-ranks the queue: (model, round, whether the
    round is new)."""
    if FORGOTTEN in (get_model_version(session, project_id, version).metrics or {}):
        raise Conflict(f"model version {version} has no stored model: it was removed by a "
                       "purge of items it may have learned from (see the audit trail); "
                       "activate another version or request a round")
    previous = active_model_version(session, project_id)
    before = None if previous is None else {"active_version": previous.version}
    model = activate_model_version(session, project_id, version)
    record_audit(session, "activate", "model_version", model.version, project_id=project_id,
                 actor_id=actor_id, before=before, after={"active_version": model.version})
    rnd, created = request_rerank(session, project_id, model.version, requested_by=actor_id)
    return model, rnd, created
