"""Project statistics: items per split, labeled, leased, queued, labels per annotator, the last
rounds, the payoff measured on audit draws, what the model reads. What dashboards show
(``activelabel status`` reads the same counts)."""

from __future__ import annotations

from fastapi import APIRouter

from ...labeling.featurize import features_status
from ...labeling.payoff import payoff
from ...labeling.stats import labels_per_annotator, last_rounds, project_counts
from ...store import Role, active_model_version
from ..auth import Reader
from ..schemas import AnnotatorCount, FeaturesOut, PathId, Payoff, RoundSummary, Stats

router = APIRouter(tags=["stats"])


@router.get("/projects/{project_id}/stats", response_model=Stats)
def stats(project_id: PathId, caller: Reader) -> Stats:
    """Progress and backlog of the project (reviewers and owners)."""
    project, _ = caller.project(project_id, Role.REVIEWER)
    session = caller.session
    model = active_model_version(session, project_id)
    counts = project_counts(session, project_id)
    rounds = [RoundSummary(id=r.id, number=r.number, status=r.status, strategy=r.strategy,
                           n_labels_used=r.n_labels_used,
                           accuracy=(r.metrics or {}).get("accuracy"),
                           macro_f1=(r.metrics or {}).get("macro_f1"), finished_at=r.finished_at)
              for r in reversed(last_rounds(session, project_id))]
    return Stats(project_id=project_id, items={**counts.items, "total": counts.n_items},
                 labeled=counts.n_labeled, leased=counts.leased, queued=counts.queued,
                 open_flags=counts.open_flags, jobs_waiting=counts.jobs_waiting,
                 active_model_version=None if model is None else model.version,
                 labels_per_annotator=[AnnotatorCount(**vars(a))
                                       for a in labels_per_annotator(session, project_id)],
                 last_rounds=rounds,
                 payoff=Payoff(**payoff(session, caller.storage.arrays, project)),
                 features=FeaturesOut.model_validate(
                     features_status(caller.storage, session, project, counts.n_items)))
