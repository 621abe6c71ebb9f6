"""A project's label quality: agreement, per-annotator accuracy (gold, consensus, Dawid-Skene),
consensus labels, and suspected label errors, computed from the current labels.

Plain functions over a session (no HTTP): the routes in ``http/routes/quality.py`` and
``activelabel status`` call them. The maths is in :mod:`activelabel.quality` (core); the
consensus, and the votes Dawid-Skene is fitted on, come from :mod:`.consensus`.

Labels are compared as *values*: in a classification project the one label, in a multilabel
project the whole set (two annotators agree on an item when they gave the same set).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import partial
from itertools import combinations
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray
from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from .. import quality as q
from ..spans import SpanError, item_tokens, span_agreement, unitizing_alpha
from ..store import (
    CurrentLabel,
    InvalidInput,
    JobStatus,
    LabelsMark,
    ProjectSettings,
    Storage,
    count_current,
    current_labels,
    current_labels_mark,
    enqueue_job,
    get_project,
    label_watermark,
    lock_project,
    settings_of,
    usernames,
)
from ..store.files import atomic_write
from ..store.models import Annotation, Item, Job, Project, utcnow
from ..store.settings import REMOTE_MODEL
from .consensus import (
    Consensus,
    Votes,
    collect_votes,
    consensus_method,
    dawid_skene,
    value_key,
    votes_consensus,
    votes_span_consensus,
)

__all__ = [
    "CHECK_STATES",
    "LABEL_CHECK",
    "AnnotatorQuality",
    "LabelCheck",
    "LabelTable",
    "agreement_report",
    "annotator_report",
    "ask_label_check",
    "consensus_indices",
    "display_value",
    "issue_model",
    "label_check_status",
    "label_table",
    "latest_revision_by_reviewer",
    "read_label_check",
    "relabel_advice",
    "request_label_check",
    "run_label_check",
    "table_consensus",
    "value_key",
]

log = logging.getLogger("activelabel.quality")

#: Fewest labeled items (and per class) before cross-validated label issues are computed.
MIN_ITEMS_FOR_ISSUES = 10
#: Tasks whose labels the label check reads (a span project's are not).
CHECKED_TASKS = ("classification", "multilabel")


def _display(value: Any) -> Any:
    return list(value) if isinstance(value, tuple) else value


@dataclass
class LabelTable:
    """The project's current labels in long form (one vote per item and annotator, as
    :class:`~.consensus.Votes`) with what the reports show beside them.

    ``items``/``annotators``/``labels`` index into ``item_ids``/``annotator_ids``/``values``;
    ``rows``, ``splits`` and ``gold`` are per item, ``usernames`` per annotator and
    ``annotation_ids`` per vote.
    """

    project_id: int
    task: str
    votes: Votes
    rows: list[int]
    splits: list[str]
    gold: list[Any]  # per item: the gold value or None
    usernames: list[str]
    annotation_ids: NDArray[np.intp]
    #: Span projects: item id -> length of its text (the continuum of unitizing alpha), for
    #: the items with two or more current labels.
    text_lengths: dict[int, int] = field(default_factory=dict)

    @property
    def item_ids(self) -> list[int]:
        return self.votes.keys

    @property
    def annotator_ids(self) -> list[int]:
        return self.votes.annotator_keys

    @property
    def values(self) -> list[Any]:
        return self.votes.values

    @property
    def items(self) -> NDArray[np.intp]:
        return self.votes.items

    @property
    def annotators(self) -> NDArray[np.intp]:
        return self.votes.annotators

    @property
    def labels(self) -> NDArray[np.intp]:
        return self.votes.labels

    @property
    def n_items(self) -> int:
        return self.votes.n_items

    @property
    def n_annotators(self) -> int:
        return self.votes.n_annotators

    @property
    def n_classes(self) -> int:
        return self.votes.n_values

    def counts(self) -> NDArray[np.int64]:
        return self.votes.counts()

    def multi(self) -> NDArray[np.bool_]:
        """(n_items,) items with two or more current labels."""
        return np.bincount(self.items, minlength=self.n_items) >= 2


def label_table(session: Session, project: Project) -> LabelTable:
    """Every current label of the project (withdrawn ones left out) as a :class:`LabelTable`."""
    found = current_labels(session, project.id)
    votes = collect_votes(((c.item_id, c.annotator_id, c.labels) for c in found),
                          project.labels)
    first: dict[int, CurrentLabel] = {}
    for cur in found:
        first.setdefault(cur.item_id, cur)
    names = usernames(session, votes.annotator_keys)
    gold_of: dict[int, Any] = dict(session.execute(select(Item.id, Item.gold_labels).where(
        Item.project_id == project.id, Item.gold_labels.is_not(None))).all())
    lengths: dict[int, int] = {}
    if project.task == "spans":
        counted = np.bincount(votes.items, minlength=votes.n_items)
        shared = [votes.keys[i] for i in np.flatnonzero(counted >= 2).tolist()]
        for start in range(0, len(shared), 500):
            for item_id, data in session.execute(select(Item.id, Item.data).where(
                    Item.id.in_(shared[start:start + 500]))):
                try:
                    lengths[item_id] = len(item_tokens(data or {})[0])
                except SpanError:
                    continue  # no text any more (purged): left out of unitizing alpha
    return LabelTable(
        project_id=project.id, task=project.task, votes=votes,
        rows=[first[i].row for i in votes.keys], splits=[first[i].split for i in votes.keys],
        gold=[None if gold_of.get(i) is None else value_key(gold_of[i]) for i in votes.keys],
        usernames=[names.get(a, str(a)) for a in votes.annotator_keys],
        annotation_ids=np.asarray([c.annotation_id for c in found], dtype=np.intp),
        text_lengths=lengths)


def _num(x: float | None) -> float | None:
    return None if x is None or not np.isfinite(x) else float(x)


def agreement_report(table: LabelTable, project: Project) -> dict[str, Any]:
    """Agreement over the items with two or more current labels (see :mod:`activelabel.quality`
    for what each measure is). Floats are None with fewer than two such items.

    ``target`` is the project's ``agreement_target``; ``below_target`` compares Krippendorff's
    alpha with it (pairs and labels carry their own ``below_target`` too)."""
    target = settings_of(project.settings).agreement_target
    multi = table.multi()
    n_items = int(multi.sum())
    out: dict[str, Any] = {"n_items": n_items, "n_annotators": table.n_annotators,
                           "krippendorff_alpha": None, "fleiss_kappa": None,
                           "cohen_kappa_pairs": [], "per_label": {}, "target": target,
                           "below_target": False}
    if table.task == "spans":  # span-level F1 between annotators, micro and per type
        out["span_agreement"] = span_agreement(_span_answers(table))
        out["span_agreement"]["unitizing_alpha"] = _unitizing(table)
    if n_items < 2:
        return out
    k = max(table.n_classes, 1)
    reliability = q.reliability_matrix(table.items, table.annotators, table.labels,
                                       table.n_items, table.n_annotators)
    reliability[:, ~multi] = np.nan
    counts = table.counts()
    counts[~multi] = 0
    alpha = _num(q.krippendorff_alpha(reliability))
    out["krippendorff_alpha"] = alpha
    out["fleiss_kappa"] = _num(q.fleiss_kappa(counts))

    def below(x: float | None) -> bool:
        return target is not None and x is not None and x < float(target)

    out["cohen_kappa_pairs"] = [
        {"a": table.usernames[p.a], "b": table.usernames[p.b], "kappa": _num(p.kappa),
         "n": p.n, "below_target": below(_num(p.kappa))}
        for p in q.cohen_kappa_pairs(reliability, k)]
    share, n = q.specific_agreement(counts)
    out["per_label"] = {str(_label_name(table.values[c])): {
        "agreement": _num(share[c]), "n": int(n[c]), "below_target": below(_num(share[c]))}
        for c in range(table.n_classes) if n[c] > 0}
    out["below_target"] = below(alpha)
    return out


def _unitizing(table: LabelTable) -> dict[str, Any]:
    """Krippendorff's unitizing alpha over the items with two or more annotators, each
    item's text a section of one continuum (the items one after the other). Per pair of
    annotators over the items both labeled (``pairs``); over all annotators (``alpha``,
    ``per_type``) when every such item has the same annotators, as the measure needs every
    coder to unitize the whole continuum (None otherwise)."""
    by_item: dict[int, dict[int, list[dict[str, Any]]]] = {}
    for i, a, v in zip(table.items.tolist(), table.annotators.tolist(), table.labels.tolist(),
                       strict=True):
        value = table.values[v]
        by_item.setdefault(i, {})[a] = ([{"start": s, "end": e, "label": c} for s, e, c in value]
                                        if isinstance(value, tuple) else [])
    shared = {i: coders for i, coders in sorted(by_item.items())
              if len(coders) >= 2 and table.text_lengths.get(table.item_ids[i])}
    out: dict[str, Any] = {"alpha": None, "per_type": {}, "pairs": [], "n_items": len(shared)}

    def over(items: list[int], who: Sequence[int]) -> dict[str, Any]:
        coders: list[list[dict[str, Any]]] = [[] for _ in who]
        at = 0
        for i in items:
            for k, a in enumerate(who):
                coders[k] += [{**s, "start": s["start"] + at, "end": s["end"] + at}
                              for s in shared[i][a]]
            at += table.text_lengths[table.item_ids[i]]
        return unitizing_alpha(coders, at)

    try:
        people = sorted({a for coders in shared.values() for a in coders})
        for a, b in combinations(people, 2):
            both = [i for i, coders in shared.items() if a in coders and b in coders]
            if both:
                pair = over(both, [a, b])
                out["pairs"].append({"a": table.usernames[a], "b": table.usernames[b],
                                     "alpha": pair["alpha"], "n": len(both)})
        groups = {frozenset(coders) for coders in shared.values()}
        if len(groups) == 1:
            whole = over(list(shared), sorted(next(iter(groups))))
            out["alpha"], out["per_type"] = whole["alpha"], whole["per_type"]
    except SpanError as exc:  # a project that allows overlapping spans of one type
        out = {"alpha": None, "per_type": {}, "pairs": [], "n_items": len(shared),
               "unavailable": str(exc)}
    return out


def _span_answers(table: LabelTable) -> list[list[list[dict[str, Any]]]]:
    """Per item, each annotator's spans (from the table's span-tuple values)."""
    answers: dict[int, list[list[dict[str, Any]]]] = {}
    for i, v in zip(table.items.tolist(), table.labels.tolist(), strict=True):
        value = table.values[v]
        answers.setdefault(i, []).append(
            [{"start": a, "end": b, "label": c} for a, b, c in value]
            if isinstance(value, tuple) else [])
    return list(answers.values())


def _label_name(value: Any) -> Any:
    return "+".join(map(str, value)) if isinstance(value, tuple) else value


def table_consensus(table: LabelTable, project: Project) -> Consensus:
    """The consensus of the table's items by the project's method (:mod:`.consensus`);
    span projects: span voting."""
    if project.task == "spans":
        return votes_span_consensus(table.votes, allow_overlap=bool(
            (project.settings or {}).get("span_overlap")))
    return votes_consensus(table.votes, multilabel=project.task == "multilabel",
                           method=consensus_method(project.task, project.settings or {}))


@dataclass(frozen=True)
class AnnotatorQuality:
    user_id: int
    username: str
    labels: int
    gold_n: int
    gold_accuracy: float | None
    agreement_with_consensus: float | None
    consensus_n: int
    estimated_accuracy: float | None
    gold_alert: bool


def _leave_one_out(table: LabelTable, counts: NDArray[np.int64]) -> tuple[
        NDArray[np.float64], NDArray[np.int64]]:
    """Per annotator: share of their labels equal to the majority of the *other* annotators of
    the item (items where the others tie or are absent left out), and how many counted."""
    agree = np.zeros(table.n_annotators)
    seen = np.zeros(table.n_annotators, dtype=np.int64)
    for i, a, y in zip(table.items, table.annotators, table.labels, strict=True):
        others = counts[i].copy()
        others[y] -= 1
        top = others.max()
        if top == 0 or (others == top).sum() > 1:
            continue
        seen[a] += 1
        agree[a] += int(np.argmax(others) == y)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(seen > 0, agree / np.maximum(seen, 1), np.nan), seen


def annotator_report(table: LabelTable, project: Project) -> list[AnnotatorQuality]:
    """One row per annotator with a current label: label count, accuracy on gold items,
    agreement with the others' majority (leave-one-out), and Dawid-Skene's estimated accuracy.

    ``gold_alert`` is set when gold accuracy is below the project's ``gold_alert_below``."""
    if table.n_annotators == 0:
        return []
    counts = table.counts()
    loo, loo_n = _leave_one_out(table, counts)
    ds = dawid_skene(table.votes)
    gold_index = {v: i for i, v in enumerate(table.values)}
    gold = np.asarray([-1 if g is None else gold_index.get(g, -2) for g in table.gold],
                      dtype=np.intp)
    threshold = settings_of(project.settings).gold_alert_below
    out = []
    for a, (uid, name) in enumerate(zip(table.annotator_ids, table.usernames, strict=True)):
        mine = table.annotators == a
        on_gold = mine & (gold[table.items] != -1)
        gold_n = int(on_gold.sum())
        gold_acc = (float((table.labels[on_gold] == gold[table.items[on_gold]]).mean())
                    if gold_n else None)
        out.append(AnnotatorQuality(
            user_id=uid, username=name, labels=int(mine.sum()), gold_n=gold_n,
            gold_accuracy=gold_acc, agreement_with_consensus=_num(float(loo[a])),
            consensus_n=int(loo_n[a]), estimated_accuracy=_num(float(ds.accuracy_[a])),
            gold_alert=threshold is not None and gold_acc is not None
            and gold_acc < float(threshold)))
    return sorted(out, key=lambda r: r.username)


# ---- label issues --------------------------------------------------------------------------


#: The label check's job kind, and the name of the file (in the project's array folder) its
#: newest result is kept in.
LABEL_CHECK = "label_check"
_CHECK_FILE = "label_check.json"
#: Label-check states: its result is of the current labels, of earlier labels (a newer check
#: is asked for), there is none yet, or the project's task has no label check (spans).
CHECK_CURRENT, CHECK_STALE, CHECK_NONE, CHECK_OFF = (
    "up_to_date", "outdated", "not_yet", "not_applicable")
CHECK_STATES = {"CURRENT": CHECK_CURRENT, "STALE": CHECK_STALE, "NONE": CHECK_NONE,
                "OFF": CHECK_OFF}
#: After a check, the next waits this many times its duration (see request_label_check).
CHECK_REST_FACTOR = 4.0


@dataclass(frozen=True)
class LabelCheck:
    """The newest label check of a project, read against its current labels: ``found`` maps
    the current annotations it put up to (suspicion, the label it is about: a left-out label
    of a multi-label set, None for a single label that looks wrong)."""

    state: str
    found: dict[int, tuple[float, Any]]
    key: str | None  # what the current labels' check depends on (None: no check)
    labels_checked: int | None
    finished_at: str | None


#: The label check's method: a kept check of another reads as outdated (and is run again).
#: 2: five folds, temperature scaled, the likelier label named.
CHECK_VERSION = 2


def check_key(mark: LabelsMark, project: Project) -> str:
    """What a label check's answer depends on: the current labels (their revisions' mark), the
    project's labels and consensus method, the check's model, the features' settings and the
    check's method (:data:`CHECK_VERSION`)."""
    settings = dict(project.settings or {})
    s = settings_of(settings)
    return json.dumps([mark.newest, mark.count, mark.total, [repr(v) for v in project.labels],
                       consensus_method(project.task, settings), s.model, s.random_state,
                       s.featurizer,
                       sorted((str(k), repr(v)) for k, v in s.featurizer_params.items()),
                       CHECK_VERSION])


def _check_path(storage: Storage, project_id: int) -> Path:
    return storage.arrays.project_dir(project_id) / _CHECK_FILE


def _project_mark(project: Project) -> str:
    """What tells this project from another of the same id (a data folder restored beside
    another database): its id and creation time, as every host reads them from the database."""
    return f"{project.id}@{project.created_at.isoformat()}"


def _read_check(storage: Storage, project: Project) -> dict[str, Any] | None:
    """The kept check of the project; None where there is none, it cannot be read, or it is
    another project's."""
    try:
        stored = json.loads(_check_path(storage, project.id).read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError):  # unreadable: checked again
        log.warning("label check of project %s unreadable", project.id, exc_info=True)
        return None
    if not isinstance(stored, dict) or stored.get("project") != _project_mark(project):
        return None
    return stored


def read_label_check(storage: Storage, project: Project, table: LabelTable) -> LabelCheck:
    """The project's newest label check (a worker's ``label_check`` job computes it) with
    what it found among the current labels; labels revised since it ran are left out."""
    state, key, stored = _check_of(storage, project, LabelsMark.of(table.annotation_ids))
    if stored is None:
        return LabelCheck(state, {}, key, None, None)
    present = set(table.annotation_ids.tolist())
    found = {int(a): (float(score), label) for a, score, label in stored.get("found", [])
             if int(a) in present}
    return LabelCheck(state, found, key, stored.get("labels"), stored.get("finished_at"))


def _check_of(storage: Storage, project: Project, mark: LabelsMark
              ) -> tuple[str, str | None, dict[str, Any] | None]:
    """The state of the project's kept check against the current labels (``mark``), the key
    of a check of them (None: none is asked for) and the kept check (None: none to show)."""
    if project.task not in CHECKED_TASKS:
        return CHECK_OFF, None, None
    if mark.count < MIN_ITEMS_FOR_ISSUES:
        # too few labels to check: none is asked for, and an earlier one's findings (of
        # labels since withdrawn) are not shown
        return CHECK_NONE, None, None
    key = check_key(mark, project)
    stored = _read_check(storage, project)
    if stored is None:
        return CHECK_NONE, key, None
    return (CHECK_CURRENT if stored.get("key") == key else CHECK_STALE), key, stored


def label_check_status(session: Session, storage: Storage, project: Project) -> dict[str, Any]:
    """The label check as the review page shows it: its state against the current labels
    (asking for a check of them, as a read of the review queue does), how many labels it read
    and put up, its newest job (id, status, error) and, while the checks rest, when the next
    one may start.

    The review page polls it while a check is on its way, so it never reads the labels: their
    mark (one aggregate query) tells whether the kept check is of them, and the labels it put
    up are counted among the current ones by their revision ids."""
    mark = current_labels_mark(session, project.id)
    state, key, stored = _check_of(storage, project, mark)
    put_up = [int(a) for a, _, _ in (stored or {}).get("found", [])]
    out = {"state": state, "labels": mark.count,
           "labels_checked": None if stored is None else stored.get("labels"),
           "flagged": len(put_up) if state == CHECK_CURRENT
           else count_current(session, project.id, put_up),
           "finished_at": None if stored is None else stored.get("finished_at")}
    asked = None
    if state in (CHECK_NONE, CHECK_STALE) and key is not None:
        asked = ask_label_check(storage, project.id, key)
    if asked is not None:  # (written apart from this read, which does not see it)
        return {**out, "next_check_after": None,
                "job": {"id": asked, "status": JobStatus.QUEUED, "error": None}}
    job = _newest_check_job(session, project.id)
    rest = _rest_until(job)
    return {**out,
            "next_check_after": rest if state == CHECK_STALE and rest is not None
            and rest > utcnow() and (job is None or (job.payload or {}).get("key") != key)
            else None,
            "job": None if job is None else {"id": job.id, "status": job.status,
                                             "error": job.error}}


def _newest_check_job(session: Session, project_id: int) -> Job | None:
    return session.execute(select(Job).where(
        Job.project_id == project_id, Job.kind == LABEL_CHECK)
        .order_by(Job.id.desc()).limit(1)).scalar_one_or_none()


def _rest_until(job: Job | None) -> datetime | None:
    """Until when the checks rest after ``job`` (a finished check): CHECK_REST_FACTOR times
    its duration after it finished, less the rounds and imports its worker ran meanwhile
    (``yielded_s`` of its result)."""
    if job is None or job.status != JobStatus.DONE or job.started_at is None \
            or job.finished_at is None:
        return None
    yielded = timedelta(seconds=float((job.result or {}).get("yielded_s") or 0.0))
    took = max(job.finished_at - job.started_at - yielded, timedelta(0))
    return job.finished_at + took * CHECK_REST_FACTOR


def ask_label_check(storage: Storage, project_id: int, key: str) -> int | None:
    """:func:`request_label_check` for a read: a failure to write the job is logged, never
    the read's."""
    try:
        return request_label_check(storage, project_id, key)
    except SQLAlchemyError:
        log.warning("project %s: a label check could not be asked for", project_id,
                    exc_info=True)
        return None


def request_label_check(storage: Storage, project_id: int, key: str) -> int | None:
    """Queue a label check of the project's labels (the job's id) unless one is queued
    (it reads the labels when it starts), the newest one ran, runs or failed on these labels
    (asked again when the labels change), or the checks rest after the last one (for
    :data:`CHECK_REST_FACTOR` times its duration: checks take at most a fifth of a worker's
    time, however often the queue is read; a round queued meanwhile waits for no check: the
    worker runs it at the check's next model fit)."""

    def needed(session: Session) -> bool:
        newest = _newest_check_job(session, project_id)
        if newest is None:
            return True
        if newest.status == JobStatus.QUEUED or (newest.payload or {}).get("key") == key:
            return False
        rest = _rest_until(newest)
        if rest is not None and utcnow() < rest:  # the checks rest (asked again after)
            return False
        return not (newest.status == JobStatus.RUNNING and session.execute(select(Job.id).where(
            Job.project_id == project_id, Job.kind == LABEL_CHECK,
            Job.status == JobStatus.QUEUED).limit(1)).first() is not None)

    with storage.read_sessions() as session:  # most reads stop here, without a write
        if not needed(session):
            return None
    with storage.sessions() as session, session.begin():
        # two API processes asking at once: the second waits here and sees the first's job
        lock_project(session, project_id)
        if not needed(session):
            return None
        return int(enqueue_job(session, LABEL_CHECK, {"key": key}, project_id=project_id).id)


def run_label_check(storage: Storage, job: Job, progress: Callable[[dict[str, Any]], None]
                    | None = None) -> dict[str, Any]:
    """The ``label_check`` job: the project's model, out of fold on the items' consensus,
    checks every current label (single labels that look wrong, :func:`_compute_issues`;
    multi-label sets that leave a label out, :func:`_compute_missing`); the result is kept
    for the review queue unless a check of later labels is already kept."""
    from .featurize import ensure_features

    if job.project_id is None:
        raise InvalidInput(f"label check job {job.id} names no project")
    with storage.read_sessions() as session:
        project = get_project(session, job.project_id)
        # before the labels (every revision up to it is among what follows); it only grows,
        # withdrawals and undos included, so it orders two checks' results
        watermark = label_watermark(session, job.project_id)
        table = label_table(session, project)
        consensus = table_consensus(table, project)
        task, labels = project.task, list(project.labels)
        settings = dict(project.settings or {})
        key = check_key(LabelsMark.of(table.annotation_ids), project)
        mark = _project_mark(project)
        session.expunge(project)
    fits = 0

    def between() -> None:  # before each model fit: the worker runs the rounds queued
        nonlocal fits
        if progress is not None:
            progress({"stage": "check", "labels": int(table.annotation_ids.shape[0]),
                      "fits": fits})
        fits += 1

    between()
    found: dict[int, tuple[float, Any]] = {}
    if table.items.shape[0] and task == "multilabel":
        found = _compute_missing(storage, table, consensus.labels, labels,
                                 settings_of(settings), ensure_features, between=between)
    elif table.items.shape[0] and task == "classification":
        found = _compute_issues(storage, table, consensus_indices(table, consensus), settings,
                                ensure_features, between=between)
    kept = _read_check(storage, project)
    if kept is not None and int(kept.get("watermark", 0)) > watermark:
        with storage.read_sessions() as session:  # a check of later labels finished first,
            now = label_watermark(session, job.project_id)  # unless those labels are gone
        if int(kept["watermark"]) <= now:  # (the database restored to an earlier state)
            return {"labels": int(table.annotation_ids.shape[0]), "flagged": len(found),
                    "kept": False}
    result = {"key": key, "labels": int(table.annotation_ids.shape[0]),
              "watermark": watermark, "project": mark, "finished_at": utcnow().isoformat(),
              "found": [[a, s, label] for a, (s, label) in sorted(found.items())]}
    atomic_write(_check_path(storage, job.project_id),
                 lambda h: h.write(json.dumps(result).encode()))
    return {"labels": result["labels"], "flagged": len(found), "kept": True}


def consensus_indices(table: LabelTable, consensus: Consensus) -> NDArray[np.intp]:
    """(n_items,) index of each item's consensus among the table's values (-1: none, or a
    multi-label consensus nobody gave as a whole)."""
    index = {v: k for k, v in enumerate(table.values)}
    return np.asarray([-1 if v is None or isinstance(v, list) else index.get(v, -1)
                       for v in consensus.labels], dtype=np.intp)


def _compute_missing(storage: Storage, table: LabelTable, agreed: Sequence[Any],
                     labels: Sequence[Any], project_settings: ProjectSettings,
                     ensure: Any, *, between: Callable[[], None] | None = None
                     ) -> dict[int, tuple[float, Any]]:
    """Annotation id -> (probability, label) for the current label sets that likely leave a
    label out: the project's model, out of fold on the items' consensus sets (``agreed`` per
    item; None: no consensus, left out of training and scored by a model fitted on the
    rest), is sure of a label the set lacks (:func:`activelabel.quality.find_missing_labels`).
    ``between`` is called before each model fit (see :func:`_out_of_fold`)."""
    index = {str(v): j for j, v in enumerate(labels)}
    trained = np.asarray([i for i, a in enumerate(agreed) if a is not None], dtype=np.intp)
    if trained.size < MIN_ITEMS_FOR_ISSUES or len(labels) < 2:
        return {}
    Y = np.zeros((table.n_items, len(labels)), dtype=np.int8)
    for i in trained.tolist():
        Y[i, [index[str(x)] for x in agreed[i] if str(x) in index]] = 1
    X = _features_of(storage, table, ensure)
    if X is None:
        return {}
    seed = int(project_settings.random_state)
    make, probs_train = _out_of_fold(table, project_settings, len(labels), lambda make: (
        q.multilabel_out_of_sample_probs(X[trained], Y[trained], make, random_state=seed)),
        multilabel=True, between=between)
    probs = np.zeros((table.n_items, len(labels)))
    probs[trained] = probs_train
    rest = np.setdiff1d(np.arange(table.n_items), trained)
    if rest.size:
        probs[rest] = make().fit(X[trained], Y[trained]).predict_proba(X[rest])
    # each annotation's own set against its item's probabilities
    given = np.zeros((table.annotation_ids.shape[0], len(labels)), dtype=np.int8)
    for p, v in enumerate(table.labels.tolist()):
        value = table.values[v]  # a label, or a set's sorted tuple
        members = value if isinstance(value, tuple | list) else (value,)
        given[p, [index[str(x)] for x in members if str(x) in index]] = 1
    found, label, sure = q.find_missing_labels(given, probs[table.items])
    ids = table.annotation_ids
    return {int(ids[r]): (float(s), labels[int(j)])
            for r, j, s in zip(found, label, sure, strict=True)}


def _features_of(storage: Storage, table: LabelTable, ensure: Any) -> Any:
    """The features of the table's items (in its order); None where they cannot be read."""
    try:
        feats = ensure(storage, table.project_id)
    except ValueError:
        return None
    rows = np.asarray(table.rows, dtype=np.intp)
    return None if rows.max() >= feats.n_items else feats.X[rows]


def _out_of_fold(table: LabelTable, project_settings: ProjectSettings, n_labels: int,
                 probs_of: Callable[[Callable[[], Any]], Any], *, multilabel: bool = False,
                 between: Callable[[], None] | None = None) -> tuple[Callable[[], Any], Any]:
    """``(make, probs_of(make))`` with the check's model (:func:`issue_model`), or with the
    default model where the project's fails (a plugin gone or failing on a fold).
    ``between`` is called before each model ``make`` makes (the check's report: its worker
    runs the rounds and imports queued meanwhile, so none waits for the check's end)."""

    stopped: list[BaseException] = []

    def reporting(make: Callable[[], Any]) -> Callable[[], Any]:
        def each() -> Any:
            if between is not None:
                try:
                    between()
                except BaseException as exc:  # the job's end (lost, stopped), not the model's
                    stopped.append(exc)
                    raise
            return make()
        return each

    make = reporting(issue_model(project_settings, n_labels, multilabel=multilabel))
    try:
        return make, probs_of(make)
    except Exception:
        if stopped:
            raise
        log.warning("label check of project %s: model %r failed, the default checks instead",
                    table.project_id, project_settings.model, exc_info=True)
        make = reporting(issue_model(project_settings, n_labels, default=True,
                                     multilabel=multilabel))
        return make, probs_of(make)


def _compute_issues(storage: Storage, table: LabelTable, consensus: NDArray[np.intp],
                    settings: dict[str, Any], ensure: Any, *,
                    between: Callable[[], None] | None = None) -> dict[int, tuple[float, Any]]:
    """Annotation id -> (suspicion (1 - out-of-sample probability of its label), the label
    the same probabilities make likeliest besides it) for the
    single labels cleanlab's confident learning flags: each is checked against 5-fold
    cross-validated probabilities of the project's model (:func:`issue_model`), temperature
    scaled (:func:`activelabel.quality.fit_temperature`), trained on the features and the
    items' consensus (``consensus``: indices into the table's values; an
    item without one is left out of training, its labels still checked). Empty when there
    are too few labels to cross-validate. ``between`` is called before each model fit (see
    :func:`_out_of_fold`)."""
    n_labels = len([v for v in table.values if not isinstance(v, tuple)])
    trained = np.flatnonzero(consensus >= 0)
    counts = np.bincount(consensus[trained], minlength=n_labels)
    if trained.size < MIN_ITEMS_FOR_ISSUES or np.count_nonzero(counts >= 2) < 2:
        return {}
    every = _features_of(storage, table, ensure)
    if every is None:
        return {}
    keep = trained[np.isin(consensus[trained], np.flatnonzero(counts >= 2))]
    X, y = every[keep], consensus[keep]
    project_settings = settings_of(settings)
    seed = int(project_settings.random_state)
    make, probs_train = _out_of_fold(table, project_settings, n_labels, lambda make: (
        q.out_of_sample_probs(X, y, n_labels, make=make, random_state=seed)), between=between)
    # Items without consensus: probabilities of a model fitted on every consensus item.
    probs = np.zeros((table.n_items, n_labels))
    probs[keep] = probs_train
    rest = np.setdiff1d(np.arange(table.n_items), keep)
    if rest.size:
        model = make()
        model.fit(X, y)
        probs[rest] = model.predict_proba(every[rest])
    # flat probabilities over many classes sharpened to fit the consensus (out of fold)
    try:
        probs = q.with_temperature(probs, q.fit_temperature(probs_train, y))
    except ValueError:  # a model's rows that are no probabilities (NaN, all 0): as they are
        log.warning("label check of project %s: probabilities not scaled", table.project_id,
                    exc_info=True)
    single = table.labels < n_labels
    given = table.labels[single]
    rows = probs[table.items[single]]
    issues = q.find_label_issues(given, rows)
    ids = table.annotation_ids[single]
    out: dict[int, tuple[float, Any]] = {}
    for i, score in zip(issues.indices.tolist(), issues.scores.tolist(), strict=True):
        other = rows[i].copy()
        other[given[i]] = -1.0  # the likeliest label besides the one given
        out[int(ids[i])] = (float(score), table.values[int(other.argmax())])
    return out


def issue_model(settings: ProjectSettings, n_labels: int, *, default: bool = False,
                multilabel: bool = False) -> Callable[[], Any]:
    """A factory of new models of the project's kind over label indices ``0..n_labels-1``
    (a served model's stand-in, and with ``default`` every project's: the default model),
    trained as the rounds train it but on the labels alone and uncalibrated (calibration
    would fit each fold again): the label check asks what the project's own model makes of a
    label it never saw. (A plain logistic regression on the same features read clinc150's
    151 intents at 4.7 labels each with 4% out-of-fold accuracy, flagged 544 of 718 correct
    labels in 22 s; this model read 68% and flagged 137 in 3.5 s.)"""
    from ..models import make_model

    fallback = ProjectSettings.model_fields["model"].default
    name = fallback if default or settings.model == REMOTE_MODEL else settings.model
    return partial(make_model, name, classes=list(range(n_labels)), calibrate=False,
                   random_state=int(settings.random_state), pseudo_labels=0.0,
                   multilabel=multilabel)


def latest_revision_by_reviewer(session: Session, item_ids: Sequence[int]) -> set[int]:
    """Items whose newest revision was written by someone other than its annotator (a review
    decision): they leave the review queue until an annotator labels them again."""
    out: set[int] = set()
    ids = list(item_ids)
    for start in range(0, len(ids), 5000):
        chunk = ids[start:start + 5000]
        newest = (select(Annotation.item_id, Annotation.user_id, Annotation.annotator_id)
                  .where(Annotation.item_id.in_(chunk))
                  .order_by(Annotation.item_id, Annotation.id.desc()))
        done: set[int] = set()
        for item_id, user_id, annotator_id in session.execute(newest):
            if item_id in done:
                continue
            done.add(item_id)
            if user_id != annotator_id:
                out.add(item_id)
    return out


def display_value(value: Any) -> Any:
    """A consensus value as the API shows it (a label, or a list of labels)."""
    return _display(value)


def relabel_advice(session: Session, storage: Storage, project: Project, probs: Any,
                   limit: int = 20) -> dict[str, Any]:
    """Whether another label is worth more on an already labeled item or on a new one.

    cleanlab's ActiveLab scores (:func:`activelabel.quality.active_learning_scores`) for every
    labeled item (from its annotators' labels and the active model's probabilities ``probs``,
    rows = ``Item.row``) and every unlabeled pool item; lower is more informative. Returns the
    ``limit`` labeled items worth relabeling (scored below the best new item's score) and the
    ``limit`` best new items, with ``advice`` ``relabel`` or ``label_new`` (None without a
    model or labels)."""
    empty: dict[str, Any] = {"advice": None, "relabel": [], "label_new": []}
    if project.task != "classification" or probs is None:
        return empty
    table = label_table(session, project)
    k = len(project.labels)
    single = table.labels < k
    if table.n_items == 0 or probs.ndim != 2 or probs.shape[1] != k or not single.all():
        return empty
    matrix = q.reliability_matrix(table.items, table.annotators, table.labels, table.n_items,
                                  table.n_annotators).T
    rows = np.asarray(table.rows, dtype=np.intp)
    labeled_rows = set(table.rows)
    pool = [(int(i), int(r)) for i, r in session.execute(
        select(Item.id, Item.row).where(Item.project_id == project.id, Item.split == "pool",
                                        Item.purged_at.is_(None)).order_by(Item.row))
            if r not in labeled_rows and r < probs.shape[0]]
    p = np.asarray(probs, dtype=np.float64)
    unlabeled = np.asarray([r for _, r in pool], dtype=np.intp)
    scored, new = q.active_learning_scores(matrix, p[rows],
                                           p[unlabeled] if unlabeled.size else None)
    order_new = np.argsort(new, kind="stable")[:limit] if unlabeled.size else np.empty(0, int)
    best_new = float(new[order_new[0]]) if order_new.size else float("inf")
    order = [int(i) for i in np.argsort(scored, kind="stable") if scored[i] < best_new][:limit]
    counts = np.bincount(table.items, minlength=table.n_items)
    return {"advice": "relabel" if order else "label_new",
            "relabel": [{"item_id": table.item_ids[i], "score": float(scored[i]),
                         "n_labels": int(counts[i])} for i in order],
            "label_new": [{"item_id": pool[int(j)][0], "score": float(new[j])}
                          for j in order_new]}
