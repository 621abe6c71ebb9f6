"""Label Studio's JSON export: read as canonical rows, written from a project's export.

A Label Studio export is a list of tasks ``{"id", "data", "annotations", "predictions",
"meta"}``. Each annotation holds a ``result``: a list of regions, where a classification is
``{"type": "choices", "value": {"choices": [...]}}`` and a span of text is
``{"type": "labels", "value": {"start", "end", "labels": [...]}}`` (one span per label);
``completed_by`` (a user id, or an object with the email), ``created_at`` and
``was_cancelled`` (a skipped task, which carries no label). A prediction holds a ``result``
of the same shape, a ``score`` and a ``model_version``.

Reading: choices become the labels, ``labels`` regions become spans ``{"start", "end",
"label"}``; other region types (ratings, text areas...) are left out; an annotation whose
regions are all of other types rejects the task with the reason. The item's external id is
``meta.external_id`` (what our export writes), else the task's ``id``; ``meta.split`` is its
split. Writing: one task per labeled item, each current annotation as an annotation
(``completed_by`` the annotator's name), the active model's answer as a prediction, and a
labeling config (:func:`label_config`) that names the controls the regions refer to.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any
from xml.sax.saxutils import quoteattr

from ._common import ExportContext, ExportRow, Parsed, iter_json_array, span_of

__all__ = [
    "CONTROL_NAME",
    "annotator_name",
    "label_config",
    "labels_of_result",
    "read_labelstudio",
    "result_of",
    "task_to_row",
    "write_labelstudio",
]

#: The names of the control and the object in the configs we write.
CONTROL_NAME = "label"
OBJECT_NAME = "text"
_SPLITS = ("pool", "holdout", "gold")
_PAGE = 1000


def read_labelstudio(path: Path) -> Iterator[Parsed]:
    """``(task position, canonical row, error)`` of every task of a Label Studio JSON
    export (a list of tasks, or one task)."""
    try:
        for line, task, error in iter_json_array(path):
            if error is not None:
                yield line, None, error
                continue
            try:
                yield line, task_to_row(task), None
            except ValueError as exc:
                yield line, None, str(exc)
    except ValueError as exc:
        yield 1, None, str(exc)


def task_to_row(task: Any) -> dict[str, Any]:
    """The canonical row of one Label Studio task; ValueError says what is wrong."""
    if not isinstance(task, Mapping):
        raise ValueError(f"a task must be a JSON object, got {type(task).__name__}")
    data = task.get("data")
    if not isinstance(data, Mapping) or not data:
        raise ValueError("task has no data object: a Label Studio task is "
                         "{\"data\": {\"text\": ...}, \"annotations\": [...]}")
    meta = task.get("meta") if isinstance(task.get("meta"), Mapping) else {}
    assert isinstance(meta, Mapping)
    ext = meta.get("external_id")
    if ext in (None, "") and task.get("id") not in (None, ""):
        ext = task["id"]
    split = meta.get("split")
    row: dict[str, Any] = {
        "external_id": None if ext in (None, "") else str(ext), "data": dict(data),
        "split": split if split in _SPLITS else None,
        "annotations": _annotations(task.get("annotations")),
        "predictions": _predictions(task.get("predictions"))}
    if meta.get("gold_labels") is not None:
        row["gold_labels"] = meta["gold_labels"]
    return row


def _listed(value: Any, what: str) -> list[Any]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise ValueError(f"task {what} must be a list, got {type(value).__name__}")
    return value


def _annotations(value: Any) -> list[dict[str, Any]]:
    out = []
    for n, ann in enumerate(_listed(value, "annotations"), start=1):
        if not isinstance(ann, Mapping):
            raise ValueError(f"annotation {n} must be an object, got {type(ann).__name__}")
        if ann.get("was_cancelled"):
            continue  # a skipped task: no label given
        out.append({"labels": labels_of_result(ann.get("result"), f"annotation {n}"),
                    "annotator": annotator_name(ann),
                    "created_at": _text_or_none(ann.get("created_at"))})
    return out


def _predictions(value: Any) -> list[dict[str, Any]]:
    out = []
    for n, pred in enumerate(_listed(value, "predictions"), start=1):
        if not isinstance(pred, Mapping):
            raise ValueError(f"prediction {n} must be an object, got {type(pred).__name__}")
        score = pred.get("score")
        if score is not None and (isinstance(score, bool) or not isinstance(score, (int, float))):
            raise ValueError(f"prediction {n}: score must be a number, got {score!r}")
        model = pred.get("model_version")
        out.append({"labels": labels_of_result(pred.get("result"), f"prediction {n}"),
                    "score": None if score is None else float(score),
                    "model": None if model in (None, "") else str(model)})
    return out


def _text_or_none(value: Any) -> str | None:
    return None if value in (None, "") else str(value)


def annotator_name(ann: Mapping[str, Any]) -> str | None:
    """The annotator's name as Label Studio wrote it: the user object's email (or username),
    ``created_username`` ("email, id"), else ``label-studio-user-<id>``."""
    who = ann.get("completed_by")
    if isinstance(who, Mapping):
        for key in ("email", "username"):
            if who.get(key):
                return str(who[key])
        who = who.get("id")
    name = ann.get("created_username")
    if isinstance(name, str) and name.strip():
        return name.rsplit(",", 1)[0].strip() or name.strip()
    if isinstance(who, (int, str)) and not isinstance(who, bool) and who != "":
        return f"label-studio-user-{who}"
    return None


def labels_of_result(result: Any, where: str) -> list[Any]:
    """The labels of a Label Studio ``result``: the choices, or spans ``{"start", "end",
    "label"}`` of ``labels`` regions. ValueError when it mixes both or holds neither."""
    regions = _listed(result, f"{where} result")
    choices: list[Any] = []
    spans: list[dict[str, Any]] = []
    others: set[str] = set()
    for region in regions:
        if not isinstance(region, Mapping) or not isinstance(region.get("value"), Mapping):
            raise ValueError(f"{where}: each result region must be an object with a value")
        value, kind = region["value"], region.get("type")
        if kind == "choices" or (kind is None and "choices" in value):
            choices.extend(_listed(value.get("choices"), f"{where} choices"))
        elif kind == "labels" or (kind is None and "labels" in value and "start" in value):
            for label in _listed(value.get("labels"), f"{where} labels"):
                spans.append(span_of({"start": value.get("start"), "end": value.get("end"),
                                      "label": label}, where))
        else:
            others.add(str(kind))
    if choices and spans:
        raise ValueError(f"{where} mixes choices and span labels: import one kind per project")
    if regions and not choices and not spans:
        raise ValueError(f"{where} has no choices or labels region (types: "
                         f"{', '.join(sorted(others))}): only classification (Choices) and "
                         "span (Labels) annotations are imported")
    return spans or choices


# ---- writing ---------------------------------------------------------------------------------


def label_config(ctx: ExportContext) -> str:
    """A Label Studio labeling config for the project: its text field, and its labels as
    Choices (single or multiple) or, for spans, Labels."""
    values = "".join(f"<{'Label' if ctx.spans else 'Choice'} value={quoteattr(str(v))}/>"
                     for v in ctx.labels)
    text = f'<Text name="{OBJECT_NAME}" value="${ctx.text_field}"/>'
    if ctx.spans:
        control = f'<Labels name="{CONTROL_NAME}" toName="{OBJECT_NAME}">{values}</Labels>'
    else:
        choice = "multiple" if ctx.multilabel else "single"
        control = (f'<Choices name="{CONTROL_NAME}" toName="{OBJECT_NAME}" '
                   f'choice="{choice}">{values}</Choices>')
    return f"<View>{text}{control}</View>"


def result_of(labels: Any, *, spans: bool, from_name: str = CONTROL_NAME,
              to_name: str = OBJECT_NAME, score: float | None = None) -> list[dict[str, Any]]:
    """A Label Studio ``result`` for our labels (a label, a list of labels, or spans)."""
    extra = {} if score is None else {"score": score}
    if spans:
        return [{"from_name": from_name, "to_name": to_name, "type": "labels",
                 "value": {"start": s["start"], "end": s["end"], "labels": [s["label"]]},
                 **extra} for s in labels or []]
    chosen = labels if isinstance(labels, list) else [] if labels is None else [labels]
    if not chosen:
        return []
    return [{"from_name": from_name, "to_name": to_name, "type": "choices",
             "value": {"choices": list(chosen)}, **extra}]


def _task(row: ExportRow, ctx: ExportContext,
          suggestion: tuple[list[Any], float, int] | None) -> dict[str, Any]:
    # ``completed_by`` is Label Studio's own user id, which only it can give: the annotator's
    # name travels in ``created_username`` (what its exports write beside it).
    annotations = [{"created_username": a["annotator"], "created_at": a["created_at"],
                    "lead_time": None if a.get("duration_ms") is None
                    else a["duration_ms"] / 1000.0,
                    "was_cancelled": False,
                    "result": result_of(a["labels"], spans=ctx.spans)}
                   for a in row["annotations"]]
    predictions = []
    if suggestion is not None:
        labels, confidence, version = suggestion
        predictions.append({"model_version": f"activelabel-v{version}", "score": confidence,
                            "result": result_of(labels, spans=ctx.spans, score=confidence)})
    return {"data": row["data"], "annotations": annotations, "predictions": predictions,
            "meta": {"external_id": row["external_id"], "split": row["split"]}}


def write_labelstudio(rows: Iterator[ExportRow], ctx: ExportContext) -> Iterator[bytes]:
    """A Label Studio JSON export (a list of tasks), streamed a page of tasks at a time."""
    first = True
    yield b"["
    page: list[ExportRow] = []

    def flush() -> bytes:
        nonlocal first
        hints = ctx.suggestions([r["external_id"] for r in page])
        parts = []
        for row in page:
            parts.append(("" if first else ",\n") + json.dumps(
                _task(row, ctx, hints.get(row["external_id"])), ensure_ascii=False,
                default=str))
            first = False
        page.clear()
        return "".join(parts).encode()

    for row in rows:
        page.append(row)
        if len(page) >= _PAGE:
            yield flush()
    if page:
        yield flush()
    yield b"]\n"
