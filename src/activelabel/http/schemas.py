"""Request and response bodies of the REST API (pydantic), and ORM rows -> response bodies.

Request models forbid unknown fields, so a misspelt field is a 422 naming it instead of being
silently ignored. Response models document the answers at /docs.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import Path, Response
from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    StrictInt,
    StrictStr,
    Tag,
    TypeAdapter,
    model_validator,
)
from typing_extensions import TypedDict  # pydantic reads TypedDicts of typing only from 3.12

from ..labeling.governance import DecisionView, VersionView
from ..labeling.insights import task_gain
from ..labeling.mapping import ROLES as COLUMN_ROLES
from ..labeling.tasks import Suggestion, Why
from ..pace import OVERLAP_FROM
from ..store import (
    MAX_ID,
    ProjectSettings,
    ProjectSettingsChange,
    Revision,
    Role,
    TaskType,
    settings_of,
)
from ..store.models import (
    ApiToken,
    AuditEvent,
    Flag,
    Item,
    Job,
    ModelVersion,
    Project,
    Round,
    Snapshot,
    User,
)
from ..store.settings import public_settings
from ..store.users import MIN_PASSWORD_LENGTH

Label = StrictStr | StrictInt


class SpanLabel(TypedDict):
    """A span of a span project's item: character offsets into its text (end exclusive) and
    the entity type; checked against the item's text and tokens when stored."""

    __pydantic_config__ = ConfigDict(extra="forbid")  # type: ignore[misc]
    start: Annotated[StrictInt, Field(ge=0, le=10**9)]
    end: Annotated[StrictInt, Field(ge=1, le=10**9)]
    label: StrictStr


#: What an annotation holds: labels of a classification, or spans of a span project.
Answer = Label | SpanLabel
#: An id in a path: a number the id columns hold (beyond them: 422, never a database error).
PathId = Annotated[int, Path(ge=1, le=MAX_ID)]
Name = Annotated[str, Field(min_length=1, max_length=200)]
#: A user name as the users table takes it.
Username = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.@-]{1,64}$",
                                description="1-64 letters, digits or _.@-")]
#: One label of a project's label set: a non-empty string or an integer (an error names the
#: kind tried by the value's type: ``labels.0.str``, ``labels.0.int``).
ProjectLabel = Annotated[
    Annotated[StrictStr, Field(min_length=1), Tag("str")] | Annotated[StrictInt, Tag("int")],
    Discriminator(lambda v: "int" if isinstance(v, int) and not isinstance(v, bool) else "str")]


def _at_least_one_of(*fields: str, lists: bool = False) -> dict[str, Any]:
    """JSON schema of a body that needs one of these fields given (not null; a non-empty list
    where ``lists``): what a validator of the model checks, stated for clients."""
    given: dict[str, Any] = {"minItems": 1} if lists else {"not": {"type": "null"}}
    return {"minProperties": 1,
            "anyOf": [{"required": [f], "properties": {f: given}} for f in fields]}


class Body(BaseModel):
    """Base of request bodies: unknown fields are errors."""

    model_config = ConfigDict(extra="forbid")


# ---- requests ----------------------------------------------------------------------------------


class LoginIn(Body):
    username: Annotated[str, Field(min_length=1, max_length=64)]
    password: Annotated[str, Field(min_length=1, max_length=1024)]


class UserIn(Body):
    username: Username
    password: Annotated[str | None, Field(min_length=MIN_PASSWORD_LENGTH, max_length=1024,
                                          description="None: the user can only use API "
                                          "tokens")] = None
    is_admin: bool = False


class TokenIn(Body):
    name: Annotated[str, Field(min_length=1, max_length=100)] = "api"
    expires_in_days: Annotated[int | None, Field(ge=1, le=3650, description=(
        "Days until the token stops working (null: it works until revoked)."))] = None


class ProjectIn(Body):
    """A new project; a classification (the default task) needs at least 2 labels."""

    model_config = ConfigDict(json_schema_extra={
        # The task defaults to classification: absent or classification, at least 2 labels.
        "if": {"anyOf": [{"not": {"required": ["task"]}},
                         {"required": ["task"], "properties": {"task": {"const": "classification"}}}]},
        "then": {"properties": {"labels": {"minItems": 2}}}})

    name: Name
    task: TaskType = TaskType.CLASSIFICATION
    labels: Annotated[list[ProjectLabel], Field(
        min_length=1, max_length=1000, json_schema_extra={"uniqueItems": True},
        description="Distinct labels (a classification takes at least 2).")]
    guidelines: Annotated[str, Field(max_length=200_000)] = ""
    settings: ProjectSettings = Field(default_factory=ProjectSettings, description=(
        "Settings to set; those not given take their defaults."))
    private_fields: Annotated[list[Annotated[str, Field(min_length=1, max_length=200)]],
                              Field(max_length=1000)] = Field(default_factory=list)

    @model_validator(mode="after")
    def _enough_labels(self) -> ProjectIn:
        if self.task == TaskType.CLASSIFICATION and len(self.labels) < 2:
            raise ValueError(f"classification needs at least 2 labels, got {len(self.labels)}")
        return self


_PATCHABLE = ("name", "guidelines", "labels", "settings", "private_fields")


class ProjectPatch(Body):
    """Fields to change (at least one, not null); ``settings`` is merged into the current
    settings."""

    model_config = ConfigDict(json_schema_extra=_at_least_one_of(*_PATCHABLE))

    name: Name | None = None
    guidelines: Annotated[str | None, Field(max_length=200_000)] = None
    labels: Annotated[list[ProjectLabel] | None, Field(min_length=1, max_length=1000,
                                                json_schema_extra={"uniqueItems": True},
                                                description="The new label set: every current "
                                                "label kept, new ones appended.")] = None
    settings: ProjectSettingsChange | None = Field(None, description=(
        "Settings to change, merged into the current ones."))
    private_fields: Annotated[list[Annotated[str, Field(min_length=1, max_length=200)]] | None,
                              Field(max_length=1000)] = None

    @model_validator(mode="after")
    def _something(self) -> ProjectPatch:
        if all(getattr(self, name) is None for name in _PATCHABLE):
            raise ValueError("nothing to change: send at least one of "
                             + ", ".join(_PATCHABLE))
        return self


class MemberIn(Body):
    username: Annotated[str, Field(min_length=1, max_length=64)]
    role: Role


class AnnotationIn(Body):
    item_id: Annotated[int, Field(ge=1, le=MAX_ID)]
    labels: Annotated[list[Answer], Field(max_length=1000)]
    duration_ms: Annotated[int | None, Field(ge=0, le=86_400_000)] = None
    client_key: Annotated[str | None, Field(min_length=1, max_length=100)] = None


class ReviewIn(Body):
    """Accept the revision, or reject it with corrected ``labels`` (or none: withdrawn)."""

    accept: bool
    labels: Annotated[list[Answer] | None, Field(max_length=1000)] = None
    client_key: Annotated[str | None, Field(min_length=1, max_length=100)] = None
    reason: Annotated[str | None, Field(max_length=5000, description=(
        "Why: stored on the new revision, shown in the item's history."))] = None


class GoldIn(Body):
    """The known answer of an item (null: no longer gold)."""

    item_id: Annotated[int, Field(ge=1, le=MAX_ID)]
    labels: Annotated[list[Answer] | None, Field(max_length=1000)]


class DecisionIn(Body):
    topic: Annotated[str, Field(min_length=1, max_length=100, description=(
        "What the decision is about, e.g. 'strategy', 'consensus', 'gold_rate'."))]
    text: Annotated[str, Field(min_length=1, max_length=20_000, description="What was "
                               "decided and why.")]
    from_round: Annotated[int | None, Field(ge=1, le=MAX_ID, description="First round it applies to "
                                            "(default: the next one).")] = None


class SnapshotIn(Body):
    note: Annotated[str | None, Field(max_length=5000)] = None


class PurgeIn(Body):
    """Items whose payloads are removed: by id, by external id, or both (at least one)."""

    model_config = ConfigDict(json_schema_extra=_at_least_one_of(
        "item_ids", "external_ids", lists=True))

    item_ids: Annotated[list[Annotated[int, Field(ge=1, le=MAX_ID)]], Field(max_length=10_000)] = Field(
        default_factory=list)
    external_ids: Annotated[list[Annotated[str, Field(min_length=1, max_length=255)]],
                            Field(max_length=10_000)] = Field(default_factory=list)

    @model_validator(mode="after")
    def _something(self) -> PurgeIn:
        if not self.item_ids and not self.external_ids:
            raise ValueError("give at least one item to purge (item_ids or external_ids)")
        return self


class CalibrationIn(Body):
    name: Name
    item_ids: Annotated[list[Annotated[int, Field(ge=1, le=MAX_ID)]], Field(min_length=1,
                                                                   max_length=1000)]


class FlagIn(Body):
    item_id: Annotated[int, Field(ge=1, le=MAX_ID)]
    reason: Annotated[str, Field(min_length=1, max_length=5000)]


class ResolveIn(Body):
    note: Annotated[str | None, Field(max_length=5000)] = None


# ---- responses ---------------------------------------------------------------------------------


class UserOut(BaseModel):
    id: int
    username: str
    is_admin: bool
    disabled: bool
    created_at: datetime


class TokenOut(BaseModel):
    id: int
    name: str
    prefix: str
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None
    expires_at: datetime | None = Field(None, description=(
        "Never valid after this (null: no end); a login's token also expires when unused for "
        "the server's login_idle_minutes."))


class TokenCreated(TokenOut):
    token: str = Field(description="The plaintext token: shown only in this answer.")


class LoginOut(BaseModel):
    token: str
    user: UserOut


class ProjectOut(BaseModel):
    id: int
    name: str
    task: str
    labels: list[Any]
    guidelines: str
    guidelines_version: int
    settings: dict[str, Any]
    private_fields: list[Any]
    created_by: int | None
    created_at: datetime
    role: Role = Field(description="The caller's effective role (admins act as owners).")


class MemberOut(BaseModel):
    user_id: int
    username: str
    role: Role


class RowReport(BaseModel):
    """A row left out: ``line`` is its 1-based position in the posted list (``index`` 0-based)."""

    line: int
    index: int
    reason: str
    external_id: str | None = None


class ItemsAdded(BaseModel):
    inserted: int
    duplicates: int
    rejected_count: int
    rejected: list[RowReport]
    duplicate_rows: list[RowReport]


class ItemOut(BaseModel):
    id: int
    external_id: str
    split: str
    row: int
    queue_rank: float | None
    data: dict[str, Any]
    created_at: datetime
    gold_labels: list[Any] | None = None
    purged_at: datetime | None = None


class ItemPage(BaseModel):
    items: list[ItemOut]
    next_after: int | None = Field(description="Pass as ?after= for the next page; null at "
                                   "the end.")


class RevisionOut(BaseModel):
    id: int
    item_id: int
    annotator_id: int
    user_id: int
    username: str | None = None
    kind: str
    labels: list[Any] | None
    duration_ms: int | None
    supersedes_id: int | None
    round_id: int | None
    created_at: datetime
    is_current: bool | None = None
    reason: str | None = None
    guidelines_version: int | None = None


class ProvenanceOut(BaseModel):
    round_id: int
    round: int
    rank: int
    score: float | None
    strategy: str
    model_version: int | None


class ItemDetail(ItemOut):
    history: list[RevisionOut]
    current: list[RevisionOut]
    provenance: list[ProvenanceOut]


class TaskItem(BaseModel):
    id: int
    external_id: str
    split: str
    data: dict[str, Any]


class TaskOut(BaseModel):
    item: TaskItem
    #: None under ``after_answer`` for annotators: it comes with their answer
    #: (``POST tasks/suggestions``).
    suggestion: Suggestion | None
    why: Why | None
    lease_expires_at: datetime
    group: int | None = Field(None, description=(
        "Under suggestion_display after_answer, for annotators (whose tasks then carry no "
        "suggestion): the tasks of this answer whose suggestions name one label share this "
        "number (1, 2, ... in order of first appearance), so similar items can be shown "
        "together; null without a confident suggestion and in the other modes."))


class AnsweredItem(Body):
    item_id: Annotated[int, Field(ge=1, le=MAX_ID)]
    #: The labels the annotator chose (checked as an annotation's are); nothing is stored.
    labels: Annotated[list[Answer], Field(max_length=1000)]


class AnswersIn(Body):
    answers: Annotated[list[AnsweredItem], Field(min_length=1, max_length=100)]


class AnsweredSuggestion(BaseModel):
    item_id: int
    suggestion: Suggestion | None


class JobOut(BaseModel):
    id: int
    project_id: int | None
    kind: str
    status: str
    payload: dict[str, Any]
    progress: dict[str, Any] | None
    result: dict[str, Any] | None
    error: str | None
    attempts: int
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None


class JobAccepted(BaseModel):
    job_id: int
    status: str


class RoundOut(BaseModel):
    id: int
    number: int
    status: str
    strategy: str
    batch_size: int
    job_id: int | None
    model_version: int | None
    n_labels_used: int | None
    metrics: dict[str, Any] | None = Field(description="The holdout's scores (accuracy, macro_f1, ece; a multi-label project's label_f1, a span project's entity_f1), n_train, the stopping verdicts, an auto round's schedule, ...")
    gain: dict[str, Any] | None = Field(description="The change since the previous measured model: accuracy, macro_f1, measure (the task's score: accuracy, label_f1 or entity_f1), score (its change; null where the previous round did not measure it), per_100_labels (of score), labels_added.")
    timings: dict[str, Any] | None
    error: str | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    decisions: list[DecisionOut] = Field(default_factory=list, description=(
        "The decision log entries in force in this round (latest per topic)."))


class SelectionOut(BaseModel):
    item_id: int
    external_id: str | None
    rank: int
    score: float | None
    strategy: str
    model_version: int | None


class RoundDetail(RoundOut):
    selected: list[SelectionOut]


class RoundAccepted(BaseModel):
    round_id: int
    job_id: int | None
    created: bool = Field(description="False when a queued round already existed (returned).")
    number: int
    status: str


class ModelOut(BaseModel):
    id: int
    version: int
    round_id: int | None
    parent_id: int | None
    n_train: int
    metrics: dict[str, Any] | None
    is_active: bool
    training_set_hash: str | None = Field(
        description="SHA-256 of what the model learned from: each training item's id and its "
                    "label, and, when it learned pseudo-labels, the pool items it was handed")
    created_at: datetime


class Activated(BaseModel):
    model: ModelOut
    round_id: int
    job_id: int | None
    created: bool


class FlagOut(BaseModel):
    id: int
    item_id: int
    user_id: int
    reason: str
    created_at: datetime
    resolved_at: datetime | None
    resolved_by: int | None
    resolution_note: str | None


class AuditOut(BaseModel):
    id: int
    action: str
    entity: str
    entity_id: str | None
    actor_id: int | None
    actor: str | None = Field(None, description="The actor's user name (None: the system).")
    before: dict[str, Any] | None
    after: dict[str, Any] | None
    created_at: datetime


class ReviewAnnotation(BaseModel):
    annotation_id: int
    annotator: str
    labels: list[Any]
    kind: str
    created_at: datetime


class ReviewSuggestion(BaseModel):
    label: Any
    confidence: float | None
    #: The active model behind it, and the round that trained that model (pages speak of
    #: "the model of round 3"; None for a model no round trained).
    model_version: int | None = None
    model_round: int | None = None


class ReviewFlag(BaseModel):
    id: int
    reason: str
    by: str


class LabelCheckJob(BaseModel):
    id: int
    status: str
    error: str | None


class LabelCheckOut(BaseModel):
    state: str = Field(description="up_to_date: the newest check read the current labels; "
                       "outdated: earlier labels (the review queue asks for a newer check); "
                       "not_yet: no check yet; not_applicable: the task has no label check "
                       "(spans).")
    labels: int = Field(description="Current labels of the project.")
    labels_checked: int | None = Field(description="Labels the newest check read.")
    flagged: int = Field(description="Current labels the newest check put up.")
    finished_at: datetime | None
    next_check_after: datetime | None = Field(description="While the checks rest after the "
                                              "last (four times its duration), when the next "
                                              "may start: asked by a read after that time.")
    job: LabelCheckJob | None = Field(description="The newest label-check job.")


class ReviewEntryOut(BaseModel):
    """One item to review for one reason; act with POST .../annotations/{id}/review or
    POST .../flags/{id}/resolve."""

    item_id: int
    external_id: str
    reason: str
    score: float = Field(description="Higher first; in [0, 1].")
    detail: str = Field(description="One sentence saying why the item is here.")
    data: dict[str, Any]
    annotations: list[ReviewAnnotation]
    consensus: Any = None
    suggestion: ReviewSuggestion | None = None
    flag: ReviewFlag | None = None
    proposed: list[Any] = Field(default_factory=list, description=(
        "The labels this reason proposes beside the annotators' (what the review page offers "
        "first as corrections): the label a label check finds likelier, or a multi-label "
        "check's left-out label; the label a model gives against the consensus (span "
        "projects: the types of the spans it is sure of)."))


class PairKappaOut(BaseModel):
    a: str
    b: str
    kappa: float | None
    n: int
    below_target: bool = False


class LabelAgreementOut(BaseModel):
    agreement: float | None = Field(description="Proportion of specific agreement: given one "
                                    "annotator chose the label, the chance another did too.")
    n: int = Field(description="Multiply-labeled items where the label was given.")
    below_target: bool = False


class AgreementOut(BaseModel):
    """Agreement over items with two or more current labels; floats are null with fewer than
    two such items."""

    n_items: int
    n_annotators: int
    krippendorff_alpha: float | None
    fleiss_kappa: float | None
    cohen_kappa_pairs: list[PairKappaOut]
    per_label: dict[str, LabelAgreementOut]
    target: float | None = Field(description="The project's agreement_target (compared with "
                                 "Krippendorff's alpha).")
    below_target: bool
    span_agreement: dict[str, Any] | None = Field(None, description=(
        "Span projects: span-level F1 between annotators (exact start, end and type), micro "
        "(f1) and per entity type, over items with two or more annotators; "
        "unitizing_alpha: Krippendorff's alpha for unitizing per annotator pair (pairs) and "
        "over all annotators (alpha, per_type) when they all labeled the same items."))


class AnnotatorQualityOut(BaseModel):
    user_id: int
    username: str
    labels: int
    gold_n: int = Field(description="Gold items the annotator labeled.")
    gold_accuracy: float | None
    agreement_with_consensus: float | None = Field(description="Share of labels equal to the "
                                                   "majority of the other annotators.")
    consensus_n: int
    estimated_accuracy: float | None = Field(description="Dawid-Skene estimate.")
    gold_alert: bool = Field(description="gold_accuracy is below gold_alert_below.")


class AnchoringOut(BaseModel):
    """One annotator's answers given before the suggestion showed (after_answer), against the
    first label they submitted after each."""

    user_id: int
    username: str
    blind_answers: int = Field(description="Items answered before the suggestion showed.")
    submitted: int = Field(description="Of those, items the annotator then labeled.")
    changed: int = Field(description="Of those, items whose label differs from the answer "
                         "given before the suggestion showed.")
    changed_share: float | None = Field(description="changed / submitted.")
    disagreed_with_suggestion: int = Field(description="Labeled items whose answer before the "
                                           "suggestion differed from the suggestion shown.")
    switched_to_suggestion: int = Field(description="Of those, items labeled as the "
                                        "suggestion said.")
    switched_share: float | None = Field(description="switched_to_suggestion / "
                                         "disagreed_with_suggestion.")


class DecisionOut(DecisionView):
    """A logged decision with its author's name."""


class ProjectVersionOut(VersionView):
    """A version of the label set and guidelines with its author's name."""


class SnapshotOut(BaseModel):
    id: int
    content_hash: str
    model_version: int | None
    guidelines_version: int
    n_items: int
    note: str | None
    created_by: int | None
    created_at: datetime


class RestoreOut(BaseModel):
    snapshot_id: int
    restored: int = Field(description="Labels re-applied as new revisions.")
    unchanged: int
    missing: int = Field(description="Labels whose item or annotator chain is gone.")


class PurgeOut(BaseModel):
    purged: list[int]


class CalibrationOut(BaseModel):
    id: int
    name: str
    guidelines_version: int
    item_ids: list[int]
    created_at: datetime


class RelabelItem(BaseModel):
    item_id: int
    score: float = Field(description="ActiveLab score: lower, another label is worth more.")
    n_labels: int | None = None


class RelabelOut(BaseModel):
    advice: Literal["relabel", "label_new"] | None = Field(description=(
        "relabel: some labeled items score below the best new item; null without a model."))
    relabel: list[RelabelItem]
    label_new: list[RelabelItem]


class Health(BaseModel):
    status: str = Field(description="ok, or error when the database or the disk fails.")
    database: str = Field(description="ok or unavailable.")
    version: str
    disk: str | None = Field(None, description=(
        "ok, or full when the data folder's disk has less free space than the server's "
        "min_free_disk_bytes (writes then answer 507)."))
    disk_free_bytes: int | None = None
    worker: str | None = Field(None, description=(
        "ok (a job is running), idle, or stalled (a job has waited minutes with none "
        "running: no worker is taking jobs)."))
    oldest_queued_job_at: datetime | None = None
    last_round_at: datetime | None = None


class AnnotatorCount(BaseModel):
    user_id: int
    username: str
    labels: int


class RoundSummary(BaseModel):
    id: int
    number: int
    status: str
    strategy: str
    n_labels_used: int | None
    accuracy: float | None
    macro_f1: float | None
    finished_at: datetime | None


class Payoff(BaseModel):
    """What active learning pays, measured on audit draws (uniformly random tasks)."""

    audit_share: float
    audit_draws: int = Field(description="Items drawn for the audit so far.")
    audit_labels: int = Field(description="Labeled audit draws (purged items left out).")
    audit_entities: int | None = Field(None, description=(
        "Span projects: the entities the labeled audit sentences hold (entity F1 is measured "
        "from 20); null for the other tasks."))
    audit_positives: int | None = Field(None, description=(
        "What F1 counts: the entities (span projects) or the labels (multi-label projects) "
        "the labeled audit items hold (F1 is measured from 20); null for classification."))
    model_version: int | None
    measure: str = Field("accuracy", description=(
        "What accuracy, the curve and the counts measure: 'accuracy' (the share of audit "
        "labels the model gives); for multi-label projects 'label_f1' (micro F1 over the "
        "audit items' labels); for span projects 'entity_f1' (micro F1 over the audit "
        "sentences' entities: start, end and type)."))
    accuracy: float | None = Field(description="The active model's score on the audit "
                                   "labels (see measure): an estimate of its score on the "
                                   "pool (unbiased for accuracy; F1 is a ratio of sums).")
    low: float = Field(description="Lower end of the confidence interval.")
    high: float = Field(description="Upper end of the confidence interval.")
    confidence: float
    note: str | None = Field(None, description=(
        "Why there is no score yet (no audit labels, no model, too few entities or labels for F1), as the "
        "dashboard and `activelabel status` print it; null when there is one."))
    interval: str = Field(description="How the interval is computed: 'wilson' (Wilson score, "
                          "accuracy) or 'bootstrap' (percentile, over the audit items: F1).")
    labels_spent: int = Field(description="Pool labels (holdout and gold left out).")
    n_train: int | None = Field(description="Labels the active model trained on.")
    random_curve: list[list[float]] = Field(
        description="[labels, score] of a model trained on the audit labels alone (the "
        "score named by measure).")
    curve_min_labels: int | None = Field(
        description="Audit labels a round needs before it traces the curve; null when the "
        "project's model is served over HTTP (trained where it runs, never on the audit "
        "labels alone): no curve is traced.")
    random_labels_needed: int | None = Field(
        description="Random labels the same accuracy needed, read off the random curve; "
        "null when the curve cannot tell (beyond its reach, or an extrapolation whose "
        "interval's high end is beyond it).")
    random_extrapolated: bool | None = Field(
        description="Whether that count lies beyond the curve (a power-law fit).")
    random_labels_range: list[int | None] | None = Field(
        default=None, description="The fewest and the most random labels the score's "
        "interval and the curve's own allow (each curve point scored on the audit labels "
        "after its training labels; null at an end the curve cannot reach): how far the count "
        "can be trusted.")
    target_accuracy: float | None
    to_target: float | None = Field(description="target_accuracy minus the estimate (the "
                                    "target names the measure's score).")
    target_status: Literal["reached", "reached_by_estimate", "below_by_estimate",
                           "below"] | None = Field(None, description=(
        "The target against the interval: 'reached' (its low end at or above it), "
        "'reached_by_estimate' (the estimate, not the low end), 'below_by_estimate' (the "
        "high end reaches it, not the estimate), 'below'; null without a target or a score."))


class SentenceVectorsOut(BaseModel):
    embedded: int = Field(description="Items whose sentence vector is stored.")
    items: int
    in_model: bool = Field(description="Whether the cached features (the last round's model) "
                           "read them.")
    text: str = Field(description="The same, as a sentence.")


class FeaturesOut(BaseModel):
    featurizer: str
    built_for: int | None = Field(description="Items the cached features of this featurizer "
                                  "were built for (None: none built yet).")
    sentence_vectors: SentenceVectorsOut | None = Field(
        description="Embedding progress of a text project whose features take sentence "
                    "vectors or that has some stored (None: neither).")


class Stats(BaseModel):
    project_id: int
    items: dict[str, int] = Field(description="Items per split, and 'total'.")
    labeled: int = Field(description="Items with at least one current label.")
    leased: int = Field(description="Items under an active lease.")
    queued: int = Field(description="Ranked items not labeled yet (the current batch).")
    open_flags: int
    jobs_waiting: int
    active_model_version: int | None
    labels_per_annotator: list[AnnotatorCount]
    last_rounds: list[RoundSummary]
    payoff: Payoff
    features: FeaturesOut = Field(description="What the model reads: the featurizer and, for "
                                  "text, how many items have their sentence vectors.")


class BatchProgress(BaseModel):
    selected: int = Field(description="Items the last round selected (its batch).")
    labeled: int = Field(description="Of those, items with a current label.")


class OwnProgress(BaseModel):
    labels: int = Field(description="The caller's current labels in the project.")
    last_hour: int
    labels_per_hour: float | None = Field(description="From the submitted durations.")
    holding: list[int] = Field(
        default_factory=list,
        description="Ids of the items leased to the caller now, oldest lease first (at most "
                    "200): a labeling page drops from its buffer the items no longer among "
                    "them (purged, or the lease ran out and another annotator took the item).")


class LastRound(BaseModel):
    number: int
    accuracy: float | None
    macro_f1: float | None
    measure: str = Field(description="The task's score: accuracy, label_f1 (multi-label) or "
                         "entity_f1 (spans).")
    score: float | None = Field(description="The round's holdout score in that measure.")
    gain: dict[str, Any] | None = Field(description="The change since the previous measured model: accuracy, macro_f1, measure (the task's score: accuracy, label_f1 or entity_f1), score (its change; null where the previous round did not measure it), per_100_labels (of score), labels_added.")
    finished_at: datetime | None


class Progress(BaseModel):
    project_id: int
    items: int = Field(description="Items in the project (0: nothing imported yet).")
    labeled: int
    round: int | None = Field(description="The last finished round (whose batch is served).")
    batch: BatchProgress
    retrain_every_labels: int
    labels_since_round: int
    labels_to_next_round: int
    round_pending: int | None = Field(description="Number of a queued or running round.")
    me: OwnProgress
    last_round: LastRound | None


class ConfidenceSummary(BaseModel):
    counts: list[int]
    n: int
    mean: float | None
    median: float | None


class Confidence(BaseModel):
    bins: int
    edges: list[float]
    current: ConfidenceSummary | None = Field(description="Under the active model.")
    previous: ConfidenceSummary | None = Field(description="Under the model it replaced.")


class RelatedItem(BaseModel):
    item_id: int
    external_id: str
    label: Any
    similarity: float
    data: dict[str, Any]


class RoundEffort(BaseModel):
    id: int
    number: int
    status: str
    strategy: str
    n_labels_used: int | None
    labels_gathered: int = Field(description="Labels submitted while its ranking was served.")
    labeling_seconds: float | None
    metrics: dict[str, Any] = Field(description="accuracy, macro_f1, ece, n_train, a "
                                    "multi-label project's label_f1, a span project's "
                                    "entity_f1, an auto round's schedule.strategy, and "
                                    "random_accuracy / random_macro_f1 where simulated.")
    gain: dict[str, Any] | None = Field(description="The change since the previous measured model: accuracy, macro_f1, measure (the task's score: accuracy, label_f1 or entity_f1), score (its change; null where the previous round did not measure it), per_100_labels (of score), labels_added.")
    timings: dict[str, Any] | None
    finished_at: datetime | None


class Throughput(BaseModel):
    username: str
    labels: int
    last_hour: int
    median_seconds: float | None


class DriftOut(BaseModel):
    """The newest drift report: new items against the training data (see activelabel.drift)."""

    source: Literal["round", "import"]
    round_number: int | None = None
    job_id: int | None = None
    shifted: bool
    reasons: list[str]
    n_reference: int
    n_new: int
    first_new_row: int
    confidence_psi: float | None = None
    confidence_p: float | None = None
    embedding_psi: float | None = None
    embedding_p: float | None = None
    domain_auc: float | None = None
    domain_p: float | None = None


class StalenessOut(BaseModel):
    """How far the active model is behind: labels and items since it was trained, its age."""

    stale: bool
    reasons: list[str]
    labels_since: int
    new_items: int
    seconds_since: float
    model_version: int


class Dashboard(BaseModel):
    project_id: int
    measure: str = Field(description="The task's score, what each round's gain measures: "
                         "accuracy, label_f1 (multi-label) or entity_f1 (spans).")
    rounds: list[RoundEffort]
    annotators: list[Throughput]
    label_counts: dict[str, int]
    drift: DriftOut | None = None
    staleness: StalenessOut | None = None


class PaceOut(BaseModel):
    labels_per_minute: float = Field(description="Training labels per minute of the "
                                     "annotators active in the last 15 minutes.")
    labels_per_item: float = Field(1.0, description=(
        "Labels an item took in those 15 minutes (2 with an overlap of 2): batches, the "
        "cadence and the forecast's time count items, at labels_per_minute / labels_per_item "
        "a minute."))
    counts: Literal["labels", "items"] = Field("labels", description=(
        "What batches, retrain_after and labels_behind count: 'items' when an item takes more "
        f"than {OVERLAP_FROM} labels (overlap), else 'labels'."))
    active_annotators: int
    round_seconds: float | None = Field(description=(
        "Expected time from asking for the next round to its model (queued to finished)."))
    batch_size: int | None = Field(description="The last round's batch.")
    batch_auto: bool
    retrain_after: int = Field(description="Items labeled since the last round that queue the "
                               "next.")
    cadence_auto: bool
    labels_behind: int = Field(description="Items labeled since the last round read the labels.")
    max_model_lag: int
    plan: str | None = Field(description="How the last round sized its batch and cadence.")


class VerdictOut(BaseModel):
    rule: str
    stop: bool
    reason: str


class ForecastOut(BaseModel):
    target: float | None
    labels_now: int = Field(description="Training labels of the last evaluated round.")
    labels: int | None = Field(description="Training labels at which the fitted learning "
                               "curve reaches the target.")
    more: int | None
    low: int | None = Field(description="The 90% interval's low end (labels in total).")
    high: int | None = Field(description="Its high end; empty: out of reach in the interval.")
    low_more: int | None = None
    high_more: int | None = None
    minutes: float | None = Field(description="The labels still needed at the team's pace.")
    reached: bool
    text: str


class Outlook(BaseModel):
    project_id: int
    round: int | None = Field(description="The last finished round.")
    pace: PaceOut
    verdicts: list[VerdictOut] = Field(description="The last round's stopping rules.")
    stop: bool = Field(description="Whether any stopping rule says stop.")
    strategy: str
    forecast: ForecastOut
    prefetch: int | None = Field(description="Tasks the caller's page keeps ahead, from "
                                 "their own pace.")


# ---- conversions -------------------------------------------------------------------------------


def user_out(user: User) -> UserOut:
    return UserOut(id=user.id, username=user.username, is_admin=bool(user.is_admin),
                   disabled=bool(user.disabled), created_at=user.created_at)


def token_out(token: ApiToken) -> TokenOut:
    return TokenOut(id=token.id, name=token.name, prefix=token.prefix,
                    created_at=token.created_at, last_used_at=token.last_used_at,
                    revoked_at=token.revoked_at, expires_at=token.expires_at)


def project_out(project: Project, role: str) -> ProjectOut:
    return ProjectOut.model_validate({
        "id": project.id, "name": project.name, "task": project.task,
        "labels": list(project.labels), "guidelines": project.guidelines or "",
        "guidelines_version": project.guidelines_version, "settings": public_settings(settings_of(project.settings).model_dump()),
        "private_fields": list(project.private_fields or []), "created_by": project.created_by,
        "created_at": project.created_at, "role": role})


def item_out(item: Item) -> ItemOut:
    return ItemOut(id=item.id, external_id=item.external_id, split=item.split, row=item.row,
                   queue_rank=item.queue_rank, data=dict(item.data), created_at=item.created_at,
                   gold_labels=item.gold_labels, purged_at=item.purged_at)


def revision_out(rev: Revision) -> RevisionOut:
    return RevisionOut(id=rev.id, item_id=rev.item_id, annotator_id=rev.annotator_id,
                       user_id=rev.user_id, username=rev.username, kind=rev.kind,
                       labels=rev.labels, duration_ms=rev.duration_ms,
                       supersedes_id=rev.supersedes_id, round_id=rev.round_id,
                       created_at=rev.created_at, is_current=rev.is_current,
                       reason=rev.reason, guidelines_version=rev.guidelines_version)


def annotation_out(ann: Any) -> RevisionOut:
    """A just-written :class:`~activelabel.store.models.Annotation` row."""
    return RevisionOut(id=ann.id, item_id=ann.item_id, annotator_id=ann.annotator_id,
                       user_id=ann.user_id, kind=ann.kind, labels=ann.labels,
                       duration_ms=ann.duration_ms, supersedes_id=ann.supersedes_id,
                       round_id=ann.round_id, created_at=ann.created_at, is_current=True,
                       reason=ann.reason, guidelines_version=ann.guidelines_version)


#: Job payload keys not shown to clients (server file paths).
_HIDDEN_PAYLOAD = frozenset({"path"})


def job_out(job: Job) -> JobOut:
    payload = {k: v for k, v in (job.payload or {}).items() if k not in _HIDDEN_PAYLOAD}
    return JobOut(id=job.id, project_id=job.project_id, kind=job.kind, status=job.status,
                  payload=payload, progress=job.progress, result=job.result, error=job.error,
                  attempts=job.attempts, created_at=job.created_at, started_at=job.started_at,
                  finished_at=job.finished_at)


def round_fields(rnd: Round, model_version: int | None, task: str) -> dict[str, Any]:
    """A round as the API shows it (its gain names the ``task``'s score: older rounds'
    recorded accuracy alone, :func:`activelabel.labeling.insights.task_gain`)."""
    return {"id": rnd.id, "number": rnd.number, "status": rnd.status, "strategy": rnd.strategy,
            "batch_size": rnd.batch_size, "job_id": rnd.job_id, "model_version": model_version,
            "n_labels_used": rnd.n_labels_used, "metrics": rnd.metrics,
            "gain": task_gain(rnd.gain, task),
            "timings": rnd.timings, "error": rnd.error, "created_at": rnd.created_at,
            "started_at": rnd.started_at, "finished_at": rnd.finished_at}


def model_out(model: ModelVersion) -> ModelOut:
    return ModelOut(id=model.id, version=model.version, round_id=model.round_id,
                    parent_id=model.parent_id, n_train=model.n_train, metrics=model.metrics,
                    is_active=bool(model.is_active), training_set_hash=model.training_set_hash,
                    created_at=model.created_at)


def flag_out(flag: Flag) -> FlagOut:
    return FlagOut(id=flag.id, item_id=flag.item_id, user_id=flag.user_id, reason=flag.reason,
                   created_at=flag.created_at, resolved_at=flag.resolved_at,
                   resolved_by=flag.resolved_by, resolution_note=flag.resolution_note)


def snapshot_out(s: Snapshot) -> SnapshotOut:
    return SnapshotOut(id=s.id, content_hash=s.content_hash, model_version=s.model_version,
                       guidelines_version=s.guidelines_version, n_items=s.n_items, note=s.note,
                       created_by=s.created_by, created_at=s.created_at)


def audit_out(event: AuditEvent, actor: str | None = None) -> AuditOut:
    return AuditOut(id=event.id, action=event.action, entity=event.entity,
                    entity_id=event.entity_id, actor_id=event.actor_id, actor=actor,
                    before=event.before, after=event.after, created_at=event.created_at)


def json_response(adapter: TypeAdapter[Any], value: Any, status_code: int = 200) -> Response:
    """``value`` as the JSON response FastAPI makes of it for a route whose response model is
    ``adapter``'s type (by alias, as FastAPI does), serialized by the caller (in the
    endpoint's own thread). ``value`` is not validated again: build it from the model."""
    return Response(adapter.dump_json(value, by_alias=True), status_code=status_code,
                    media_type="application/json")


class ImportMapping(BaseModel):
    """A column mapping: each column's role (content, private, label, annotator, label_time,
    gold, prediction, prediction_score, prediction_model, vector, split, external_id,
    ignore)."""

    columns: dict[str, Annotated[str, Field(pattern="^(" + "|".join(COLUMN_ROLES) + ")$")]]


class ImportRequest(BaseModel):
    """Import a saved upload with this mapping (default: the project's saved one)."""

    mapping: ImportMapping | None = None
    split: Literal["pool", "holdout", "gold"] | None = None


class ColumnProposalOut(BaseModel):
    column: str
    role: str
    reason: str
    answer_like: bool
    samples: list[Any]


class ImportPreview(BaseModel):
    """A saved upload's first rows, its columns and the role proposed for each, with why."""

    upload: str
    format: str
    canonical: bool
    columns: list[str]
    rows: list[dict[str, Any]]
    rejected: list[dict[str, Any]]
    proposal: list[ColumnProposalOut]
    mapping: ImportMapping
    saved_mapping: ImportMapping | None
    labels: list[Any]
    #: The roles a column may have.
    roles: list[str]


class VectorsStored(BaseModel):
    stored: int
    dim: int
    items_without_vector: int


class PredictionLabelComparison(BaseModel):
    label: str
    compared: int
    agree: int
    agreement: float


class PredictionComparison(BaseModel):
    """Imported predictions against people's labels (consensus) on the items with both."""

    predictions: int
    predicted_items: int
    imported_labels: int
    compared: int
    agree: int
    agreement: float | None
    per_label: list[PredictionLabelComparison]
    mean_score_when_agreeing: float | None
    mean_score_when_disagreeing: float | None


class ImageFolderRequest(BaseModel):
    """Import the images of a folder on the server (under ACTIVELABEL_IMAGE_ROOTS)."""

    model_config = ConfigDict(extra="forbid")

    path: str = Field(min_length=1, max_length=4096, description="Absolute path on the server.")
    split: Literal["pool", "holdout", "gold"] | None = None
    labels_from_folders: bool = Field(default=False, description=(
        "A file in a subfolder named after a label comes with that label (an imported label "
        "of annotator `folder`)."))
