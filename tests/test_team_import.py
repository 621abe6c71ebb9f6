"""`activelabel users import team.csv`: a team in one transaction, its secrets in a 0600 file.

End to end through ``python -m activelabel`` on a real SQLite data folder, and the labeling
function (:func:`activelabel.labeling.team.import_team`) on SQLite and PostgreSQL.
"""

from __future__ import annotations

import csv
import stat
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import func, select

from activelabel.labeling.team import TeamFileError, import_team, import_team_file, read_team
from activelabel.runtime.settings import resolve_location
from activelabel.store import Storage, create_project, create_user, role_of
from activelabel.store.models import AuditEvent, Membership, User
from activelabel.store.users import authenticate_password, get_user_by_name, user_for_token
from tests.support.processes import run_cli


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def read_secrets(path: Path) -> dict[str, dict[str, str]]:
    with path.open(newline="") as fh:
        return {row["username"]: row for row in csv.DictReader(fh)}


def counts(storage: Storage) -> tuple[int, int, int]:
    """Users, memberships and audit events in the database."""
    with storage.read_sessions() as session:
        return tuple(int(session.execute(select(func.count()).select_from(t)).scalar_one())
                     for t in (User, Membership, AuditEvent))  # type: ignore[return-value]


# ---- end to end: the command on a real SQLite data folder ------------------------------------

@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    """A data folder with projects sms (id 1) and news (id 2), owned by the admin ``boss``."""
    folder = tmp_path / "data"
    storage = Storage(resolve_location(folder))
    with storage.sessions() as session, session.begin():
        boss = create_user(session, "boss", "boss-password", is_admin=True)
        session.flush()
        create_project(session, "sms", "classification", ["ham", "spam"], created_by=boss.id)
        create_project(session, "news", "classification", ["a", "b"], created_by=boss.id)
    storage.close()
    return folder


@pytest.fixture
def storage(data_dir: Path) -> Iterator[Storage]:
    opened = Storage(resolve_location(data_dir))
    yield opened
    opened.close()


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_a_team_with_generated_passwords(tmp_path: Path, data_dir: Path,
                                         storage: Storage) -> None:
    team = write(tmp_path / "team.csv",
                 "username,project,role,projects,admin\n"
                 "ann,sms,reviewer,news:annotator,\n"
                 "bob,,,sms:annotator;2:owner,true\n"
                 "cy,1,,,\n"
                 "boss,news,annotator,,\n")  # existing: keeps owner in news, gains nothing
    out = tmp_path / "credentials.csv"
    users_before, members_before, audit_before = counts(storage)
    proc = run_cli("users", "import", team, "--out", out, data_dir=data_dir)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == [
        "created 3 users (1 admin)",
        "1 user already existed, left as they were (only new memberships added): boss",
        "added 5 memberships",
        "kept boss as owner in news (the file says annotator): change roles on the project's "
        "settings page",
        f"wrote 3 passwords and 0 tokens to {out} (readable by you only; they are not stored "
        "anywhere else)",
    ]
    assert mode(out) == 0o600
    secrets = read_secrets(out)
    assert sorted(secrets) == ["ann", "bob", "cy"]
    with storage.sessions() as session, session.begin():
        for name, row in secrets.items():
            assert len(row["password"]) >= 20
            assert row["token"] == ""
            user = authenticate_password(session, name, row["password"])
            assert user is not None, name
            assert user.is_admin == (name == "bob")
        ids = {u.username: u.id for u in session.execute(select(User)).scalars()}
        roles = {(u, p): role_of(session, p, ids[u])
                 for u in ("ann", "bob", "cy", "boss") for p in (1, 2)}
    assert roles == {("ann", 1): "reviewer", ("ann", 2): "annotator",
                     ("bob", 1): "annotator", ("bob", 2): "owner",
                     ("cy", 1): "annotator", ("cy", 2): None,
                     ("boss", 1): "owner", ("boss", 2): "owner"}
    # one audit event per created user and per added membership
    assert counts(storage) == (users_before + 3, members_before + 5, audit_before + 3 + 5)


def test_tokens_instead_of_generated_passwords(tmp_path: Path, data_dir: Path,
                                               storage: Storage) -> None:
    team = write(tmp_path / "team.csv", "username,password,projects\n"
                                        "bot,,sms:annotator\n"
                                        "dee,given-password,sms:reviewer\n")
    out = tmp_path / "secrets" / "team.csv"
    out.parent.mkdir()
    proc = run_cli("users", "import", team, "--out", out, "--tokens", data_dir=data_dir)
    assert proc.returncode == 0, proc.stderr
    assert mode(out) == 0o600
    secrets = read_secrets(out)
    assert secrets["bot"]["password"] == secrets["dee"]["password"] == ""  # given: not echoed
    with storage.sessions() as session, session.begin():
        for name in ("bot", "dee"):
            user = user_for_token(session, secrets[name]["token"])
            assert user is not None
            assert user.username == name
        bot = get_user_by_name(session, "bot")
        assert bot is not None
        assert bot.password_hash is None  # token access only
        assert authenticate_password(session, "dee", "given-password") is not None


def test_a_team_of_fifty_takes_seconds(tmp_path: Path, storage: Storage) -> None:
    """50 users with 75 memberships in one transaction with tokens: 0.5 s here, 3.3 s in a busy
    full test run. With generated passwords argon2 adds 0.15-0.35 s a password on two threads
    (5-18 s in all, docs/benchmarks.md), which no code of ours can shorten; one command per
    user and token, the way before this import, took 4.4 minutes for 50. The bound catches a
    slow step per user (a password hashed for a token user, a process or a commit each)."""
    rows = [f"person{i:02d},{'sms:annotator;news:reviewer' if i % 2 else 'sms:reviewer'}"
            for i in range(50)]
    team = write(tmp_path / "team.csv", "username,projects\n" + "\n".join(rows) + "\n")
    before = counts(storage)
    start = time.perf_counter()
    result = import_team_file(storage, team, tmp_path / "secrets.csv", tokens=True)
    seconds = time.perf_counter() - start
    assert len(result.created) == 50
    assert counts(storage)[:2] == (before[0] + 50, before[1] + 75)
    assert len(read_secrets(tmp_path / "secrets.csv")) == 50
    assert seconds < 10, f"a team of 50 took {seconds:.1f} s"


def test_bad_rows_are_all_reported_and_nothing_is_created(tmp_path: Path, data_dir: Path,
                                                          storage: Storage) -> None:
    team = write(tmp_path / "team.csv",
                 "username,project,role,admin,password\n"
                 "fine,sms,annotator,,\n"
                 "bad name,sms,boss,maybe,short\n"
                 "fine,nope,reviewer,,\n"
                 ",sms,,,\n"
                 "zed,,owner,,\n"
                 "also-fine,news,owner,,\n")
    out = tmp_path / "credentials.csv"
    before = counts(storage)
    proc = run_cli("users", "import", team, "--out", out, data_dir=data_dir)
    assert proc.returncode == 2
    assert proc.stdout == ""
    assert proc.stderr.splitlines() == [
        "error: team.csv: 8 problems, nothing was created:",
        "  line 3: invalid username 'bad name': use 1-64 letters, digits or _.@-",
        "  line 3: unknown role 'boss' for project 'sms': use owner, reviewer, annotator",
        "  line 3: admin must be true or false, got 'maybe'",
        "  line 3: password too short: 5 characters, use at least 8 (or leave it empty to have "
        "one generated)",
        "  line 4: username 'fine' is already on line 2: one row per user",
        "  line 4: no project 'nope': give a project's name or id (`activelabel project list` "
        "shows them)",
        "  line 5: username is empty",
        "  line 6: role 'owner' without a project: fill the project column",
    ]
    assert counts(storage) == before
    assert not out.exists()
    assert list(tmp_path.glob(".credentials.csv.*")) == []


@pytest.mark.slow
def test_the_secrets_file_is_never_overwritten_without_force(tmp_path: Path, data_dir: Path,
                                                             storage: Storage) -> None:
    team = write(tmp_path / "team.csv", "username\neve\n")
    out = write(tmp_path / "credentials.csv", "earlier secrets\n")
    out.chmod(0o644)
    before = counts(storage)
    proc = run_cli("users", "import", team, "--out", out, data_dir=data_dir)
    assert proc.returncode == 2
    assert proc.stderr.strip() == (f"error: {out} already exists: pass --force to overwrite "
                                   "it, or --out another file (it would hold new passwords and "
                                   "tokens); nothing was created")
    assert out.read_text() == "earlier secrets\n"
    assert counts(storage) == before
    proc = run_cli("users", "import", team, "--out", out, "--force", data_dir=data_dir)
    assert proc.returncode == 0, proc.stderr
    assert mode(out) == 0o600  # a new file, not the old one's mode
    assert list(read_secrets(out)) == ["eve"]


@pytest.mark.parametrize(("header", "message"), [
    ("user,role", "line 1: no username column (found: user, role); the columns are username, "
                  "project, role, projects, admin, password"),
    ("username,rol", "line 1: unknown column 'rol'; the columns are username, project, role, "
                     "projects, admin, password"),
])
def test_the_header_names_known_columns(tmp_path: Path, data_dir: Path, header: str,
                                        message: str) -> None:
    team = write(tmp_path / "team.csv", f"{header}\nann,annotator\n")
    proc = run_cli("users", "import", team, "--out", tmp_path / "c.csv", data_dir=data_dir)
    assert proc.returncode == 2
    assert proc.stderr.splitlines()[1:] == [f"  {message}"]


# ---- the labeling function on SQLite and PostgreSQL ------------------------------------------

def _names(n: int) -> list[str]:
    tag = uuid.uuid4().hex[:6]
    return [f"u{i}_{tag}" for i in range(n)]


def test_read_team_parses_every_form() -> None:
    team = read_team("\ufeffUsername, Projects ,Admin,password\n"
                     "ann,sms:reviewer; news ;a:b:owner,YES,\n"
                     "\n"
                     "bob,,no,pass word ok\n", "t.csv")
    assert team.problems == ()
    ann, bob = team.rows
    assert (ann.line, ann.memberships, ann.admin) == (
        2, (("sms", "reviewer"), ("news", "annotator"), ("a:b", "owner")), True)
    assert (bob.line, bob.memberships, bob.admin, bob.password) == (4, (), False, "pass word ok")


def test_import_team_creates_users_memberships_and_audit(engine_storage: Storage) -> None:
    storage = engine_storage
    new, old = _names(2), _names(1)[0]
    project_name = f"team_{uuid.uuid4().hex[:6]}"
    with storage.sessions() as session, session.begin():
        owner = create_user(session, old, "old-password")
        session.flush()
        project = create_project(session, project_name, "classification", ["x", "y"],
                                 created_by=owner.id)
        project_id, old_hash = project.id, owner.password_hash
    text = ("username,project,role,admin\n"
            f"{new[0]},{project_name},reviewer,true\n"
            f"{new[1]},{project_id},,\n"
            f"{old},{project_name},annotator,true\n")  # existing owner: nothing changes
    with storage.sessions() as session, session.begin():
        audit_before = session.execute(select(func.count()).select_from(AuditEvent)).scalar_one()
        done = import_team(session, read_team(text), actor_id=None)
    assert done.created == new
    assert done.existing == [old]
    assert done.admins == [new[0]]
    assert done.memberships == [(new[0], project_name, "reviewer"),
                                (new[1], project_name, "annotator")]
    assert done.kept == [(old, project_name, "owner", "annotator")]
    assert [c.username for c in done.credentials] == new
    with storage.sessions() as session, session.begin():
        for cred in done.credentials:
            assert cred.password is not None
            assert cred.token is None
            assert authenticate_password(session, cred.username, cred.password) is not None
        kept = get_user_by_name(session, old)
        assert kept is not None
        assert (kept.is_admin, kept.password_hash) == (False, old_hash)
        events = session.execute(select(AuditEvent).order_by(AuditEvent.id)
                                 .offset(audit_before)).scalars().all()
        assert [(e.action, e.entity, e.project_id) for e in events] == [
            ("create", "user", None), ("create", "user", None),
            ("set_role", "member", project_id), ("set_role", "member", project_id)]
        assert events[0].after == {"username": new[0], "is_admin": True,
                                   "password": "generated", "token": False,
                                   "via": "users import"}
        assert not [e for e in events for c in done.credentials if str(c.password) in str(e.after)]


def test_import_team_with_a_bad_row_writes_nothing(engine_storage: Storage) -> None:
    storage = engine_storage
    good, dup = _names(2)
    text = ("username,projects\n"
            f"{good},\n"
            f"{dup},no_such_project_{uuid.uuid4().hex[:6]}:annotator\n"
            f"{dup},\n")
    with (storage.sessions() as session, session.begin(),
          pytest.raises(TeamFileError) as caught):
        import_team(session, read_team(text, "t.csv"))
    assert [p.split(":")[0] for p in caught.value.problems] == ["line 3", "line 4"]
    assert "no project 'no_such_project_" in caught.value.problems[0]
    assert f"username {dup!r} is already on line 3" in caught.value.problems[1]
    with storage.read_sessions() as session:
        assert get_user_by_name(session, good) is None
        assert get_user_by_name(session, dup) is None


def test_the_same_project_twice_in_a_row_is_refused(tmp_path: Path, data_dir: Path,
                                                    storage: Storage) -> None:
    """By name and by id it is one project: one role per project."""
    with storage.sessions() as session, session.begin():
        owner = create_user(session, "founder")
        project = create_project(session, "dup", "classification", ["a", "b"],
                                 created_by=owner.id)
        pid = project.id
    team = write(tmp_path / "team.csv", f"username,projects\nivy,dup:annotator;{pid}:reviewer\n")
    before = counts(storage)
    proc = run_cli("users", "import", team, "--out", tmp_path / "c.csv", data_dir=data_dir)
    assert proc.returncode == 2
    assert "line 2: project 'dup' is given twice (by name and by id)" in proc.stderr
    assert counts(storage) == before


def test_a_rerun_without_new_secrets_needs_no_force(tmp_path: Path, data_dir: Path) -> None:
    team = write(tmp_path / "team.csv", "username\nzoe\n")
    out = tmp_path / "credentials.csv"
    assert run_cli("users", "import", team, "--out", out, data_dir=data_dir).returncode == 0
    again = run_cli("users", "import", team, "--out", out, data_dir=data_dir)
    assert again.returncode == 0, again.stderr
    assert list(read_secrets(out)) == ["zoe"]  # the first run's file, untouched
