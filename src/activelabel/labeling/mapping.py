"""Column mapping of flat imports: which column of a JSONL, CSV or Parquet file is what.

A flat file's columns are content shown to annotators, private fields (kept with the item,
never shown), an existing label (with its annotator and time), a gold answer, a model's
prediction (label and score), an embedding vector, the split or the external id. A mapping
``{"columns": {name: role}}`` turns each flat row into the *canonical row* every reader
agrees on (see ``labeling/imports.py``); the project keeps the last mapping used and the next
upload starts from it.

A column that looks like an answer (named label, labels, class, category, target or y, or
whose values are the project's labels) is never content unless the owner maps it so: a
column the mapping does not name goes to ``private`` when it looks like an answer, to
``content`` otherwise. :func:`propose_mapping` reads a preview of the first rows and says
why it proposes each role.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

import numpy as np
from numpy.typing import NDArray

from ..store.models import SPLITS

__all__ = [
    "ANSWER_NAMES",
    "ROLES",
    "ColumnProposal",
    "apply_mapping",
    "check_mapping",
    "check_vector",
    "looks_like_answer",
    "parse_time",
    "propose_mapping",
]

#: What a column can be mapped to.
ROLES = ("content", "private", "label", "annotator", "label_time", "gold", "prediction",
         "prediction_score", "prediction_model", "vector", "split", "external_id", "ignore")
#: Column names that hold an answer: never shown to annotators unless the owner says so.
ANSWER_NAMES = frozenset({"label", "labels", "class", "category", "target", "y"})
_ID_NAMES = ("external_id", "id")
_GOLD_NAMES = frozenset({"gold", "gold_label", "gold_labels"})
_ANNOTATOR_NAMES = frozenset({"annotator", "annotated_by", "labeler", "labeller", "rater",
                              "label_annotator", "labeled_by", "labelled_by"})
_TIME_NAMES = frozenset({"label_time", "labeled_at", "labelled_at", "annotated_at",
                         "label_created_at", "created_at", "timestamp", "time"})
_PREDICTION_NAMES = frozenset({"prediction", "predictions", "predicted", "predicted_label",
                               "pred", "model_label", "suggestion"})
_SCORE_NAMES = frozenset({"score", "prediction_score", "confidence", "probability", "prob",
                          "pred_score"})
_MODEL_NAMES = frozenset({"model", "prediction_model", "model_name", "model_version"})
#: Share of sampled values drawn from the project's labels for a column to read as answers.
LABEL_SHARE = 0.8
#: Roles one column at most may have (a row with values in two gold columns is refused).
_SINGLE_ROLES = ("label", "annotator", "label_time", "prediction", "prediction_score",
                 "prediction_model", "vector", "split", "external_id")


@dataclass(frozen=True)
class ColumnProposal:
    """The role proposed for one column, why, samples of its values and whether it looks like
    an answer (then it is never shown unless mapped to ``content`` by the owner)."""

    column: str
    role: str
    reason: str
    answer_like: bool
    samples: list[Any]

    def as_dict(self) -> dict[str, Any]:
        return {"column": self.column, "role": self.role, "reason": self.reason,
                "answer_like": self.answer_like, "samples": self.samples}


def _norm(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", name.strip().lower()).strip("_")


def _label_share(values: Sequence[Any], labels: Sequence[Any]) -> float:
    """Share of the non-empty sampled values that are labels of the project (a list value
    counts when every element is one)."""
    known = set(map(str, labels))
    seen = hits = 0
    for value in values:
        if value in (None, ""):
            continue
        seen += 1
        items = value if isinstance(value, list) else [value]
        if items and all(not isinstance(v, (dict, list)) and str(v) in known for v in items):
            hits += 1
    return hits / seen if seen else 0.0


def looks_like_answer(column: str, values: Sequence[Any], labels: Sequence[Any]) -> str | None:
    """Why ``column`` looks like an answer (its name, or values that are the project's labels),
    or None."""
    if _norm(column) in ANSWER_NAMES:
        return f"named {column!r}, a name that usually holds the answer"
    if labels and values and _label_share(values, labels) >= LABEL_SHARE:
        return "its values are the project's labels"
    return None


def _is_vector(values: Sequence[Any]) -> bool:
    present = [v for v in values if v is not None]
    return bool(present) and all(
        isinstance(v, list) and len(v) > 1
        and all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in v)
        for v in present)


def _is_score(values: Sequence[Any]) -> bool:
    present = [v for v in values if v not in (None, "")]
    try:
        return bool(present) and all(0.0 <= float(v) <= 1.0 for v in present)
    except (TypeError, ValueError):
        return False


def _propose_one(column: str, values: Sequence[Any], labels: Sequence[Any],
                 taken: set[str]) -> tuple[str, str]:
    """(role, reason) for one column, by its name first and then by its values."""
    name = _norm(column)
    answer = looks_like_answer(column, values, labels)
    if name in _ID_NAMES and "external_id" not in taken:
        return "external_id", "named like an item id: repeated imports skip known ids"
    if name == "split":
        given = {str(v) for v in values if v not in (None, "")}
        if not given or given & set(SPLITS):  # a row's unknown split is that row's error
            return "split", "named split: pool, holdout or gold"
        return "private", (f"named split, but holds {', '.join(sorted(given)[:3])} and no pool, "
                           "holdout or gold (another dataset's splits): kept private, so its "
                           "rows are not refused")
    if name in _GOLD_NAMES:
        return "gold", "named like a gold answer: the item becomes a gold item"
    if _is_vector(values):
        return "vector", "holds lists of numbers: the item's embedding"
    if name in _PREDICTION_NAMES:
        return "prediction", "named like a model's prediction: shown as the suggestion"
    if name in _SCORE_NAMES and _is_score(values):
        return "prediction_score", "a score between 0 and 1 named like a confidence"
    if name in _MODEL_NAMES:
        return "prediction_model", "named like the model that made the predictions"
    if answer is not None:
        if "label" in taken:
            return "private", f"looks like an answer ({answer}): kept private, never shown"
        if _label_share(values, labels) >= LABEL_SHARE:
            return "label", (f"looks like an answer ({answer}): imported as existing labels, "
                             "never shown to annotators")
        return "private", (f"looks like an answer ({answer}) but holds values that are not "
                           "the project's labels: kept private, never shown")
    if name in _ANNOTATOR_NAMES:
        return "annotator", "named like who gave the label: kept as the label's provenance"
    if name in _TIME_NAMES:
        return "label_time", "named like when the label was given: kept with the label"
    return "content", "shown to annotators"


def propose_mapping(columns: Sequence[str], samples: Mapping[str, Sequence[Any]],
                    labels: Sequence[Any],
                    saved: Mapping[str, Any] | None = None) -> list[ColumnProposal]:
    """A role for each column, with the reason: the ``saved`` mapping's role where it names
    the column, else one read from the column's name and sampled values. Roles that need a
    label (annotator, time) fall back to private when no column is a label."""
    saved_roles = dict((saved or {}).get("columns") or {})
    taken: set[str] = set()
    out: list[ColumnProposal] = []
    for column in columns:
        values = list(samples.get(column, []))
        answer = looks_like_answer(column, values, labels) is not None
        if column in saved_roles and saved_roles[column] in ROLES:
            role, reason = str(saved_roles[column]), "as the project's saved mapping says"
        else:
            role, reason = _propose_one(column, values, labels, taken)
        if role in _SINGLE_ROLES and role in taken:
            role, reason = "private", f"a second {role} column: kept private"
        taken.add(role)
        out.append(ColumnProposal(column, role, reason, answer, [_sample(v) for v in values[:3]]))
    if "label" not in taken:
        out = [ColumnProposal(p.column, "private", "no label column to go with: kept private",
                              p.answer_like, p.samples)
               if p.role in ("annotator", "label_time") and p.reason != "as the project's "
               "saved mapping says" else p for p in out]
    return out


def _sample(value: Any) -> Any:
    """A short form of a value for the preview (long texts and vectors cut)."""
    if isinstance(value, str) and len(value) > 200:
        return value[:200] + "…"
    if isinstance(value, list) and len(value) > 8:
        return [*value[:8], f"… ({len(value)} values)"]
    return value


def check_mapping(mapping: Any) -> dict[str, Any]:
    """The mapping ``{"columns": {column: role}}`` with each role checked; raises ValueError
    saying what to fix."""
    if not isinstance(mapping, Mapping) or not isinstance(mapping.get("columns"), Mapping):
        raise ValueError('a mapping is {"columns": {"<column>": "<role>"}} with roles from '
                         f"{', '.join(ROLES)}")
    unknown = sorted(k for k in mapping if k != "columns")
    if unknown:
        raise ValueError(f"unknown mapping keys {unknown}: only 'columns' is read")
    columns: dict[str, str] = {}
    for column, role in mapping["columns"].items():
        if not isinstance(column, str) or not column:
            raise ValueError("column names are non-empty strings")
        if role not in ROLES:
            raise ValueError(f"column {column!r}: role {role!r} is not one of {', '.join(ROLES)}")
        columns[column] = str(role)
    for role in _SINGLE_ROLES:
        named = [c for c, r in columns.items() if r == role]
        if len(named) > 1:
            raise ValueError(f"columns {named} are all mapped to {role}: map one of them")
    has_label = any(r == "label" for r in columns.values())
    for role in ("annotator", "label_time"):
        if not has_label and role in columns.values():
            raise ValueError(f"a column is mapped to {role} but none to label: map the label "
                             "column too, or map it to private")
    if "prediction_score" in columns.values() and "prediction" not in columns.values():
        raise ValueError("a column is mapped to prediction_score but none to prediction")
    return {"columns": columns}


def parse_time(value: Any) -> str:
    """An ISO-8601 time (a time without zone is read as UTC), or epoch seconds, as ISO-8601
    UTC text; raises ValueError with the value."""
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        if not math.isfinite(value):
            raise ValueError(f"time {value!r} is not a number of seconds")
        moment = datetime.fromtimestamp(float(value), tz=timezone.utc)
    elif isinstance(value, str):
        text = value.strip()
        if text.endswith("Z"):
            text = text[:-1] + "+00:00"
        try:
            moment = datetime.fromisoformat(text)
        except ValueError:
            raise ValueError(f"time {value!r} is not ISO-8601 (e.g. 2024-05-01T12:30:00Z)"
                             ) from None
    else:
        raise ValueError(f"time {value!r} is not ISO-8601 text or epoch seconds")
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(timezone.utc).isoformat()


def check_vector(value: Any, dim: int | None) -> NDArray[np.float32]:
    """``value`` as a float32 vector of finite values and length ``dim`` (any length when
    None); raises ValueError saying what is wrong."""
    if isinstance(value, (str, bytes, Mapping)):
        raise ValueError(f"vector is {type(value).__name__}: give a list of numbers, e.g. "
                         "[0.1, 0.2]")
    try:
        array = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(f"vector must be a list of numbers, got {type(value).__name__}"
                         ) from None
    if array.ndim != 1:
        raise ValueError(f"vector must be a flat list of numbers, got shape {array.shape}")
    if not array.size:
        raise ValueError("vector is empty")
    if not np.isfinite(array).all():
        raise ValueError("vector holds NaN or infinity: give finite numbers")
    if dim is not None and array.size != dim:
        raise ValueError(f"vector has {array.size} values, the project's vectors have {dim}")
    return array.astype(np.float32)


def _as_list(value: Any, labels: Sequence[Any] = ()) -> list[Any]:
    """A label cell as a list of labels: a list stays, a JSON list in text (a CSV cell) is
    read, a text that is no label but holds ``;`` or ``|`` is split (``a;b``), a scalar is
    one label."""
    if isinstance(value, list):
        return value
    if not isinstance(value, str):
        return [value]
    if value.startswith("["):
        try:
            parsed = json.loads(value)
        except ValueError:
            return [value]
        return parsed if isinstance(parsed, list) else [value]
    if value not in {str(x) for x in labels}:
        for separator in (";", "|"):
            if separator in value:
                return [part.strip() for part in value.split(separator) if part.strip()]
    return [value]


def _role_of(column: str, value: Any, columns: Mapping[str, str],
             labels: Sequence[Any]) -> str:
    role = columns.get(column)
    if role is not None:
        return role
    if column in _ID_NAMES:
        return "external_id"
    if column == "split":
        return "split"
    if column in ("gold_labels", "gold_label"):
        return "gold"
    if column == "data" and isinstance(value, Mapping):
        return "content"
    sample = [value] if value is not None else []
    return "private" if looks_like_answer(column, sample, labels) else "content"


def apply_mapping(row: Any, mapping: Mapping[str, Any], labels: Sequence[Any]
                  ) -> dict[str, Any]:
    """The canonical row of a flat ``row`` under ``mapping``; raises ValueError with the
    reason. Columns the mapping does not name: an id, split or gold column by its usual
    name, else private when the value looks like an answer, else content. A ``data`` column
    holding an object is the content itself."""
    if not isinstance(row, Mapping):
        raise ValueError(f"row must be a JSON object, got {type(row).__name__}")
    columns = mapping.get("columns") or {}
    out: dict[str, Any] = {"external_id": None, "data": {}, "private": {}, "split": None,
                           "gold_labels": None, "annotations": [], "predictions": [],
                           "vector": None}
    label: Any = None
    extra: dict[str, Any] = {}
    # A ``data`` column shown to annotators is the payload object itself.
    wrapped = "data" in row and columns.get("data", "content") == "content"
    if wrapped and not isinstance(row["data"], Mapping):
        raise ValueError(f"data must be an object, got {type(row['data']).__name__}")
    for column, value in row.items():
        role = _role_of(str(column), value, columns, labels)
        if role == "content":
            if column == "data" and wrapped:
                out["data"].update(value)
            elif wrapped:
                raise ValueError(f"field {column} is outside data: move it into data, map it "
                                 "to another role, or drop the data key so the fields become "
                                 "the payload")
            else:
                out["data"][column] = value
        elif role == "private":
            out["private"][column] = value
        elif role in ("external_id", "split"):
            out[role] = None if value in (None, "") else value
        elif role == "gold" and value not in (None, ""):
            if out["gold_labels"] is not None:
                raise ValueError("give the gold answer once: gold_labels or gold_label, "
                                 "not both")
            out["gold_labels"] = _as_list(value, labels)
        elif role == "label":
            label = value
        elif role == "vector":
            out["vector"] = value
        elif role != "ignore":
            extra[role] = value
    if label not in (None, "", []):
        time = extra.get("label_time")
        annotator = extra.get("annotator")
        out["annotations"].append({
            "labels": _as_list(label, labels),
            "annotator": None if annotator in (None, "") else str(annotator),
            "created_at": None if time in (None, "") else time})
    prediction = extra.get("prediction")
    if prediction not in (None, "", []):
        score = extra.get("prediction_score")
        model = extra.get("prediction_model")
        out["predictions"].append({
            "labels": _as_list(prediction, labels), "score": None if score in (None, "") else score,
            "model": None if model in (None, "") else str(model)})
    if not out["private"]:
        del out["private"]
    return out


def samples_of(rows: Iterable[Mapping[str, Any]]) -> tuple[list[str], dict[str, list[Any]]]:
    """The columns of ``rows`` in order of first appearance and each one's values."""
    columns: dict[str, list[Any]] = {}
    for row in rows:
        for key, value in row.items():
            columns.setdefault(str(key), []).append(value)
    return list(columns), columns
