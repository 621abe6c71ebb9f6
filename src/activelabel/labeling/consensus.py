"""The consensus of a project's current labels: one definition for training (rounds), export,
snapshots, insights (related examples, label counts) and review.

The project's ``consensus`` setting names the method (:func:`consensus_method`):

- ``majority`` (the default). Single-label: the label most of the item's annotators gave; a tie
  gives no consensus (None) and the item waits for review. Multi-label: the labels that more
  than half of the item's annotators gave (per-label majority: a sorted list, maybe empty).
- ``dawid_skene``. Single-label: the most likely label under Dawid and Skene's model, whose
  per-annotator confusion matrices are learned by EM over every current label of the project:
  a reliable annotator can outvote two careless ones, and ties are broken by reliability.
  Multi-label projects keep the per-label majority (the model is one of single labels).

The maths is the core's (:class:`~activelabel.quality.MajorityVote`,
:class:`~activelabel.quality.DawidSkene`, :func:`~activelabel.quality.multilabel_majority`);
this module turns current labels into their long form (:class:`Votes`, also the one input
Dawid-Skene is fitted on, here and in the per-annotator quality report) and the answers back
into label values.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

from .. import quality as q
from ..spans import span_key, vote_spans
from ..store import CurrentLabel
from ..store.models import Project

__all__ = [
    "DAWID_SKENE",
    "MAJORITY",
    "SPAN_VOTE",
    "Consensus",
    "Votes",
    "collect_votes",
    "consensus_method",
    "dawid_skene",
    "item_majority",
    "project_consensus",
    "span_tie",
    "value_key",
    "votes_consensus",
]

MAJORITY = "majority"
DAWID_SKENE = "dawid_skene"
#: A span project's consensus: each span given by more than half of the annotators.
SPAN_VOTE = "span_vote"


def value_key(labels: Sequence[Any]) -> Any:
    """The value an annotation gives: its one label, or (several or none) the sorted tuple;
    spans (a span project's answer) as the sorted tuple of their (start, end, label)."""
    if labels and isinstance(labels[0], Mapping):
        return tuple(sorted(span_key(s) for s in labels))
    if len(labels) == 1:
        return labels[0]
    return tuple(sorted(labels, key=str))


def _members(value: Any) -> tuple[Any, ...]:
    """The labels of a value (:func:`value_key`)."""
    return value if isinstance(value, tuple) else (value,)


@dataclass(frozen=True)
class Votes:
    """Current labels in long form: vote ``p`` says annotator ``annotators[p]`` gave the value
    ``values[labels[p]]`` to item ``items[p]``.

    ``keys`` name the items (rows or item ids) and ``annotator_keys`` the annotators, both in
    order of first appearance; ``values`` starts with the project's labels, followed by any
    other value given (a multi-label annotation's sorted tuple, a label since removed)."""

    keys: list[Any]
    annotator_keys: list[Any]
    values: list[Any]
    items: NDArray[np.intp]
    annotators: NDArray[np.intp]
    labels: NDArray[np.intp]

    @property
    def n_items(self) -> int:
        return len(self.keys)

    @property
    def n_annotators(self) -> int:
        return len(self.annotator_keys)

    @property
    def n_values(self) -> int:
        return len(self.values)

    def counts(self) -> NDArray[np.int64]:
        """(n_items, n_values) how many annotators gave each value to each item."""
        return q.count_table(self.items, self.labels, self.n_items, max(self.n_values, 1))


def collect_votes(entries: Iterable[tuple[Hashable, Hashable, Sequence[Any]]],
                  classes: Sequence[Any]) -> Votes:
    """:class:`Votes` from (item key, annotator key, labels) per current label; ``classes``
    are the project's labels (value indices 0..len(classes)-1)."""
    values: list[Any] = list(classes)
    index: dict[Any, int] = {v: i for i, v in enumerate(values)}
    item_index: dict[Hashable, int] = {}
    who: dict[Hashable, int] = {}
    long: list[tuple[int, int, int]] = []
    for item, annotator, labels in entries:
        key = value_key(labels)
        if key not in index:
            index[key] = len(values)
            values.append(key)
        long.append((item_index.setdefault(item, len(item_index)),
                     who.setdefault(annotator, len(who)), index[key]))
    arr = np.asarray(long, dtype=np.intp).reshape(-1, 3)
    return Votes(keys=list(item_index), annotator_keys=list(who), values=values,
                 items=arr[:, 0], annotators=arr[:, 1], labels=arr[:, 2])


def consensus_method(task: str, settings: Mapping[str, Any]) -> str:
    """The method a project's consensus follows: its ``consensus`` setting for single-label
    projects, the per-label majority for multi-label ones, the span vote for span ones (the
    setting is a single-label project's: a span project's form does not offer it)."""
    if task == "spans":
        return SPAN_VOTE
    if task == "classification" and settings.get("consensus") == DAWID_SKENE:
        return DAWID_SKENE
    return MAJORITY


@dataclass(frozen=True)
class Consensus:
    """The consensus of every item of some :class:`Votes`.

    ``labels`` per item (in the order of ``keys``): the label, the sorted list of labels
    (multi-label), or None (no consensus); ``ties`` per item: two or more values share the top
    count (reported for review whatever the method); ``model`` the fitted Dawid-Skene model
    when ``method`` is ``dawid_skene``."""

    method: str
    keys: list[Any]
    labels: list[Any]
    ties: NDArray[np.bool_]
    model: q.DawidSkene | None = None
    _by_key: dict[Any, Any] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_by_key", dict(zip(self.keys, self.labels, strict=True)))

    def of(self, key: Any) -> Any:
        """The consensus of the item ``key`` (None when it has none or is unknown)."""
        return self._by_key.get(key)

    def as_dict(self) -> dict[Any, Any]:
        """Item key -> consensus (None included)."""
        return dict(self._by_key)


def dawid_skene(votes: Votes) -> q.DawidSkene:
    """Dawid and Skene's model fitted on every vote (values as classes)."""
    return q.DawidSkene().fit(votes.items, votes.annotators, votes.labels,
                              n_items=votes.n_items, n_annotators=votes.n_annotators,
                              n_classes=max(votes.n_values, 1))


def _per_label_majority(votes: Votes, counts: NDArray[np.int64]) -> list[Any]:
    """Per item the labels more than half of its annotators gave, sorted."""
    vocab: dict[Any, int] = {}
    for value in votes.values:
        for label in _members(value):
            vocab.setdefault(label, len(vocab))
    membership = np.zeros((max(votes.n_values, 1), max(len(vocab), 1)), dtype=np.int64)
    for v, value in enumerate(votes.values):
        membership[v, [vocab[x] for x in _members(value)]] = 1
    kept = q.multilabel_majority(counts @ membership, counts.sum(axis=1))
    names = list(vocab)
    return [sorted((names[j] for j in np.flatnonzero(row)), key=str) for row in kept]


def votes_consensus(votes: Votes, *, multilabel: bool, method: str = MAJORITY) -> Consensus:
    """The consensus of each item of ``votes`` by ``method`` (see the module doc); ``method``
    is ``majority`` for a multi-label project whatever is asked."""
    counts = votes.counts()
    vote = q.MajorityVote().fit(counts)
    if multilabel:
        return Consensus(MAJORITY, votes.keys, _per_label_majority(votes, counts), vote.ties_)
    if method != DAWID_SKENE:
        return Consensus(MAJORITY, votes.keys, _values(votes, vote.labels_), vote.ties_)
    model = dawid_skene(votes) if votes.n_items else None
    chosen = vote.labels_ if model is None else model.labels_
    return Consensus(DAWID_SKENE, votes.keys, _values(votes, chosen), vote.ties_, model)


def _values(votes: Votes, chosen: NDArray[np.intp]) -> list[Any]:
    return [None if k < 0 else votes.values[k] for k in chosen.tolist()]


def project_consensus(project: Project, current: Iterable[CurrentLabel]) -> Consensus:
    """The consensus of every labeled item of ``project`` (keys: item ids) from its current
    labels (:func:`activelabel.store.current_labels`), by the project's method."""
    if project.task == "spans":
        return span_consensus(current, allow_overlap=bool((project.settings or {}).get(
            "span_overlap")))
    votes = collect_votes(((c.item_id, c.annotator_id, c.labels) for c in current),
                          project.labels)
    multilabel = project.task == "multilabel"
    return votes_consensus(votes, multilabel=multilabel,
                           method=consensus_method(project.task, project.settings or {}))


def span_consensus(current: Iterable[CurrentLabel], *, allow_overlap: bool = False
                   ) -> Consensus:
    """Span projects: each item's spans given by more than half of its annotators
    (:func:`activelabel.spans.vote_spans`); ``ties`` marks items where some span had exactly
    half of the votes (left out, worth a reviewer's look)."""
    answers: dict[Any, list[list[Any]]] = {}
    for c in current:
        answers.setdefault(c.item_id, []).append(list(c.labels))
    keys = list(answers)
    labels = [[{k: s[k] for k in ("start", "end", "label")}
               for s in vote_spans(answers[k], allow_overlap=allow_overlap)] for k in keys]
    ties = np.asarray([span_tie(answers[k]) for k in keys], dtype=bool)
    return Consensus(SPAN_VOTE, keys, labels, ties)


def votes_span_consensus(votes: Votes, *, allow_overlap: bool = False) -> Consensus:
    """:func:`span_consensus` over :class:`Votes` whose values are span tuples
    (:func:`value_key`), keyed as the votes are."""
    answers: dict[int, list[list[dict[str, Any]]]] = {}
    for i, v in zip(votes.items.tolist(), votes.labels.tolist(), strict=True):
        value = votes.values[v]
        spans = [{"start": a, "end": b, "label": c} for a, b, c in value] \
            if isinstance(value, tuple) else []
        answers.setdefault(i, []).append(spans)
    labels = [[{k: s[k] for k in ("start", "end", "label")}
               for s in vote_spans(answers.get(i, []), allow_overlap=allow_overlap)]
              for i in range(votes.n_items)]
    ties = np.asarray([span_tie(answers.get(i, [])) for i in range(votes.n_items)],
                      dtype=bool)
    return Consensus(SPAN_VOTE, list(votes.keys), labels, ties)


def span_tie(answers: list[list[Any]]) -> bool:
    """Whether some span of one item's answers has exactly half of their votes (a tie)."""
    counts: dict[tuple[int, int, str], int] = {}
    for answer in answers:
        for key in {span_key(s) for s in answer}:
            counts[key] = counts.get(key, 0) + 1
    return any(2 * n == len(answers) for n in counts.values())


def item_majority(annotations: Sequence[Sequence[Any]], multilabel: bool) -> Any:
    """The majority of one item's current labels (None on a tie or without labels; a list for
    multi-label), as :func:`votes_consensus` gives it by majority vote."""
    if not annotations:
        return None
    votes = collect_votes(((0, who, labels) for who, labels in enumerate(annotations)), [])
    return votes_consensus(votes, multilabel=multilabel).labels[0]
