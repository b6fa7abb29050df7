"""PostgreSQL's bulk insert fast path: COPY a batch into a temporary table, then INSERT … SELECT
… ON CONFLICT DO NOTHING RETURNING into the real one (COPY itself cannot skip existing keys)."""

from __future__ import annotations

import datetime as dt
import io
import re
import zlib
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection, Table

_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})
_NEEDS_ESCAPE = re.compile(r"[\\\t\n\r]")


def copy_insert_returning(
    connection: Connection,
    table: Table,
    columns: Sequence[str],
    rows: Sequence[Sequence[Any]],
    returning: Sequence[str],
) -> list[tuple[Any, ...]]:
    """`models.bulk.insert_returning` through COPY, in the connection's transaction: rows whose
    unique key exists (in the table, or earlier in `rows`) are skipped, as with VALUES."""
    from models.bulk import column_binders

    quote = connection.dialect.identifier_preparer.quote
    names = ", ".join(quote(c) for c in columns)
    staging = quote(_staging_name(table.name, columns))
    # Same column types as the table, no constraints; emptied by each commit, kept for the next.
    connection.exec_driver_sql(
        f"CREATE TEMPORARY TABLE IF NOT EXISTS {staging} ON COMMIT DELETE ROWS AS "
        f"SELECT {names} FROM {quote(table.name)} WITH NO DATA"
    )
    connection.exec_driver_sql(f"TRUNCATE {staging}")  # an earlier batch of this transaction
    text = _copy_text(rows, column_binders(table, columns, connection.dialect))
    _copy_in(connection, f"COPY {staging} ({names}) FROM STDIN", text)
    result = connection.exec_driver_sql(
        f"INSERT INTO {quote(table.name)} ({names}) SELECT {names} FROM {staging} "
        f"ON CONFLICT DO NOTHING RETURNING {', '.join(quote(c) for c in returning)}"
    )
    return list(result.tuples().all())


def _staging_name(table: str, columns: Sequence[str]) -> str:
    return f"_bulk_{table}_{zlib.crc32(','.join(columns).encode()):08x}"


def _copy_text(rows: Sequence[Sequence[Any]], binders: list[tuple[int, Any]]) -> str:
    """`rows` in COPY's text format: tab-separated, `\\N` for NULL, backslash escapes. Built a
    column at a time: a value-by-value function call cost more than the COPY itself."""
    columns = [list(values) for values in zip(*rows, strict=True)]
    for i, bind in binders:
        columns[i] = list(map(bind, columns[i]))
    texts = [_column_text(values) for values in columns]
    return "\n".join(map("\t".join, zip(*texts, strict=True))) + "\n"


def _column_text(values: list[Any]) -> list[str]:
    if set(map(type, values)) <= {str, type(None)}:
        strings = [v for v in values if v is not None]
        if _NEEDS_ESCAPE.search("".join(strings)):
            values = [None if v is None else v.translate(_ESCAPES) for v in values]
        return ["\\N" if v is None else v for v in values]
    # Times, ids, enums: a batch repeats them (shared timestamps), so each distinct one once.
    try:
        text = {v: _field(v) for v in set(values)}
    except TypeError:  # unhashable values
        return [_field(v) for v in values]
    return [text[v] for v in values]


def _field(value: Any) -> str:
    if value is None:
        return "\\N"
    if isinstance(value, str):
        return value.translate(_ESCAPES)
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    if isinstance(value, bytes):
        return "\\\\x" + value.hex()
    return str(value)


def _copy_in(connection: Connection, statement: str, text: str) -> None:
    """COPY … FROM STDIN through whichever driver the engine uses (psycopg2 or psycopg 3)."""
    cursor = connection.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
    try:
        if hasattr(cursor, "copy_expert"):  # psycopg2
            cursor.copy_expert(statement, io.StringIO(text))
        else:  # psycopg 3
            with cursor.copy(statement) as copy:
                copy.write(text)
    finally:
        cursor.close()
