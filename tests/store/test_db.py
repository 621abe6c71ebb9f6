"""Engines, pragmas, migrations (idempotent, concurrent, matching the models), dialect helpers."""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, inspect, select, text
from sqlalchemy.orm import Session

from activelabel.store import create_engine_for, default_url, migrate, session_factory
from activelabel.store.db import (
    alembic_config,
    commit_without_waiting_for_flush,
    for_update_skip_locked,
    on_transaction_end,
    upsert,
)
from activelabel.store.models import Base, Item, Membership


def test_migrated_schema_matches_the_models(engine: Engine) -> None:
    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        assert compare_metadata(context, Base.metadata) == []


def test_a_schema_difference_is_detected(engine: Engine) -> None:
    """The comparison above can fail: a model column missing from the schema shows up."""
    from sqlalchemy import Column, Integer, MetaData, Table

    extra = MetaData()
    for table in Base.metadata.tables.values():
        table.to_metadata(extra)
    Table("items", extra, Column("surplus", Integer), extend_existing=True)
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), extra)
    assert any(d[0] == "add_column" and d[3].name == "surplus" for d in diff)


def test_migrate_is_idempotent(fresh_engine: Engine) -> None:
    migrate(fresh_engine)
    migrate(fresh_engine)
    with fresh_engine.connect() as conn:
        version = conn.execute(text("SELECT version_num FROM alembic_version")).scalars().all()
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert version == [head]
    assert "annotations" in inspect(fresh_engine).get_table_names()


def test_concurrent_migrations_do_not_collide(backend: str, tmp_path: Path,
                                              request: pytest.FixtureRequest) -> None:
    from tests.support.databases import drop_schema, new_schema

    if backend == "sqlite":
        engines = [create_engine_for(f"sqlite:///{tmp_path / 'race.db'}") for _ in range(4)]
        schema = None
    else:
        admin = request.getfixturevalue("pg_admin")
        first, schema = new_schema(admin)
        engines = [first, *(create_engine_for(first.url.render_as_string(hide_password=False))
                            for _ in range(3))]
    errors: list[BaseException] = []
    barrier = threading.Barrier(len(engines))

    def run(engine: Engine) -> None:
        barrier.wait()
        try:
            migrate(engine)
        except BaseException as exc:  # collected for the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(e,)) for e in engines]
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert errors == []
        with engines[0].connect() as conn:
            assert conn.execute(text("SELECT count(*) FROM alembic_version")).scalar() == 1
    finally:
        for e in engines:
            e.dispose()
        if schema is not None:
            drop_schema(request.getfixturevalue("pg_admin"), schema)


def test_sqlite_connections_use_wal_and_foreign_keys(tmp_path: Path) -> None:
    engine = create_engine_for(data_dir=tmp_path / "data")
    assert engine.url.database == str((tmp_path / "data" / "activelabel.db").resolve())
    with engine.connect() as conn:
        pragma = {name: conn.exec_driver_sql(f"PRAGMA {name}").scalar()
                  for name in ("journal_mode", "foreign_keys", "busy_timeout", "synchronous")}
    assert pragma == {"journal_mode": "wal", "foreign_keys": 1, "busy_timeout": 30000,
                      "synchronous": 1}
    engine.dispose()


def test_sqlite_write_sessions_take_the_lock_and_readonly_ones_do_not(tmp_path: Path) -> None:
    engine = create_engine_for(default_url(tmp_path))
    migrate(engine)
    writer = session_factory(engine)()
    writer.execute(select(1))  # BEGIN IMMEDIATE: the write lock is held from here on
    raw = sqlite3.connect(tmp_path / "activelabel.db", timeout=0, isolation_level=None)
    with pytest.raises(sqlite3.OperationalError, match="locked"):
        raw.execute("BEGIN IMMEDIATE")
    raw.close()
    reader = session_factory(engine, readonly=True)()
    assert reader.execute(select(Item.id)).all() == []  # a reader is not held up
    reader.close()
    writer.close()
    engine.dispose()


def test_a_waiting_writer_gets_in_between_another_process_s_short_transactions(
        tmp_path: Path) -> None:
    """A long write made of short transactions with a pause after each (a round's ranking on
    SQLite) must not hold the API's writers up for the whole write: each gets the lock at the
    next pause. SQLite's own busy handler polls ever more rarely (up to every 100 ms) and
    missed the pauses; the writers waited for the whole write."""
    engine = create_engine_for(default_url(tmp_path))
    migrate(engine)
    holder = sqlite3.connect(tmp_path / "activelabel.db", timeout=30, isolation_level=None,
                             check_same_thread=False)
    chunk, pause, chunks = 0.12, 0.01, 16
    stop = threading.Event()

    def long_write() -> None:
        for _ in range(chunks):
            holder.execute("BEGIN IMMEDIATE")
            time.sleep(chunk)
            holder.execute("COMMIT")
            time.sleep(pause)
        stop.set()

    thread = threading.Thread(target=long_write)
    thread.start()
    waits: list[float] = []
    writers = session_factory(engine)
    time.sleep(0.12)
    while not stop.is_set() and len(waits) < 8:
        began = time.monotonic()
        with writers() as session, session.begin():
            session.execute(select(1))  # BEGIN IMMEDIATE: waits for the lock
            waits.append(time.monotonic() - began)
        time.sleep(0.053)  # start again at another point of the holder's cycle
    thread.join()
    holder.close()
    engine.dispose()
    assert len(waits) == 8
    # At most the rest of one chunk and the poll's gap (a loaded machine: some slack).
    assert max(waits) < chunk + 0.06, [round(w * 1000) for w in waits]


def test_url_forms(tmp_path: Path) -> None:
    assert create_engine_for("postgresql://u@h:5432/d").dialect.driver == "psycopg"
    with pytest.raises(ValueError, match="in-memory"):
        create_engine_for("sqlite:///:memory:")
    with pytest.raises(ValueError, match="unsupported"):
        create_engine_for("mysql://x")
    with pytest.raises(ValueError, match="data_dir"):
        create_engine_for()


def test_skip_locked_only_on_postgresql() -> None:
    stmt = select(Item.id)
    assert "SKIP LOCKED" in str(for_update_skip_locked(stmt, "postgresql").compile(
        dialect=create_engine_for("postgresql://u@h/d").dialect))
    assert for_update_skip_locked(stmt, "sqlite") is stmt


def test_upsert_replaces_the_conflicting_row(session, project, owner) -> None:  # type: ignore[no-untyped-def]
    dialect = session.get_bind().dialect.name
    stmt = upsert(Membership.__table__, dialect, ["project_id", "user_id"], ["role"])
    session.execute(stmt.values(project_id=project.id, user_id=owner.id, role="reviewer"))
    role = session.execute(select(Membership.role).where(
        Membership.project_id == project.id, Membership.user_id == owner.id)).scalar_one()
    assert role == "reviewer"


def test_switching_to_wal_waits_for_a_writer_of_a_new_file(tmp_path: Path) -> None:
    """SQLite refuses the switch at once ("database is locked", busy timeout or not) while
    another connection writes a new rollback-journal file: the switch must wait for it."""
    from activelabel.store.db import _enable_wal

    path = tmp_path / "new.db"
    writer = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    writer.execute("BEGIN IMMEDIATE")
    writer.execute("CREATE TABLE t (x)")
    release = threading.Timer(0.3, lambda: writer.execute("COMMIT"))
    release.start()
    try:
        other = sqlite3.connect(path, isolation_level=None, timeout=5)
        _enable_wal(other.cursor())
        assert other.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        other.close()
    finally:
        release.join()
        writer.close()


def test_label_counts_are_backfilled_from_the_revisions(fresh_engine: Engine) -> None:
    """Migration 0005 computes ``items.n_labels`` from the revisions stored before it."""
    from alembic import command

    from activelabel.store import annotate, create_project, create_user, undo
    from activelabel.store.items import add_items, item_ids_for_rows

    sessions = session_factory(fresh_engine)
    with sessions() as session, session.begin():
        a, b = create_user(session, "mig_a"), create_user(session, "mig_b")
        project = create_project(session, "mig", "classification", ["x", "y"])
        add_items(session, project.id, [{"external_id": f"m{i}", "data": {}} for i in range(3)])
        first, second, third = item_ids_for_rows(session, project.id, [0, 1, 2])
        head = annotate(session, project.id, a.id, first, ["x"])
        annotate(session, project.id, b.id, first, ["y"])
        annotate(session, project.id, a.id, first, ["y"], supersedes=head.id)
        annotate(session, project.id, a.id, second, ["x"])
        undo(session, project.id, a.id, second)
        ids = (first, second, third)
    with fresh_engine.begin() as conn:
        command.downgrade(alembic_config(conn), "0004")
        assert "n_labels" not in {c["name"] for c in inspect(conn).get_columns("items")}
    migrate(fresh_engine)
    with sessions() as session:
        counts = dict(session.execute(select(Item.id, Item.n_labels)).all())
    assert [counts[i] for i in ids] == [2, 0, 0]
    with sessions() as session, session.begin():  # the checks 0009 and 0010 widen hold again
        create_project(session, "mig spans", "spans", ["PER"])
        session.execute(text("UPDATE annotations SET kind = 'imported' WHERE id = :id"),
                        {"id": head.id})


@pytest.fixture
def pg_only_engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    from tests.support.databases import new_engine

    yield from new_engine("postgresql", request, tmp_path)


def _backend_pid(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(text("SELECT pg_backend_pid()")).scalar_one())


def _kill(admin: Engine, pid: int) -> None:
    with admin.connect() as conn:
        assert conn.execute(text("SELECT pg_terminate_backend(:p)"), {"p": pid}).scalar_one()
    time.sleep(0.2)  # the backend is gone once the signal is handled


def test_an_idle_pooled_connection_that_died_is_replaced_before_use(
        pg_only_engine: Engine, pg_admin: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    """A pooled connection idle past PING_AFTER_IDLE_S is pinged at checkout; a dead one is
    replaced, so the request never sees it."""
    from activelabel.store import db

    first = _backend_pid(pg_only_engine)
    _kill(pg_admin, first)
    monkeypatch.setattr(db, "PING_AFTER_IDLE_S", 0.0)
    assert _backend_pid(pg_only_engine) != first  # a new connection, no error


def test_a_connection_back_moments_ago_is_not_pinged_and_a_dead_one_heals_the_pool(
        pg_only_engine: Engine, pg_admin: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    """Within PING_AFTER_IDLE_S no ping is sent (no round trip per request); if the server
    dropped the connection meanwhile, the one statement that finds out fails and the pool is
    invalidated, so the next checkout works."""
    from sqlalchemy.exc import OperationalError

    from activelabel.store import db

    monkeypatch.setattr(db, "PING_AFTER_IDLE_S", 3600.0)
    pings: list[int] = []
    real_ping = pg_only_engine.dialect.do_ping
    monkeypatch.setattr(pg_only_engine.dialect, "do_ping",
                        lambda c: pings.append(1) or real_ping(c))
    first = _backend_pid(pg_only_engine)
    assert _backend_pid(pg_only_engine) == first
    assert pings == []
    _kill(pg_admin, first)
    with pytest.raises(OperationalError):
        _backend_pid(pg_only_engine)
    assert _backend_pid(pg_only_engine) != first


def test_commit_without_waiting_for_flush_holds_for_its_transaction_only(engine: Engine) -> None:
    factory = session_factory(engine)
    postgres = engine.dialect.name == "postgresql"
    with factory() as session, session.begin():
        commit_without_waiting_for_flush(session)
        if postgres:
            assert session.execute(text("SHOW synchronous_commit")).scalar() == "off"
    with factory() as session, session.begin():
        if postgres:
            assert session.execute(text("SHOW synchronous_commit")).scalar() == "on"
        else:  # nothing to set: SQLite's commits in WAL mode never wait for a sync
            assert session.execute(text("PRAGMA synchronous")).scalar() == 1


def test_on_transaction_end_runs_once_for_the_outer_transaction_not_its_savepoints(
        engine: Engine) -> None:
    seen: list[str] = []

    def watch(session: Session) -> None:
        on_transaction_end(session, committed=lambda: seen.append("committed"),
                           rolled_back=lambda: seen.append("rolled back"))

    with Session(engine) as session, session.begin():
        watch(session)
        with session.begin_nested():  # a savepoint released: not the end
            pass
        nested = session.begin_nested()
        nested.rollback()  # a savepoint rolled back: not the end either
        assert seen == []
    assert seen == ["committed"]
    seen.clear()
    with Session(engine) as session:
        session.begin()
        watch(session)
        session.rollback()
    assert seen == ["rolled back"]
    seen.clear()
    with Session(engine) as session:
        session.begin()
        watch(session)
    assert seen == ["rolled back"]  # closed without a commit

    def fails() -> None:
        raise OSError("a file could not be removed")

    with Session(engine) as session, session.begin():  # logged, never raised into the commit
        on_transaction_end(session, committed=fails, rolled_back=fails)
