"""Span labels over text (named entities): tokens with character offsets, span checks, BIO
tags, entity-level scores, agreement between annotators and consensus by span voting.

A span is a dict ``{"start": int, "end": int, "label": str}`` of character offsets into the
item's text (``end`` exclusive). An item's answer is a list of spans; the empty list means
"no entity". Spans start and end on token boundaries: tokens are either given with the item
(``tokens``, found in the text in order) or made by :func:`tokenize`.

Pure Python and numpy; no I/O. Scores match seqeval's default (CoNLL) mode: an entity counts
as found only when its type, start and end all match.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from itertools import pairwise
from typing import Any

__all__ = [
    "TOKEN_PATTERN",
    "Span",
    "SpanError",
    "align_tokens",
    "check_spans",
    "entity_cues",
    "entity_scores",
    "item_tokens",
    "span_agreement",
    "span_differences",
    "span_key",
    "spans_to_tags",
    "tags_to_spans",
    "tokenize",
    "unitizing_alpha",
    "vote_spans",
]

Span = dict[str, Any]
Offsets = list[tuple[int, int]]

#: The tokenizer: a URL, an @mention or #hashtag, a word (letters and digits, inner
#: apostrophes, hyphens and dots kept: "don't", "e-mail", "U.S"), or one other visible
#: character (punctuation). Whitespace separates tokens and belongs to none.
TOKEN_PATTERN = re.compile(
    r"https?://\S+|www\.\S+|[@#]\w+|\w+(?:['’\-.]\w+)*|[^\w\s]", re.UNICODE)


class SpanError(ValueError):
    """A span or token list that does not fit its text; the message says which and how."""


def tokenize(text: str) -> Offsets:
    """Character offsets ``(start, end)`` of the tokens of ``text`` (:data:`TOKEN_PATTERN`)."""
    return [(m.start(), m.end()) for m in TOKEN_PATTERN.finditer(text)]


def align_tokens(text: str, tokens: Sequence[Any]) -> Offsets:
    """Offsets of given ``tokens`` found in ``text`` in order (whitespace between them is
    skipped); raises :class:`SpanError` naming the first token not found where expected."""
    offsets: Offsets = []
    cursor = 0
    for i, token in enumerate(tokens):
        if not isinstance(token, str) or not token or token != token.strip():
            raise SpanError(f"token {i} is {token!r}: tokens must be non-empty strings "
                            "without surrounding whitespace")
        start = text.find(token, cursor)
        if start < 0 or text[cursor:start].strip():
            raise SpanError(f"token {i} {token!r} is not next in the text after offset "
                            f"{cursor}: give tokens in text order, or leave them out to let "
                            "the server tokenize")
        offsets.append((start, start + len(token)))
        cursor = start + len(token)
    return offsets


def item_tokens(data: Mapping[str, Any], field: str = "text") -> tuple[str, Offsets]:
    """An item's text and token offsets: its ``tokens`` when given, else :func:`tokenize`.

    An item with tokens and no text gets the tokens joined by single spaces as its text.
    """
    text = data.get(field)
    tokens = data.get("tokens")
    if text is None and isinstance(tokens, list):
        text = " ".join(str(t) for t in tokens)
    if not isinstance(text, str):
        raise SpanError(f"a span item needs its text in the {field!r} field (a string), got "
                        f"{type(text).__name__}")
    if tokens is None:
        return text, tokenize(text)
    if not isinstance(tokens, list):
        raise SpanError(f"tokens must be a list of strings, got {type(tokens).__name__}")
    return text, align_tokens(text, tokens)


def span_key(span: Mapping[str, Any]) -> tuple[int, int, str]:
    """(start, end, label): what two spans must share to be the same entity."""
    return int(span["start"]), int(span["end"]), str(span["label"])


def _one_span(i: int, span: Any, n_chars: int, labels: Sequence[str]) -> Span:
    if not isinstance(span, Mapping) or set(span) != {"start", "end", "label"}:
        raise SpanError(f"span {i} must be an object with exactly start, end and label, got "
                        f"{span!r}")
    start, end, label = span["start"], span["end"], span["label"]
    for name, value in (("start", start), ("end", end)):
        if isinstance(value, bool) or not isinstance(value, int):
            raise SpanError(f"span {i}: {name} must be a whole number of characters, got "
                            f"{value!r}")
    if not 0 <= start < end <= n_chars:
        raise SpanError(f"span {i} ({start}, {end}) is outside the text of {n_chars} "
                        "characters or empty: use 0 <= start < end <= len(text)")
    if label not in labels:
        raise SpanError(f"span {i}: unknown label {label!r}: the project's entity types are "
                        f"{list(labels)}")
    return {"start": start, "end": end, "label": label}


def check_spans(spans: Any, text: str, offsets: Offsets, labels: Sequence[str], *,
                allow_overlap: bool = False) -> list[Span]:
    """Spans checked against the text and its tokens, sorted by (start, end, label).

    Each span is inside the text, starts where a token starts and ends where a token ends,
    names a known label, and (unless ``allow_overlap``) overlaps no other span; no span is
    given twice. Raises :class:`SpanError` with what is wrong and how to fix it.
    """
    if not isinstance(spans, list):
        raise SpanError(f"labels of a span project are a list of {{start, end, label}} spans "
                        f"(an empty list: no entity), got {type(spans).__name__}")
    checked = [_one_span(i, s, len(text), labels) for i, s in enumerate(spans)]
    starts = {s for s, _ in offsets}
    ends = {e for _, e in offsets}
    for i, span in enumerate(checked):
        if span["start"] not in starts or span["end"] not in ends:
            near = [text[s:e] for s, e in offsets if e > span["start"] and s < span["end"]]
            raise SpanError(f"span {i} ({span['start']}, {span['end']}) "
                            f"{text[span['start']:span['end']]!r} does not start and end on "
                            f"token boundaries: the tokens there are {near!r}; select whole "
                            "tokens")
    checked.sort(key=span_key)
    keys = [span_key(s) for s in checked]
    if len(set(keys)) != len(keys):
        twice = next(k for k, n in Counter(keys).items() if n > 1)
        raise SpanError(f"span {twice} is given twice; give each span once")
    if not allow_overlap:
        for a, b in pairwise(checked):
            if b["start"] < a["end"]:
                raise SpanError(f"spans {span_key(a)} and {span_key(b)} overlap: the project "
                                "does not allow overlapping spans (setting span_overlap)")
    return checked


def entity_cues(tokens: Sequence[str]) -> int:
    """How many tokens look like part of a name, without a gazetteer: capitalised or
    all-capital words not at the start of a sentence, @mentions and #hashtags. What the cold
    start ranks sentences by before any model exists."""
    count = 0
    after_stop = True
    for token in tokens:
        tagged = token[:1] in "@#" and len(token) > 1
        named = token[:1].isupper() and not after_stop and any(c.isalpha() for c in token)
        count += tagged or named
        after_stop = token in (".", "!", "?", ":", "...", "RT", '"')
    return count


# ---- BIO tags ----------------------------------------------------------------------------------


def spans_to_tags(offsets: Offsets, spans: Iterable[Mapping[str, Any]]) -> list[str]:
    """One BIO tag per token (``B-type``, ``I-type``, ``O``); spans are non-overlapping and on
    token boundaries (a later span over an earlier one's tokens is left out)."""
    tags = ["O"] * len(offsets)
    index = {start: i for i, (start, _) in enumerate(offsets)}
    for span in sorted(spans, key=span_key):
        first = index.get(int(span["start"]))
        if first is None or tags[first] != "O":
            continue
        last = first
        while last + 1 < len(offsets) and offsets[last + 1][1] <= int(span["end"]):
            last += 1
        if any(t != "O" for t in tags[first:last + 1]):
            continue
        tags[first] = f"B-{span['label']}"
        for j in range(first + 1, last + 1):
            tags[j] = f"I-{span['label']}"
    return tags


def _split_tag(tag: str) -> tuple[str, str]:
    if tag in ("O", "") or len(tag) < 2 or tag[1] not in "-_":
        return "O", ""
    return tag[0].upper(), tag[2:]


def tags_to_spans(offsets: Offsets, tags: Sequence[str]) -> list[Span]:
    """Spans from BIO (or IOB1 / BIOES) tags, read as CoNLL's conlleval and seqeval's default
    mode read them: an ``I-`` after ``O`` or after another type starts an entity."""
    if len(tags) != len(offsets):
        raise SpanError(f"{len(tags)} tags for {len(offsets)} tokens: give one tag per token")
    spans: list[Span] = []
    current: tuple[int, int, str] | None = None  # first token, last token, type
    for i, tag in enumerate(tags):
        prefix, kind = _split_tag(tag)
        starts = prefix in ("B", "S") or (prefix in ("I", "E") and (
            current is None or current[2] != kind))
        if current is not None and (prefix == "O" or starts):
            spans.append(_as_span(offsets, current))
            current = None
        if prefix == "O":
            continue
        current = (i, i, kind) if starts or current is None else (current[0], i, kind)
        if prefix in ("E", "S"):
            spans.append(_as_span(offsets, current))
            current = None
    if current is not None:
        spans.append(_as_span(offsets, current))
    return spans


def _as_span(offsets: Offsets, run: tuple[int, int, str]) -> Span:
    return {"start": offsets[run[0]][0], "end": offsets[run[1]][1], "label": run[2]}


# ---- scores ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Counts:
    true: int = 0
    pred: int = 0
    hit: int = 0

    def scores(self) -> dict[str, float]:
        p = self.hit / self.pred if self.pred else 0.0
        r = self.hit / self.true if self.true else 0.0
        f = 2 * p * r / (p + r) if p + r else 0.0
        return {"precision": p, "recall": r, "f1": f, "support": float(self.true)}


def entity_scores(y_true: Sequence[Iterable[Mapping[str, Any]]],
                  y_pred: Sequence[Iterable[Mapping[str, Any]]]) -> dict[str, Any]:
    """Entity-level precision, recall and F1 (micro over all entities), and the same per type.

    ``y_true`` and ``y_pred`` hold one list of spans per sentence. An entity is found when a
    predicted span has its start, end and type (seqeval's default mode on BIO tags).
    Returns ``{"precision", "recall", "f1", "support", "per_type": {type: {...}}}``.
    """
    if len(y_true) != len(y_pred):
        raise ValueError(f"{len(y_true)} true and {len(y_pred)} predicted sentences: give "
                         "one list of spans per sentence in both")
    per: dict[str, list[int]] = {}
    for true, pred in zip(y_true, y_pred, strict=True):
        t = {span_key(s) for s in true}
        p = {span_key(s) for s in pred}
        for key in t:
            per.setdefault(key[2], [0, 0, 0])[0] += 1
        for key in p:
            per.setdefault(key[2], [0, 0, 0])[1] += 1
        for key in t & p:
            per[key[2]][2] += 1
    total = _Counts(*(sum(c[i] for c in per.values()) for i in range(3)))
    return {**total.scores(),
            "per_type": {k: _Counts(*per[k]).scores() for k in sorted(per)}}


def span_agreement(annotations: Iterable[Sequence[Sequence[Mapping[str, Any]]]]
                   ) -> dict[str, Any]:
    """Span-level F1 between annotators: over every item with at least two annotators, each
    pair of annotators' span lists is compared (exact start, end and type).

    ``annotations`` yields, per item, the annotators' span lists. Pairwise F1 is symmetric:
    ``2 * shared / (spans of a + spans of b)``, pooled over all pairs (micro) and per type.
    Items where every annotator says "no entity" agree and add nothing to the counts;
    ``n_items`` counts compared items, ``items_agreeing`` those with identical answers.
    Returns ``{"f1", "per_type": {type: f1}, "n_items", "n_pairs", "items_agreeing"}``; F1 is
    None while no span was given.
    """
    shared: Counter[str] = Counter()
    given: Counter[str] = Counter()
    n_items = n_pairs = agreeing = 0
    for answers in annotations:
        sets = [{span_key(s) for s in a} for a in answers]
        if len(sets) < 2:
            continue
        n_items += 1
        agreeing += all(s == sets[0] for s in sets)
        for i in range(len(sets)):
            for j in range(i + 1, len(sets)):
                n_pairs += 1
                for key in sets[i] & sets[j]:
                    shared[key[2]] += 2
                for key in (*sets[i], *sets[j]):
                    given[key[2]] += 1
    per = {k: shared[k] / given[k] for k in sorted(given)}
    total = sum(given.values())
    return {"f1": sum(shared.values()) / total if total else None, "per_type": per,
            "n_items": n_items, "n_pairs": n_pairs, "items_agreeing": agreeing}


def _segments(spans: Sequence[Mapping[str, Any]], label: str, begin: int, end: int
              ) -> list[tuple[int, int, bool]]:
    """One coder's continuum for one type: ``(start, end, is_unit)`` sections in order, the
    coder's spans of that type as units and what lies between them as gaps."""
    units = sorted((int(s["start"]), int(s["end"])) for s in spans if s["label"] == label)
    out: list[tuple[int, int, bool]] = []
    at = begin
    for start, stop in units:
        if start < at or stop > end or start >= stop:
            raise SpanError(f"{label} spans {start}-{stop} overlap another of the same coder or "
                            f"leave the continuum {begin}-{end}: unitizing alpha needs each "
                            "coder's spans of one type apart and inside it")
        if start > at:
            out.append((at, start, False))
        out.append((start, stop, True))
        at = stop
    if at < end:
        out.append((at, end, False))
    return out


def _distance(g: tuple[int, int, bool], h: tuple[int, int, bool]) -> int:
    """Krippendorff's squared distance between two coders' overlapping sections: two units,
    the squared differences of their starts and of their ends; a unit inside the other
    coder's gap, its squared length; anything else 0."""
    if g[2] and h[2]:
        return (g[0] - h[0]) ** 2 + (g[1] - h[1]) ** 2
    if g[2] and h[0] <= g[0] and g[1] <= h[1]:
        return (g[1] - g[0]) ** 2
    if h[2] and g[0] <= h[0] and h[1] <= g[1]:
        return (h[1] - h[0]) ** 2
    return 0


def unitizing_alpha(coders: Sequence[Sequence[Mapping[str, Any]]], length: int, *,
                    begin: int = 0, labels: Sequence[str] | None = None) -> dict[str, Any]:
    """Krippendorff's alpha for unitizing (alpha_U: Krippendorff 1995, "On the reliability of
    unitizing continuous data"; Content Analysis, 2nd ed. 2004, section 11.6): how well
    ``m`` coders agree on where the units of each type lie on one continuum
    ``[begin, begin + length)`` and what lies between them, chance-corrected.

    ``coders`` holds each coder's spans ``{start, end, label}`` (a coder's spans of one type
    may not overlap). Per type c, each coder's continuum is cut into c units and gaps; the
    observed disagreement sums, over ordered pairs of coders and their overlapping sections,
    the squared distance (two units: squared differences of starts and of ends; a unit
    inside a gap: its squared length), divided by ``m (m - 1) L**2``. The expected
    disagreement places every c unit at every position of every gap long enough to hold it
    and beside every other c unit:

        De_c = 2/L * sum_u [(N_c - 1) (2 l^3 - 3 l^2 + l) / 3 + l^2 sum_{gaps >= l} (gap - l + 1)]
               / (m L (m L - 1) - sum_u l (l - 1))

    Returns ``{"alpha", "per_type": {type: alpha}, "observed", "expected"}`` (per type: the
    disagreements); alpha is ``1 - sum Do / sum De`` over the types, None where no unit was
    given (nothing to disagree on)."""
    m = len(coders)
    if m < 2:
        raise ValueError(f"unitizing alpha needs two or more coders, got {m}")
    if length < 1:
        raise ValueError(f"the continuum needs a positive length, got {length}")
    end = begin + length
    types = sorted({str(s["label"]) for c in coders for s in c} | set(labels or ()))
    observed: dict[str, float] = {}
    expected: dict[str, float] = {}
    for label in types:
        cuts = [_segments(c, label, begin, end) for c in coders]
        units = [b - a for sections in cuts for a, b, unit in sections if unit]
        if not units:
            continue
        gaps = sorted(b - a for sections in cuts for a, b, unit in sections if not unit)
        total = 0
        for i in range(m):
            for j in range(m):
                if i == j:
                    continue
                for g in cuts[i]:
                    for h in cuts[j]:
                        if g[0] < h[1] and h[0] < g[1]:
                            total += _distance(g, h)
        observed[label] = total / (m * (m - 1) * length ** 2)
        n_c = len(units)
        spread = 0
        for ln in units:
            fits = sum(gap - ln + 1 for gap in gaps if gap >= ln)
            spread += (n_c - 1) * (2 * ln ** 3 - 3 * ln ** 2 + ln) // 3 + ln ** 2 * fits
        pairs = m * length * (m * length - 1) - sum(ln * (ln - 1) for ln in units)
        expected[label] = 2 * spread / length / pairs if pairs > 0 else 0.0
    per_type = {k: (1 - observed[k] / expected[k] if expected[k] > 0 else None)
                for k in observed}
    de = sum(expected.values())
    return {"alpha": 1 - sum(observed.values()) / de if de > 0 else None,
            "per_type": per_type, "observed": observed, "expected": expected}


def vote_spans(answers: Sequence[Sequence[Mapping[str, Any]]], *, min_share: float = 0.5,
               allow_overlap: bool = False) -> list[Span]:
    """Consensus of several annotators' spans by voting: a span (same start, end and type)
    given by more than ``min_share`` of the annotators is kept. Without ``allow_overlap``,
    of kept spans that overlap the one with more votes wins (then the longer, then the
    earlier). Each kept span carries ``votes``: how many annotators gave it."""
    if not 0 <= min_share < 1:
        raise ValueError(f"min_share must be in [0, 1), got {min_share}")
    n = len(answers)
    if n == 0:
        return []
    votes = Counter(key for a in answers for key in {span_key(s) for s in a})
    kept = [(key, v) for key, v in votes.items() if v > min_share * n]
    kept.sort(key=lambda kv: (-kv[1], -(kv[0][1] - kv[0][0]), kv[0]))
    out: list[Span] = []
    for (start, end, label), v in kept:
        if not allow_overlap and any(start < s["end"] and s["start"] < end for s in out):
            continue
        out.append({"start": start, "end": end, "label": label, "votes": v})
    return sorted(out, key=span_key)


def span_differences(answers: Sequence[Sequence[Mapping[str, Any]]]) -> list[dict[str, Any]]:
    """Where annotators' spans differ: each span not given by every annotator, with how many
    gave it (``votes`` of ``n``), and which other given spans overlap it (a boundary or type
    disagreement rather than a missed entity). Empty when all answers are the same."""
    sets = [{span_key(s) for s in a} for a in answers]
    if not sets:
        return []
    union = set().union(*sets)
    out = []
    for key in sorted(union):
        v = sum(key in s for s in sets)
        if v == len(sets):
            continue
        overlapping = [{"start": o[0], "end": o[1], "label": o[2]} for o in sorted(union)
                       if o != key and o[0] < key[1] and key[0] < o[1]]
        out.append({"start": key[0], "end": key[1], "label": key[2], "votes": v,
                    "n": len(sets), "overlaps": overlapping,
                    "kind": "boundary_or_type" if overlapping else "missed"})
    return out
