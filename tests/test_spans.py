"""Span maths: tokens with offsets, span checks, BIO round trips, entity F1 (against seqeval),
agreement between annotators and consensus by span voting."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from activelabel.spans import (
    SpanError,
    align_tokens,
    check_spans,
    entity_cues,
    entity_scores,
    item_tokens,
    span_agreement,
    span_differences,
    spans_to_tags,
    tags_to_spans,
    tokenize,
    unitizing_alpha,
    vote_spans,
)

TEXT = "Empire State Building = ESB . Pretty bad storm"
LABELS = ["location", "person"]


def sp(start: int, end: int, label: str = "location") -> dict:
    return {"start": start, "end": end, "label": label}


def test_tokenize_keeps_offsets_and_splits_punctuation() -> None:
    text = "I met @paul_w in New-York, see https://x.io/a?b=1 #fun don't."
    toks = [text[s:e] for s, e in tokenize(text)]
    assert toks == ["I", "met", "@paul_w", "in", "New-York", ",", "see",
                    "https://x.io/a?b=1", "#fun", "don't", "."]


def test_given_tokens_are_aligned_in_order_and_a_stray_one_is_refused() -> None:
    assert align_tokens("a  bc d", ["a", "bc", "d"]) == [(0, 1), (3, 5), (6, 7)]
    with pytest.raises(SpanError, match="token 1 'x' is not next"):
        align_tokens("a bc d", ["a", "x"])
    with pytest.raises(SpanError, match="token 1 'd' is not next"):
        align_tokens("a bc d", ["a", "d"])  # skipping "bc" is not allowed
    assert item_tokens({"tokens": ["New", "York"]}) == ("New York", [(0, 3), (4, 8)])
    with pytest.raises(SpanError, match="needs its text"):
        item_tokens({"body": "x"})


def test_check_spans_accepts_whole_tokens_and_sorts() -> None:
    offs = tokenize(TEXT)
    out = check_spans([sp(24, 27), sp(0, 21)], TEXT, offs, LABELS)
    assert out == [sp(0, 21), sp(24, 27)]
    assert check_spans([], TEXT, offs, LABELS) == []


@pytest.mark.parametrize(("spans", "message"), [
    ([sp(0, 5)], "token boundaries"),  # "Empir"
    ([sp(1, 6)], "token boundaries"),
    ([sp(0, 99)], "outside the text"),
    ([sp(5, 5)], "outside the text"),
    ([sp(0, 6, "thing")], "unknown label 'thing'"),
    ([sp(0, 21), sp(7, 21)], "overlap"),
    ([sp(0, 6), sp(0, 6)], "given twice"),
    ([{"start": 0, "end": 6}], "exactly start, end and label"),
    ([{"start": "0", "end": 6, "label": "location"}], "whole number"),
    ({"start": 0}, "a list of"),
])
def test_check_spans_refuses_what_does_not_fit(spans: object, message: str) -> None:
    with pytest.raises(SpanError, match=message):
        check_spans(spans, TEXT, tokenize(TEXT), LABELS)


def test_overlap_is_allowed_when_the_project_says_so() -> None:
    out = check_spans([sp(0, 21), sp(7, 21, "person")], TEXT, tokenize(TEXT), LABELS,
                      allow_overlap=True)
    assert len(out) == 2


def test_bio_round_trip() -> None:
    offs = tokenize(TEXT)
    spans = [sp(0, 21), sp(24, 27, "person")]
    tags = spans_to_tags(offs, spans)
    assert tags == ["B-location", "I-location", "I-location", "O", "B-person", "O", "O", "O",
                    "O"]
    assert tags_to_spans(offs, tags) == spans


def test_tags_read_as_conlleval_reads_them() -> None:
    offs = [(0, 1), (2, 3), (4, 5), (6, 7)]
    # I- after O starts an entity; a type change starts another; E- and S- close one.
    assert tags_to_spans(offs, ["I-a", "I-a", "I-b", "O"]) == [
        {"start": 0, "end": 3, "label": "a"}, {"start": 4, "end": 5, "label": "b"}]
    assert tags_to_spans(offs, ["B-a", "E-a", "S-b", "O"]) == [
        {"start": 0, "end": 3, "label": "a"}, {"start": 4, "end": 5, "label": "b"}]


TAG = st.sampled_from(["O", "O", "O", "B-per", "I-per", "B-loc", "I-loc"])


@settings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(st.lists(TAG, min_size=1, max_size=12),
                          st.lists(TAG, min_size=12, max_size=12)), min_size=1, max_size=6))
def test_entity_scores_equal_seqeval(pairs: list[tuple[list[str], list[str]]]) -> None:
    from seqeval.metrics import f1_score, precision_score, recall_score

    y_true = [t for t, _ in pairs]
    y_pred = [p[:len(t)] for t, p in pairs]
    offs = [[(2 * i, 2 * i + 1) for i in range(len(t))] for t in y_true]
    ours = entity_scores([tags_to_spans(o, t) for o, t in zip(offs, y_true, strict=True)],
                         [tags_to_spans(o, p) for o, p in zip(offs, y_pred, strict=True)])
    assert ours["f1"] == pytest.approx(f1_score(y_true, y_pred, zero_division=0))
    assert ours["precision"] == pytest.approx(precision_score(y_true, y_pred, zero_division=0))
    assert ours["recall"] == pytest.approx(recall_score(y_true, y_pred, zero_division=0))


def test_entity_scores_by_hand() -> None:
    true = [[sp(0, 6), sp(7, 12, "person")], [sp(0, 3)]]
    pred = [[sp(0, 6), sp(7, 10, "person")], [sp(0, 3, "person")]]
    out = entity_scores(true, pred)
    assert out["precision"] == pytest.approx(1 / 3)
    assert out["recall"] == pytest.approx(1 / 3)
    assert out["per_type"]["location"]["recall"] == pytest.approx(0.5)
    assert out["per_type"]["person"]["precision"] == 0.0


def test_span_agreement_is_pairwise_f1_per_type() -> None:
    items = [
        [[sp(0, 6)], [sp(0, 6)]],                          # agree
        [[sp(0, 6), sp(7, 9, "person")], [sp(0, 6)]],      # one person missed
        [[], []],                                          # both: no entity
        [[sp(0, 6)]],                                      # one annotator: not compared
    ]
    out = span_agreement(items)
    assert out["n_items"] == 3
    assert out["items_agreeing"] == 2
    assert out["n_pairs"] == 3
    assert out["per_type"] == {"location": 1.0, "person": 0.0}
    # location: 2 pairs, each 2 * 1 shared of 1 + 1 given; person: 0 of 1 given
    assert out["f1"] == pytest.approx(4 / 5)
    assert span_agreement([[[], []]])["f1"] is None


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 8), st.integers(1, 3), st.sampled_from(LABELS)),
                max_size=5))
def test_an_annotator_agrees_with_a_copy_of_themselves(raw: list[tuple[int, int, str]]) -> None:
    spans = [sp(s, s + n, label) for s, n, label in raw]
    assert span_agreement([[spans, list(reversed(spans))]])["f1"] in (None, 1.0)
    voted = vote_spans([spans, spans, spans], allow_overlap=True)
    assert {(s["start"], s["end"], s["label"]) for s in voted} == \
        {(s["start"], s["end"], s["label"]) for s in spans}


def test_vote_spans_keeps_majority_spans_and_resolves_overlap() -> None:
    answers = [[sp(0, 6), sp(7, 9, "person")], [sp(0, 6)], [sp(0, 9), sp(7, 9, "person")]]
    out = vote_spans(answers)
    assert out == [{**sp(0, 6), "votes": 2}, {**sp(7, 9, "person"), "votes": 2}]
    # a tie between two annotators keeps nothing (more than half needed)
    assert vote_spans([[sp(0, 6)], [sp(0, 6, "person")]]) == []
    # overlapping winners: more votes first, then the longer
    assert vote_spans([[sp(0, 9)], [sp(0, 6)], [sp(0, 6)]], min_share=0.3) == [
        {**sp(0, 6), "votes": 2}]
    tied = [[sp(0, 9)], [sp(0, 9)], [sp(0, 9), sp(0, 6)], [sp(0, 6)], [sp(0, 6)]]
    assert vote_spans(tied, min_share=0.5) == [{**sp(0, 9), "votes": 3}]
    assert vote_spans([]) == []


def test_span_differences_name_boundary_and_missed_disagreements() -> None:
    diffs = span_differences([[sp(0, 6), sp(10, 12)], [sp(0, 9)]])
    kinds = {(d["start"], d["end"]): d["kind"] for d in diffs}
    assert kinds == {(0, 6): "boundary_or_type", (0, 9): "boundary_or_type",
                     (10, 12): "missed"}
    assert span_differences([[sp(0, 6)], [sp(0, 6)]]) == []


def test_entity_cues_count_names_not_sentence_starts() -> None:
    assert entity_cues(["The", "view", "from", "Empire", "State", "@bob", "."]) == 3
    assert entity_cues(["i", "am", "here", ".", "Then", "home"]) == 0


def _unit(begin: int, length: int, label: str) -> dict[str, Any]:
    return {"start": begin, "end": begin + length, "label": label}


def test_unitizing_alpha_reproduces_krippendorffs_worked_example() -> None:
    """Krippendorff (2004, Content Analysis 2nd ed., p. 254): two coders unitize the
    continuum 150-450 into units of types c and k. The book's figures: for c observed
    disagreement .0144, expected .0532, alpha .7286; for k 0, .0490 and 1; alpha_U .859."""
    i = [_unit(225, 70, "c"), _unit(370, 30, "c"), _unit(180, 60, "k"), _unit(300, 50, "k")]
    j = [_unit(220, 80, "c"), _unit(355, 20, "c"), _unit(400, 20, "c"), _unit(180, 60, "k"),
         _unit(300, 50, "k")]
    out = unitizing_alpha([i, j], 300, begin=150)
    assert out["observed"]["c"] == pytest.approx(0.0144, abs=5e-5)
    assert out["expected"]["c"] == pytest.approx(0.0532, abs=5e-5)
    assert out["per_type"]["c"] == pytest.approx(0.7286, abs=5e-5)
    assert out["observed"]["k"] == 0
    assert out["expected"]["k"] == pytest.approx(0.0490, abs=5e-5)
    assert out["per_type"]["k"] == 1.0
    assert out["alpha"] == pytest.approx(0.859, abs=5e-4)
    # the coders' order does not matter
    assert unitizing_alpha([j, i], 300, begin=150) == out


def test_unitizing_alpha_distances_and_edges() -> None:
    same = [_unit(0, 4, "person"), _unit(10, 5, "location")]
    assert unitizing_alpha([same, same, same], 30)["alpha"] == 1.0
    shifted = [_unit(1, 4, "person"), _unit(10, 5, "location")]
    missed = [_unit(10, 5, "location")]
    near = unitizing_alpha([same, shifted], 30)
    far = unitizing_alpha([same, missed], 30)
    assert 0 < near["alpha"] < 1
    assert far["per_type"]["person"] < near["per_type"]["person"]  # a missed unit costs more
    assert near["per_type"]["location"] == 1.0
    # no unit at all: nothing to disagree on
    assert unitizing_alpha([[], []], 10) == {"alpha": None, "per_type": {}, "observed": {},
                                             "expected": {}}
    with pytest.raises(ValueError, match="two or more coders"):
        unitizing_alpha([same], 30)
    with pytest.raises(ValueError, match="positive length"):
        unitizing_alpha([same, same], 0)
    with pytest.raises(SpanError, match="overlap another of the same coder"):
        unitizing_alpha([[_unit(0, 4, "person"), _unit(2, 4, "person")], same], 30)
    with pytest.raises(SpanError, match="leave the continuum"):
        unitizing_alpha([[_unit(28, 4, "person")], same], 30)
