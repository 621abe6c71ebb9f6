"""Quality: the review queue, agreement between annotators, per-annotator accuracy."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Query

from ...labeling.anchoring import anchoring_report
from ...labeling.governance import set_gold_answers
from ...labeling.quality import (
    agreement_report,
    annotator_report,
    label_check_status,
    label_table,
    relabel_advice,
)
from ...labeling.review import (
    REASONS,
    entry_annotations,
    entry_consensus,
    items_by_id,
    review_queue,
)
from ...labeling.span_rounds import span_predictions
from ...labeling.tasks import active_model, model_probs, suggestion
from ...store import MAX_ID, Role, active_model_version
from ..auth import Reader, Writer
from ..schemas import (
    AgreementOut,
    AnchoringOut,
    AnnotatorQualityOut,
    GoldIn,
    ItemOut,
    LabelCheckOut,
    PathId,
    RelabelOut,
    ReviewAnnotation,
    ReviewEntryOut,
    ReviewFlag,
    ReviewSuggestion,
    item_out,
)

router = APIRouter(tags=["quality"])

_REASON_PATTERN = "^(" + "|".join(REASONS) + ")$"


def _label_param(value: str | None, labels: list[Any]) -> Any:
    """A query-string label as the project spells it (integer labels arrive as text)."""
    if value is None:
        return None
    for label in labels:
        if str(label) == value:
            return label
    return value


@router.get("/projects/{project_id}/review", response_model=list[ReviewEntryOut])
def review(project_id: PathId, caller: Reader,
           reason: Annotated[str | None, Query(pattern=_REASON_PATTERN, description=(
               "One of " + ", ".join(REASONS) + "; omitted: every reason"))] = None,
           annotator: Annotated[str | None, Query(min_length=1, max_length=64,
                                                  description="Username")] = None,
           label: Annotated[str | None, Query(min_length=1, max_length=200)] = None,
           round: Annotated[int | None, Query(ge=1, le=MAX_ID, description="Number of the round that "
                                              "selected the item")] = None,
           limit: Annotated[int, Query(ge=1, le=500)] = 100) -> list[ReviewEntryOut]:
    """The ranked review queue, best first: one entry per item and reason, with the item,
    its current labels, the consensus, the active model's suggestion (with the round that
    trained that model) and any open flag. Reviewers and owners."""
    project, _ = caller.project(project_id, Role.REVIEWER)
    entries, ctx = review_queue(caller.session, caller.storage, project, reason=reason,
                                annotator=annotator, label=_label_param(label, project.labels),
                                round_number=round, limit=limit)
    items = items_by_id(caller.session, sorted({e.item_id for e in entries}))
    model = active_model(caller.session, project_id)
    probs = None if model is None else model_probs(caller.storage.arrays, project_id)
    spans = None if model is None else span_predictions(caller.storage.arrays, project_id,
                                                          project.task)
    open_flags = {e.item_id: e.flag for e in entries if e.flag is not None}
    out = []
    for entry in entries:
        item = items[entry.item_id]
        hint = None if model is None else suggestion(project, probs, item.row, *model, spans)
        flag = entry.flag or open_flags.get(entry.item_id)
        out.append(ReviewEntryOut(
            item_id=item.id, external_id=item.external_id, reason=entry.reason,
            score=entry.score, detail=entry.detail, data=dict(item.data),
            annotations=[ReviewAnnotation(**a)
                         for a in entry_annotations(caller.session, ctx, item.id)],
            consensus=entry_consensus(ctx, item.id),
            suggestion=None if hint is None else ReviewSuggestion(
                label=hint.label, confidence=hint.confidence, model_version=hint.model_version,
                model_round=hint.model_round),
            flag=None if flag is None else ReviewFlag(**flag), proposed=entry.model_labels))
    return out


@router.get("/projects/{project_id}/label-check", response_model=LabelCheckOut)
def label_check(project_id: PathId, caller: Reader) -> LabelCheckOut:
    """The review queue's label check: whether its newest result read the current labels,
    what it put up, and its newest job (a worker runs it; the review queue asks for one when
    the labels changed). Reviewers and owners."""
    project, _ = caller.project(project_id, Role.REVIEWER)
    return LabelCheckOut.model_validate(label_check_status(caller.session, caller.storage,
                                                           project))


@router.get("/projects/{project_id}/agreement", response_model=AgreementOut)
def agreement(project_id: PathId, caller: Reader) -> AgreementOut:
    """Krippendorff's alpha (nominal), Fleiss' kappa, Cohen's kappa per annotator pair and
    specific agreement per label, over the items with two or more current labels, against the
    project's ``agreement_target``. Reviewers and owners."""
    project, _ = caller.project(project_id, Role.REVIEWER)
    return AgreementOut.model_validate(agreement_report(label_table(caller.session, project),
                                                        project))


@router.get("/projects/{project_id}/annotators", response_model=list[AnnotatorQualityOut])
def annotators(project_id: PathId, caller: Reader) -> list[AnnotatorQualityOut]:
    """Per annotator: current labels, accuracy on gold items, agreement with the others'
    majority and Dawid-Skene's estimated accuracy. Reviewers and owners."""
    project, _ = caller.project(project_id, Role.REVIEWER)
    rows = annotator_report(label_table(caller.session, project), project)
    return [AnnotatorQualityOut(**vars(r)) for r in rows]


@router.get("/projects/{project_id}/anchoring", response_model=list[AnchoringOut])
def anchoring(project_id: PathId, caller: Reader) -> list[AnchoringOut]:
    """Per annotator, the answers given before the model's suggestion showed (under
    ``suggestion_display`` after_answer, the first ``tasks/suggestions`` answer for an item)
    against the first label submitted after each: how many changed, and of those that
    differed from the suggestion shown, how many were switched to it. Reviewers and
    owners."""
    caller.project(project_id, Role.REVIEWER)
    return [AnchoringOut(**vars(r)) for r in anchoring_report(caller.session, project_id)]


@router.post("/projects/{project_id}/gold", response_model=list[ItemOut])
def post_gold(project_id: PathId, body: Annotated[list[GoldIn], Body(max_length=10_000)],
              caller: Writer) -> list[ItemOut]:
    """Set the known answers of gold items (``labels: null`` returns an item to the pool).
    Gold items are mixed into annotators' tasks at the project's ``gold_rate``, never marked
    as gold to them. Owners only."""
    caller.project(project_id, Role.OWNER)
    items = set_gold_answers(caller.session, project_id, caller.user.id,
                             [(entry.item_id, entry.labels) for entry in body])
    return [item_out(item) for item in items]


@router.get("/projects/{project_id}/relabel", response_model=RelabelOut)
def relabel(project_id: PathId, caller: Reader,
            limit: Annotated[int, Query(ge=1, le=500)] = 20) -> RelabelOut:
    """Relabel an old item or label a new one? cleanlab's ActiveLab scores (lower: another
    label is worth more) for labeled items and unlabeled pool items, from the annotators'
    labels and the active model. Reviewers and owners."""
    project, _ = caller.project(project_id, Role.REVIEWER)
    model = active_model_version(caller.session, project_id)
    probs = None if model is None else model_probs(caller.storage.arrays, project_id)
    return RelabelOut.model_validate(relabel_advice(caller.session, caller.storage, project,
                                                    probs, limit))
