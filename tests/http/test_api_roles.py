"""The endpoint-by-role matrix: every operation on a project, called by its annotator, its
reviewer, its owner and a server admin (no member), with a request the schema accepts.

Each operation needs at least the role in ``MINIMUM_ROLE``: members below it get 403, members at
or above it (and admins, who act as owners) get past the role check (any answer but 403, never
a 5xx). The table names every such operation of the schema, so a new one has to be given its
role here. Anonymous callers and outsiders are checked in test_api_security.py."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis.core import NOT_SET

from activelabel.http.app import create_app
from activelabel.http.config import ServerSettings
from activelabel.store import Storage
from tests.support.api import Api

ROLES = ("annotator", "reviewer", "owner")

MINIMUM_ROLE: dict[tuple[str, str], str] = {
    ("GET", "/projects/{project_id}/tasks/next"): "annotator",
    ("POST", "/projects/{project_id}/tasks/{item_id}/release"): "annotator",
    ("POST", "/projects/{project_id}/tasks/suggestions"): "annotator",
    ("POST", "/projects/{project_id}/annotations"): "annotator",
    ("POST", "/projects/{project_id}/annotations/{annotation_id}/review"): "reviewer",
    ("GET", "/projects/{project_id}"): "annotator",
    ("PATCH", "/projects/{project_id}"): "owner",
    ("GET", "/projects/{project_id}/members"): "reviewer",
    ("POST", "/projects/{project_id}/members"): "owner",
    ("DELETE", "/projects/{project_id}/members/{username}"): "owner",
    ("GET", "/projects/{project_id}/audit"): "owner",
    ("POST", "/projects/{project_id}/items"): "owner",
    ("GET", "/projects/{project_id}/items"): "reviewer",
    ("GET", "/projects/{project_id}/items/{item_id}"): "reviewer",
    ("POST", "/projects/{project_id}/items/{item_id}/undo"): "annotator",
    ("POST", "/projects/{project_id}/imports"): "owner",
    ("POST", "/projects/{project_id}/uploads"): "owner",
    ("GET", "/projects/{project_id}/uploads/{upload}"): "owner",
    ("POST", "/projects/{project_id}/uploads/{upload}/import"): "owner",
    ("GET", "/projects/{project_id}/import-mapping"): "owner",
    ("PUT", "/projects/{project_id}/import-mapping"): "owner",
    ("POST", "/projects/{project_id}/vectors"): "owner",
    ("POST", "/projects/{project_id}/images/folder"): "owner",
    ("POST", "/projects/{project_id}/images/zip"): "owner",
    ("POST", "/projects/{project_id}/images/list"): "owner",
    ("GET", "/projects/{project_id}/items/{item_id}/image"): "annotator",
    ("GET", "/projects/{project_id}/items/{item_id}/thumbnail"): "annotator",
    ("GET", "/projects/{project_id}/predictions/comparison"): "reviewer",
    ("GET", "/projects/{project_id}/jobs/{job_id}"): "annotator",
    ("GET", "/projects/{project_id}/jobs"): "annotator",
    ("POST", "/projects/{project_id}/flags"): "annotator",
    ("GET", "/projects/{project_id}/flags"): "annotator",
    ("POST", "/projects/{project_id}/flags/{flag_id}/resolve"): "reviewer",
    ("POST", "/projects/{project_id}/rounds"): "owner",
    ("GET", "/projects/{project_id}/rounds"): "reviewer",
    ("GET", "/projects/{project_id}/rounds/{round_id}"): "reviewer",
    ("GET", "/projects/{project_id}/models"): "reviewer",
    ("POST", "/projects/{project_id}/models/{version}/activate"): "owner",
    ("GET", "/projects/{project_id}/export"): "reviewer",
    ("GET", "/projects/{project_id}/export/bundle"): "owner",
    ("GET", "/projects/{project_id}/stats"): "reviewer",
    ("GET", "/projects/{project_id}/review"): "reviewer",
    ("GET", "/projects/{project_id}/label-check"): "reviewer",
    ("GET", "/projects/{project_id}/agreement"): "reviewer",
    ("GET", "/projects/{project_id}/annotators"): "reviewer",
    ("GET", "/projects/{project_id}/anchoring"): "reviewer",
    ("POST", "/projects/{project_id}/gold"): "owner",
    ("GET", "/projects/{project_id}/relabel"): "reviewer",
    ("GET", "/projects/{project_id}/versions"): "annotator",
    ("POST", "/projects/{project_id}/decisions"): "owner",
    ("GET", "/projects/{project_id}/decisions"): "reviewer",
    ("POST", "/projects/{project_id}/snapshots"): "owner",
    ("GET", "/projects/{project_id}/snapshots"): "reviewer",
    ("GET", "/projects/{project_id}/snapshots/{snapshot_id}/export"): "reviewer",
    ("POST", "/projects/{project_id}/snapshots/{snapshot_id}/restore"): "owner",
    ("POST", "/projects/{project_id}/items/purge"): "owner",
    ("GET", "/projects/{project_id}/audit/export"): "owner",
    ("POST", "/projects/{project_id}/calibrations"): "owner",
    ("GET", "/projects/{project_id}/calibrations"): "reviewer",
    ("GET", "/projects/{project_id}/calibrations/{calibration_id}"): "reviewer",
    ("GET", "/projects/{project_id}/progress"): "annotator",
    ("GET", "/projects/{project_id}/outlook"): "annotator",
    ("GET", "/projects/{project_id}/confidence"): "reviewer",
    ("GET", "/projects/{project_id}/items/{item_id}/related"): "annotator",
    ("GET", "/projects/{project_id}/dashboard"): "reviewer",
    ("GET", "/projects/{project_id}/ls-ml/"): "reviewer",
    ("GET", "/projects/{project_id}/ls-ml/health"): "reviewer",
    ("POST", "/projects/{project_id}/ls-ml/setup"): "reviewer",
    ("POST", "/projects/{project_id}/ls-ml/predict"): "reviewer",
    ("POST", "/projects/{project_id}/ls-ml/webhook"): "owner",
}


def _accepted_request(operation: Any) -> Any:
    """One request the schema accepts (its body and query; the path is filled in apart)."""
    drawn: list[Any] = []

    @given(case=operation.as_strategy())
    @settings(max_examples=1, phases=[Phase.generate], database=None, derandomize=True,
              deadline=None, suppress_health_check=list(HealthCheck))
    def draw(case: Any) -> None:
        drawn.append(case)

    draw()
    return drawn[0]


@pytest.fixture
def api(api_storage: Storage, tmp_path: Path) -> Iterator[Api]:
    """The API with an image folder the server may read: a folder import is then refused
    by role, not by the server's own setting (403 for everyone)."""
    settings = ServerSettings(project_creators="everyone", image_roots=str(tmp_path))
    with TestClient(create_app(storage=api_storage, settings=settings),
                    raise_server_exceptions=False) as client:
        yield Api(client, api_storage)


@pytest.mark.slow
def test_every_project_operation_needs_its_role_and_no_more(api: Api) -> None:
    schema = schemathesis.openapi.from_asgi("/openapi.json", api.client.app)
    owner, admin = api.person("owner"), api.person("root", admin=True)
    seen: dict[tuple[str, str], str] = {}
    wrong: list[str] = []
    for found in schema.get_all_operations():
        operation = found.ok()
        if "{project_id}" not in operation.path:
            continue
        key = (operation.method.upper(), operation.path.removeprefix("/api/v1"))
        case = _accepted_request(operation)
        pid = api.project(owner, n_items=2)  # a project each: an owner's call may change it
        people = {"annotator": api.member(pid, "annotator"),
                  "reviewer": api.member(pid, "reviewer"), "owner": owner, "admin": admin}
        path = re.sub(r"\{[a-z_]+\}", "1", key[1].replace("{project_id}", str(pid)))
        body = {} if case.body is NOT_SET else {"json": case.body}
        answers = {who: api.request(key[0], path, person, params=case.query or None, **body)
                   for who, person in people.items()}
        for who, answer in answers.items():
            if answer.status_code >= 500:
                wrong.append(f"{key} as {who}: {answer.status_code} {answer.text[:200]}")
        seen[key] = next((r for r in ROLES if answers[r].status_code != 403), "nobody")
        expected = MINIMUM_ROLE.get(key)
        for who in ROLES:
            below = expected is not None and ROLES.index(who) < ROLES.index(expected)
            if (answers[who].status_code == 403) != below:
                wrong.append(f"{key} as {who}: {answers[who].status_code} "
                             f"(needs {expected}) {answers[who].text[:200]}")
        if answers["admin"].status_code == 403:
            wrong.append(f"{key} as admin: 403 {answers['admin'].text[:200]}")
    assert not wrong, "\n".join(wrong)
    assert seen == MINIMUM_ROLE  # every operation of the schema has its row, and no more
