"""SQLAlchemy 2 models: the tables of a labeling deployment.

Append-only tables (``annotations``, ``audit_events``, ``round_selections``) are only ever
inserted into by the repository functions. Time columns are timezone-aware UTC everywhere
(:class:`UTCDateTime` restores the zone SQLite drops).
"""

from __future__ import annotations

from datetime import datetime, timezone
from enum import Enum
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    Boolean,
    CheckConstraint,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator

__all__ = [
    "ANNOTATION_KINDS",
    "JOB_KINDS",
    "JOB_PRIORITY",
    "JOB_STATUSES",
    "ROLES",
    "ROUND_STATUSES",
    "SPLITS",
    "TASKS",
    "Annotation",
    "ApiToken",
    "Assignment",
    "AuditEvent",
    "Base",
    "BlindAnswer",
    "CalibrationItem",
    "CalibrationSession",
    "Decision",
    "Flag",
    "Item",
    "Job",
    "JobStatus",
    "LoginFailure",
    "Membership",
    "ModelVersion",
    "Prediction",
    "Project",
    "ProjectVersion",
    "Role",
    "Round",
    "RoundSelection",
    "RoundStatus",
    "Snapshot",
    "Split",
    "TaskType",
    "UTCDateTime",
    "User",
    "utcnow",
]

class _Named(str, Enum):
    """An enumeration whose members are their string values (stored and sent as such)."""

    def __str__(self) -> str:
        return str(self.value)


class Role(_Named):
    """A member's role in a project, lowest first: each role may do what the ones below do."""

    ANNOTATOR = "annotator"
    REVIEWER = "reviewer"
    OWNER = "owner"

    @property
    def rank(self) -> int:
        return _ROLE_ORDER.index(self)

    def at_least(self, minimum: Role | str) -> bool:
        """Whether this role may do what ``minimum`` may."""
        return self.rank >= Role(minimum).rank


_ROLE_ORDER = tuple(Role)


class JobStatus(_Named):
    """Where a background job (a round, an import) is."""

    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"


class RoundStatus(_Named):
    """Where a round is (its job's status, recorded on the round)."""

    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"


class TaskType(_Named):
    """What annotators give an item: one label, any number of labels, or spans of its text
    (``{start, end, label}`` character offsets; the labels are the entity types)."""

    CLASSIFICATION = "classification"
    MULTILABEL = "multilabel"
    SPANS = "spans"


class Split(_Named):
    """What an item is for: the pool to label, the holdout to evaluate on, gold to check
    annotators with."""

    POOL = "pool"
    HOLDOUT = "holdout"
    GOLD = "gold"


TASKS = tuple(t.value for t in TaskType)
#: Role names, highest first (as error messages list them).
ROLES = tuple(r.value for r in reversed(Role))
SPLITS = tuple(s.value for s in Split)
#: ``imported``: a label that came with an import (its provenance in ``source_job_id`` and
#: ``source_annotator``), never written by a person through the app.
ANNOTATION_KINDS = ("label", "correction", "review_accept", "review_reject", "undo", "imported")
JOB_KINDS = ("round", "import", "label_check")
#: Which queued jobs a worker takes first (lowest first, then the oldest): a label check
#: (the review queue's, seconds to minutes) waits for the rounds and imports queued, for at
#: most ``jobs.PRIORITY_AGING_SECONDS``.
JOB_PRIORITY = {"round": 0, "import": 0, "label_check": 1}
JOB_STATUSES = tuple(s.value for s in JobStatus)
ROUND_STATUSES = tuple(s.value for s in RoundStatus)

NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def utcnow() -> datetime:
    """The current time, timezone-aware UTC."""
    return datetime.now(timezone.utc)


class UTCDateTime(TypeDecorator[datetime]):
    """Timestamp stored as UTC; always read back timezone-aware (SQLite keeps no zone)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r}: pass an aware one, e.g. "
                             "datetime.now(timezone.utc)")
        value = value.astimezone(timezone.utc)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is not None and value.tzinfo is None:
            return value.replace(tzinfo=timezone.utc)
        return value


def _one_of(column: str, values: tuple[str, ...], name: str) -> CheckConstraint:
    allowed = ", ".join(f"'{v}'" for v in values)
    return CheckConstraint(f"{column} IN ({allowed})", name=name)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    # none_as_null: Python None is stored as SQL NULL (not the JSON text 'null').
    type_annotation_map: ClassVar[dict[Any, Any]] = {
        datetime: UTCDateTime(),
        dict[str, Any]: JSON(none_as_null=True),
        list[Any]: JSON(none_as_null=True),
    }


def _fk(target: str, *, nullable: bool = False, ondelete: str = "CASCADE") -> Any:
    return mapped_column(ForeignKey(target, ondelete=ondelete), nullable=nullable)


def _created() -> Any:
    return mapped_column(UTCDateTime(), default=utcnow, nullable=False)


class User(Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    password_hash: Mapped[str | None] = mapped_column(String(255))
    is_admin: Mapped[bool] = mapped_column(Boolean, default=False)
    disabled: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = _created()


class ApiToken(Base):
    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = _fk("users.id")
    name: Mapped[str] = mapped_column(String(100))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    prefix: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = _created()
    last_used_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]
    #: Never valid after this (None: no end).
    expires_at: Mapped[datetime | None]
    #: Expires when unused for this long (None: never idles out): login tokens.
    idle_seconds: Mapped[int | None]

    __table_args__ = (Index(None, "user_id"),)


class LoginFailure(Base):
    """A wrong password: who was tried, from where, when (what login throttling counts)."""

    __tablename__ = "login_failures"

    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(64))
    address: Mapped[str] = mapped_column(String(64))
    at: Mapped[datetime] = _created()

    __table_args__ = (Index(None, "username", "at"), Index(None, "address", "at"))


class Project(Base):
    __tablename__ = "projects"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    task: Mapped[str] = mapped_column(String(20))
    labels: Mapped[list[Any]]
    guidelines: Mapped[str] = mapped_column(Text, default="")
    guidelines_version: Mapped[int] = mapped_column(Integer, default=1)
    settings: Mapped[dict[str, Any]]
    private_fields: Mapped[list[Any]]
    #: The column mapping of flat imports (labeling.mapping), reused by the next upload.
    import_mapping: Mapped[dict[str, Any] | None]
    created_by: Mapped[int | None] = _fk("users.id", nullable=True, ondelete="SET NULL")
    created_at: Mapped[datetime] = _created()

    __table_args__ = (_one_of("task", TASKS, "task"),)


class Membership(Base):
    __tablename__ = "memberships"

    project_id: Mapped[int] = mapped_column(
        ForeignKey("projects.id", ondelete="CASCADE"), primary_key=True)
    user_id: Mapped[int] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    role: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = _created()

    __table_args__ = (_one_of("role", ROLES, "role"), Index(None, "user_id"))


class Item(Base):
    """One unit to label. ``row`` is its dense index (0..n-1) in the project's array store."""

    __tablename__ = "items"

    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = _fk("projects.id")
    external_id: Mapped[str] = mapped_column(String(255))
    data: Mapped[dict[str, Any]]
    split: Mapped[str] = mapped_column(String(16), default="pool")
    content_hash: Mapped[str] = mapped_column(String(64))
    row: Mapped[int] = mapped_column(Integer)
    #: Place in the queue, lowest first: a round's batch (0..k-1), then the rest of the
    #: ranking the round wrote; ``queue_key`` before any model (store.queue.RANDOM_BASE).
    queue_rank: Mapped[float | None] = mapped_column(Float)
    #: Seeded random key written at import (>= store.queue.RANDOM_BASE): the order before the
    #: first model, and what audit draws sample by.
    queue_key: Mapped[float | None] = mapped_column(Float)
    #: When the item was drawn for an audit (uniformly at random from the unlabeled pool).
    audit_drawn_at: Mapped[datetime | None]
    #: How many annotators' current revisions carry a label: kept by every revision written
    #: (store.annotations), so that the queue skips finished items without counting labels.
    n_labels: Mapped[int] = mapped_column(Integer, default=0, server_default=text("0"))
    #: The known answer of a gold item (a list of labels), never shown to annotators.
    gold_labels: Mapped[list[Any] | None]
    #: Fields kept with the item that nobody labeling it sees (an import's private columns).
    private: Mapped[dict[str, Any] | None]
    #: When the payload was removed on request (data is then ``{}``); annotations stay.
    purged_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = _created()

    __table_args__ = (
        UniqueConstraint("project_id", "external_id"),
        UniqueConstraint("project_id", "row"),
        # The queue: ranked items by rank, then unranked ones (rank IS NULL) by row. Items
        # nobody has labeled yet have an index of their own (what an overlap of 1 reads), so
        # finished items cost nothing however many there are.
        Index(None, "project_id", "queue_rank", "row"),
        Index("ix_items_unlabeled_queue", "project_id", "queue_rank", "row",
              sqlite_where=text("n_labels = 0"), postgresql_where=text("n_labels = 0")),
        Index("ix_items_audit_draw", "project_id", "queue_key",
              sqlite_where=text("n_labels = 0"), postgresql_where=text("n_labels = 0")),
        _one_of("split", SPLITS, "split"),
    )


class Assignment(Base):
    """A lease: the item is reserved for the user until ``expires_at`` (or release/completion)."""

    __tablename__ = "assignments"

    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = _fk("projects.id")
    item_id: Mapped[int] = _fk("items.id")
    user_id: Mapped[int] = _fk("users.id")
    leased_at: Mapped[datetime] = _created()
    expires_at: Mapped[datetime]
    released_at: Mapped[datetime | None]
    completed_at: Mapped[datetime | None]

    __table_args__ = (
        Index(None, "item_id", "expires_at"),
        Index(None, "project_id", "user_id", "expires_at"),
        # The open leases only (a few per annotator, however many labels the project has):
        # what every claim asks about each candidate item (migration 0011).
        Index("ix_assignments_open", "item_id", "user_id", "expires_at",
              sqlite_where=text("released_at IS NULL AND completed_at IS NULL"),
              postgresql_where=text("released_at IS NULL AND completed_at IS NULL")),
    )


class Annotation(Base):
    """One revision of one annotator's label for one item; never updated nor deleted.

    ``annotator_id`` owns the revision chain (the person whose label it is); ``user_id`` wrote
    this revision (the annotator, or a reviewer accepting/correcting). ``supersedes_id`` is
    unique, so a chain is linear and two concurrent corrections of one revision conflict; the
    partial unique index allows one chain root per (item, annotator). ``labels`` is NULL for
    revisions that withdraw the label (undo, review_reject).
    """

    __tablename__ = "annotations"

    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = _fk("projects.id")
    item_id: Mapped[int] = _fk("items.id")
    annotator_id: Mapped[int] = _fk("users.id")
    user_id: Mapped[int] = _fk("users.id")
    kind: Mapped[str] = mapped_column(String(16))
    labels: Mapped[list[Any] | None]
    duration_ms: Mapped[int | None] = mapped_column(Integer)
    supersedes_id: Mapped[int | None] = mapped_column(
        ForeignKey("annotations.id", ondelete="RESTRICT"), unique=True)
    round_id: Mapped[int | None] = _fk("rounds.id", nullable=True, ondelete="SET NULL")
    client_key: Mapped[str | None] = mapped_column(String(100))
    #: Why this revision was made (a reviewer's reason, a restore), free text.
    reason: Mapped[str | None] = mapped_column(Text)
    #: The project's guidelines version when the revision was written.
    guidelines_version: Mapped[int | None] = mapped_column(Integer)
    #: The import job an ``imported`` revision came with (its id: jobs are never deleted
    #: but with their project, and so are its annotations).
    source_job_id: Mapped[int | None] = mapped_column(Integer)
    #: The annotator the imported file named (kept as text: it need not be a user).
    source_annotator: Mapped[str | None] = mapped_column(String(255))
    created_at: Mapped[datetime] = _created()

    __table_args__ = (
        UniqueConstraint("user_id", "client_key"),
        Index("uq_annotations_chain_root", "item_id", "annotator_id", unique=True,
              sqlite_where=text("supersedes_id IS NULL"),
              postgresql_where=text("supersedes_id IS NULL")),
        Index(None, "project_id", "id"),
        # Every label count of an item (the queue's overlap check) looks rows up by item.
        Index(None, "item_id", "annotator_id"),
        _one_of("kind", ANNOTATION_KINDS, "kind"),
    )


class BlindAnswer(Base):
    """An annotator's answer given before the model's suggestion showed: the labels sent with
    the first ``tasks/suggestions`` call for the item under ``suggestion_display``
    after_answer, with the suggestion that call showed (``suggested``: its labels as a list,
    NULL when none was confident enough; ``model_version`` 0 for an imported prediction).
    One per (item, user), never updated nor deleted: later calls leave it as it is."""

    __tablename__ = "blind_answers"

    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = _fk("projects.id")
    item_id: Mapped[int] = _fk("items.id")
    user_id: Mapped[int] = _fk("users.id")
    labels: Mapped[list[Any]]
    suggested: Mapped[list[Any] | None]
    model_version: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime] = _created()

    __table_args__ = (UniqueConstraint("item_id", "user_id"), Index(None, "project_id", "user_id"))


class Prediction(Base):
    """A model's guess imported with an item (labels, score, model name): the suggestion
    before a model of the project exists, the first round's prior, compared with people."""

    __tablename__ = "predictions"

    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = _fk("projects.id")
    item_id: Mapped[int] = _fk("items.id")
    labels: Mapped[list[Any]]
    score: Mapped[float | None] = mapped_column(Float)
    model: Mapped[str | None] = mapped_column(String(200))
    source_job_id: Mapped[int | None] = _fk("jobs.id", nullable=True, ondelete="SET NULL")
    created_at: Mapped[datetime] = _created()

    __table_args__ = (Index(None, "item_id"), Index(None, "project_id", "id"))


class Flag(Base):
    __tablename__ = "flags"

    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = _fk("projects.id")
    item_id: Mapped[int] = _fk("items.id")
    user_id: Mapped[int] = _fk("users.id")
    reason: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = _created()
    resolved_at: Mapped[datetime | None]
    resolved_by: Mapped[int | None] = _fk("users.id", nullable=True, ondelete="SET NULL")
    resolution_note: Mapped[str | None] = mapped_column(Text)

    __table_args__ = (Index(None, "project_id", "resolved_at"), Index(None, "item_id"))


class Job(Base):
    """Durable background job (a round, an import); survives restarts of the worker."""

    __tablename__ = "jobs"

    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int | None] = _fk("projects.id", nullable=True)
    kind: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16), default=JobStatus.QUEUED)
    payload: Mapped[dict[str, Any]]
    progress: Mapped[dict[str, Any] | None]
    result: Mapped[dict[str, Any] | None]
    error: Mapped[str | None] = mapped_column(Text)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    worker_id: Mapped[str | None] = mapped_column(String(100))
    heartbeat_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = _created()
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]

    __table_args__ = (
        Index(None, "status", "kind", "id"),
        Index(None, "project_id", "id"),
        _one_of("kind", JOB_KINDS, "kind"),
        _one_of("status", JOB_STATUSES, "status"),
    )


class Round(Base):
    __tablename__ = "rounds"

    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = _fk("projects.id")
    number: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(16), default=RoundStatus.QUEUED)
    job_id: Mapped[int | None] = _fk("jobs.id", nullable=True, ondelete="SET NULL")
    model_version_id: Mapped[int | None] = mapped_column(
        ForeignKey("model_versions.id", ondelete="SET NULL", use_alter=True))
    strategy: Mapped[str] = mapped_column(String(50))
    batch_size: Mapped[int] = mapped_column(Integer)
    n_labels_used: Mapped[int | None] = mapped_column(Integer)
    #: The newest revision id when the round read the labels: later ones are "new labels".
    label_watermark: Mapped[int | None] = mapped_column(Integer)
    metrics: Mapped[dict[str, Any] | None]
    gain: Mapped[dict[str, Any] | None]
    timings: Mapped[dict[str, Any] | None]
    created_at: Mapped[datetime] = _created()
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]
    error: Mapped[str | None] = mapped_column(Text)

    __table_args__ = (
        UniqueConstraint("project_id", "number"),
        _one_of("status", ROUND_STATUSES, "status"),
    )


class RoundSelection(Base):
    """Why an item was put at the head of the queue: round, rank, score, strategy, model."""

    __tablename__ = "round_selections"

    round_id: Mapped[int] = mapped_column(
        ForeignKey("rounds.id", ondelete="CASCADE"), primary_key=True)
    item_id: Mapped[int] = mapped_column(
        ForeignKey("items.id", ondelete="CASCADE"), primary_key=True)
    rank: Mapped[int] = mapped_column(Integer)
    score: Mapped[float | None] = mapped_column(Float)
    strategy: Mapped[str] = mapped_column(String(50))
    model_version_id: Mapped[int | None] = _fk("model_versions.id", nullable=True,
                                               ondelete="SET NULL")

    __table_args__ = (Index(None, "item_id"),)


class ModelVersion(Base):
    __tablename__ = "model_versions"

    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = _fk("projects.id")
    version: Mapped[int] = mapped_column(Integer)
    round_id: Mapped[int | None] = _fk("rounds.id", nullable=True, ondelete="SET NULL")
    parent_id: Mapped[int | None] = _fk("model_versions.id", nullable=True, ondelete="SET NULL")
    artifact_path: Mapped[str | None] = mapped_column(String(1000))
    training_set_hash: Mapped[str | None] = mapped_column(String(64))
    n_train: Mapped[int] = mapped_column(Integer, default=0)
    metrics: Mapped[dict[str, Any] | None]
    is_active: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = _created()

    __table_args__ = (
        UniqueConstraint("project_id", "version"),
        Index("uq_model_versions_one_active", "project_id", unique=True,
              sqlite_where=text("is_active"), postgresql_where=text("is_active")),
    )


class AuditEvent(Base):
    """Append-only record of who changed what, with the state before and after."""

    __tablename__ = "audit_events"

    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int | None] = _fk("projects.id", nullable=True, ondelete="SET NULL")
    actor_id: Mapped[int | None] = _fk("users.id", nullable=True, ondelete="SET NULL")
    action: Mapped[str] = mapped_column(String(50))
    entity: Mapped[str] = mapped_column(String(50))
    entity_id: Mapped[str | None] = mapped_column(String(100))
    before: Mapped[dict[str, Any] | None]
    after: Mapped[dict[str, Any] | None]
    created_at: Mapped[datetime] = _created()

    __table_args__ = (Index(None, "project_id", "id"), Index(None, "entity", "entity_id"))


class ProjectVersion(Base):
    """The label set and guidelines of a project as of ``version`` (one row per change)."""

    __tablename__ = "project_versions"

    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = _fk("projects.id")
    version: Mapped[int] = mapped_column(Integer)
    labels: Mapped[list[Any]]
    guidelines: Mapped[str] = mapped_column(Text, default="")
    author_id: Mapped[int | None] = _fk("users.id", nullable=True, ondelete="SET NULL")
    created_at: Mapped[datetime] = _created()

    __table_args__ = (UniqueConstraint("project_id", "version"),)


class Decision(Base):
    """The decision log: why an owner chose a strategy or rule, from which round on."""

    __tablename__ = "decisions"

    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = _fk("projects.id")
    author_id: Mapped[int | None] = _fk("users.id", nullable=True, ondelete="SET NULL")
    topic: Mapped[str] = mapped_column(String(100))
    text: Mapped[str] = mapped_column(Text)
    from_round: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime] = _created()

    __table_args__ = (Index(None, "project_id", "id"),)


class Snapshot(Base):
    """A frozen, hashed copy of the labeled dataset (a JSONL file in the data folder)."""

    __tablename__ = "snapshots"

    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = _fk("projects.id")
    content_hash: Mapped[str] = mapped_column(String(64))
    model_version: Mapped[int | None] = mapped_column(Integer)
    guidelines_version: Mapped[int] = mapped_column(Integer)
    n_items: Mapped[int] = mapped_column(Integer)
    note: Mapped[str | None] = mapped_column(Text)
    path: Mapped[str] = mapped_column(String(1000))
    created_by: Mapped[int | None] = _fk("users.id", nullable=True, ondelete="SET NULL")
    created_at: Mapped[datetime] = _created()

    __table_args__ = (Index(None, "project_id", "id"),)


class CalibrationSession(Base):
    """A set of items every annotator of the project labels, to compare how people label."""

    __tablename__ = "calibration_sessions"

    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = _fk("projects.id")
    name: Mapped[str] = mapped_column(String(200))
    guidelines_version: Mapped[int] = mapped_column(Integer)
    created_by: Mapped[int | None] = _fk("users.id", nullable=True, ondelete="SET NULL")
    created_at: Mapped[datetime] = _created()

    __table_args__ = (Index(None, "project_id", "id"),)


class CalibrationItem(Base):
    __tablename__ = "calibration_items"

    session_id: Mapped[int] = mapped_column(
        ForeignKey("calibration_sessions.id", ondelete="CASCADE"), primary_key=True)
    item_id: Mapped[int] = mapped_column(
        ForeignKey("items.id", ondelete="CASCADE"), primary_key=True)

    __table_args__ = (Index(None, "item_id"),)
