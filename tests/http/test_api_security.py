"""Who may do what, and for how long: project creation (admins by default), throttled logins,
logout that revokes, tokens that expire, and the audit entries of logins and tokens."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import timedelta

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text

from activelabel.http.app import create_app
from activelabel.http.config import ServerSettings, server_settings_from_env
from activelabel.store import InvalidInput, Storage, create_user, list_audit, user_for_token
from activelabel.store.models import AuditEvent, utcnow
from activelabel.store.users import create_token
from tests.support.api import Api, assert_error, unique

PASSWORD = "correct horse battery"


@pytest.fixture
def strict(api_storage: Storage) -> Iterator[Api]:
    """The API as a server with its default settings, but logins throttled after 2 failures
    and locked after 4 (fewer argon2 checks for the test to wait for)."""
    settings = ServerSettings(login_free_failures=2, login_lockout_failures=4)
    address = (f"10.{uuid.uuid4().int % 250}.{uuid.uuid4().int % 250}.{uuid.uuid4().int % 250}",
               50000)  # each test its own client address: failures are counted per address
    with TestClient(create_app(storage=api_storage, settings=settings),
                    raise_server_exceptions=False, client=address) as client:
        yield Api(client, api_storage)


def _user(storage: Storage, *, admin: bool = False) -> str:
    name = unique("user")
    with storage.sessions() as session, session.begin():
        create_user(session, name, PASSWORD, is_admin=admin)
    return name


def _login(api: Api, username: str, password: str = PASSWORD) -> httpx.Response:
    return api.client.post("/api/v1/auth/login", json={"username": username,
                                                        "password": password})


def test_only_admins_create_projects_unless_the_server_says_everyone(strict: Api) -> None:
    user, admin = strict.person("plain"), strict.person("root", admin=True)
    error = assert_error(strict.post("/projects", user, json={"name": unique("p"),
                                                              "labels": ["a", "b"]}),
                         403, "forbidden")
    assert "ACTIVELABEL_PROJECT_CREATORS=everyone" in error["message"]
    assert strict.post("/projects", admin, json={"name": unique("p"),
                                                 "labels": ["a", "b"]}).status_code == 201
    everyone = ServerSettings(project_creators="everyone")
    with TestClient(create_app(storage=strict.storage, settings=everyone)) as client:
        made = client.post("/api/v1/projects", headers=user.headers,
                           json={"name": unique("p"), "labels": ["a", "b"]})
    assert made.status_code == 201, made.text


def test_wrong_passwords_wait_then_lock_and_a_right_one_clears_them(strict: Api) -> None:
    name = _user(strict.storage)
    for _ in range(2):  # free failures
        assert_error(_login(strict, name, "wrong"), 401, "unauthorized")
    waiting = _login(strict, name, "wrong")
    error = assert_error(waiting, 429, "too_many_requests")
    assert int(waiting.headers["retry-after"]) >= 1
    assert "wait" in error["message"]
    # Even the right password waits: a guesser cannot tell it from a wrong one.
    assert_error(_login(strict, name), 429, "too_many_requests")


def test_the_lockout_lasts_until_failures_leave_the_window(api_storage: Storage) -> None:
    from activelabel.store import LoginPolicy, login_wait, record_login_failure

    policy = LoginPolicy(free=2, lockout=4, window=timedelta(minutes=15))
    name = unique("victim")
    start = utcnow()
    with api_storage.sessions() as session, session.begin():
        for k in range(4):
            record_login_failure(session, name, "10.0.0.1", policy,
                                 now=start + timedelta(seconds=k))
        locked = login_wait(session, name, "10.9.9.9", policy, now=start + timedelta(minutes=1))
        later = login_wait(session, name, "10.9.9.9", policy, now=start + timedelta(minutes=16))
        by_address = login_wait(session, unique("other"), "10.0.0.1", policy,
                                now=start + timedelta(minutes=1))
    assert 13 * 60 < locked <= 14 * 60 + 1  # until the 1st of the 4 leaves the window
    assert later == 0
    assert by_address > 0  # the address is throttled whatever name it tries


def test_unknown_usernames_are_answered_and_counted_like_known_ones(strict: Api) -> None:
    ghost = unique("ghost")
    for _ in range(2):
        assert_error(_login(strict, ghost, "x"), 401, "unauthorized")
    assert_error(_login(strict, ghost, "x"), 429, "too_many_requests")


def test_a_login_token_expires_when_idle_and_logging_out_revokes_it(strict: Api) -> None:
    name = _user(strict.storage)
    answer = _login(strict, name)
    assert answer.status_code == 201, answer.text
    token = answer.json()["token"]
    headers = {"Authorization": f"Bearer {token}"}
    assert strict.client.get("/api/v1/me", headers=headers).status_code == 200
    mine = strict.client.get("/api/v1/tokens", headers=headers).json()
    assert mine[0]["expires_at"] is not None  # at most login_max_days
    with strict.storage.sessions() as session, session.begin():
        now = utcnow()
        assert user_for_token(session, token, now=now + timedelta(hours=11)) is not None
        # Used an hour ago: the idle clock restarted then, so 11 more hours are fine...
        assert user_for_token(session, token, now=now + timedelta(hours=22)) is not None
        # ...but 13 hours without use are not.
        assert user_for_token(session, token, now=now + timedelta(hours=35)) is None
    assert strict.client.post("/api/v1/auth/logout", headers=headers).status_code == 204
    assert_error(strict.client.get("/api/v1/me", headers=headers), 401, "unauthorized")
    actions = [(e.action, e.entity) for e in list_audit_of(strict.storage)]
    assert ("login", "user") in actions
    assert ("logout", "token") in actions


def list_audit_of(storage: Storage) -> list[AuditEvent]:
    with storage.read_sessions() as session:
        return list(list_audit(session, limit=200))


def test_api_tokens_may_expire_and_their_creation_and_revocation_are_audited(
        strict: Api) -> None:
    person = strict.person("scripter")
    made = strict.post("/tokens", person, json={"name": "nightly", "expires_in_days": 7})
    assert made.status_code == 201, made.text
    assert made.json()["expires_at"] is not None
    token = made.json()["token"]
    with strict.storage.sessions() as session, session.begin():
        assert user_for_token(session, token, now=utcnow() + timedelta(days=6)) is not None
        assert user_for_token(session, token, now=utcnow() + timedelta(days=8)) is None
        endless, _ = create_token(session, person.id, "forever")
        endless_id = endless.id
    assert strict.delete(f"/tokens/{endless_id}", person).status_code == 204
    assert_error(strict.post("/tokens", person, json={"expires_in_days": 0}), 422,
                 "invalid_input")
    events = [(e.action, e.entity, e.actor_id) for e in list_audit_of(strict.storage)]
    assert ("create", "token", person.id) in events
    assert ("revoke", "token", person.id) in events


def test_server_settings_come_from_the_environment() -> None:
    settings = server_settings_from_env({"ACTIVELABEL_PROJECT_CREATORS": "everyone",
                                         "ACTIVELABEL_LOGIN_IDLE_MINUTES": "30",
                                         "ACTIVELABEL_DATA_DIR": "/elsewhere"})
    assert (settings.project_creators, settings.login_idle_minutes) == ("everyone", 30)
    assert server_settings_from_env({}) == ServerSettings()
    with pytest.raises(InvalidInput, match="ACTIVELABEL_LOGIN_IDLE_MINUTES"):
        server_settings_from_env({"ACTIVELABEL_LOGIN_IDLE_MINUTES": "soon"})
    with pytest.raises(InvalidInput, match="ACTIVELABEL_PROJECT_CREATORS"):
        server_settings_from_env({"ACTIVELABEL_PROJECT_CREATORS": "anyone"})


def test_the_model_hosts_setting_is_read_and_checked_at_start() -> None:
    given = " Models.Internal, 10.0.0.5:9000,*.ML.example.com , [FD00::1]:8080,bücher.example,"
    settings = server_settings_from_env({"ACTIVELABEL_MODEL_HOSTS": given})
    assert settings.model_host_rules().entries == (
        "models.internal", "10.0.0.5:9000", "*.ml.example.com", "[fd00::1]:8080",
        "xn--bcher-kva.example")
    assert server_settings_from_env({}).model_host_rules().entries == ()  # any host
    bad = {"http://models.internal/": "write the host alone",
           "*": "leave the list empty to allow any host",
           "models.internal:0": "the port must be a number from 1 to 65535",
           "models.internal:http": "the port must be a number from 1 to 65535",
           "fd00::1": "write an IPv6 address in brackets",
           "[fd00::zz]": "is not an IPv6 address",
           "a*.example.com": "is not a host name",
           "*.": "is not a host name",
           "models..internal": "is not a host name",
           "models internal": "is not a host name"}
    for value, reason in bad.items():
        with pytest.raises(InvalidInput) as caught:
            server_settings_from_env({"ACTIVELABEL_MODEL_HOSTS": f"models.internal,{value}"})
        message = str(caught.value)
        assert message.startswith("invalid server settings: ACTIVELABEL_MODEL_HOSTS: "), message
        assert reason in message, message
        assert repr(value) in message, message
        assert "Value error" not in message


def test_annotators_label_what_they_were_handed_unless_labeling_is_free(strict: Api) -> None:
    owner = strict.person("owner", admin=True)
    pid = strict.project(owner, n_items=6, settings={"free_labeling": False})
    annotator = strict.member(pid, "annotator")
    reviewer = strict.member(pid, "reviewer")
    items = [i["id"] for i in strict.get(f"/projects/{pid}/items", owner).json()["items"]]
    handed = [t["item"]["id"] for t in
              strict.get(f"/projects/{pid}/tasks/next?n=2", annotator).json()]
    other = next(i for i in items if i not in handed)
    error = assert_error(strict.post(f"/projects/{pid}/annotations", annotator,
                                     json={"item_id": other, "labels": ["pos"]}),
                         403, "forbidden")
    assert "tasks/next" in error["message"]
    first = strict.post(f"/projects/{pid}/annotations", annotator,
                        json={"item_id": handed[0], "labels": ["pos"], "client_key": "k1"})
    assert first.status_code == 201, first.text
    again = strict.post(f"/projects/{pid}/annotations", annotator,  # a retry: the same row
                        json={"item_id": handed[0], "labels": ["pos"], "client_key": "k1"})
    assert again.json()["id"] == first.json()["id"]
    fixed = strict.post(f"/projects/{pid}/annotations", annotator,  # a correction: allowed
                        json={"item_id": handed[0], "labels": ["neg"]})
    assert fixed.status_code == 201, fixed.text
    # A lease that ran out still counts (the label is the annotator's work); one given back
    # does not.
    with strict.storage.sessions() as session, session.begin():
        session.execute(text("UPDATE assignments SET expires_at = :past WHERE item_id = :i"),
                        {"past": utcnow() - timedelta(hours=1), "i": handed[1]})
    late = strict.post(f"/projects/{pid}/annotations", annotator,
                       json={"item_id": handed[1], "labels": ["pos"]})
    assert late.status_code == 201, late.text
    assert strict.post(f"/projects/{pid}/annotations", reviewer,
                       json={"item_id": other, "labels": ["neg"]}).status_code == 201
    strict.patch(f"/projects/{pid}", owner, json={"settings": {"free_labeling": True}})
    assert strict.post(f"/projects/{pid}/annotations", annotator,
                       json={"item_id": other, "labels": ["pos"]}).status_code == 201


def test_bodies_beyond_the_limits_get_413_before_they_are_parsed(api_storage: Storage) -> None:
    settings = ServerSettings(max_body_bytes=2048, max_upload_bytes=4096,
                              project_creators="everyone")
    with TestClient(create_app(storage=api_storage, settings=settings),
                    raise_server_exceptions=False) as client:
        api = Api(client, api_storage)
        owner = api.person("owner")
        pid = api.project(owner)
        big = [{"external_id": f"x{i}", "data": {"text": "y" * 100}} for i in range(40)]
        error = assert_error(api.post(f"/projects/{pid}/items", owner, json=big), 413,
                             "too_large")
        assert "ACTIVELABEL_MAX_BODY_BYTES" in error["message"]

        def chunks() -> Iterator[bytes]:  # no Content-Length: counted as it arrives
            yield b"["
            for i in range(40):
                yield (b"," if i else b"") + b'{"external_id": "c%d", "data": {"t": "%s"}}' % (
                    i, b"z" * 100)
            yield b"]"

        streamed = client.post(f"/api/v1/projects/{pid}/items", content=chunks(),
                               headers={**owner.headers, "content-type": "application/json"})
        assert_error(streamed, 413, "too_large")
        # The same for an annotation, whose ordinary calls skip the router (http.hot).
        label = client.post(f"/api/v1/projects/{pid}/annotations", content=(
            b'{"item_id": 1, "labels": ["%s"]}' % (b"z" * 100) for _ in range(30)),
            headers={**owner.headers, "content-type": "application/json"})
        assert_error(label, 413, "too_large")
        upload = client.post(f"/api/v1/projects/{pid}/imports", headers=owner.headers,
                             files={"file": ("rows.jsonl", b'{"external_id":"u","data":{}}\n'
                                             * 200)})
        error = assert_error(upload, 413, "too_large")
        assert "ACTIVELABEL_MAX_UPLOAD_BYTES" in error["message"]
        small = client.post(f"/api/v1/projects/{pid}/imports", headers=owner.headers,
                            files={"file": ("rows.jsonl", b'{"external_id":"u","data":{}}\n')})
        assert small.status_code == 202, small.text
        assert api.get(f"/projects/{pid}/items", owner).json()["items"] == []  # nothing stored


@pytest.mark.parametrize("huge", [2**31, 2**63, 10**30])
def test_ids_beyond_the_database_range_are_refused_never_a_500(api: Api, huge: int) -> None:
    """Every route with an id in its path (read from the OpenAPI schema), called by an admin
    with one id beyond the id columns' range: 422, the project id as every other, never a
    database error; without a token it is still a 401, before the input is looked at."""
    admin = api.person("root", admin=True)
    pid = api.project(admin, n_items=1)
    seen = 0
    for template, operations in api.client.get("/openapi.json").json()["paths"].items():
        names = [p.split("}")[0] for p in template.split("{")[1:]]
        for method in sorted(m.upper() for m in operations):
            for bad in [n for n in names if n.endswith("_id") or n == "version"]:
                path = template.removeprefix("/api/v1")
                for name in names:
                    value = huge if name == bad else (pid if name == "project_id" else 1)
                    value = "someone" if name == "username" else value
                    path = path.replace("{" + name + "}", str(value))
                answer = api.request(method, path, admin, json={})
                assert answer.status_code < 500, (method, path, answer.text)
                error = assert_error(answer, 422, "invalid_input")
                assert bad in error["message"], (method, path, error)
                anonymous = api.request(method, path, json={})
                assert anonymous.status_code == 401, (method, path, anonymous.text)
                seen += 1
    assert seen > 30
    for body in ({"item_id": huge, "labels": ["pos"]},):
        assert_error(api.post(f"/projects/{pid}/annotations", admin, json=body), 422,
                     "invalid_input")
    assert_error(api.get(f"/projects/{pid}/items?after={huge}", admin), 422, "invalid_input")


def test_a_full_disk_is_a_507_and_health_says_so(api_storage: Storage) -> None:
    import errno

    from sqlalchemy.exc import OperationalError

    app = create_app(storage=api_storage)

    @app.get("/api/v1/full-db")
    def full_db() -> None:
        raise OperationalError("INSERT ...", {}, Exception("database or disk is full"))

    @app.get("/api/v1/full-fs")
    def full_fs() -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    with TestClient(app, raise_server_exceptions=False) as client:
        for path in ("/api/v1/full-db", "/api/v1/full-fs"):
            error = assert_error(client.get(path), 507, "insufficient_storage")
            assert "disk is full" in error["message"]
        healthy = client.get("/api/v1/health").json()
        assert (healthy["status"], healthy["disk"], healthy["database"]) == ("ok", "ok", "ok")
        assert healthy["disk_free_bytes"] > 0
    tight = ServerSettings(min_free_disk_bytes=1 << 50)  # more than any disk has free
    with TestClient(create_app(storage=api_storage, settings=tight)) as client:
        answer = client.get("/api/v1/health")
    assert answer.status_code == 503
    assert (answer.json()["status"], answer.json()["disk"]) == ("error", "full")


def test_health_tells_a_stalled_worker(fresh_storage: Storage) -> None:
    from activelabel.labeling.health import server_health
    from activelabel.store import enqueue_job

    assert server_health(fresh_storage, min_free_bytes=0).worker == "idle"
    with fresh_storage.sessions() as session, session.begin():
        enqueue_job(session, "round", {})
    later = utcnow() + timedelta(minutes=5)
    found = server_health(fresh_storage, min_free_bytes=0, now=later)
    assert found.worker == "stalled"
    assert found.oldest_queued_job_at is not None


def test_no_path_answers_anonymous_callers_or_outsiders(api: Api) -> None:
    """Every operation of the schema: without credentials 401 (but the health check and the
    login); an authenticated user who is no member of the project never learns it exists
    (404, or 422 for a body refused before the project is looked at), never 2xx or 403."""
    owner = api.person("owner")
    pid = api.project(owner, n_items=2)
    outsider = api.person("outsider")
    paths = api.client.get("/openapi.json").json()["paths"]
    open_paths = {"/api/v1/health", "/api/v1/auth/login"}
    checked = 0
    for template, operations in paths.items():
        path = template.removeprefix("/api/v1")
        for name in ("project_id", "item_id", "round_id", "job_id", "flag_id", "snapshot_id",
                     "calibration_id", "annotation_id", "token_id", "version"):
            path = path.replace("{" + name + "}", str(pid) if name == "project_id" else "1")
        path = path.replace("{username}", owner.username)
        for method in operations:
            if template in open_paths:
                continue
            if not template.startswith("/api/v1"):  # /metrics
                anonymous = api.client.request(method.upper(), template)
            else:
                anonymous = api.request(method.upper(), path, json={})
            assert anonymous.status_code == 401, (method, path, anonymous.text)
            if "{project_id}" in template:
                answer = api.request(method.upper(), path, outsider, json={})
                assert answer.status_code in (404, 422), (method, path, answer.text)
            checked += 1
    assert checked > 50


def test_a_setting_out_of_its_range_is_a_422_and_the_queue_keeps_working(api: Api) -> None:
    """A lease of 10^12 s was once stored, and every tasks/next then failed with an overflow."""
    owner = api.person("owner")
    pid = api.project(owner, n_items=2)
    for huge in (10**12, 2**63, 10**30):
        error = assert_error(api.patch(f"/projects/{pid}", owner,
                                       json={"settings": {"lease_seconds": huge}}),
                             422, "invalid_input")
        assert "lease_seconds" in error["message"]
    assert api.get(f"/projects/{pid}", owner).json()["settings"]["lease_seconds"] <= 7 * 86_400
    assert api.get(f"/projects/{pid}/tasks/next?n=1", owner).status_code == 200


def test_a_nul_character_in_any_text_is_refused_never_a_500(api: Api, backend: str) -> None:
    """PostgreSQL cannot store a NUL in text: every such request is a 400 that says so (SQLite
    stores it), never a database error. Logins included: the wrong username is recorded."""
    owner = api.person("owner")
    pid = api.project(owner, n_items=1)
    item = api.get(f"/projects/{pid}/items", owner).json()["items"][0]["id"]
    nul = "a\u0000b"
    calls = [("POST", "/projects", {"name": nul, "labels": ["pos", "neg"]}),
             ("PATCH", f"/projects/{pid}", {"guidelines": nul}),
             ("POST", f"/projects/{pid}/flags", {"item_id": item, "reason": nul}),
             ("POST", f"/projects/{pid}/decisions", {"topic": nul, "text": "t"}),
             ("POST", f"/projects/{pid}/annotations",
              {"item_id": item, "labels": ["pos"], "client_key": nul}),
             ("POST", "/tokens", {"name": nul}),
             ("POST", f"/projects/{pid}/calibrations", {"name": nul, "item_ids": [item]})]
    for method, path, body in calls:
        answer = api.request(method, path, owner, json=body)
        assert answer.status_code < 500, (method, path, answer.text)
        if backend == "postgresql":
            error = assert_error(answer, 400, "invalid_input")
            assert "NUL" in error["message"], error
    login = api.client.post("/api/v1/auth/login", json={"username": nul, "password": "x"})
    assert login.status_code in ({400} if backend == "postgresql" else {401}), login.text
