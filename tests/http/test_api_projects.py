"""Projects, settings, members, audit: creation, validation, visibility and roles."""

from __future__ import annotations

import pytest

from activelabel import features
from tests.support.api import Api, assert_error, unique


def test_create_project_makes_the_caller_owner(api: Api) -> None:
    owner = api.person("owner")
    name = unique("proj")
    answer = api.post("/projects", owner, json={
        "name": name, "task": "multilabel", "labels": ["a", "b", "c"], "guidelines": "Tag it.",
        "settings": {"strategy": "entropy", "batch_size": 20}, "private_fields": ["email"]})
    assert answer.status_code == 201, answer.text
    body = answer.json()
    assert body["name"] == name
    assert body["task"] == "multilabel"
    assert body["role"] == "owner"
    assert body["settings"]["strategy"] == "entropy"
    assert body["settings"]["batch_size"] == 20
    assert body["settings"]["overlap"] == 1  # defaults filled in
    assert body["private_fields"] == ["email"]
    members = api.get(f"/projects/{body['id']}/members", owner).json()
    assert members == [{"user_id": owner.id, "username": owner.username, "role": "owner"}]
    assert api.get(f"/projects/{body['id']}", owner).json()["guidelines"] == "Tag it."


def test_project_validation_errors(api: Api) -> None:
    owner = api.person("owner")
    name = unique("dup")
    assert api.post("/projects", owner, json={"name": name, "labels": ["a", "b"]}
                    ).status_code == 201
    assert_error(api.post("/projects", owner, json={"name": name, "labels": ["a", "b"]}),
                 409, "conflict")
    error = assert_error(api.post("/projects", owner, json={
        "name": unique("p"), "labels": ["a", "b"], "settings": {"strategy": "psychic"}}),
        422, "invalid_input")
    assert error["details"][0]["field"] == "body.settings.strategy"
    assert "psychic" in error["message"]
    assert "entropy" in error["message"]
    error = assert_error(api.post("/projects", owner, json={
        "name": unique("p"), "labels": ["a", "b"], "settings": {"batch_size": 0}}),
        422, "invalid_input")
    assert error["details"][0]["field"] == "body.settings.batch_size"
    assert "whole number from 1 to 10000" in error["message"]
    assert_error(api.post("/projects", owner, json={"name": unique("p"), "labels": ["a", "a"]}),
                 400, "invalid_input")
    error = assert_error(api.post("/projects", owner, json={
        "name": unique("p"), "task": "regression", "labels": ["a", "b"]}), 422, "invalid_input")
    assert error["details"][0]["field"] == "body.task"
    error = assert_error(api.post("/projects", owner, json={
        "name": unique("p"), "labels": ["a", "b"], "colour": "red"}), 422, "invalid_input")
    assert error["details"][0]["field"] == "body.colour"
    error = assert_error(api.post("/projects", owner, content=b'{"name": ',
                                  headers={"Content-Type": "application/json"}),
                         422, "invalid_input")
    assert error["details"][0]["type"] == "json_invalid"
    error = assert_error(api.post("/projects", owner, json={"labels": [True, "b"]}),
                         422, "invalid_input")
    assert {d["field"] for d in error["details"]} >= {"body.name", "body.labels.0.str"}


def test_projects_are_visible_to_members_and_admins_only(api: Api) -> None:
    owner, outsider, admin = api.person("owner"), api.person("out"), api.person("adm", admin=True)
    pid = api.project(owner)
    annotator = api.member(pid, "annotator")
    assert pid in {p["id"] for p in api.get("/projects", owner).json()}
    assert [p["role"] for p in api.get("/projects", annotator).json()] == ["annotator"]
    assert pid not in {p["id"] for p in api.get("/projects", outsider).json()}
    assert {p["id"]: p["role"] for p in api.get("/projects", admin).json()}[pid] == "owner"
    assert api.get(f"/projects/{pid}", annotator).json()["role"] == "annotator"
    assert api.get(f"/projects/{pid}", admin).status_code == 200
    # Hidden projects and missing ones look the same.
    hidden = assert_error(api.get(f"/projects/{pid}", outsider), 404, "not_found")
    missing = assert_error(api.get("/projects/999999", owner), 404, "not_found")
    assert hidden["message"].replace(str(pid), "N") == missing["message"].replace("999999", "N")
    assert_error(api.get(f"/projects/{pid}"), 401, "unauthorized")


def test_owners_change_settings_and_guidelines_with_validation(api: Api) -> None:
    owner = api.person("owner")
    pid = api.project(owner, settings={"batch_size": 10}, guidelines="v1")
    reviewer, annotator = api.member(pid, "reviewer"), api.member(pid, "annotator")
    answer = api.patch(f"/projects/{pid}", owner, json={
        "settings": {"overlap": 2}, "guidelines": "v2", "private_fields": ["secret"]})
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["settings"]["overlap"] == 2
    assert body["settings"]["batch_size"] == 10
    assert body["guidelines"] == "v2"
    assert body["guidelines_version"] == 2
    assert body["private_fields"] == ["secret"]
    assert_error(api.patch(f"/projects/{pid}", owner, json={"settings": {"overlap": -1}}),
                 422, "invalid_input")
    error = assert_error(api.patch(f"/projects/{pid}", owner, json={"settings": {"nope": 1}}),
                         422, "invalid_input")
    assert "unknown settings nope" in error["message"]
    assert "retrain_every_labels" in error["message"]  # says which ones exist
    for nothing in ({}, {"name": None}):
        error = assert_error(api.patch(f"/projects/{pid}", owner, json=nothing), 422,
                             "invalid_input")
        assert "nothing to change: send at least one of name" in error["message"]
    assert api.get(f"/projects/{pid}", owner).json()["settings"]["overlap"] == 2
    for who in (reviewer, annotator):
        assert_error(api.patch(f"/projects/{pid}", who, json={"guidelines": "x"}),
                     403, "forbidden")
    assert_error(api.patch(f"/projects/{pid}", api.person("out"), json={"guidelines": "x"}),
                 404, "not_found")
    events = api.get(f"/projects/{pid}/audit", owner).json()
    update = next(e for e in events if e["action"] == "update")
    assert update["before"]["settings"]["overlap"] == 1
    assert update["after"]["settings"]["overlap"] == 2
    assert update["actor_id"] == owner.id
    assert events[-1]["action"] == "create"
    assert_error(api.get(f"/projects/{pid}/audit", reviewer), 403, "forbidden")


def test_labels_are_added_at_the_end_never_removed_or_reordered(api: Api) -> None:
    """Models and their stored predictions name labels by position: a reordered set would
    show every suggestion and audit hit under another label."""
    owner = api.person("owner")
    pid = api.project(owner, labels=["ham", "spam"])
    for given, message in ((["spam", "ham"], "not reordered"),
                           (["spam", "ham", "promo"], "not reordered"),
                           (["ham"], "not removed")):
        error = assert_error(api.patch(f"/projects/{pid}", owner, json={"labels": given}),
                             400, "invalid_input")
        assert message in error["message"], (given, error)
    assert api.get(f"/projects/{pid}", owner).json()["labels"] == ["ham", "spam"]
    added = api.patch(f"/projects/{pid}", owner, json={"labels": ["ham", "spam", "promo"]})
    assert added.status_code == 200, added.text
    assert added.json()["labels"] == ["ham", "spam", "promo"]


def test_a_whole_number_written_as_a_float_is_that_number(api: Api) -> None:
    """Integer settings take 285.0 as 285 (stored as an int); 285.5 is refused, named."""
    owner = api.person("owner")
    pid = api.project(owner)
    whole = api.patch(f"/projects/{pid}", owner, json={"settings": {
        "batch_size": 285.0, "lease_seconds": 600.0}})
    assert whole.status_code == 200, whole.text
    assert '"batch_size":285,' in whole.text  # an int, not 285.0
    assert '"lease_seconds":600,' in whole.text
    stored = api.get(f"/projects/{pid}", owner).json()["settings"]
    assert (stored["batch_size"], stored["lease_seconds"]) == (285, 600)
    for bad, says in [({"batch_size": 285.5}, "settings.batch_size: must be a whole number"),
                      ({"lease_seconds": 600.5},
                       "settings.lease_seconds: must be a whole number; got 600.5")]:
        error = assert_error(api.patch(f"/projects/{pid}", owner, json={"settings": bad}),
                             422, "invalid_input")
        assert says in error["message"], error
    assert api.get(f"/projects/{pid}", owner).json()["settings"]["batch_size"] == 285


def test_members_add_list_remove(api: Api) -> None:
    owner = api.person("owner")
    pid = api.project(owner)
    ann, rev = api.person("ann"), api.person("rev")
    answer = api.post(f"/projects/{pid}/members", owner,
                      json={"username": ann.username, "role": "annotator"})
    assert answer.status_code == 201
    assert answer.json() == {"user_id": ann.id, "username": ann.username, "role": "annotator"}
    api.post(f"/projects/{pid}/members", owner, json={"username": rev.username,
                                                      "role": "reviewer"})
    roles = {m["username"]: m["role"] for m in api.get(f"/projects/{pid}/members", rev).json()}
    assert roles == {owner.username: "owner", ann.username: "annotator", rev.username: "reviewer"}
    assert_error(api.get(f"/projects/{pid}/members", ann), 403, "forbidden")
    assert_error(api.post(f"/projects/{pid}/members", rev,
                          json={"username": ann.username, "role": "owner"}), 403, "forbidden")
    assert_error(api.post(f"/projects/{pid}/members", owner,
                          json={"username": unique("ghost"), "role": "annotator"}),
                 400, "invalid_input")
    assert_error(api.post(f"/projects/{pid}/members", owner,
                          json={"username": ann.username, "role": "boss"}), 422, "invalid_input")
    # The last owner can neither be demoted nor removed.
    assert_error(api.post(f"/projects/{pid}/members", owner,
                          json={"username": owner.username, "role": "annotator"}),
                 409, "conflict")
    assert_error(api.delete(f"/projects/{pid}/members/{owner.username}", owner), 409, "conflict")
    assert api.delete(f"/projects/{pid}/members/{ann.username}", owner).status_code == 204
    assert_error(api.get(f"/projects/{pid}", ann), 404, "not_found")
    for gone in (ann.username, "nobody-at-all"):  # no longer a member; no such user
        error = assert_error(api.delete(f"/projects/{pid}/members/{gone}", owner),
                             404, "not_found")
        assert f"{gone!r} is not a member of project {pid}: list the members" \
            in error["message"]
    actions = [(e["action"], e["entity"]) for e in api.get(f"/projects/{pid}/audit",
                                                           owner).json()]
    assert actions[:3] == [("remove", "member"), ("set_role", "member"), ("set_role", "member")]


def test_a_settings_change_is_checked_against_the_project_it_changes(api: Api) -> None:
    """A PATCH names what it changes; what depends on other settings (a featurizer's
    parameters) is checked with the project's own settings, and refused as a 422 named like
    every other."""
    owner = api.person("owner")
    pid = api.project(owner, settings={"featurizer": "image",
                                       "featurizer_params": {"field": "pixels"}})
    changed = api.patch(f"/projects/{pid}", owner,
                        json={"settings": {"featurizer_params": {"field": "img",
                                                                 "shape": [8, 8]}}})
    assert changed.status_code == 200, changed.text
    assert changed.json()["settings"]["featurizer"] == "image"
    assert changed.json()["settings"]["featurizer_params"] == {"field": "img", "shape": [8, 8]}
    error = assert_error(api.patch(f"/projects/{pid}", owner, json={
        "settings": {"featurizer": "numeric"}}), 422, "invalid_input")
    assert error["details"][0]["field"] == "body.settings.featurizer_params"
    assert "numeric featurizer" in error["message"]
    assert api.get(f"/projects/{pid}", owner).json()["settings"]["featurizer"] == "image"
    error = assert_error(api.patch(f"/projects/{pid}", owner, json={
        "settings": {"batch_size": None}}), 422, "invalid_input")
    assert error["details"][0]["field"] == "body.settings.batch_size"


def test_character_ngrams_of_text_are_a_setting_checked_before_it_is_stored(api: Api) -> None:
    owner = api.person("owner")
    pid = api.project(owner, settings={"featurizer_params": {"char_ngrams": [2, 4]}})
    for bad in ([5, 2], "2-4", [2.5, 4], [2, 11]):
        error = assert_error(api.patch(f"/projects/{pid}", owner, json={
            "settings": {"featurizer_params": {"char_ngrams": bad}}}), 422, "invalid_input")
        assert error["details"][0]["field"] == "body.settings.featurizer_params"
        assert "char_ngrams" in error["message"]
    assert api.get(f"/projects/{pid}", owner).json()["settings"]["featurizer_params"] == {
        "char_ngrams": [2, 4]}
    words = api.patch(f"/projects/{pid}", owner,
                      json={"settings": {"featurizer_params": {"char_ngrams": None}}})
    assert words.status_code == 200, words.text
    assert words.json()["settings"]["featurizer_params"] == {"char_ngrams": None}


def test_the_sentence_weight_of_text_is_a_setting_checked_before_it_is_stored(
        api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    owner = api.person("owner")
    pid = api.project(owner, settings={"featurizer_params": {"sentence_weight": None}})
    for bad in (-1, 101, 10**400, "heavy", [1], True):
        error = assert_error(api.patch(f"/projects/{pid}", owner, json={
            "settings": {"featurizer_params": {"sentence_weight": bad}}}), 422, "invalid_input")
        assert error["details"][0]["field"] == "body.settings.featurizer_params"
        assert "sentence_weight" in error["message"]
    if features.sentence_model_installed():  # a weight by name, then the model goes away
        named = api.project(owner, settings={"featurizer_params": {"sentence_weight": 2,
                                                                   "field": "body"}})
        monkeypatch.setattr(features, "sentence_model_installed", lambda: False)
        refused = assert_error(api.patch(f"/projects/{named}", owner, json={
            "settings": {"batch_size": 7}}), 422, "invalid_input")
        assert "needs the sentence model" in refused["message"]
        kept = api.get(f"/projects/{named}", owner).json()["settings"]  # read, never dropped
        assert kept["featurizer_params"] == {"sentence_weight": 2, "field": "body"}
    monkeypatch.setattr(features, "sentence_model_installed", lambda: False)
    error = assert_error(api.patch(f"/projects/{pid}", owner, json={
        "settings": {"featurizer_params": {"sentence_weight": 2}}}), 422, "invalid_input")
    assert "needs the sentence model: pip install" in error["message"]
    assert api.get(f"/projects/{pid}", owner).json()["settings"]["featurizer_params"] == {
        "sentence_weight": None}
    for fine in (0, None, "auto"):  # no model needed
        ok = api.patch(f"/projects/{pid}", owner,
                       json={"settings": {"featurizer_params": {"sentence_weight": fine}}})
        assert ok.status_code == 200, ok.text
        assert ok.json()["settings"]["featurizer_params"] == {"sentence_weight": fine}


def test_the_lsa_weight_of_text_is_a_setting_checked_before_it_is_stored(api: Api) -> None:
    owner = api.person("owner")
    pid = api.project(owner, settings={"featurizer_params": {"lsa_weight": 0.5}})
    for bad in (-1, 101, 10**400, "heavy", [1], True):
        error = assert_error(api.patch(f"/projects/{pid}", owner, json={
            "settings": {"featurizer_params": {"lsa_weight": bad}}}), 422, "invalid_input")
        assert error["details"][0]["field"] == "body.settings.featurizer_params"
        assert "lsa_weight" in error["message"]
    assert api.get(f"/projects/{pid}", owner).json()["settings"]["featurizer_params"] == {
        "lsa_weight": 0.5}
    for fine in (2, None, "auto"):
        ok = api.patch(f"/projects/{pid}", owner,
                       json={"settings": {"featurizer_params": {"lsa_weight": fine}}})
        assert ok.status_code == 200, ok.text
        assert ok.json()["settings"]["featurizer_params"] == {"lsa_weight": fine}
