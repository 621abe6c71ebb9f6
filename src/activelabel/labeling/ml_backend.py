"""Label Studio's ML backend protocol over a project: activelabel as a Label Studio project's
model and sampler.

Label Studio calls four endpoints of an ML backend (the ``label-studio-ml`` package's
shapes): ``GET /health`` (``{"status": "UP"}``), ``POST /setup`` with the labeling config
(``schema``), answered with the model version; ``POST /predict`` with ``tasks`` and the
``label_config``, answered with ``{"results": [{"result", "score", "model_version"}]}``, one
per task in order; and ``POST /webhook`` with an event (``ANNOTATION_CREATED`` /
``_UPDATED`` / ``_DELETED``, ``START_TRAINING``) and the ``annotation``, ``task`` and
``project``.

Nothing here trains or blocks: a prediction reads the active model's stored probabilities
(the ``probs`` array the last round wrote) for a task that is one of the project's items, or
runs the active model, loaded once per version, on the task's data otherwise. A
prediction's ``score`` is the model's confidence in its answer, 1 - its uncertainty (least
confidence), so Label Studio's uncertainty sampling (tasks by prediction score, lowest
first) hands out what our model is least sure about first. A webhook records the label as
an append-only revision of the Label Studio annotator's own account (made on first sight,
without a password) and may queue a round (the project's ``retrain_every_labels``).

A task is matched to an item by ``meta.external_id`` (what our Label Studio export writes),
else by its Label Studio ``id`` (what our import of a Label Studio export uses as external
id) when the item's content is the task's, else by the hash of its data (the external id an
import gives items without one).
"""

from __future__ import annotations

import logging
import pickle
import re
import threading
import xml.etree.ElementTree as ET
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session

from ..store import (
    InvalidInput,
    Storage,
    active_model_version,
    add_items,
    add_member,
    annotate,
    content_hash,
    create_user,
    current_revision,
    get_user_by_name,
    record_audit,
    role_of,
    undo,
)
from ..store.models import Annotation, Item, Project, Role
from .formats.labelstudio import annotator_name, labels_of_result, result_of
from .rounds import after_annotation, request_round
from .tasks import model_probs, suggestion

__all__ = [
    "ANNOTATION_EVENTS",
    "Controls",
    "health",
    "parse_label_config",
    "predict",
    "record_event",
    "setup",
]

#: Webhook events that carry an annotation.
ANNOTATION_EVENTS = ("ANNOTATION_CREATED", "ANNOTATION_UPDATED", "ANNOTATION_DELETED")
_TRAINING_EVENT = "START_TRAINING"
#: Label Studio's webhook for deleted annotations: their ids only.
_BULK_DELETE_EVENT = "ANNOTATIONS_DELETED"
#: Tasks one /predict may send (Label Studio sends a page of tasks at a time).
MAX_TASKS = 10_000
#: The longest labeling config read.
MAX_CONFIG_CHARS = 200_000
_NAME = re.compile(r"[^A-Za-z0-9_.@-]+")


@dataclass(frozen=True)
class Controls:
    """The control of a labeling config our labels go to: its name, the object it labels,
    its kind (``choices`` or ``labels``), its values and whether several may be chosen."""

    from_name: str
    to_name: str
    kind: str
    values: tuple[str, ...]
    multiple: bool = False


DEFAULT_CONTROLS = Controls("label", "text", "choices", ())


def parse_label_config(config: str | None) -> Controls | None:
    """The first Choices or Labels control of a Label Studio labeling config (None for an
    empty config); InvalidInput when it is not XML or has neither."""
    if not config or not config.strip():
        return None
    if len(config) > MAX_CONFIG_CHARS:
        raise InvalidInput(f"the labeling config has {len(config):,} characters: at most "
                           f"{MAX_CONFIG_CHARS:,} are read")
    try:
        root = ET.fromstring(config)
    except ET.ParseError as exc:
        raise InvalidInput(f"the labeling config is not valid XML ({exc}): send the "
                           "project's label_config as Label Studio stores it") from None
    for node in root.iter():
        if node.tag in ("Choices", "Labels"):
            values = tuple(str(c.get("value") or c.get("alias") or "")
                           for c in node if c.tag in ("Choice", "Label"))
            return Controls(from_name=str(node.get("name") or "label"),
                            to_name=str(node.get("toName") or "text"),
                            kind="choices" if node.tag == "Choices" else "labels",
                            values=values, multiple=node.get("choice") == "multiple")
    raise InvalidInput("the labeling config has no Choices or Labels control: activelabel "
                       "predicts classification (Choices) and span (Labels) projects")


def _check_controls(project: Project, controls: Controls) -> None:
    """The config must label what the project labels: the same kind and the same labels."""
    spans = project.task == "spans"
    if (controls.kind == "labels") != spans:
        want = "a Labels control (spans)" if spans else "a Choices control"
        raise InvalidInput(f"project {project.id} is a {project.task} project: its labeling "
                           f"config needs {want}, not {controls.kind}")
    ours = [str(x) for x in project.labels]
    if controls.values and set(controls.values) != set(ours):
        extra = sorted(set(controls.values) - set(ours))
        missing = sorted(set(ours) - set(controls.values))
        raise InvalidInput(f"the labeling config's {controls.kind} differ from project "
                           f"{project.id}'s labels: not in the project {extra}, missing "
                           f"{missing}; use exactly {ours}")


def _version_name(version: int | None) -> str:
    return "activelabel-untrained" if version is None else f"activelabel-v{version}"


def health(session: Session, project: Project) -> dict[str, Any]:
    """``{"status": "UP", "model_class", "model_version"}``."""
    model = active_model_version(session, project.id)
    return {"status": "UP", "model_class": "activelabel",
            "model_version": _version_name(None if model is None else model.version)}


def setup(session: Session, project: Project, schema: str | None) -> dict[str, Any]:
    """Check the Label Studio project's labeling config against ours; the model version."""
    controls = parse_label_config(schema)
    if controls is not None:
        _check_controls(project, controls)
    model = active_model_version(session, project.id)
    return {"model_version": _version_name(None if model is None else model.version)}


# ---- matching tasks to items -----------------------------------------------------------------


def _data_of(task: Mapping[str, Any], where: str) -> Mapping[str, Any]:
    data = task.get("data")
    if not isinstance(data, Mapping) or not data:
        raise InvalidInput(f"{where} has no data object: Label Studio sends tasks as "
                           "{\"id\": ..., \"data\": {...}}")
    return data


def _candidates(task: Mapping[str, Any], where: str) -> list[tuple[str, str | None]]:
    """External ids the task may have here, each with the content hash its item must have
    (None: any)."""
    _data_of(task, where)
    meta = task.get("meta") if isinstance(task.get("meta"), Mapping) else {}
    assert isinstance(meta, Mapping)
    digest = _hash(task)  # content that cannot be hashed matches by its ids only
    out: list[tuple[str, str | None]] = []
    if meta.get("external_id") not in (None, ""):
        out.append((str(meta["external_id"]), None))
    if task.get("id") not in (None, "") and digest is not None:
        out.append((str(task["id"]), digest))
    if digest is not None:
        out.append(("sha256:" + digest, None))
    return out


@dataclass(frozen=True)
class _Found:
    """An item a task matched: its id, its row in the array store."""

    id: int
    row: int


def _match(session: Session, project_id: int, tasks: Sequence[Mapping[str, Any]],
           where: str = "task") -> list[_Found | None]:
    """The item of each task (None when the project has none)."""
    wanted = [_candidates(t, f"{where} {n}") for n, t in enumerate(tasks, start=1)]
    ids = list({ext for found in wanted for ext, _ in found})
    items: dict[str, tuple[_Found, str]] = {}
    for start in range(0, len(ids), 1000):
        stmt = select(Item.external_id, Item.id, Item.row, Item.content_hash).where(
            Item.project_id == project_id, Item.external_id.in_(ids[start:start + 1000]))
        items.update({str(e): (_Found(int(i), int(r)), str(h))
                      for e, i, r, h in session.execute(stmt)})
    out: list[_Found | None] = []
    for found in wanted:
        match = None
        for ext, digest in found:
            hit = items.get(ext)
            if hit is not None and (digest is None or hit[1] == digest):
                match = hit[0]
                break
        out.append(match)
    return out


def _hash(task: Mapping[str, Any]) -> str | None:
    try:
        return content_hash(task["data"])
    except (TypeError, ValueError, UnicodeEncodeError):
        return None


# ---- predicting ------------------------------------------------------------------------------


class _LoadedModels:
    """The active model of each project with its featurizer, loaded once per model file."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._models: dict[int, tuple[tuple[str, int], Any, Any]] = {}

    def get(self, storage: Storage, project_id: int, artifact_path: str) -> tuple[Any, Any] | None:
        from .featurize import cached_fingerprint, load_featurizer

        try:
            key = (artifact_path, Path(artifact_path).stat().st_mtime_ns)
        except OSError:
            return None
        with self._lock:
            cached = self._models.get(project_id)
            if cached is not None and cached[0] == key:
                return cached[1], cached[2]
        with open(artifact_path, "rb") as handle:
            artifact = pickle.load(handle)  # written by labeling.rounds
        featurizer = load_featurizer(storage, project_id)
        if featurizer is None or artifact.get("fingerprint") != cached_fingerprint(
                storage, project_id):
            return None  # the cached featurizer is not the one the model was trained on
        with self._lock:
            self._models[project_id] = (key, artifact["model"], featurizer)
        return artifact["model"], featurizer


_loaded = _LoadedModels()
log = logging.getLogger("activelabel.ml_backend")


def _model_probs(storage: Storage, project: Project, artifact_path: str | None,
                 payloads: list[Mapping[str, Any]]) -> np.ndarray[Any, Any] | None:
    """The active model's probabilities for payloads that are not items (None when the
    model cannot be run: no artifact, features of another featurizer, or features that read
    sentence vectors where this process has no sentence model)."""
    from ..features import EMBEDDINGS_EXTRA_HINT, TextFeaturizer
    from .featurize import slim_record, transform_items

    if not payloads or not artifact_path:
        return None
    loaded = _loaded.get(storage, project.id, artifact_path)
    if loaded is None:
        return None
    model, featurizer = loaded
    try:
        X, _ = transform_items(featurizer, [slim_record(featurizer, p) for p in payloads])
    except ImportError:  # the workers have the model, the API processes not: no answer
        if not (isinstance(featurizer, TextFeaturizer)
                and getattr(featurizer, "sentence_weight_", None)):
            raise  # another missing package: the error says which
        log.warning("project %s: its model reads sentence vectors and this process has no "
                    "sentence model, so %d tasks get no prediction: %s", project.id,
                    len(payloads), EMBEDDINGS_EXTRA_HINT)
        return None
    return np.asarray(model.predict_proba(X), dtype=np.float64)


def _prediction(project: Project, probs: Any, row: int, version: int,
                controls: Controls) -> dict[str, Any]:
    hint = suggestion(project, probs, row, version)
    if hint is None:
        return {"result": [], "score": 0.0, "model_version": _version_name(version)}
    return {"result": result_of(hint.label, spans=False, from_name=controls.from_name,
                                to_name=controls.to_name, score=hint.confidence),
            "score": hint.confidence, "model_version": _version_name(version)}


def _payloads(session: Session, items: list[_Found | None], tasks: list[Mapping[str, Any]],
              which: list[int]) -> list[Mapping[str, Any]]:
    """What the model reads for the tasks at ``which``: their item's data, else the task's."""
    ids = [item.id for n in which if (item := items[n]) is not None]
    data: dict[int, Any] = {}
    if ids:
        data = {int(i): d for i, d in session.execute(
            select(Item.id, Item.data).where(Item.id.in_(ids)))}
    return [dict(data.get(item.id) or {}) if (item := items[n]) is not None
            else _data_of(tasks[n], f"task {n + 1}") for n in which]


def _tasks_of(tasks: Any) -> list[Mapping[str, Any]]:
    if isinstance(tasks, Mapping):
        tasks = [tasks]
    if not isinstance(tasks, list) or not all(isinstance(t, Mapping) for t in tasks):
        raise InvalidInput("tasks must be a list of Label Studio tasks {\"id\", \"data\"}")
    if len(tasks) > MAX_TASKS:
        raise InvalidInput(f"{len(tasks)} tasks in one request: send at most {MAX_TASKS}")
    for n, task in enumerate(tasks, start=1):
        _data_of(task, f"task {n}")
    return list(tasks)


def predict(session: Session, storage: Storage, project: Project, tasks: Any,
            label_config: str | None) -> dict[str, Any]:
    """``{"results": [...]}``: one prediction per task, in order (none before the first
    model, and none for span projects, which have no model here yet)."""
    checked = _tasks_of(tasks)
    controls = parse_label_config(label_config)
    if controls is not None:
        _check_controls(project, controls)
    model = active_model_version(session, project.id)
    if model is None or project.task == "spans" or not checked:
        return {"results": []}
    items = _match(session, project.id, checked)
    stored = model_probs(storage.arrays, project.id)
    known = 0 if stored is None else int(stored.shape[0])
    # Tasks that are no item here, and items imported after the round scored the pool.
    unscored = [n for n, item in enumerate(items) if item is None or item.row >= known]
    fresh = _model_probs(storage, project, model.artifact_path,
                         _payloads(session, items, checked, unscored))
    fresh_row = {n: i for i, n in enumerate(unscored)}
    use = controls or DEFAULT_CONTROLS
    results = []
    for n, item in enumerate(items):
        if n in fresh_row:
            results.append(_prediction(project, fresh, fresh_row[n], model.version, use))
        else:
            assert item is not None
            results.append(_prediction(project, stored, item.row, model.version, use))
    return {"results": results}


# ---- webhooks --------------------------------------------------------------------------------


def _annotator_name(annotation: Mapping[str, Any]) -> str:
    name = annotator_name(annotation)
    if name is None:
        raise InvalidInput("the annotation names no annotator (completed_by): send the "
                           "annotation as Label Studio's webhook does")
    return name


def _annotator(session: Session, project: Project, name: str, actor_id: int) -> int:
    """Our user for a Label Studio annotator: a project member of that name, else the
    account ``ls.<name>`` (made without a password and added as annotator, once)."""
    user = get_user_by_name(session, name)
    if user is not None and role_of(session, project.id, user.id) is not None:
        return int(user.id)
    username = ("ls." + _NAME.sub("_", name))[:64]
    user = get_user_by_name(session, username)
    if user is None:
        user = create_user(session, username)
        session.flush()
        record_audit(session, "create", "user", user.id, project_id=project.id,
                     actor_id=actor_id, after={"username": username,
                                               "label_studio_annotator": name})
    if role_of(session, project.id, user.id) is None:
        add_member(session, project.id, user.id, Role.ANNOTATOR)
    return int(user.id)


def _duration_ms(lead_time: Any) -> int | None:
    """Label Studio's ``lead_time`` (seconds) in milliseconds; None when it is no duration."""
    if isinstance(lead_time, bool) or not isinstance(lead_time, (int, float)):
        return None
    ms = float(lead_time) * 1000
    return int(ms) if 0 <= ms < 2**31 else None  # NaN fails both comparisons


def _when(value: Any) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else None


def _item_for(session: Session, project: Project, task: Mapping[str, Any]) -> _Found:
    """The task's item, added to the pool when the project does not have it yet."""
    found = _match(session, project.id, [task], where="the webhook's task")[0]
    if found is not None:
        return found
    data = dict(_data_of(task, "the webhook's task"))
    digest = _hash({"data": data})
    if digest is None:
        raise InvalidInput("the task's data cannot be stored: it holds text that is not "
                           "valid Unicode (a lone surrogate such as \\ud800)")
    ext = "sha256:" + digest
    result = add_items(session, project.id, [{"external_id": ext, "data": data}])
    if result.rejected:
        raise InvalidInput(f"the task cannot be added as an item: {result.rejected[0].reason}")
    found = _match(session, project.id, [{"data": data}], where="the webhook's task")[0]
    assert found is not None
    return found


def _withdraw(session: Session, project_id: int, item_id: int, user_id: int) -> int | None:
    """Withdraw the user's current label on the item; the new revision's id (None: none)."""
    head = current_revision(session, item_id, user_id)
    if head is None or head.labels is None:
        return None
    return int(undo(session, project_id, user_id, item_id).id)


def _withdraw_by_ids(session: Session, project_id: int, given: Any) -> dict[str, Any]:
    """``ANNOTATIONS_DELETED`` (``annotations: [{"id"}]``): withdraw the labels those Label
    Studio annotations gave (found by the key their webhook stored them with)."""
    if not isinstance(given, list) or not all(
            isinstance(a, Mapping) and isinstance(a.get("id"), int)
            and not isinstance(a.get("id"), bool) for a in given):
        raise InvalidInput("ANNOTATIONS_DELETED needs annotations: [{\"id\": ...}, ...]")
    withdrawn = []
    for entry in given:
        stmt = (select(Annotation.item_id, Annotation.annotator_id)
                .where(Annotation.project_id == project_id,
                       Annotation.client_key.like(f"ls:{int(entry['id'])}:%"))
                .order_by(Annotation.id.desc()).limit(1))
        found = session.execute(stmt).first()
        if found is not None:
            revision = _withdraw(session, project_id, int(found[0]), int(found[1]))
            if revision is not None:
                withdrawn.append(revision)
    return {"withdrawn": len(withdrawn), "revision_ids": withdrawn}


def record_event(session: Session, project: Project, payload: Any,
                 actor_id: int) -> tuple[int, dict[str, Any]]:
    """(HTTP status, answer) of a Label Studio webhook: an annotation created or updated
    becomes a revision of its annotator's label, a deleted one withdraws it (also
    ``ANNOTATIONS_DELETED``, which names the annotations by id), ``START_TRAINING`` queues a
    round; other events are acknowledged and ignored."""
    if not isinstance(payload, Mapping) or not isinstance(payload.get("action"), str):
        raise InvalidInput("a webhook is {\"action\": \"ANNOTATION_CREATED\", \"annotation\": "
                           "{...}, \"task\": {...}}: the action is missing")
    action = payload["action"]
    if action == _TRAINING_EVENT:
        rnd, created = request_round(session, project.id, requested_by=actor_id,
                                     reason="label_studio")
        return 201, {"status": "ok", "result": {"round_id": rnd.id, "queued": created}}
    if action == _BULK_DELETE_EVENT:
        return 201, {"status": "ok", "result": _withdraw_by_ids(session, project.id,
                                                               payload.get("annotations"))}
    if action not in ANNOTATION_EVENTS:
        return 200, {"status": "Unknown event"}
    annotation, task = payload.get("annotation"), payload.get("task")
    if not isinstance(annotation, Mapping) or not isinstance(task, Mapping):
        raise InvalidInput(f"{action} needs the annotation and the task objects")
    item = _item_for(session, project, task)
    user_id = _annotator(session, project, _annotator_name(annotation), actor_id)
    if action == "ANNOTATION_DELETED" or annotation.get("was_cancelled"):
        undone = _withdraw(session, project.id, item.id, user_id)
        return 201, {"status": "ok", "result": {"item_id": item.id, "revision_id": undone,
                                                "withdrawn": undone is not None}}
    try:
        labels = labels_of_result(annotation.get("result"), "the annotation")
    except ValueError as exc:
        raise InvalidInput(str(exc)) from None
    key = annotation.get("id")
    stamp = annotation.get("updated_at") or annotation.get("created_at") or ""
    client_key = None if key is None else f"ls:{key}:{stamp}"[:100]
    lead = annotation.get("lead_time")
    revision = annotate(
        session, project.id, user_id, item.id, labels, client_key=client_key,
        duration_ms=_duration_ms(lead),
        reason=f"Label Studio annotation {key}" if key is not None else "Label Studio",
        now=_when(annotation.get("updated_at") or annotation.get("created_at")))
    queued = after_annotation(session, project.id)
    return 201, {"status": "ok", "result": {
        "item_id": item.id, "revision_id": revision.id,
        "round_id": None if queued is None else queued.id}}
