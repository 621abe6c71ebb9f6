"""Engines, sessions, migrations, and every difference between SQLite and PostgreSQL.

SQLite (the default) is one file under a data directory, in WAL mode with foreign keys on. Its
write transactions start with ``BEGIN IMMEDIATE`` so that a transaction which reads and then
writes (claiming a task, appending a revision) takes the single write lock up front instead of
failing half way; sessions from ``session_factory(engine, readonly=True)`` start a plain
deferred ``BEGIN`` and never block writers. PostgreSQL is chosen by URL
(``postgresql+psycopg://postgres@127.0.0.1:5432/test``) and serialises queue claims with
``SELECT ... FOR UPDATE SKIP LOCKED``.
"""

from __future__ import annotations

import logging
import sqlite3
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

from alembic import command
from alembic.config import Config
from sqlalchemy import (
    ARRAY,
    ColumnElement,
    Engine,
    Select,
    Table,
    any_,
    bindparam,
    create_engine,
    event,
    text,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection
from sqlalchemy.exc import DisconnectionError, SQLAlchemyError
from sqlalchemy.orm import Session, SessionTransaction, sessionmaker
from sqlalchemy.sql.dml import Insert

__all__ = [
    "DB_FILENAME",
    "MIGRATIONS_DIR",
    "alembic_config",
    "backend_of",
    "bind_value",
    "bulk_insert",
    "commit_without_waiting_for_flush",
    "create_engine_for",
    "default_url",
    "dialect_of",
    "for_update",
    "for_update_skip_locked",
    "in_values",
    "insert_ignore",
    "is_postgresql",
    "migrate",
    "on_transaction_end",
    "refresh_statistics",
    "session_factory",
    "upsert",
]

DB_FILENAME = "activelabel.db"
MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
#: Key of the PostgreSQL advisory lock held while migrating (any constant bigint).
MIGRATION_LOCK_KEY = 0x6163746C6162  # "actlab"
#: How long a SQLite connection waits for the write lock before "database is locked".
SQLITE_BUSY_TIMEOUT_MS = 30_000
#: How long one try at SQLite's write lock (``BEGIN IMMEDIATE``) waits in SQLite's own busy
#: handler before the next try. The handler sleeps longer the longer it has waited (1, 2, 5,
#: 10 ... then 100 ms between polls), so a writer that has waited a while polls so rarely
#: that it misses the moments another process's chunked writes leave the lock free, and a
#: long write made in short transactions still holds it up for the whole write. Short tries,
#: started again until :data:`SQLITE_BUSY_TIMEOUT_MS`, keep it polling every few ms.
SQLITE_BEGIN_TRY_MS = 10
#: A pooled PostgreSQL connection idle this long is pinged before it is handed out.
PING_AFTER_IDLE_S = 5.0
_READONLY = "activelabel_readonly"

SelectT = TypeVar("SelectT", bound=Select[Any])


def default_url(data_dir: str | Path) -> str:
    """SQLite URL of the database file inside ``data_dir`` (created if missing)."""
    path = Path(data_dir).expanduser().resolve()
    path.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{path / DB_FILENAME}"


def create_engine_for(url: str | None = None, *, data_dir: str | Path | None = None,
                      echo: bool = False) -> Engine:
    """Engine for ``url``; without a URL, the SQLite file under ``data_dir``.

    PostgreSQL URLs use the psycopg 3 driver (``postgresql+psycopg://user@host:port/db``); a
    bare ``postgresql://`` is rewritten to it.
    """
    if url is None:
        if data_dir is None:
            raise ValueError("create_engine_for needs a database URL or a data_dir; pass "
                             "data_dir='~/.local/share/activelabel' for the SQLite default")
        url = default_url(data_dir)
    if url.startswith(("postgresql://", "postgres://")):
        url = "postgresql+psycopg://" + url.split("://", 1)[1]
    if backend_of(url) == "sqlite":
        return _sqlite_engine(url, echo)
    return _postgresql_engine(url, echo)


def backend_of(url: str) -> str:
    """``"sqlite"`` or ``"postgresql"``: the database a URL names (ValueError for others)."""
    if url.startswith("sqlite"):
        return "sqlite"
    if url.startswith(("postgresql", "postgres://")):
        return "postgresql"
    raise ValueError(f"unsupported database URL {url!r}: use sqlite:///PATH or "
                     "postgresql+psycopg://USER@HOST:PORT/DB")


def _postgresql_engine(url: str, echo: bool) -> Engine:
    engine = create_engine(url, echo=echo, pool_size=10, max_overflow=20)
    event.listen(engine, "checkin", _note_checkin)
    event.listen(engine, "checkout", _ping_if_idle(engine))
    return engine


def _note_checkin(_dbapi_connection: Any, record: Any) -> None:
    record.info["activelabel_idle_since"] = time.monotonic()


def _ping_if_idle(engine: Engine) -> Any:
    """A checkout hook that pings a pooled connection idle for :data:`PING_AFTER_IDLE_S` or
    more, and replaces it when the ping fails (the server restarted, a proxy dropped it).

    Instead of ``pool_pre_ping``, which costs a round trip on every checkout (one per request):
    a connection back from a request moments ago is alive. Should the server go away anyway,
    the failing statement invalidates the whole pool, so only requests in flight see it.
    """
    def checkout(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        since = record.info.get("activelabel_idle_since")
        if since is None or time.monotonic() - since < PING_AFTER_IDLE_S:
            return
        try:
            engine.dialect.do_ping(dbapi_connection)
        except Exception as exc:  # any failure: this connection is unusable
            raise DisconnectionError(f"pooled connection failed its ping: {exc}") from exc

    return checkout


def _sqlite_engine(url: str, echo: bool) -> Engine:
    if ":memory:" in url or url.rstrip("/") == "sqlite:":
        raise ValueError("an in-memory SQLite database cannot be shared between sessions; "
                         "pass a file URL such as sqlite:///path/to/activelabel.db")
    engine = create_engine(url, echo=echo, pool_size=10, max_overflow=20,
                           connect_args={"check_same_thread": False,
                                         "timeout": SQLITE_BUSY_TIMEOUT_MS / 1000})
    event.listen(engine, "connect", _sqlite_on_connect)
    event.listen(engine, "begin", _sqlite_on_begin)
    return engine


def _sqlite_on_connect(dbapi_connection: Any, _record: Any) -> None:
    # Let SQLAlchemy's "begin" event emit BEGIN itself (the driver's implicit BEGIN is
    # deferred and would defeat BEGIN IMMEDIATE and savepoints).
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
    _enable_wal(cursor)
    cursor.execute("PRAGMA foreign_keys = ON")
    cursor.execute("PRAGMA synchronous = NORMAL")
    # freed space (an emptied payload's old bytes) is overwritten with zeros, whatever the
    # library's build default: a purge leaves nothing of the payload in the file
    cursor.execute("PRAGMA secure_delete = ON")
    cursor.close()


#: How long :func:`truncate_wal` waits for readers of older snapshots to finish (writers
#: wait meanwhile).
WAL_TRUNCATE_WAIT_MS = 250


def truncate_wal(engine: Engine) -> bool:
    """Fold a SQLite database's write-ahead log into the file and empty the log (where the
    pages written before, old payloads among them, stay until overwritten); True when done.
    Waits up to :data:`WAL_TRUNCATE_WAIT_MS` for readers of older snapshots, else False (try
    again later: SQLite's own checkpoints do not empty the file). PostgreSQL: nothing to do
    here (True)."""
    if engine.dialect.name != "sqlite":
        return True
    raw = engine.raw_connection()
    try:
        driver = raw.driver_connection
        assert driver is not None
        driver.execute(f"PRAGMA busy_timeout = {WAL_TRUNCATE_WAIT_MS}")
        try:
            busy = driver.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()[0]
        except sqlite3.OperationalError as exc:
            _log.warning("the write-ahead log was not emptied (%s); tried again later", exc)
            return False
        finally:
            driver.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
        if busy:
            _log.info("the write-ahead log was not emptied: readers of older snapshots held "
                      "it past %d ms; tried again later", WAL_TRUNCATE_WAIT_MS)
        return not busy
    finally:
        raw.close()


def _enable_wal(cursor: Any) -> None:
    """Switch the file to WAL. While another connection switches a new file, SQLite answers
    "database is locked" at once (its busy handler does not cover this), so wait and retry, up
    to the busy timeout."""
    _retry_while_locked(lambda: cursor.execute("PRAGMA journal_mode = WAL"), pause=0.02)


def _retry_while_locked(statement: Callable[[], Any], *, pause: float) -> None:
    """Run ``statement`` until SQLite no longer answers "database is locked", ``pause``
    seconds apart, up to :data:`SQLITE_BUSY_TIMEOUT_MS`."""
    deadline = time.monotonic() + SQLITE_BUSY_TIMEOUT_MS / 1000
    while True:
        try:
            statement()
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            if pause:
                time.sleep(pause)


def _sqlite_on_begin(conn: Connection) -> None:
    if conn.get_execution_options().get(_READONLY, False):
        conn.exec_driver_sql("BEGIN")
        return
    dbapi = conn.connection.dbapi_connection
    assert dbapi is not None
    begin_immediate(dbapi)


def begin_immediate(dbapi_connection: Any) -> None:
    """``BEGIN IMMEDIATE`` on a SQLite driver connection, waiting for the write lock up to
    :data:`SQLITE_BUSY_TIMEOUT_MS` in tries of :data:`SQLITE_BEGIN_TRY_MS` (see there why).
    The connection's busy timeout is back to :data:`SQLITE_BUSY_TIMEOUT_MS` afterwards, for
    the statements of the transaction."""
    dbapi_connection.execute(f"PRAGMA busy_timeout = {SQLITE_BEGIN_TRY_MS}")
    try:  # each try waits SQLITE_BEGIN_TRY_MS in SQLite's handler: no pause of its own
        _retry_while_locked(lambda: dbapi_connection.execute("BEGIN IMMEDIATE"), pause=0.0)
    finally:
        dbapi_connection.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")


def session_factory(engine: Engine, *, readonly: bool = False) -> sessionmaker[Session]:
    """Session maker; ``readonly=True`` sessions never take SQLite's write lock.

    Objects stay usable after commit (``expire_on_commit=False``). Use a read-only session for
    long reads (a round loading labels) so writers are not held up; writing in one is an error
    on SQLite only when another writer got in first.
    """
    bind = engine.execution_options(**{_READONLY: True}) if readonly else engine
    return sessionmaker(bind=bind, expire_on_commit=False)


def commit_without_waiting_for_flush(session: Session) -> None:
    """Let the session's transaction commit without waiting for its write-ahead log to reach
    the disk (PostgreSQL's ``synchronous_commit = off`` for this transaction only; nothing on
    SQLite, whose commits in WAL mode with ``synchronous = NORMAL`` never wait for a sync).

    For transactions whose loss in a crash of the database server is harmless, a lease being
    the example: should the server crash within a fraction of a second of the commit, the
    transaction may be gone, as if it had not run, and the database stays consistent. The
    commit itself is then about as cheap as a statement (6-10 ms less per lease here). A
    later ordinary commit, a label on the leased item say, makes it durable too (the log
    is flushed in order). Call it before the transaction's first write."""
    if dialect_of(session) == "postgresql":
        session.execute(text("SET LOCAL synchronous_commit = off"))


def dialect_of(session_or_conn: Session | Connection) -> str:
    """``"sqlite"`` or ``"postgresql"`` for the connection this session talks to."""
    bind = session_or_conn.get_bind() if isinstance(session_or_conn, Session) else session_or_conn
    return bind.dialect.name


def is_postgresql(session: Session) -> bool:
    return dialect_of(session) == "postgresql"


def for_update_skip_locked(stmt: SelectT, dialect: str) -> SelectT:
    """Lock the selected rows, skipping rows other transactions hold (PostgreSQL).

    On SQLite the statement is returned unchanged: the whole write transaction already holds
    the database's single write lock (``BEGIN IMMEDIATE``), so claims are serialised.

    The lock is ``FOR NO KEY UPDATE`` (as for :func:`for_update`): it excludes other writers
    of the row but not the key-share locks that inserting a row which references it takes.
    """
    if dialect == "postgresql":
        return stmt.with_for_update(skip_locked=True, key_share=True)
    return stmt


def for_update(stmt: SelectT, dialect: str, *, of: Any = None) -> SelectT:
    """Lock the selected rows until commit (PostgreSQL); unchanged on SQLite (see above).

    ``FOR NO KEY UPDATE``, not ``FOR UPDATE``: no caller changes a key, and a full ``FOR
    UPDATE`` of a project row would block every insert referencing the project (a lease, an
    annotation: their foreign-key checks take key-share locks) until the holder commits. A
    round recording its results while annotators lease and label items then deadlocked: the
    round held the project and waited for an item row that a request held while its insert
    waited for the project.
    """
    if dialect == "postgresql":
        return stmt.with_for_update(of=of, key_share=True)
    return stmt


def in_values(column: Any, values: Sequence[Any], dialect: str) -> Any:
    """``column IN (values)``; on PostgreSQL one array parameter (``= ANY(:values)``), which
    parses far faster than thousands of separate parameters."""
    if dialect == "postgresql":
        return column == any_(bindparam(None, list(values), type_=ARRAY(column.type)))
    return column.in_(list(values))


def _dialect_insert(table: Any, dialect: str) -> Any:
    if dialect == "postgresql":
        return postgresql.insert(table)
    if dialect == "sqlite":
        return sqlite.insert(table)
    raise ValueError(f"unsupported dialect {dialect!r}: expected sqlite or postgresql")


def upsert(table: Any, dialect: str, index_elements: Sequence[str],
           update_columns: Sequence[str]) -> Insert:
    """``INSERT ... ON CONFLICT (index_elements) DO UPDATE SET update_columns = excluded``."""
    stmt = _dialect_insert(table, dialect)
    return stmt.on_conflict_do_update(
        index_elements=list(index_elements),
        set_={name: getattr(stmt.excluded, name) for name in update_columns},
    )


def insert_ignore(table: Any, dialect: str, index_elements: Sequence[str] = ()) -> Insert:
    """``INSERT ... ON CONFLICT (index_elements) DO NOTHING``; without ``index_elements``, a
    conflict on any unique constraint or index inserts nothing."""
    stmt = _dialect_insert(table, dialect)
    return stmt.on_conflict_do_nothing(index_elements=list(index_elements) or None)


def bind_value(session: Session, column: ColumnElement[Any], value: Any) -> Any:
    """``value`` as the driver receives it for ``column`` (type processing applied once)."""
    dialect = session.get_bind().dialect
    processor = column.type.dialect_impl(dialect).bind_processor(dialect)
    return value if processor is None else processor(value)


def bulk_insert(session: Session, table: Table, columns: Sequence[str],
                rows: Sequence[Sequence[Any]]) -> None:
    """Insert driver-ready rows fast, in the session's transaction.

    PostgreSQL streams them with ``COPY ... FROM STDIN``; SQLite uses the driver's
    ``executemany``. Values bypass SQLAlchemy's type processing: pass JSON as text and
    timestamps through :func:`bind_value`.
    """
    if not rows:
        return
    dbapi_conn = session.connection().connection.dbapi_connection
    assert dbapi_conn is not None
    quote = session.get_bind().dialect.identifier_preparer.quote
    names = ", ".join(quote(c) for c in columns)
    cursor = dbapi_conn.cursor()
    try:
        if dialect_of(session) == "postgresql":
            with cursor.copy(f"COPY {quote(table.name)} ({names}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
        else:
            marks = ", ".join("?" for _ in columns)
            cursor.executemany(f"INSERT INTO {quote(table.name)} ({names}) VALUES ({marks})",
                               rows)
    finally:
        cursor.close()


def alembic_config(connection: Connection | None = None) -> Config:
    """Alembic configuration built in code (no alembic.ini): scripts shipped in the package."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def migrate(engine: Engine, revision: str = "head") -> None:
    """Bring the schema to ``revision``; idempotent, safe when several processes start at once.

    The upgrade runs in one transaction. PostgreSQL first takes a transaction-scoped advisory
    lock, so a second process waits and then finds the schema current; on SQLite the
    ``BEGIN IMMEDIATE`` write lock does the same.
    """
    with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK_KEY})
        command.upgrade(alembic_config(conn), revision)


def refresh_statistics(session: Session, table: str) -> None:
    """Let the query planner see ``table`` as it is now, after a bulk insert.

    PostgreSQL plans the task queue from table statistics; right after thousands of rows
    arrive (an import) they still describe the empty table, and the planner sorts the whole
    pool instead of walking the index: ``ANALYZE`` fixes that. SQLite's ``PRAGMA optimize``
    analyzes only where it helps.
    """
    if table not in _ANALYZABLE:
        raise ValueError(f"unknown table {table!r}: one of {', '.join(sorted(_ANALYZABLE))}")
    if dialect_of(session) == "postgresql":
        session.execute(text(f"ANALYZE {table}"))
    else:
        session.execute(text("PRAGMA optimize"))


_ANALYZABLE = frozenset({"items", "annotations", "assignments"})


def schema_revision(url: str) -> str | None:
    """The migration revision of the database at ``url`` (None before the first)."""
    engine = create_engine_for(url)
    try:
        with engine.connect() as conn:
            return conn.execute(text("SELECT version_num FROM alembic_version")).scalar()
    except SQLAlchemyError:
        return None
    finally:
        engine.dispose()


def holds_projects(url: str) -> bool:
    """Whether the database at ``url`` holds any project (False for an empty database)."""
    engine = create_engine_for(url)
    try:
        with engine.connect() as conn:
            return conn.execute(text("SELECT 1 FROM projects LIMIT 1")).first() is not None
    except SQLAlchemyError:  # no such table: an empty database
        return False
    finally:
        engine.dispose()


_log = logging.getLogger("activelabel.store")


def on_transaction_end(session: Session, *, committed: Callable[[], None],
                       rolled_back: Callable[[], None]) -> None:
    """Run ``committed`` once the session's outermost transaction commits, else
    ``rolled_back`` once it ends without committing (rolled back, or closed); savepoints do
    not count. What they do is outside the transaction (files): an error there is logged,
    never raised into the commit that already happened."""
    done: list[bool] = []

    def run(then: Callable[[], None]) -> None:
        done.append(True)
        try:
            then()
        except Exception:
            _log.exception("after the transaction: %s failed", getattr(then, "__name__", then))

    def on_commit(current: Session) -> None:
        if not done and not current.in_nested_transaction():
            run(committed)

    def on_end(_current: Session, transaction: SessionTransaction) -> None:
        if not done and transaction.parent is None and not transaction.nested:
            run(rolled_back)

    event.listen(session, "after_commit", on_commit)
    event.listen(session, "after_transaction_end", on_end)
