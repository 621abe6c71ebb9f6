"""Every endpoint of the OpenAPI schema, called with generated requests (schemathesis): no
answer is a 5xx, and every answer is one the schema documents, with the shape it documents.

On SQLite and on PostgreSQL, the calls come from an admin (who may do everything) on a server
whose projects anyone may create; each call of the logout endpoint brings a token of its own
(made for that call), so that logging out never revokes the run's."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from schemathesis import checks

from activelabel.http.app import create_app
from activelabel.http.config import ServerSettings
from activelabel.store import Storage, add_items, create_project, create_token, create_user
from tests.support.databases import new_storage

pytestmark = pytest.mark.slow

_token: dict[str, str] = {}
_made: dict[str, Any] = {}
#: Generated requests per operation (bounded: the run stays in the minutes).
EXAMPLES = 25
#: What every answer must hold: no 5xx; a documented status, content type and headers; a body
#: of the documented shape; the documented methods in Allow; schema-invalid requests refused;
#: schema-valid requests accepted (but where ACCEPTANCE_UNCHECKED says why not).
CHECKS = [checks.not_a_server_error, checks.status_code_conformance,
          checks.content_type_conformance, checks.response_schema_conformance,
          checks.response_headers_conformance, checks.allow_header_conformance,
          checks.negative_data_rejection, checks.positive_data_acceptance]
_UPLOAD = ("the file's extension picks its reader, and a multipart schema cannot bind a file "
           "name to extensions (the description lists them): a generated name is refused")
#: Operations a schema-valid request of which may still be refused, and why: a rule the
#: schema cannot state (it depends on the stored data, or on a file's name).
ACCEPTANCE_UNCHECKED = {
    ("POST", "/api/v1/projects/{project_id}/annotations"):
        "a label must be one of the project's labels, their count fit its task",
    ("POST", "/api/v1/projects/{project_id}/gold"):
        "a label must be one of the project's labels, their count fit its task",
    ("GET", "/api/v1/projects/{project_id}/export"):
        "conll and spans_jsonl are for span projects only (the run's project classifies)",
    ("POST", "/api/v1/projects/{project_id}/tasks/suggestions"):
        "the items must be the project's, the labels chosen its labels",
    ("DELETE", "/api/v1/projects/{project_id}/members/{username}"):
        "the user must be a member of the project",
    ("GET", "/api/v1/projects/{project_id}/uploads/{upload}"):
        "the upload must be one the project holds",
    ("POST", "/api/v1/projects/{project_id}/uploads/{upload}/import"):
        "the upload must be one the project holds",
    ("POST", "/api/v1/projects/{project_id}/annotations/{annotation_id}/review"):
        "a label must be one of the project's labels, their count fit its task",
    ("GET", "/api/v1/projects/{project_id}/review"):
        "the label to filter by must be one of the project's labels",
    ("POST", "/api/v1/projects/{project_id}/members"): "the user must exist",
    ("POST", "/api/v1/projects/{project_id}/items/purge"):
        "the external ids must be the project's items'",
    ("PUT", "/api/v1/projects/{project_id}/import-mapping"):
        "a role such as label or content takes one column only",
    ("POST", "/api/v1/projects/{project_id}/ls-ml/setup"):
        "the label_config must be a Label Studio labeling config (XML) naming the labels",
    ("POST", "/api/v1/projects"):
        "the settings are checked against what the server has installed (the sentence "
        "featurizer needs its extra) and against the labels (label_keys)",
    ("PATCH", "/api/v1/projects/{project_id}"):
        "labels are appended, never removed; settings as for a new project",
    ("POST", "/api/v1/projects/{project_id}/ls-ml/predict"):
        "a task of an item must match it (ids, content hash)",
    ("POST", "/api/v1/projects/{project_id}/ls-ml/webhook"):
        "an annotation event needs Label Studio's annotation and task, labels of the project",
    ("POST", "/api/v1/projects/{project_id}/imports"): _UPLOAD,
    ("POST", "/api/v1/projects/{project_id}/uploads"): _UPLOAD,
    ("POST", "/api/v1/projects/{project_id}/vectors"): _UPLOAD,
    ("POST", "/api/v1/projects/{project_id}/images/zip"): _UPLOAD,
    ("POST", "/api/v1/projects/{project_id}/images/list"): _UPLOAD,
}


@pytest.fixture(scope="module")
def app_schema(backend: str, request: pytest.FixtureRequest,
               tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """The app on each database (PostgreSQL refuses values SQLite stores: a NUL in text)."""
    for storage in new_storage(backend, request, tmp_path_factory.mktemp("schemathesis")):
        yield from _schema(storage)


def _schema(storage: Storage) -> Iterator[Any]:
    with storage.sessions() as session, session.begin():
        admin = create_user(session, "root", is_admin=True)
        session.flush()
        token, _token["value"] = create_token(session, admin.id, "schemathesis")
        _token["id"] = str(token.id)
        _token["user_id"] = str(admin.id)
        project = create_project(session, "one", "classification", ["a", "b"],
                                 created_by=admin.id)
        add_items(session, project.id, [{"external_id": f"x{i}", "data": {"text": f"t{i}"}}
                                        for i in range(5)])
    app = create_app(storage=storage, settings=ServerSettings(project_creators="everyone"))
    _made.update(storage=storage, app=app)
    yield schemathesis.openapi.from_asgi("/openapi.json", app)


def _throwaway_headers() -> dict[str, str]:
    """The admin's credentials in a token made for one call (one the call may revoke)."""
    storage = _made["storage"]
    with storage.sessions() as session, session.begin():
        _, plaintext = create_token(session, int(_token["user_id"]), "one call")
    return {"Authorization": f"Bearer {plaintext}"}


def _whole_floats(value: Any) -> bool:
    """Whether a number with a fraction part of 0 is written as a float (285.0) in value."""
    if isinstance(value, float):
        return value.is_integer()
    if isinstance(value, dict):
        return any(_whole_floats(v) for v in value.values())
    if isinstance(value, list):
        return any(_whole_floats(v) for v in value)
    return False


def _check(operation: Any, credentials: Callable[[], dict[str, str]]) -> str | None:
    """Call one operation with generated requests: None, or what failed."""
    # Revoking the run's own token would leave every later call a 401: any other id.
    # JSON Schema's integer admits 285.0, which the API's whole numbers (strict: never a float
    # or a boolean) refuse: such bodies are left out.
    cases = operation.as_strategy().filter(
        lambda case: str((case.path_parameters or {}).get("token_id")) != _token["id"]
        and not _whole_floats(case.body))

    unchecked = (operation.method.upper(), operation.path) in ACCEPTANCE_UNCHECKED
    run_checks = [c for c in CHECKS if not (unchecked and c is checks.positive_data_acceptance)]

    @given(case=cases)
    @settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
              suppress_health_check=list(HealthCheck))
    def run(case: Any) -> None:
        case.call_and_validate(headers=credentials(), checks=run_checks)

    try:
        run()
    except (KeyboardInterrupt, SystemExit):
        raise
    except BaseException as exc:  # schemathesis' failure groups included: all reported
        return f"{operation.method.upper()} {operation.path}: {str(exc).strip()[:1500]}"
    return None


def test_no_endpoint_answers_a_5xx_or_off_its_schema(app_schema: Any) -> None:
    headers = {"Authorization": f"Bearer {_token['value']}"}
    failures: list[str] = []
    paths = set()
    for found in app_schema.get_all_operations():
        operation = found.ok()
        paths.add(operation.path)
        # Logging out revokes the token it is called with: each call brings its own.
        revokes = operation.path == "/api/v1/auth/logout"
        failure = _check(operation, _throwaway_headers if revokes else lambda: headers)
        if failure is not None:
            failures.append(failure)
    assert not failures, f"{len(failures)} operations failed:\n\n" + "\n\n".join(failures)
    assert "/api/v1/auth/logout" in paths
    assert {path for _, path in ACCEPTANCE_UNCHECKED} <= paths  # no reason outlives its route
    with TestClient(_made["app"]) as client:  # the run's own token outlived every call
        assert client.get("/api/v1/me", headers=headers).status_code == 200
