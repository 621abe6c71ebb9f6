"""A project's model through the API: who may name a model by import path (it runs code in the
worker), the checks when it is set, and the served model's settings with its secret masked."""

from __future__ import annotations

import sys

from fastapi.testclient import TestClient

from activelabel.http.app import create_app
from activelabel.http.config import ServerSettings
from activelabel.store import get_project
from tests.support.api import Api, assert_error

CENTROID = "tests.support.plugin_models:CentroidClassifier"
SECRET = "Bearer model-secret-0123456789"


def test_only_admins_name_a_model_by_import_path(api: Api) -> None:
    owner, admin = api.person("owner"), api.person("admin", admin=True)
    pid = api.project(owner)
    refused = assert_error(api.patch(f"/projects/{pid}", owner,
                                     json={"settings": {"model": CENTROID}}), 403, "forbidden")
    assert "ACTIVELABEL_MODEL_IMPORT_PREFIXES" in refused["message"]
    assert_error(api.post("/projects", owner, json={
        "name": "plugged", "labels": ["a", "b"], "settings": {"model": CENTROID}}),
        403, "forbidden")
    answer = api.patch(f"/projects/{pid}", admin, json={"settings": {"model": CENTROID}})
    assert answer.status_code == 200, answer.text
    assert answer.json()["settings"]["model"] == CENTROID
    # the owner may change other settings of a project an admin plugged in
    kept = api.patch(f"/projects/{pid}", owner, json={"settings": {"overlap": 2}})
    assert kept.status_code == 200, kept.text
    assert kept.json()["settings"]["model"] == CENTROID
    back = api.patch(f"/projects/{pid}", owner, json={"settings": {"model": "naive_bayes"}})
    assert back.json()["settings"]["model"] == "naive_bayes"


def test_a_server_allow_list_lets_owners_name_models_under_its_prefixes(api: Api) -> None:
    allowing = ServerSettings(project_creators="everyone", model_import_prefixes="tests.support")
    owner = api.person("owner")
    with TestClient(create_app(storage=api.storage, settings=allowing)) as client:
        allowed = Api(client, api.storage)
        pid = allowed.project(owner, settings={"model": CENTROID})
        assert allowed.get(f"/projects/{pid}", owner).json()["settings"]["model"] == CENTROID
        assert_error(allowed.patch(f"/projects/{pid}", owner, json={"settings": {
            "model": "sklearn.naive_bayes:GaussianNB"}}), 403, "forbidden")


def test_a_bad_model_is_refused_with_what_is_wrong(api: Api) -> None:
    admin = api.person("admin", admin=True)
    pid = api.project(admin)
    cases = {
        "nosuch.module:Model": "module 'nosuch.module' cannot be imported",
        "tests.support.plugin_models:NoProba": "has no predict_proba",
        "no_such_name": "unknown model 'no_such_name'",
    }
    for model, message in cases.items():
        error = assert_error(api.patch(f"/projects/{pid}", admin,
                                       json={"settings": {"model": model}}),
                             422, "invalid_input")
        assert message in error["message"], error
    error = assert_error(api.patch(f"/projects/{pid}", admin, json={"settings": {
        "model": "http"}}), 422, "invalid_input")
    assert "model http needs model_url" in error["message"]
    for url in ("ftp://models/x", "models.internal:9000", "http://user:pw@models/x"):
        error = assert_error(api.patch(f"/projects/{pid}", admin, json={"settings": {
            "model": "http", "model_url": url}}), 422, "invalid_input")
        assert "model_url" in error["message"]
    assert_error(api.patch(f"/projects/{pid}", admin, json={"settings": {
        "model_timeout_seconds": 0}}), 422, "invalid_input")


def test_the_served_models_secret_is_never_shown_back_in_full(api: Api) -> None:
    owner = api.person("owner")
    pid = api.project(owner, settings={"model": "http", "model_url": "http://models:9000/x/",
                                       "model_auth_header": SECRET})
    shown = api.get(f"/projects/{pid}", owner).json()["settings"]
    assert shown["model_url"] == "http://models:9000/x"
    assert shown["model_auth_header"] == "****6789"
    # sending the settings back as shown keeps the secret; a new value replaces it
    again = api.patch(f"/projects/{pid}", owner, json={"settings": {**shown, "overlap": 2}})
    assert again.status_code == 200, again.text
    with api.storage.read_sessions() as session:
        assert get_project(session, pid).settings["model_auth_header"] == SECRET
    api.patch(f"/projects/{pid}", owner, json={"settings": {"model_auth_header": "Token abc"}})
    with api.storage.read_sessions() as session:
        assert get_project(session, pid).settings["model_auth_header"] == "Token abc"
    assert api.get(f"/projects/{pid}", owner).json()["settings"]["model_auth_header"] == "****"
    for event in api.get(f"/projects/{pid}/audit", owner).json():
        assert SECRET not in str(event)
        assert "Token abc" not in str(event)
    listed = api.get("/projects", owner).json()
    assert SECRET not in str(listed)


def test_a_refused_import_path_is_never_imported(api: Api) -> None:
    """Importing runs the module's code: not before the caller's right to it is checked."""
    path = "tests.support.never_imported:Model"
    owner = api.person("owner")
    pid = api.project(owner)
    annotator = api.member(pid, "annotator")
    assert_error(api.patch(f"/projects/{pid}", owner, json={"settings": {"model": path}}),
                 403, "forbidden")
    assert_error(api.patch(f"/projects/{pid}", annotator, json={"settings": {"model": path}}),
                 403, "forbidden")
    assert api.patch(f"/projects/{pid}", json={"settings": {"model": path}}).status_code == 401
    assert_error(api.post("/projects", owner, json={
        "name": "nope", "labels": ["a", "b"], "settings": {"model": path}}), 403, "forbidden")
    assert "tests.support.never_imported" not in sys.modules
    error = assert_error(api.patch(f"/projects/{pid}", owner, json={"settings": {
        "model": "not a path:x"}}), 422, "invalid_input")
    assert "not of the form module.path:factory" in error["message"]


HOSTS = "models.internal, *.ML.example.com:8443"


def test_a_model_url_on_a_host_the_server_does_not_allow_is_refused(api: Api) -> None:
    restricted = ServerSettings(project_creators="everyone", model_hosts=HOSTS)
    owner, admin = api.person("owner"), api.person("admin", admin=True)
    with TestClient(create_app(storage=api.storage, settings=restricted)) as client:
        hosts = Api(client, api.storage)
        pid = hosts.project(owner)
        for url, host in [("http://169.254.169.254/latest/meta-data", "169.254.169.254"),
                          ("http://MODELS.internal.evil.com:9000/x",
                           "models.internal.evil.com:9000"),
                          ("https://ml.example.com:8443/x", "ml.example.com:8443"),
                          ("https://a.ml.example.com/x", "a.ml.example.com")]:  # port 443
            error = assert_error(hosts.patch(f"/projects/{pid}", owner, json={"settings": {
                "model": "http", "model_url": url}}), 422, "invalid_input")
            assert error["message"].startswith("invalid settings: settings.model_url: ")
            assert f"the host {host} is not in ACTIVELABEL_MODEL_HOSTS (models.internal, " \
                "*.ml.example.com:8443)" in error["message"], error
            assert [d["field"] for d in error["details"]] == ["body.settings.model_url"]
        # admins too: the list is the operator's, above every account
        assert_error(hosts.patch(f"/projects/{pid}", admin, json={"settings": {
            "model_url": "http://10.0.0.1:5432/"}}), 422, "invalid_input")
        refused = assert_error(hosts.post("/projects", owner, json={
            "name": "metadata", "labels": ["a", "b"], "settings": {
                "model": "http", "model_url": "http://169.254.169.254/x"}}), 422, "invalid_input")
        assert "169.254.169.254" in refused["message"]
        with api.storage.read_sessions() as session:
            assert get_project(session, pid).settings["model_url"] is None  # nothing stored
        # an allowed host, exact (any case, any port) or under the wildcard's suffix and port
        for url in ("http://Models.Internal:9000/spam", "https://a.b.ml.example.com:8443/m"):
            answer = hosts.patch(f"/projects/{pid}", owner, json={"settings": {
                "model": "http", "model_url": url}})
            assert answer.status_code == 200, answer.text
            assert answer.json()["settings"]["model_url"] == url
        created = hosts.project(owner, settings={"model": "http",
                                                 "model_url": "http://models.internal/x"})
        assert hosts.get(f"/projects/{created}", owner).json()["settings"]["model_url"] \
            == "http://models.internal/x"


def test_a_model_url_stored_before_the_list_is_kept_and_not_checked_again(api: Api) -> None:
    owner = api.person("owner")
    stored = "http://169.254.169.254/x"
    pid = api.project(owner, settings={"model": "http", "model_url": stored})
    other = api.project(owner, settings={"model_url": stored})  # model still a built-in one
    restricted = ServerSettings(project_creators="everyone", model_hosts=HOSTS)
    with TestClient(create_app(storage=api.storage, settings=restricted)) as client:
        hosts = Api(client, api.storage)
        shown = hosts.get(f"/projects/{pid}", owner).json()["settings"]
        assert shown["model_url"] == stored
        # other settings change, also when the form sends the stored URL back unchanged
        for body in ({"overlap": 2}, {**shown, "overlap": 3}):
            answer = hosts.patch(f"/projects/{pid}", owner, json={"settings": body})
            assert answer.status_code == 200, answer.text
        # switching the model to http uses the stored URL: checked then
        error = assert_error(hosts.patch(f"/projects/{other}", owner, json={"settings": {
            "model": "http"}}), 422, "invalid_input")
        assert "the host 169.254.169.254 is not in ACTIVELABEL_MODEL_HOSTS" in error["message"]
        back = hosts.patch(f"/projects/{pid}", owner, json={"settings": {"model": "naive_bayes"}})
        assert back.status_code == 200, back.text
    with api.storage.read_sessions() as session:
        for project_id in (pid, other):
            assert get_project(session, project_id).settings["model_url"] == stored
