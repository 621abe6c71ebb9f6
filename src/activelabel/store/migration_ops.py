"""Schema changes Alembic does not do on SQLite, for the migrations (``migrations/versions``)."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

__all__ = ["replace_check"]


def replace_check(table: str, name: str, old: str, new: str) -> None:
    """Replace the check ``old`` of ``table`` by ``new`` (``name``: the constraint's name
    before the naming convention, e.g. ``kind`` for ``ck_annotations_kind``).

    PostgreSQL drops and creates the constraint. SQLite cannot alter a check, and rebuilding
    the table would fire the cascades of the tables that refer to it (or break a table that
    refers to itself) with foreign keys on, so the table's stored definition is edited in
    place, as SQLite documents for checks: the rows already stored must satisfy ``new``.
    """
    bind = op.get_bind()
    if bind.dialect.name != "sqlite":
        op.drop_constraint(op.f(f"ck_{table}_{name}"), table, type_="check")
        op.create_check_constraint(name, table, sa.text(new))
        return
    query = sa.text("SELECT sql FROM sqlite_master WHERE type = 'table' AND name = :table")
    sql = bind.execute(query, {"table": table}).scalar_one()
    if old not in sql:
        raise RuntimeError(f"the {table} table has no check {old!r} to change: {sql}")
    version = int(bind.exec_driver_sql("PRAGMA schema_version").scalar_one())
    bind.exec_driver_sql("PRAGMA writable_schema = ON")
    bind.execute(sa.text("UPDATE sqlite_master SET sql = :sql WHERE type = 'table' "
                         "AND name = :table"), {"sql": sql.replace(old, new), "table": table})
    bind.exec_driver_sql(f"PRAGMA schema_version = {version + 1}")
    bind.exec_driver_sql("PRAGMA writable_schema = OFF")
