"""Rules the OpenAPI schema states (so that a request the schema admits is one the API takes,
where the rule does not depend on stored data), and the 422 naming the field when broken."""

from __future__ import annotations

from typing import Any

from tests.support.api import Api, assert_error, unique


def _schema(api: Api, name: str) -> dict[str, Any]:
    schemas: dict[str, Any] = api.client.get("/openapi.json").json()["components"]["schemas"]
    return dict(schemas[name])


def test_the_schema_states_the_rules_of_users_projects_and_purges(api: Api) -> None:
    user = _schema(api, "UserIn")["properties"]
    assert user["username"]["pattern"] == r"^[A-Za-z0-9_.@-]{1,64}$"
    assert user["password"]["anyOf"][0]["minLength"] == 8
    project = _schema(api, "ProjectIn")
    assert project["properties"]["labels"]["uniqueItems"] is True
    assert project["then"] == {"properties": {"labels": {"minItems": 2}}}
    patch = _schema(api, "ProjectPatch")
    assert patch["minProperties"] == 1
    assert {tuple(option["required"]) for option in patch["anyOf"]} == {
        ("name",), ("guidelines",), ("labels",), ("settings",), ("private_fields",)}
    purge = _schema(api, "PurgeIn")
    assert [option["properties"] for option in purge["anyOf"]] == [
        {"item_ids": {"minItems": 1}}, {"external_ids": {"minItems": 1}}]
    export = api.client.get("/openapi.json").json()["paths"][
        "/api/v1/projects/{project_id}/export"]["get"]["parameters"]
    fmt = next(p for p in export if p["name"] == "format")
    assert "spacy" in fmt["schema"]["pattern"]


def test_what_the_schema_states_is_a_422_naming_the_field(api: Api) -> None:
    admin = api.person("root", admin=True)
    bad_name = assert_error(api.post("/users", admin, json={"username": "two words"}), 422,
                            "invalid_input")
    assert "body.username" in bad_name["message"]
    one = assert_error(api.post("/projects", admin, json={"name": unique("p"), "labels": ["a"]}),
                       422, "invalid_input")
    assert "classification needs at least 2 labels, got 1" in one["message"]
    empty = assert_error(api.post("/projects", admin, json={"name": unique("p"),
                                                            "labels": ["a", ""]}),
                         422, "invalid_input")
    assert "body.labels.1.str" in empty["message"]
    pid = api.project(admin, n_items=1)
    for nothing in ({}, {"item_ids": [], "external_ids": []}):
        purge = assert_error(api.post(f"/projects/{pid}/items/purge", admin, json=nothing), 422,
                             "invalid_input")
        assert "give at least one item to purge (item_ids or external_ids)" in purge["message"]


def test_what_the_schema_admits_is_taken(api: Api) -> None:
    admin = api.person("root", admin=True)
    for task, labels in (("spans", ["PER"]), ("multilabel", ["only"]),
                         ("classification", [0, "0"])):
        answer = api.post("/projects", admin, json={"name": unique("p"), "task": task,
                                                    "labels": labels})
        assert answer.status_code == 201, answer.text
    named = api.post("/users", admin, json={"username": unique("a.b@c-d")})
    assert named.status_code == 201, named.text


def test_uploads_say_which_file_names_they_take(api: Api) -> None:
    """A multipart schema cannot bind a file name to its endings: the descriptions say them."""
    paths = api.client.get("/openapi.json").json()["paths"]
    for path, endings in (("imports", (".jsonl", ".csv", ".parquet", ".spans", ".zip")),
                          ("uploads", (".ndjson", ".json", ".conll")),
                          ("images/zip", (".zip",)),
                          ("images/list", (".csv", ".jsonl", ".ndjson")),
                          ("vectors", (".npy", ".parquet"))):
        body = paths[f"/api/v1/projects/{{project_id}}/{path}"]["post"]["requestBody"]
        said = body["content"]["multipart/form-data"]["schema"]["properties"]["file"][
            "description"]
        assert all(ending in said for ending in endings), (path, said)
