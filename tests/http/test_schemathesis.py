"""Every endpoint of the OpenAPI schema, called with generated requests (schemathesis): no
answer is a 5xx, and every answer is one the schema documents, with the shape it documents.

The calls come from an admin (who may do everything) on a server whose projects anyone may
create; logging out is left out (it would revoke the run's own token)."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import checks

from activelabel.http.app import create_app
from activelabel.http.config import ServerSettings
from activelabel.runtime.settings import open_storage
from activelabel.store import add_items, create_project, create_token, create_user

pytestmark = pytest.mark.slow

_token: dict[str, str] = {}
#: Generated requests per operation (bounded: the run stays in the minutes).
EXAMPLES = 25
#: What every answer must hold: no 5xx; a documented status, content type and headers; a body
#: of the documented shape; the documented methods in Allow; schema-invalid requests refused
#: (not checked: that every schema-valid request is accepted: the business rules, e.g. a
#: classification label is exactly one, refuse some the schema cannot tell from the others).
CHECKS = [checks.not_a_server_error, checks.status_code_conformance,
          checks.content_type_conformance, checks.response_schema_conformance,
          checks.response_headers_conformance, checks.allow_header_conformance,
          checks.negative_data_rejection]


@pytest.fixture(scope="module")
def app_schema() -> Iterator[Any]:
    folder = Path(tempfile.mkdtemp(prefix="activelabel-schemathesis-"))
    storage = open_storage(folder)
    with storage.sessions() as session, session.begin():
        admin = create_user(session, "root", is_admin=True)
        session.flush()
        token, _token["value"] = create_token(session, admin.id, "schemathesis")
        _token["id"] = str(token.id)
        project = create_project(session, "one", "classification", ["a", "b"],
                                 created_by=admin.id)
        add_items(session, project.id, [{"external_id": f"x{i}", "data": {"text": f"t{i}"}}
                                        for i in range(5)])
    app = create_app(storage=storage, settings=ServerSettings(project_creators="everyone"))
    yield schemathesis.openapi.from_asgi("/openapi.json", app)
    storage.close()


def test_no_endpoint_answers_a_5xx_or_off_its_schema(app_schema: Any) -> None:
    headers = {"Authorization": f"Bearer {_token['value']}"}
    failures: list[str] = []
    for found in app_schema.get_all_operations():
        operation = found.ok()
        if operation.path == "/api/v1/auth/logout":
            continue

        # Revoking the run's own token would leave every later call a 401: any other id.
        cases = operation.as_strategy().filter(
            lambda case: str((case.path_parameters or {}).get("token_id")) != _token["id"])

        @given(case=cases)
        @settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
                  suppress_health_check=list(HealthCheck))
        def run(case: Any) -> None:
            case.call_and_validate(headers=headers, checks=CHECKS)

        try:
            run()
        except (KeyboardInterrupt, SystemExit):
            raise
        except BaseException as exc:  # schemathesis' failure groups included: all reported
            failures.append(f"{operation.method.upper()} {operation.path}: "
                            f"{str(exc).strip()[:1500]}")
    assert not failures, f"{len(failures)} operations failed:\n\n" + "\n\n".join(failures)
