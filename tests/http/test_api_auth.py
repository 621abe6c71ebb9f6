"""Authentication, users, tokens, health, OpenAPI and the one error shape of the API."""

from __future__ import annotations

import re
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import update

from activelabel.http.app import create_app
from activelabel.store import create_user
from activelabel.store.models import User
from tests.support.api import Api, assert_error, unique


def test_health_needs_no_credentials(api: Api) -> None:
    answer = api.get("/health")
    assert answer.status_code == 200
    body = answer.json()
    assert body["status"] == "ok"
    assert body["database"] == "ok"
    assert body["version"]


def test_openapi_and_docs_are_served(api: Api) -> None:
    docs = api.client.get("/docs")
    assert docs.status_code == 200
    assert "swagger" in docs.text.lower()
    spec = api.client.get("/openapi.json").json()
    assert spec["info"]["title"] == "activelabel"
    paths = spec["paths"]
    for path in ("/api/v1/projects", "/api/v1/projects/{project_id}/tasks/next",
                 "/api/v1/projects/{project_id}/annotations", "/api/v1/health",
                 "/api/v1/projects/{project_id}/imports", "/api/v1/projects/{project_id}/export",
                 "/api/v1/projects/{project_id}/models/{version}/activate"):
        assert path in paths, path
    assert "multipart/form-data" in paths["/api/v1/projects/{project_id}/imports"]["post"][
        "requestBody"]["content"]
    assert "HTTPBearer" in spec["components"]["securitySchemes"]


def test_missing_malformed_and_unknown_tokens_are_401_with_a_bearer_challenge(api: Api) -> None:
    for headers in ({}, {"Authorization": "Basic dTpw"}, {"Authorization": "Bearer nope"},
                    {"Authorization": "Bearer "}):
        answer = api.client.get("/api/v1/me", headers=headers)
        assert_error(answer, 401, "unauthorized")
        assert answer.headers["WWW-Authenticate"] == "Bearer"
    # Writes too, before anything is read from the body.
    answer = api.post("/projects", headers={"Authorization": "Bearer nope"}, json={})
    assert_error(answer, 401, "unauthorized")


def test_me_revoked_tokens_and_disabled_users(api: Api) -> None:
    ann = api.person("me")
    assert api.get("/me", ann).json()["username"] == ann.username
    created = api.post("/tokens", ann, json={"name": "script"})
    assert created.status_code == 201
    second = created.json()
    assert second["token"].startswith(second["prefix"])
    assert second["name"] == "script"
    listed = api.get("/tokens", ann).json()
    assert {t["name"] for t in listed} == {"test", "script"}
    assert all("token" not in t for t in listed)
    headers = {"Authorization": f"Bearer {second['token']}"}
    assert api.get("/me", headers=headers).status_code == 200
    assert api.delete(f"/tokens/{second['id']}", ann).status_code == 204
    assert_error(api.get("/me", headers=headers), 401, "unauthorized")
    # Someone else's token is not found, not revoked.
    other = api.person("other")
    mine = next(t for t in api.get("/tokens", ann).json() if t["name"] == "test")
    assert_error(api.delete(f"/tokens/{mine['id']}", other), 404, "not_found")
    assert api.get("/me", ann).status_code == 200
    with api.storage.sessions() as session, session.begin():
        session.execute(update(User).where(User.id == ann.id).values(disabled=True))
    assert_error(api.get("/me", ann), 401, "unauthorized")
    assert_error(api.post("/tokens", ann, json={"name": "x"}), 401, "unauthorized")


def test_login_gives_a_token(api: Api) -> None:
    name = unique("login")
    with api.storage.sessions() as session, session.begin():
        create_user(session, name, "correct horse")
    answer = api.post("/auth/login", json={"username": name, "password": "correct horse"})
    assert answer.status_code == 201, answer.text
    body = answer.json()
    assert body["user"]["username"] == name
    assert not body["user"]["is_admin"]
    headers = {"Authorization": f"Bearer {body['token']}"}
    assert api.get("/me", headers=headers).json()["username"] == name
    assert [t["name"] for t in api.get("/tokens", headers=headers).json()] == ["login"]
    for wrong in ({"username": name, "password": "wrong horse"},
                  {"username": unique("ghost"), "password": "correct horse"}):
        assert_error(api.post("/auth/login", json=wrong), 401, "unauthorized")
    error = assert_error(api.post("/auth/login", json={"username": name}), 422, "invalid_input")
    assert error["details"][0]["field"] == "body.password"


def test_only_admins_create_and_list_users(api: Api) -> None:
    admin, plain = api.person("admin", admin=True), api.person("plain")
    name = unique("new")
    answer = api.post("/users", admin, json={"username": name, "password": "long enough",
                                             "is_admin": False})
    assert answer.status_code == 201, answer.text
    assert answer.json()["username"] == name
    assert name in {u["username"] for u in api.get("/users", admin).json()}
    assert api.post("/auth/login", json={"username": name,
                                         "password": "long enough"}).status_code == 201
    assert_error(api.post("/users", admin, json={"username": name, "password": "long enough"}),
                 409, "conflict")
    short = assert_error(api.post("/users", admin, json={"username": unique("x"),
                                                         "password": "short"}),
                         422, "invalid_input")
    assert "body.password" in short["message"]
    assert "at least 8 characters" in short["message"]
    assert_error(api.post("/users", plain, json={"username": unique("y")}), 403, "forbidden")
    assert_error(api.get("/users", plain), 403, "forbidden")


def test_unknown_routes_and_methods_use_the_error_shape(api: Api) -> None:
    admin = api.person("admin", admin=True)
    assert_error(api.get("/nowhere", admin), 404, "not_found")
    assert_error(api.client.get("/elsewhere"), 404, "not_found")
    assert_error(api.delete("/health"), 405, "method_not_allowed")


def test_unexpected_errors_are_a_500_without_a_trace(api: Api) -> None:
    app = create_app(storage=api.storage)

    @app.get("/api/v1/boom")
    def boom() -> None:
        raise RuntimeError("secret internals /etc/passwd")

    with TestClient(app, raise_server_exceptions=False) as client:
        answer = client.get("/api/v1/boom")
    error = assert_error(answer, 500, "internal")
    assert "secret" not in answer.text
    assert "Traceback" not in answer.text
    assert "details" not in error


def test_a_request_about_a_project_reads_caller_and_project_in_one_statement(api: Api) -> None:
    """The token, its user, the path's project and the caller's role come in one query, and
    the endpoint's role check uses it instead of reading the project again."""
    from sqlalchemy import event

    owner = api.person("owner")
    pid = api.project(owner, n_items=2)
    annotator = api.member(pid, "annotator")
    statements: list[str] = []

    def seen(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        statements.append(" ".join(statement.split()).lower())

    engine = api.storage.engine
    event.listen(engine, "before_cursor_execute", seen)
    try:
        assert api.get(f"/projects/{pid}/tasks/next", annotator).status_code == 200
    finally:
        event.remove(engine, "before_cursor_execute", seen)
    reads = [s for s in statements if "from api_tokens" in s]
    assert len(reads) == 1
    assert "left outer join projects" in reads[0]
    assert not [s for s in statements if s.startswith("select projects.")]


def test_the_project_read_with_the_token_keeps_every_access_rule(api: Api) -> None:
    owner = api.person("owner")
    pid = api.project(owner)
    stranger, annotator = api.person("stranger"), api.member(pid, "annotator")
    missing = assert_error(api.get(f"/projects/{pid + 10_000}/tasks/next", stranger), 404,
                           "not_found")
    hidden = assert_error(api.get(f"/projects/{pid}/tasks/next", stranger), 404, "not_found")
    assert hidden["message"].replace(str(pid), "N") == missing["message"].replace(
        str(pid + 10_000), "N")
    assert_error(api.get(f"/projects/{pid}/members", annotator), 403, "forbidden")
    assert_error(api.get(f"/projects/{pid}/tasks/next",
                         headers={"Authorization": "Bearer nope"}), 401, "unauthorized")
    # A path id that is not a number: the token is still checked first, then 422.
    assert_error(api.get("/projects/abc/tasks/next", headers={"Authorization": "Bearer nope"}),
                 401, "unauthorized")
    assert api.get("/projects/abc/tasks/next", annotator).status_code == 422


def test_project_ids_beyond_the_id_range_are_401_or_422_never_500(api: Api) -> None:
    owner = api.person("owner")
    for pid in (2**31, 2**63, 10**30):
        assert_error(api.get(f"/projects/{pid}/tasks/next",
                             headers={"Authorization": "Bearer nope"}), 401, "unauthorized")
        error = assert_error(api.get(f"/projects/{pid}/tasks/next", owner), 422, "invalid_input")
        assert "project_id" in error["message"]


def test_a_project_path_still_refuses_revoked_tokens_and_disabled_users_and_admits_admins(
        api: Api) -> None:
    owner = api.person("owner")
    pid = api.project(owner)
    admin = api.person("admin", admin=True)  # not a member: acts as owner
    assert api.get(f"/projects/{pid}/members", admin).status_code == 200
    gone = api.member(pid, "annotator")
    with api.storage.sessions() as session, session.begin():
        session.execute(update(User).where(User.id == gone.id).values(disabled=True))
    assert_error(api.get(f"/projects/{pid}/tasks/next", gone), 401, "unauthorized")
    member = api.member(pid, "annotator")
    [token] = api.get("/tokens", member).json()
    assert api.delete(f"/tokens/{token['id']}", member).status_code in (200, 204)
    assert_error(api.get(f"/projects/{pid}/tasks/next", member), 401, "unauthorized")


def test_a_405_names_every_method_of_its_path_in_allow(api: Api) -> None:
    """Each path of the schema, called with a method it does not have: 405, and Allow lists
    exactly the methods the schema documents for it (where one path has a route per method)."""
    admin = api.person("admin", admin=True)
    checked = 0
    for template, operations in api.client.get("/openapi.json").json()["paths"].items():
        documented = sorted(m.upper() for m in operations)
        method = next(m for m in ("PUT", "PATCH", "DELETE", "POST", "GET")
                      if m not in documented)
        path = re.sub(r"\{[a-z_]+\}", "1", template)
        answer = api.client.request(method, path, headers=admin.headers)
        assert answer.status_code == 405, (method, path, answer.text)
        assert sorted(answer.headers["allow"].split(", ")) == documented, (path, answer.headers)
        checked += 1
    assert checked > 50
