"""Column mapping: proposals with reasons, answer-like columns never shown, mapped rows."""

from __future__ import annotations

import pytest

from activelabel.labeling.mapping import (
    apply_mapping,
    check_mapping,
    check_vector,
    parse_time,
    propose_mapping,
    samples_of,
)

SMS = [{"id": "sms-1", "text": "Go until jurong point", "label": "ham"},
       {"id": "sms-2", "text": "Free entry in 2 a wkly comp", "label": "spam"}]


def _roles(rows: list[dict[str, object]], labels: list[str]) -> dict[str, str]:
    columns, samples = samples_of(rows)
    return {p.column: p.role for p in propose_mapping(columns, samples, labels)}


def test_the_sms_label_column_is_proposed_as_existing_labels_with_the_reason() -> None:
    columns, samples = samples_of(SMS)
    proposal = {p.column: p for p in propose_mapping(columns, samples, ["ham", "spam"])}
    assert proposal["id"].role == "external_id"
    assert proposal["text"].role == "content"
    assert proposal["label"].role == "label"
    assert proposal["label"].answer_like
    assert "never shown" in proposal["label"].reason
    assert proposal["text"].samples == ["Go until jurong point", "Free entry in 2 a wkly comp"]


def test_answer_like_columns_are_never_content_unless_mapped_so() -> None:
    # Named like an answer but not the project's labels: private.
    assert _roles([{"text": "a", "category": "sports"}], ["ham", "spam"])["category"] == "private"
    # Values are the project's labels under another name: an answer all the same.
    roles = _roles([{"text": "a", "verdict": "spam"}, {"text": "b", "verdict": "ham"}],
                   ["ham", "spam"])
    assert roles["verdict"] == "label"
    # A second answer-like column goes private, not shown.
    roles = _roles([{"text": "a", "label": "ham", "y": "spam"}], ["ham", "spam"])
    assert (roles["label"], roles["y"]) == ("label", "private")
    # With no mapping naming it, an answer-like column of a row is private...
    row = {"text": "a", "target": "ham"}
    assert apply_mapping(row, {"columns": {}}, ["ham"])["private"] == {"target": "ham"}
    # ...and content only when the owner maps it so.
    shown = apply_mapping(row, {"columns": {"target": "content"}}, ["ham"])
    assert shown["data"] == {"text": "a", "target": "ham"}


def test_predictions_vectors_annotators_and_times_are_proposed() -> None:
    rows = [{"text": "a", "label": "ham", "annotator": "ann", "labeled_at": "2024-01-02",
             "prediction": "spam", "confidence": 0.7, "embedding": [0.1, 0.2, 0.3]}]
    roles = _roles(rows, ["ham", "spam"])
    assert roles == {"text": "content", "label": "label", "annotator": "annotator",
                     "labeled_at": "label_time", "prediction": "prediction",
                     "confidence": "prediction_score", "embedding": "vector"}
    # Without a label column, annotator and time have nothing to go with: private.
    roles = _roles([{"text": "a", "annotator": "ann"}], ["ham", "spam"])
    assert roles["annotator"] == "private"


def test_a_saved_mapping_comes_first() -> None:
    columns, samples = samples_of(SMS)
    saved = {"columns": {"label": "private"}}
    proposal = {p.column: p for p in propose_mapping(columns, samples, ["ham", "spam"], saved)}
    assert proposal["label"].role == "private"
    assert "saved mapping" in proposal["label"].reason


def test_apply_mapping_makes_a_canonical_row() -> None:
    mapping = check_mapping({"columns": {
        "id": "external_id", "text": "content", "note": "private", "label": "label",
        "who": "annotator", "when": "label_time", "pred": "prediction", "p": "prediction_score",
        "vec": "vector", "part": "split", "junk": "ignore"}})
    row = {"id": "x1", "text": "hi", "note": "n", "label": "ham", "who": "ann",
           "when": "2024-05-01T12:00:00Z", "pred": "spam", "p": 0.9, "vec": [1, 2],
           "part": "holdout", "junk": 1}
    assert apply_mapping(row, mapping, ["ham", "spam"]) == {
        "external_id": "x1", "data": {"text": "hi"}, "private": {"note": "n"},
        "split": "holdout", "gold_labels": None,
        "annotations": [{"labels": ["ham"], "annotator": "ann",
                         "created_at": "2024-05-01T12:00:00Z"}],
        "predictions": [{"labels": ["spam"], "score": 0.9, "model": None}],
        "vector": [1, 2]}
    # A CSV label cell holding a JSON list is a list of labels.
    multi = apply_mapping({"t": "x", "label": '["a", "b"]'}, {"columns": {"label": "label"}},
                          ["a", "b"])
    assert multi["annotations"][0]["labels"] == ["a", "b"]
    split = apply_mapping({"t": "x", "label": "a; b"}, {"columns": {"label": "label"}},
                          ["a", "b", "c|d"])
    assert split["annotations"][0]["labels"] == ["a", "b"]
    whole = apply_mapping({"t": "x", "label": "c|d"}, {"columns": {"label": "label"}},
                          ["a", "b", "c|d"])
    assert whole["annotations"][0]["labels"] == ["c|d"]  # a label itself is not split


@pytest.mark.parametrize(("mapping", "message"), [
    ({"columns": {"a": "shown"}}, "not one of"),
    ({"columns": {"a": "label", "b": "label"}}, "all mapped to label"),
    ({"columns": {"a": "annotator"}}, "none to label"),
    ({"columns": {"a": "prediction_score"}}, "none to prediction"),
    ({"cols": {}}, "a mapping is"),
])
def test_bad_mappings_say_what_to_fix(mapping: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        check_mapping(mapping)


def test_times_and_vectors_are_checked() -> None:
    assert parse_time("2024-05-01T12:00:00Z") == "2024-05-01T12:00:00+00:00"
    assert parse_time("2024-05-01 12:00") == "2024-05-01T12:00:00+00:00"  # no zone: UTC
    assert parse_time(0) == "1970-01-01T00:00:00+00:00"
    with pytest.raises(ValueError, match="ISO-8601"):
        parse_time("yesterday")
    assert check_vector([1, 2.5], 2).tolist() == [1.0, 2.5]
    with pytest.raises(ValueError, match="NaN"):
        check_vector([1.0, float("nan")], 2)
    with pytest.raises(ValueError, match="has 3 values, the project's vectors have 2"):
        check_vector([1, 2, 3], 2)
    with pytest.raises(ValueError, match="list of numbers"):
        check_vector(["a", "b"], None)


def test_a_split_column_of_other_names_is_proposed_private_not_split() -> None:
    """A dataset's own train / test column would refuse every row as split: it is kept
    private, and the reason names the values; a column of our splits with one unknown value
    stays the split (that row is refused, the others keep their split)."""
    ours = propose_mapping(["t", "split"], {"t": ["x"], "split": ["pool", "holdout"]}, ["a"])
    typo = propose_mapping(["t", "split"], {"t": ["x"], "split": ["pool", "nowhere"]}, ["a"])
    theirs = propose_mapping(["t", "split"], {"t": ["x"], "split": ["train", "test"]}, ["a"])
    assert [p.role for p in ours] == ["content", "split"]
    assert [p.role for p in typo] == ["content", "split"]  # the bad row alone is refused
    assert [p.role for p in theirs] == ["content", "private"]
    assert "train" in theirs[1].reason
