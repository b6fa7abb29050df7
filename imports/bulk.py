"""Bulk INSERTs of an import chunk: plain executemany on the DBAPI cursor for SQLite, Core otherwise.

On SQLite, SQLAlchemy sends an INSERT … RETURNING whose ids must come back in order one row at a
time; inside the import's write transaction (BEGIN IMMEDIATE) the new rows are instead exactly those
above the table's highest id before the insert, read back in one range query.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Table, func, insert, select
from sqlmodel import Session


def insert_rows(session: Session, table: Table, rows: Sequence[dict[str, Any]]) -> None:
    """INSERT `rows` (dicts with the same keys) into `table`."""
    if not rows:
        return
    connection = session.connection()
    names = list(rows[0])
    left = [c for c in table.c if c.name not in names and not c.primary_key]
    defaults = {
        c.name: c.default.arg for c in left if c.default is not None and c.default.is_scalar
    }
    if connection.dialect.name != "sqlite" or any(
        c.default is not None and c.name not in defaults for c in left
    ):
        connection.execute(insert(table), list(rows))
        return
    if defaults:  # what Core would fill in: the model's plain defaults
        rows = [{**defaults, **r} for r in rows]
        names = list(rows[0])
    processors = [table.c[n].type._cached_bind_processor(connection.dialect) for n in names]
    statement = (
        f"INSERT INTO {table.name} ({', '.join(names)}) VALUES ({', '.join('?' * len(names))})"
    )
    if any(processors):
        pairs = list(zip(names, processors, strict=True))
        params: Any = [tuple(p(r[n]) if p else r[n] for n, p in pairs) for r in rows]
    else:
        params = [tuple(r[n] for n in names) for r in rows]
    cursor = connection.connection.driver_connection.cursor()  # type: ignore[union-attr]
    try:
        cursor.executemany(statement, params)
    finally:
        cursor.close()


def insert_with_ids(
    session: Session, table: Table, rows: Sequence[dict[str, Any]], key: tuple[str, ...]
) -> list[tuple[Any, ...]]:
    """INSERT `rows`; (id, *key) of each new row."""
    connection = session.connection()
    if connection.dialect.name != "sqlite":
        statement = insert(table).returning(
            table.c.id, *(table.c[c] for c in key), sort_by_parameter_order=True
        )
        return [tuple(row) for row in connection.execute(statement, list(rows))]
    before = connection.execute(select(func.coalesce(func.max(table.c.id), 0))).scalar_one()
    insert_rows(session, table, rows)
    columns = (table.c.id, *(table.c[c] for c in key))
    found = [tuple(row) for row in connection.execute(select(*columns).where(table.c.id > before))]
    if len(found) != len(rows):  # ids not handed out in order (SQLite past its largest rowid)
        keys = {tuple(r[c] for c in key) for r in rows}
        found = [f for f in connection.execute(select(*columns)) if tuple(f[1:]) in keys]
    return found
