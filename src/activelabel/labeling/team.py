"""A team from one CSV file: users, their roles per project, and their secrets, in one go.

The file has a header row. ``username`` is required; the other columns are optional:

- ``project`` and ``role``: one project (a name or an id) and the role in it (owner, reviewer
  or annotator; annotator when left empty);
- ``projects``: several at once, ``sms:annotator;news:reviewer`` (a bare project name means
  annotator);
- ``admin``: true / false (also yes / no, 1 / 0; empty is false);
- ``password``: the user's password (8 characters or more); left empty, a strong one is
  generated, unless tokens are asked for.

:func:`read_team` parses the file, :func:`import_team` checks every row against the database
and then creates the missing users and memberships, all in the caller's transaction: one bad
row (bad username, unknown role or project, a username twice) and nothing is created, every
bad row reported with its line number. Existing users are left as they are (their password,
admin flag and tokens untouched); they only gain the memberships they do not have yet, and a
membership they already have keeps its role. :func:`import_team_file` runs the whole import
and writes the generated passwords and tokens to a file only its owner may read (mode 0600).
"""

from __future__ import annotations

import csv
import io
import os
import secrets
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO, TextIO

from sqlalchemy import select
from sqlalchemy.orm import Session

from ..store import (
    InvalidInput,
    Storage,
    add_member,
    create_token,
    create_user,
    record_audit,
)
from ..store.files import atomic_write
from ..store.models import ROLES, Membership, Project, Role, User
from ..store.users import MIN_PASSWORD_LENGTH, check_username, hash_password

__all__ = [
    "COLUMNS",
    "TOKEN_NAME",
    "Credential",
    "Team",
    "TeamFileError",
    "TeamImport",
    "TeamRow",
    "import_team",
    "import_team_file",
    "read_team",
    "write_credentials",
]

#: The columns a team file may have (``username`` is required).
COLUMNS = ("username", "project", "role", "projects", "admin", "password")
#: Name of the API tokens made by an import.
TOKEN_NAME = "users import"
_TRUE = {"true", "yes", "1", "y"}
_FALSE = {"false", "no", "0", "n", ""}
#: Length in bytes of a generated password's randomness (24 URL-safe characters, 144 bits).
_PASSWORD_BYTES = 18


class TeamFileError(InvalidInput):
    """Bad rows in a team file; ``problems`` holds one ``line N: ...`` sentence per problem."""

    def __init__(self, source: str, problems: Sequence[str]) -> None:
        self.source = source
        self.problems = list(problems)
        n = len(self.problems)
        super().__init__(f"{source}: {n} problem{'s' if n != 1 else ''}, nothing was created: "
                         + "; ".join(self.problems))


@dataclass(frozen=True)
class TeamRow:
    """One user of the file: ``memberships`` are (project as written, role) pairs."""

    line: int
    username: str
    memberships: tuple[tuple[str, str], ...] = ()
    admin: bool = False
    password: str | None = None


@dataclass(frozen=True)
class Team:
    """A parsed team file: its rows and the problems found without the database."""

    source: str
    rows: tuple[TeamRow, ...]
    problems: tuple[str, ...] = ()


@dataclass(frozen=True)
class Credential:
    """Secrets generated for a new user, shown once: a password, an API token, or both."""

    username: str
    password: str | None
    token: str | None


@dataclass
class TeamImport:
    """What an import did."""

    created: list[str] = field(default_factory=list)
    admins: list[str] = field(default_factory=list)
    existing: list[str] = field(default_factory=list)
    #: (username, project name, role) added
    memberships: list[tuple[str, str, str]] = field(default_factory=list)
    #: (username, project name, role kept, role the file asked for), left as they were
    kept: list[tuple[str, str, str, str]] = field(default_factory=list)
    credentials: list[Credential] = field(default_factory=list)


def read_team(text: str, source: str = "team file") -> Team:
    """Parse a team CSV (header row first). A header without ``username`` or with an unknown
    column raises :class:`TeamFileError`; the rows' problems are collected in
    :attr:`Team.problems` (:func:`import_team` raises them with those the database shows)."""
    reader = csv.DictReader(io.StringIO(text.removeprefix("\ufeff")))
    header = [(name or "").strip().lower() for name in reader.fieldnames or []]
    if "username" not in header:
        found = ", ".join(h for h in header if h) or "no header row"
        raise TeamFileError(source, [f"line 1: no username column (found: {found}); the "
                                     f"columns are {', '.join(COLUMNS)}"])
    unknown = [h for h in header if h not in COLUMNS]
    if unknown:
        raise TeamFileError(source, [f"line 1: unknown column {', '.join(map(repr, unknown))}; "
                                     f"the columns are {', '.join(COLUMNS)}"])
    reader.fieldnames = header
    rows: list[TeamRow] = []
    problems: list[str] = []
    first_line: dict[str, int] = {}
    for raw in reader:
        line = reader.line_num
        if not any((v or "").strip() for k, v in raw.items() if k is not None):
            continue  # blank line
        row, row_problems = _parse_row(line, raw)
        problems += [f"line {line}: {p}" for p in row_problems]
        if row.username in first_line:
            problems.append(f"line {line}: username {row.username!r} is already on line "
                            f"{first_line[row.username]}: one row per user")
        elif row.username:
            first_line[row.username] = line
        rows.append(row)
    if not rows and not problems:
        problems.append("line 2: no users: add one row per user under the header")
    return Team(source, tuple(rows), tuple(problems))


def _parse_row(line: int, raw: dict[str | None, Any]) -> tuple[TeamRow, list[str]]:
    problems: list[str] = []
    if raw.get(None):
        problems.append(f"{len(raw[None])} more field(s) than the header has columns: quote "
                        "values that hold commas")
    value = {k: (v or "") for k, v in raw.items() if k is not None}
    username = value.get("username", "").strip()
    if not username:
        problems.append("username is empty")
    else:
        try:
            check_username(username)
        except InvalidInput as exc:
            problems.append(exc.message)
    memberships = _memberships(value, problems)
    admin_text = value.get("admin", "").strip().lower()
    if admin_text not in _TRUE | _FALSE:
        problems.append(f"admin must be true or false, got {value['admin']!r}")
    password = value.get("password") or None
    if password is not None and len(password) < MIN_PASSWORD_LENGTH:
        problems.append(f"password too short: {len(password)} characters, use at least "
                        f"{MIN_PASSWORD_LENGTH} (or leave it empty to have one generated)")
    return TeamRow(line, username, tuple(memberships), admin_text in _TRUE, password), problems


def _memberships(value: dict[str, str], problems: list[str]) -> list[tuple[str, str]]:
    """(project, role) pairs of the ``project``/``role`` and ``projects`` columns."""
    pairs: list[tuple[str, str]] = []
    project, role = value.get("project", "").strip(), value.get("role", "").strip().lower()
    if project:
        pairs.append((project, role or Role.ANNOTATOR.value))
    elif role:
        problems.append(f"role {role!r} without a project: fill the project column")
    for part in value.get("projects", "").split(";"):
        if part.strip():
            name, _, part_role = part.rpartition(":") if ":" in part else (part, "", "")
            pairs.append((name.strip(), part_role.strip().lower() or Role.ANNOTATOR.value))
    seen: set[str] = set()
    for name, pair_role in pairs:
        if pair_role not in ROLES:
            problems.append(f"unknown role {pair_role!r} for project {name!r}: use "
                            f"{', '.join(ROLES)}")
        if not name:
            problems.append("a project without a name in the projects column: write "
                            "project:role pairs separated by ;")
        if name in seen:
            problems.append(f"project {name!r} is given twice: one role per project")
        seen.add(name)
    return pairs


def _resolve_projects(session: Session, rows: Iterable[TeamRow]
                      ) -> dict[str, tuple[int, str] | None]:
    """Each project reference of the rows -> (id, name) of the project it names (by id when
    it is a number that is some project's id, else by name), None when there is none."""
    refs = {name for row in rows for name, _ in row.memberships}
    if not refs:
        return {}
    projects = [(int(i), str(n)) for i, n in session.execute(select(Project.id, Project.name))]
    by_id = {str(p[0]): p for p in projects}
    by_name = {p[1]: p for p in projects}
    return {ref: by_id[ref] if ref in by_id else by_name.get(ref) for ref in refs}


def _existing_users(session: Session, names: Sequence[str]) -> dict[str, User]:
    found: dict[str, User] = {}
    for start in range(0, len(names), 500):
        stmt = select(User).where(User.username.in_(names[start:start + 500]))
        found.update((u.username, u) for u in session.execute(stmt).scalars())
    return found


def _check_against_database(session: Session, team: Team
                            ) -> tuple[dict[str, tuple[int, str] | None], dict[str, User]]:
    projects = _resolve_projects(session, team.rows)
    problems = list(team.problems)
    for row in team.rows:
        problems += [f"line {row.line}: no project {ref!r}: give a project's name or id "
                     "(`activelabel project list` shows them)"
                     for ref, _ in row.memberships if ref and projects.get(ref) is None]
        named = [found for ref, _ in row.memberships if (found := projects.get(ref)) is not None]
        twice = sorted({p[1] for p in named if named.count(p) > 1})
        problems += [f"line {row.line}: project {name!r} is given twice (by name and by id): "
                     "one role per project" for name in twice]
    if problems:
        problems.sort(key=lambda p: int(p.split(":")[0].removeprefix("line ")))
        raise TeamFileError(team.source, problems)
    return projects, _existing_users(session, [row.username for row in team.rows])


def _hash_all(passwords: Sequence[str]) -> list[str]:
    """argon2 hashes of ``passwords`` on threads (argon2 runs without the GIL)."""
    if len(passwords) < 2:
        return [hash_password(p) for p in passwords]
    with ThreadPoolExecutor(max_workers=min(8, os.cpu_count() or 1)) as pool:
        return list(pool.map(hash_password, passwords))


def import_team(session: Session, team: Team, *, tokens: bool = False,
                actor_id: int | None = None) -> TeamImport:
    """Create the team's missing users and memberships in the caller's transaction.

    A new user gets the password of the file or, left empty, a generated one; with ``tokens``
    an API token instead of a generated password (a password in the file is still set). The
    generated secrets come back in :attr:`TeamImport.credentials`, the only place they exist.
    One audit event per created user and per added membership. Raises :class:`TeamFileError`
    listing every bad row before anything is written.
    """
    projects, existing = _check_against_database(session, team)
    new_rows = [row for row in team.rows if row.username not in existing]
    generated = {row.username: secrets.token_urlsafe(_PASSWORD_BYTES) for row in new_rows
                 if row.password is None and not tokens}
    to_hash = {row.username: row.password or generated[row.username] for row in new_rows
               if row.password is not None or row.username in generated}
    hashes = dict(zip(to_hash, _hash_all(list(to_hash.values())), strict=True))
    result = TeamImport(existing=[row.username for row in team.rows if row.username in existing])
    users = dict(existing)
    for row in new_rows:
        users[row.username] = _create(session, row, hashes.get(row.username), tokens,
                                      generated.get(row.username), actor_id, result)
    held = _held_roles(session, [u.id for u in existing.values()])
    for row in team.rows:
        user = users[row.username]
        for ref, role in row.memberships:
            project = projects[ref]
            assert project is not None
            _join(session, user, project, role, held.get((project[0], user.id)), actor_id,
                  result)
    return result


def _create(session: Session, row: TeamRow, password_hash: str | None, tokens: bool,
            generated: str | None, actor_id: int | None, result: TeamImport) -> User:
    user = create_user(session, row.username, None, is_admin=row.admin)
    user.password_hash = password_hash
    session.flush()
    token = create_token(session, user.id, TOKEN_NAME)[1] if tokens else None
    record_audit(session, "create", "user", user.id, actor_id=actor_id,
                 after={"username": user.username, "is_admin": row.admin,
                        "password": "given" if row.password else
                        ("generated" if generated else None),
                        "token": tokens, "via": "users import"})
    result.created.append(row.username)
    if row.admin:
        result.admins.append(row.username)
    if generated is not None or token is not None:
        result.credentials.append(Credential(row.username, generated, token))
    return user


def _held_roles(session: Session, user_ids: Sequence[int]) -> dict[tuple[int, int], str]:
    """(project id, user id) -> role, for the memberships the existing users already have."""
    if not user_ids:
        return {}
    stmt = select(Membership.project_id, Membership.user_id, Membership.role).where(
        Membership.user_id.in_(user_ids))
    return {(p, u): role for p, u, role in session.execute(stmt)}


def _join(session: Session, user: User, project: tuple[int, str], role: str, held: str | None,
          actor_id: int | None, result: TeamImport) -> None:
    project_id, name = project
    if held is not None:
        if held != role:
            result.kept.append((user.username, name, held, role))
        return
    add_member(session, project_id, user.id, role)
    record_audit(session, "set_role", "member", user.id, project_id=project_id,
                 actor_id=actor_id, before=None,
                 after={"username": user.username, "role": role, "via": "users import"})
    result.memberships.append((user.username, name, role))


def write_credentials(out: TextIO, credentials: Sequence[Credential]) -> None:
    """CSV ``username,password,token``; an empty cell where nothing was generated."""
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["username", "password", "token"])
    writer.writerows([c.username, c.password or "", c.token or ""] for c in credentials)


def import_team_file(storage: Storage, team_file: Path, out: Path, *, tokens: bool = False,
                     force: bool = False) -> TeamImport:
    """Import ``team_file`` in one transaction and write the generated secrets to ``out``.

    ``out`` is created readable and writable by its owner only (0600), and must not exist
    unless ``force`` (checked when there are secrets to write). It is written in full before
    the transaction commits: if it cannot be written, nothing is created; if the commit fails,
    it is removed again and a file it replaced is put back. Without generated secrets (no new
    user, or every password given in the file) no file is written.
    """
    if not out.parent.is_dir():
        raise InvalidInput(f"cannot write {out}: no folder {out.parent}; create it first")
    try:
        text = team_file.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InvalidInput(f"file not found: {team_file}") from None
    except UnicodeDecodeError as exc:
        raise InvalidInput(f"{team_file} is not UTF-8 text ({exc.reason} at byte "
                           f"{exc.start}): save it as UTF-8 CSV") from None
    team = read_team(text, team_file.name)
    placed = False
    previous = out.with_name(f".{out.name}.previous")
    kept = False
    try:
        with storage.sessions() as session, session.begin():
            result = import_team(session, team, tokens=tokens)
            if result.credentials:
                if force and os.path.lexists(out):
                    os.replace(out, previous)  # put back if the commit fails
                    kept = True
                _place_secrets(out, result.credentials, force=force)
                placed = True
    except BaseException:
        if placed:
            out.unlink(missing_ok=True)
        if kept:
            os.replace(previous, out)
        raise
    if kept:
        previous.unlink(missing_ok=True)
    return result


def _place_secrets(out: Path, credentials: Sequence[Credential], *, force: bool) -> None:
    """Write to a private temporary file beside ``out``, then move it into place."""

    def write(handle: BinaryIO) -> None:
        text = io.TextIOWrapper(handle, encoding="utf-8", newline="")
        write_credentials(text, credentials)
        text.flush()
        text.detach()  # the handle stays open: atomic_write syncs and closes it

    try:
        atomic_write(out, write, mode=0o600, overwrite=force)
    except FileExistsError:
        raise InvalidInput(f"{out} already exists: pass --force to overwrite it, or --out "
                           "another file (it would hold new passwords and tokens); nothing "
                           "was created") from None
