"""The review queue: items a reviewer should look at, each with its reason and a score.

One entry per item and reason, scores in [0, 1], higher first; :class:`Reason` names each
reason with the short text the review page shows and what it means (how it is scored). The
consensus the reasons compare with is the project's (:mod:`.consensus`).

An item leaves the label-based reasons once its newest revision is a reviewer's decision
(accept, correct, reject) until an annotator labels it again; a flag leaves when resolved.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

import numpy as np
from numpy.typing import NDArray
from sqlalchemy import select
from sqlalchemy.orm import Session

from ..spans import SpanError, item_tokens, span_differences
from ..store import (
    InvalidInput,
    Storage,
    active_model_version,
    get_user_by_name,
    list_flags,
    usernames,
)
from ..store.models import Annotation, Item, Project, Round, RoundSelection
from .consensus import Consensus
from .quality import (
    CHECK_NONE,
    CHECK_STALE,
    LabelCheck,
    LabelTable,
    ask_label_check,
    display_value,
    label_table,
    latest_revision_by_reviewer,
    read_label_check,
    table_consensus,
)
from .span_rounds import span_predictions
from .tasks import model_probs

__all__ = ["REASONS", "Reason", "ReviewEntry", "review_queue"]

#: A predicted span counts as sure when every token's marginal is at least this.
SURE_SPAN = 0.9
#: A multi-label model is sure a label applies at this probability, sure it does not at one
#: minus it.
SURE_LABEL = 0.9


class Reason(str, Enum):
    """Why an item is in the review queue; members are their names in the API (``?reason=``).

    ``label`` is the short text the review page shows, ``description`` what the reason means
    and how it is scored, ``priority`` its rank among entries of equal score (0 first)."""

    LABEL_ISSUE = "label_issue"
    DISAGREEMENT = "disagreement"
    FLAGGED = "flagged"
    GOLD_MISS = "gold_miss"
    MODEL_DISAGREES = "model_disagrees"
    TIE = "tie"

    def __str__(self) -> str:
        return str(self.value)

    @property
    def label(self) -> str:
        return _TEXT[self][0]

    @property
    def description(self) -> str:
        return _TEXT[self][1]

    @property
    def priority(self) -> int:
        return _PRIORITY.index(self)


_TEXT: dict[Reason, tuple[str, str]] = {
    Reason.LABEL_ISSUE: (
        "likely label error",
        "cleanlab flags a label against cross-validated probabilities; score = 1 - the "
        "out-of-sample probability of the given label, and the detail names the label they "
        "find likelier (multi-label: a label the set leaves out that the cross-validated "
        "model gives at least 0.9; score = that probability)."),
    Reason.DISAGREEMENT: (
        "annotators disagree",
        "two or more current labels that are not all the same; score = share of annotators "
        "outside the majority."),
    Reason.FLAGGED: ("flagged", "an unresolved flag; score 1."),
    Reason.GOLD_MISS: (
        "missed a gold item",
        "a gold item some annotator labeled differently from its known answer; score = share "
        "of its annotators who missed."),
    Reason.MODEL_DISAGREES: (
        "model disagrees",
        "the active model's suggestion differs from the consensus; score = the model's "
        "confidence in its own label (multi-label: in the surest label it gives or denies "
        "against the consensus, from 0.9; spans: in the surest span the consensus lacks)."),
    Reason.TIE: (
        "tie",
        "no majority among the current labels (majority vote leaves a single-label item out "
        "of training until it is resolved; Dawid-Skene breaks the tie); score 1."),
}
#: Order of reasons among entries of equal score.
_PRIORITY = (Reason.GOLD_MISS, Reason.TIE, Reason.DISAGREEMENT, Reason.LABEL_ISSUE,
             Reason.MODEL_DISAGREES, Reason.FLAGGED)
#: Reason names, as the API lists them.
REASONS = tuple(r.value for r in Reason)


@dataclass
class ReviewEntry:
    item_id: int
    reason: Reason
    score: float
    detail: str
    annotation_ids: list[int] = field(default_factory=list)
    flag: dict[str, Any] | None = None
    #: A model's reason: the labels it is about besides the annotators' (what a filter by
    #: label matches): a span model's predicted types, the labels a label check finds
    #: likelier or left out, those a multi-label model is sure of.
    model_labels: list[Any] = field(default_factory=list)
    #: Span projects: the spans ``detail`` names as ``{0}``, ``{1}``, ... ((start, end, type)),
    #: written in words once the queue is cut to what it shows (:func:`_span_words`).
    spans: list[tuple[int, int, Any]] = field(default_factory=list)


@dataclass
class _Context:
    table: LabelTable
    consensus: Consensus  # per item index, by the project's method
    reviewed: set[int]
    by_item: dict[int, list[int]]  # item index -> positions in the long arrays
    index: dict[int, int] = field(default_factory=dict)  # item id -> item index
    check: LabelCheck | None = None  # the label check read (when the reasons asked for it)


def _fmt(value: Any) -> str:
    return repr(display_value(value)) if not isinstance(value, str) else f"'{value}'"


def _disagreement(ctx: _Context, i: int, pos: list[int]) -> list[ReviewEntry]:
    t = ctx.table
    given = t.labels[pos]
    counts = np.bincount(given, minlength=t.n_classes)
    n, top = len(pos), int(counts.max())
    out = []
    if len(pos) >= 2 and top < n:
        detail, spans = _span_detail(ctx, i, pos) if t.task == "spans" else (
            f"{n - top} of {n} annotators disagree with the majority"
            if not ctx.consensus.ties[i] else f"{n} annotators split with no majority", [])
        out.append(ReviewEntry(t.item_ids[i], Reason.DISAGREEMENT, (n - top) / n, detail,
                               [int(t.annotation_ids[p]) for p in pos], spans=spans))
    if ctx.consensus.ties[i]:
        split = ", ".join(f"{int(c)} {_fmt(t.values[k])}" for k, c in enumerate(counts) if c)
        out.append(ReviewEntry(t.item_ids[i], Reason.TIE, 1.0, f"no majority: {split}",
                               [int(t.annotation_ids[p]) for p in pos]))
    return out


def _span_detail(ctx: _Context, i: int, pos: list[int]) -> tuple[str, list[tuple[int, int, Any]]]:
    """Where annotators' spans differ: each span not everyone gave, with its votes (the
    detail with the spans as ``{k}``, and the spans)."""
    t = ctx.table
    answers = [[{"start": a, "end": b, "label": c} for a, b, c in t.values[t.labels[p]]]
               if isinstance(t.values[t.labels[p]], tuple) else [] for p in pos]
    diffs = span_differences(answers)
    shown = "; ".join(f"{{{k}}} ({d['votes']} of {d['n']}"
                      f"{', boundary or type' if d['kind'] == 'boundary_or_type' else ''})"
                      for k, d in enumerate(diffs[:5]))
    return (f"annotators' spans differ on {len(diffs)} span{'s' if len(diffs) != 1 else ''}: "
            f"{shown}", [(int(d["start"]), int(d["end"]), d["label"]) for d in diffs[:5]])


def _span_errors(storage: Storage, project: Project, ctx: _Context,
                 model: str) -> list[ReviewEntry]:
    """Likely span errors: spans the model (named ``model``: "the model of round 3") is sure
    of (every token's marginal at least SURE_SPAN) that the consensus leaves out or types
    differently."""
    predicted = span_predictions(storage.arrays, project.id, project.task)
    if predicted is None:
        return []
    t = ctx.table
    out = []
    for i, pos in ctx.by_item.items():
        agreed = ctx.consensus.labels[i]
        if agreed is None or t.item_ids[i] in ctx.reviewed:
            continue
        row = t.rows[i]
        lo, hi = np.searchsorted(predicted[:, 0], [row, row + 1])
        given = {(s["start"], s["end"], s["label"]) for s in agreed}
        sure = [(int(p[1]), int(p[2]), project.labels[int(p[3])], float(p[4]))
                for p in predicted[lo:hi] if p[4] >= SURE_SPAN and int(p[3]) < len(project.labels)]
        missed = [m for m in sure if m[:3] not in given]
        if missed:
            best = max(missed, key=lambda m: m[3])
            out.append(ReviewEntry(t.item_ids[i], Reason.MODEL_DISAGREES, best[3],
                                   f"{model} is sure of {len(missed)} span(s) the "
                                   f"labels leave out or type otherwise, e.g. {{0}} "
                                   f"({best[3]:.2f})",
                                   [int(t.annotation_ids[q]) for q in pos],
                                   model_labels=sorted({m[2] for m in missed}, key=str),
                                   spans=[best[:3]]))
    return out


def _gold_miss(ctx: _Context, i: int, pos: list[int]) -> list[ReviewEntry]:
    t = ctx.table
    gold = t.gold[i]
    if gold is None:
        return []
    missed = [p for p in pos if t.values[t.labels[p]] != gold]
    if not missed:
        return []
    return [ReviewEntry(t.item_ids[i], Reason.GOLD_MISS, len(missed) / len(pos),
                        f"{len(missed)} of {len(pos)} annotators missed the gold answer "
                        f"{_fmt(gold)}", [int(t.annotation_ids[p]) for p in missed])]


def _label_based(session: Session, storage: Storage, project: Project, ctx: _Context,
                 wanted: set[Reason]) -> list[ReviewEntry]:
    out: list[ReviewEntry] = []
    t = ctx.table
    for i, pos in ctx.by_item.items():
        if t.item_ids[i] in ctx.reviewed:
            continue
        if wanted & {Reason.DISAGREEMENT, Reason.TIE}:
            out += [e for e in _disagreement(ctx, i, pos) if e.reason in wanted]
        if Reason.GOLD_MISS in wanted:
            out += _gold_miss(ctx, i, pos)
    if Reason.LABEL_ISSUE in wanted:
        out += _label_issues(storage, project, ctx)
    if Reason.MODEL_DISAGREES in wanted:
        out += _model_disagrees(session, storage, project, ctx)
    return out


def _label_issues(storage: Storage, project: Project, ctx: _Context) -> list[ReviewEntry]:
    """What the newest label check found among the current labels; a check of the current
    labels is asked of a worker when the newest is of earlier ones (its findings join the
    queue when it is done: the request never trains a model)."""
    t = ctx.table
    check = ctx.check = read_label_check(storage, project, t)
    if check.state in (CHECK_NONE, CHECK_STALE) and check.key is not None:
        ask_label_check(storage, project.id, check.key)
    found = check.found
    if project.task == "multilabel":  # sets that likely leave a label out
        return _one_per_item(ctx, ((a, s) for a, (s, _) in found.items()),
                             lambda item_id, ann_id, p, score: ReviewEntry(
            item_id, Reason.LABEL_ISSUE, score,
            f"{_fmt(found[ann_id][1])} looks left out: a model trained on the other labels "
            f"gives it probability {score:.2f}"), also=lambda ann_id: [found[ann_id][1]])

    def wrong(item_id: int, ann_id: int, p: int, score: float) -> ReviewEntry:
        likelier = found[ann_id][1]  # (None: a check kept before it named one)
        return ReviewEntry(
            item_id, Reason.LABEL_ISSUE, score,
            f"the label {_fmt(t.values[t.labels[p]])} looks wrong: a model trained on the "
            f"other labels gives it probability {1 - score:.2f}"
            + ("" if likelier is None else f" and finds {_fmt(likelier)} likelier"))

    return _one_per_item(ctx, ((a, s) for a, (s, _) in found.items()), wrong,
                         also=lambda ann_id: [x for x in [found[ann_id][1]] if x is not None])


def _one_per_item(ctx: _Context, scored: Iterable[tuple[int, float]],
                  make: Callable[[int, int, int, float], ReviewEntry], *,
                  also: Callable[[int], list[Any]] | None = None) -> list[ReviewEntry]:
    """One entry per item not reviewed yet for the scored annotations ((annotation id,
    score) pairs): ``make(item id, annotation id, its position, score)`` for the item's
    first, raised to its best score, holding every one of them and, with ``also``, the labels
    each is about among its ``model_labels`` (a filter by label finds any)."""
    t = ctx.table
    position = {int(a): p for p, a in enumerate(t.annotation_ids)}
    best: dict[int, ReviewEntry] = {}
    for ann_id, score in scored:
        p = position[ann_id]
        item_id = t.item_ids[int(t.items[p])]
        if item_id in ctx.reviewed:
            continue
        entry = best.get(item_id)
        if entry is None:
            entry = best[item_id] = make(item_id, ann_id, p, score)
        entry.score = max(entry.score, score)
        entry.annotation_ids.append(ann_id)
        for label in also(ann_id) if also is not None else []:
            if label not in entry.model_labels:
                entry.model_labels.append(label)
    return list(best.values())


def _model_disagrees(session: Session, storage: Storage, project: Project,
                     ctx: _Context) -> list[ReviewEntry]:
    model = active_model_version(session, project.id)
    if model is None:
        return []
    trained = session.get(Round, model.round_id) if model.round_id is not None else None
    name = (f"the model of round {trained.number}" if trained is not None
            else f"model version {model.version}")
    if project.task == "spans":
        return _span_errors(storage, project, ctx, name)
    probs = model_probs(storage.arrays, project.id)
    if probs is None:
        return []
    if project.task == "multilabel":  # a model of the project's labels (none added since)
        return ([] if probs.ndim != 2 or probs.shape[1] != len(project.labels)
                else _label_set_errors(probs, project, ctx, name))
    t = ctx.table
    out = []
    for i, pos, agreed, p in _scored_consensus(ctx, probs):
        best = int(np.argmax(p))
        label = project.labels[best] if best < len(project.labels) else None
        if label is None or label == agreed:
            continue
        out.append(ReviewEntry(t.item_ids[i], Reason.MODEL_DISAGREES, float(p[best]),
                               f"{name} says {_fmt(label)} ({p[best]:.2f}); "
                               f"the consensus is {_fmt(agreed)}",
                               [int(t.annotation_ids[q]) for q in pos], model_labels=[label]))
    return out


def _scored_consensus(ctx: _Context, probs: Any) -> Iterator[tuple[int, list[int], Any,
                                                                    NDArray[np.float64]]]:
    """(item index, its positions, its consensus, the model's probabilities) of every item
    not reviewed yet with a consensus and a row the model scored."""
    t = ctx.table
    for i, pos in ctx.by_item.items():
        agreed = ctx.consensus.labels[i]
        row = t.rows[i]
        if agreed is None or row >= probs.shape[0] or t.item_ids[i] in ctx.reviewed:
            continue
        yield i, pos, agreed, np.asarray(probs[row], dtype=np.float64)


def _label_set_errors(probs: Any, project: Project, ctx: _Context,
                      model: str) -> list[ReviewEntry]:
    """Likely multi-label errors: labels the model (named ``model``) is sure of (probability
    at least SURE_LABEL) that the consensus leaves out, or sure do not apply (at most
    1 - SURE_LABEL) that it gives; scored by the surest of them (``model_labels``: the labels
    it is sure of, for the queue's filter by label)."""
    t = ctx.table
    labels = list(project.labels)
    out = []
    for i, pos, agreed, p in _scored_consensus(ctx, probs):
        # float32 as stored: 0.9 reads 0.89999998, so the thresholds allow for it
        given = {str(x) for x in agreed}
        added = [(labels[j], float(p[j])) for j in np.flatnonzero(p >= SURE_LABEL - 1e-6)
                 if str(labels[j]) not in given]
        dropped = [(labels[j], float(1 - p[j])) for j in np.flatnonzero(p <= 1 - SURE_LABEL + 1e-6)
                   if str(labels[j]) in given]
        if not added and not dropped:
            continue
        said = ([f"{_fmt(x)} applies ({q:.2f})" for x, q in added]
                + [f"{_fmt(x)} does not apply ({1 - q:.2f})" for x, q in dropped])
        out.append(ReviewEntry(
            t.item_ids[i], Reason.MODEL_DISAGREES, max(q for _, q in added + dropped),
            f"{model} says {'; '.join(said)}; the consensus is {_fmt(list(agreed))}",
            [int(t.annotation_ids[q]) for q in pos],
            model_labels=[x for x, _ in added]))
    return out


def _flagged(session: Session, project_id: int) -> list[ReviewEntry]:
    flags = list_flags(session, project_id)
    names = usernames(session, {f.user_id for f in flags})
    out, seen = [], set()
    for flag in flags:
        if flag.item_id in seen:
            continue
        seen.add(flag.item_id)
        by = names.get(flag.user_id, str(flag.user_id))
        out.append(ReviewEntry(flag.item_id, Reason.FLAGGED, 1.0, f"flagged by {by}: {flag.reason}",
                               flag={"id": flag.id, "reason": flag.reason, "by": by}))
    return out


def _context(session: Session, project: Project) -> _Context:
    table = label_table(session, project)
    by_item: dict[int, list[int]] = {}
    for p, i in enumerate(table.items.tolist()):
        by_item.setdefault(i, []).append(p)
    return _Context(table, table_consensus(table, project),
                    latest_revision_by_reviewer(session, table.item_ids), by_item,
                    {iid: i for i, iid in enumerate(table.item_ids)})


def _span_words(session: Session, entries: list[ReviewEntry]) -> None:
    """The spans a span project's entries name, written in their words and type ('Paris'
    location), read from the texts of those entries' items only (the queue as shown); a span
    whose text is gone (a purged item) or does not cover it stays its offsets."""
    wanted = sorted({e.item_id for e in entries if e.spans})
    texts: dict[int, str] = {}
    for start in range(0, len(wanted), 1000):
        for item_id, data in session.execute(select(Item.id, Item.data).where(
                Item.id.in_(wanted[start:start + 1000]), Item.purged_at.is_(None))):
            try:
                texts[int(item_id)] = item_tokens(data or {})[0]  # what spans are offsets in
            except SpanError:
                continue
    for e in entries:
        if not e.spans:
            continue
        text = texts.get(e.item_id)
        e.detail = e.detail.format(*(
            f"'{text[a:b]}' {label}" if text is not None and 0 <= a < b <= len(text)
            else f"{a}-{b} {label}" for a, b, label in e.spans))


def _round_items(session: Session, project_id: int, number: int) -> set[int]:
    stmt = (select(RoundSelection.item_id).join(Round, Round.id == RoundSelection.round_id)
            .where(Round.project_id == project_id, Round.number == number))
    return set(session.execute(stmt).scalars())


def _filter(session: Session, entries: list[ReviewEntry], ctx: _Context, project: Project,
            annotator: str | None, label: Any, round_number: int | None) -> list[ReviewEntry]:
    if round_number is not None:
        chosen = _round_items(session, project.id, round_number)
        entries = [e for e in entries if e.item_id in chosen]
    t = ctx.table
    index = ctx.index
    if annotator is not None:
        user = get_user_by_name(session, annotator)
        if user is None:
            raise InvalidInput(f"annotator {annotator!r} is not a user: pass a username from "
                               "GET /projects/{id}/annotators")
        a = t.annotator_ids.index(user.id) if user.id in t.annotator_ids else -1
        mine = {int(x) for x in t.annotation_ids[t.annotators == a]}
        entries = [e for e in entries if mine & set(e.annotation_ids or _item_annotations(
            ctx, index.get(e.item_id)))]
    if label is not None:
        if label not in project.labels:
            raise InvalidInput(f"label {label!r} is not one of {project.labels}")
        entries = [e for e in entries if label in e.model_labels
                   or _has_label(ctx, index.get(e.item_id), label)]
    return entries


def _item_annotations(ctx: _Context, i: int | None) -> list[int]:
    if i is None:
        return []
    return [int(ctx.table.annotation_ids[p]) for p in ctx.by_item.get(i, [])]


def _has_label(ctx: _Context, i: int | None, label: Any) -> bool:
    """Whether any current label of item ``i`` or its consensus carries ``label``: the label
    itself, one of a multi-label answer's, or the type of one of a span answer's spans."""
    if i is None:
        return False
    t = ctx.table
    for p in ctx.by_item.get(i, []):
        if _carries(t.values[t.labels[p]], label, spans=t.task == "spans"):
            return True
    return _carries(ctx.consensus.labels[i], label, spans=t.task == "spans")


def _carries(value: Any, label: Any, *, spans: bool) -> bool:
    if spans:  # a table value: ((start, end, type), ...); a consensus: [{start, end, label}]
        if not isinstance(value, (tuple, list)):
            return False
        return any((s.get("label") if isinstance(s, dict) else s[2]) == label
                   for s in value if isinstance(s, dict) or
                   (isinstance(s, (tuple, list)) and len(s) == 3))
    return value == label or (isinstance(value, (tuple, list)) and label in value)


def review_queue(session: Session, storage: Storage, project: Project, *,
                 reason: str | None = None, annotator: str | None = None, label: Any = None,
                 round_number: int | None = None, limit: int = 100
                 ) -> tuple[list[ReviewEntry], _Context]:
    """The ranked review queue (best first), filtered; :class:`Reason` names the reasons."""
    if reason is not None and reason not in REASONS:
        raise InvalidInput(f"unknown reason {reason!r}: use one of {', '.join(REASONS)}")
    if not 1 <= limit <= 500:
        raise InvalidInput(f"limit must be between 1 and 500, got {limit}")
    wanted = set(Reason) if reason is None else {Reason(reason)}
    ctx = _context(session, project)
    entries = _label_based(session, storage, project, ctx, wanted)
    if Reason.FLAGGED in wanted:
        entries += _flagged(session, project.id)
    entries = _filter(session, entries, ctx, project, annotator, label, round_number)
    entries = _without_purged_suspects(session, entries)
    entries.sort(key=lambda e: (-e.score, e.reason.priority, e.item_id))
    entries = entries[:limit]
    _span_words(session, entries)
    return entries, ctx


#: Reasons a model gives from an item's features: a purged item's read as an empty text.
_MODEL_REASONS = frozenset({Reason.LABEL_ISSUE, Reason.MODEL_DISAGREES})


def _without_purged_suspects(session: Session, entries: list[ReviewEntry]) -> list[ReviewEntry]:
    """``entries`` but a model's suspicion of a purged item (its payload gone, the model saw
    nothing of it: its label is not wrong for that); people's reasons stay."""
    suspects = sorted({e.item_id for e in entries if e.reason in _MODEL_REASONS})
    purged: set[int] = set()
    for start in range(0, len(suspects), 1000):
        purged.update(session.execute(select(Item.id).where(
            Item.id.in_(suspects[start:start + 1000]), Item.purged_at.is_not(None))).scalars())
    return [e for e in entries if not (e.reason in _MODEL_REASONS and e.item_id in purged)]


def entry_annotations(session: Session, ctx: _Context, item_id: int) -> list[dict[str, Any]]:
    """The item's current labels, for a review entry."""
    t = ctx.table
    i = ctx.index.get(item_id)
    if i is None:
        return []
    ids = [int(t.annotation_ids[p]) for p in ctx.by_item.get(i, [])]
    rows = session.execute(select(Annotation).where(Annotation.id.in_(ids))
                           .order_by(Annotation.id)).scalars()
    names = dict(zip(t.annotator_ids, t.usernames, strict=True))
    return [{"annotation_id": a.id, "annotator": names.get(a.annotator_id, str(a.annotator_id)),
             "labels": list(a.labels or []), "kind": a.kind, "created_at": a.created_at}
            for a in rows]


def entry_consensus(ctx: _Context, item_id: int) -> Any:
    i = ctx.index.get(item_id)
    return None if i is None else display_value(ctx.consensus.labels[i])


def items_by_id(session: Session, item_ids: Sequence[int]) -> dict[int, Item]:
    if not item_ids:
        return {}
    return {i.id: i for i in session.execute(select(Item).where(
        Item.id.in_(list(item_ids)))).scalars()}

