"""Bulk SQL on the tables: multi-row INSERTs (COPY on PostgreSQL) that skip existing keys, and
UPDATEs by id lists, with values bound by their column types but without per-row work in SQLAlchemy."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import Any, TypeVar

from sqlalchemy import Connection, Integer, Table, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session

from models.delivery import Delivery

# Bulk UPDATEs go to the table, not the mapped class: no ORM bookkeeping per row changed.
DELIVERY: Table = Delivery.__table__  # type: ignore[attr-defined]
IN_LIMIT = 10_000  # bound values per IN list or multi-row INSERT (SQLite allows 32,766)
COPY_FROM_ROWS = 100  # PostgreSQL: smaller inserts stay one multi-row VALUES statement

T = TypeVar("T")


def chunked(items: Sequence[T], size: int = IN_LIMIT) -> Iterator[Sequence[T]]:
    """`items` in slices of at most `size`."""
    for start in range(0, len(items), size):
        yield items[start : start + size]


def dialect_insert(session: Session, table: Table) -> Any:
    """The dialect's INSERT for `table`, which knows ON CONFLICT."""
    dialect = session.get_bind().dialect.name
    return (postgresql.insert if dialect == "postgresql" else sqlite.insert)(table)


def insert_ignoring_duplicates(
    session: Session, table: Table, rows: Sequence[dict[str, Any]]
) -> None:
    """INSERT rows, silently keeping the existing row when a unique key already exists."""
    if not rows:
        return
    session.execute(dialect_insert(session, table).on_conflict_do_nothing(), list(rows))


def ids_in(ids: Iterable[int], session: Session | Connection) -> Any:
    """`delivery.id IN (...)` for a SELECT on `session`'s database (see `_ids_in_sql`)."""
    sql, params = _ids_in_sql(ids, _dialect_name(session), ":ids")
    return text(sql).bindparams(ids=params[0]) if params else text(sql)


def _dialect_name(bind: Session | Connection) -> str:
    return str(bind.get_bind().dialect.name if isinstance(bind, Session) else bind.dialect.name)


def _ids_in_sql(ids: Iterable[int], dialect_name: str, mark: str) -> tuple[str, list[str]]:
    """`delivery.id IN (...)` and its parameters: thousands of bound parameters cost SQLAlchemy
    more than the UPDATE itself, so the ids (ints, checked: they cannot carry SQL) go as text.

    SQLite keeps each distinct statement's compiled program per connection (the last 128): with
    the ids written into the SQL, every id list would be a new program of ~1 MB, and a pool of
    connections would hold hundreds of MB, more the larger the occurrence (#17). There the list
    is one JSON parameter of one statement."""
    listed = ", ".join(map(str, map(int, ids)))
    if dialect_name == "sqlite":
        return f"delivery.id IN (SELECT value FROM json_each({mark}))", [f"[{listed}]"]
    return f"delivery.id IN ({listed or 'NULL'})", []


def update_rows(
    session: Session,
    ids: Iterable[int],
    values: dict[str, Any],
    *,
    only_from: Sequence[str] = (),
    claimed_by: str | None = None,
    returning_ids: bool = False,
) -> Any:
    """UPDATE the Delivery rows with these ids (and a status in `only_from`, and claimed by the
    flow run `claimed_by`, if given) to `values`,
    as driver SQL with each value bound by its column's type: compiling a statement per id list
    would cost SQLAlchemy more than running it. The driver's result (rowcount, returned ids)."""
    connection = session.connection()
    dialect = connection.dialect
    mark = "?" if dialect.paramstyle == "qmark" else "%s"
    params: list[Any] = []
    for name, value in values.items():
        bind = _bind_processor(DELIVERY.c[name].type, dialect)
        params.append(bind(value) if bind else value)
    quote = dialect.identifier_preparer.quote
    statement = f"UPDATE delivery SET {', '.join(f'{quote(n)} = {mark}' for n in values)}"
    where, listed = _ids_in_sql(ids, dialect.name, mark)
    statement += f" WHERE {where}"
    params += listed
    if only_from:
        statement += f" AND delivery.status IN ({', '.join([mark] * len(only_from))})"
        params += only_from
    if claimed_by is not None:
        statement += f" AND delivery.flow_run_id = {mark}"
        params.append(claimed_by)
    if returning_ids:
        statement += " RETURNING delivery.id"
    return connection.exec_driver_sql(statement, tuple(params))


def insert_returning(
    session: Session,
    table: Table,
    columns: Sequence[str],
    rows: Sequence[Sequence[Any]],
    returning: Sequence[str],
) -> list[tuple[Any, ...]]:
    """INSERT rows (values in `columns` order), skipping rows whose unique key exists; the
    `returning` columns of the rows inserted. On PostgreSQL a batch goes through COPY
    (models/bulk_copy.py: 2.5x the VALUES for new rows, 4x for existing keys; README), elsewhere
    through multi-row VALUES."""
    if not rows:
        return []
    connection = session.connection()
    if connection.dialect.name == "postgresql" and len(rows) >= COPY_FROM_ROWS:
        from models.bulk_copy import copy_insert_returning

        return copy_insert_returning(connection, table, columns, rows, returning)
    return values_insert_returning(connection, table, columns, rows, returning)


def values_insert_returning(
    connection: Connection,
    table: Table,
    columns: Sequence[str],
    rows: Sequence[Sequence[Any]],
    returning: Sequence[str],
) -> list[tuple[Any, ...]]:
    """`insert_returning` in multi-row INSERT … VALUES statements.

    Values go to the driver as they are once each column type has bound them (a batch shares its
    timestamps, so each distinct value is bound once): no per-row work in SQLAlchemy. On SQLite
    the new rows' ids are counted, not returned (`_numbered`).
    """
    dialect = connection.dialect
    quote = dialect.identifier_preparer.quote
    binders = column_binders(table, columns, dialect)
    placeholder = "?" if dialect.paramstyle == "qmark" else "%s"
    values = "(" + ", ".join([placeholder] * len(columns)) + ")"
    head = f"INSERT INTO {quote(table.name)} ({', '.join(quote(c) for c in columns)}) VALUES "
    rowid = _rowid_key(table, columns, returning) if dialect.name == "sqlite" else None
    tail = " ON CONFLICT DO NOTHING"
    if rowid is None:
        tail += f" RETURNING {', '.join(quote(c) for c in returning)}"
    found: list[tuple[Any, ...]] = []
    for part in chunked(rows, max(1, 3 * IN_LIMIT // len(columns))):
        params: list[Any] = []
        for row in part:
            bound = list(row)
            for i, bind in binders:
                bound[i] = bind(bound[i])
            params.extend(bound)
        statement = head + ", ".join([values] * len(part)) + tail
        result = connection.exec_driver_sql(statement, tuple(params))
        if rowid is not None:
            found += _numbered(connection, table, rowid, columns, part, returning, result)
        else:
            found += result.tuples().all()
    return found


def _rowid_key(table: Table, columns: Sequence[str], returning: Sequence[str]) -> str | None:
    """The table's key when `_numbered` can answer for `returning`: it is SQLite's rowid (one
    INTEGER PRIMARY KEY column, given by SQLite) and every other column asked for was inserted."""
    key = list(table.primary_key.columns)
    if (
        len(key) == 1
        and key[0].name not in columns
        and isinstance(key[0].type, Integer)
        and all(name == key[0].name or name in columns for name in returning)
    ):
        return str(key[0].name)
    return None


def _numbered(
    connection: Connection,
    table: Table,
    key: str,
    columns: Sequence[str],
    rows: Sequence[Sequence[Any]],
    returning: Sequence[str],
    result: Any,
) -> list[tuple[Any, ...]]:
    """The `returning` values of the rows a SQLite INSERT … ON CONFLICT DO NOTHING just wrote.

    RETURNING hands rows back one `sqlite3_step` at a time, and Python's sqlite3 module lets go
    of the GIL around each, so with another thread busy in Python every row waits for its turn
    (10^5 rows beside a thread spinning in Python: 7x the time of the same INSERT without
    RETURNING, and a batch's INSERT in `make bench` always has such a neighbour). Instead:
    SQLite numbers new rows one above the largest id, in VALUES order, and the write lock this
    INSERT took keeps anyone else from numbering in between, so the new ids are the `inserted`
    ones ending at the last. A count of the ids from the first up proves it (SQLite numbers at
    random only once some row holds the largest possible id); when some rows already existed,
    the new ones are read back by id.
    """
    inserted, last = int(result.rowcount), result.lastrowid
    if inserted <= 0:
        return []
    quote = connection.dialect.identifier_preparer.quote
    first = last - inserted + 1
    where = f" FROM {quote(table.name)} WHERE {quote(key)} >= ?"
    counted, top = connection.exec_driver_sql(
        f"SELECT count(*), max({quote(key)})" + where, (first,)
    ).one()
    if (counted, top) != (inserted, last):
        raise RuntimeError(
            f"{table.name}: SQLite did not number the {inserted} new rows from {first} to {last}"
            " (a row holds the largest possible id?); their ids cannot be told"
        )
    if inserted < len(rows):  # some keys existed already: which rows are new is read back
        asked = ", ".join(quote(name) for name in returning)
        statement = f"SELECT {asked}" + where + f" ORDER BY {quote(key)}"
        return list(connection.exec_driver_sql(statement, (first,)).tuples())
    at = {name: i for i, name in enumerate(columns)}
    picks = [at.get(name) for name in returning]
    return [
        tuple(id_ if i is None else row[i] for i in picks)
        for id_, row in zip(range(first, last + 1), rows, strict=True)
    ]


def column_binders(table: Table, columns: Sequence[str], dialect: Any) -> list[tuple[int, Any]]:
    """(index, converter) for each of `columns` whose type converts values before the driver."""
    binders = [
        (i, memoized(_bind_processor(table.c[c].type, dialect))) for i, c in enumerate(columns)
    ]
    return [(i, bind) for i, bind in binders if bind is not None]


def _bind_processor(type_: Any, dialect: Any) -> Any:
    """What SQLAlchemy does to a value of `type_` before handing it to the driver, or None."""
    return type_.dialect_impl(dialect).bind_processor(dialect)


def memoized(bind: Any) -> Any:
    """`bind` (a value converter, or None), computed once per distinct value."""
    if bind is None:
        return None
    cache: dict[Any, Any] = {}

    def bound(value: Any) -> Any:
        try:
            return cache[value]
        except KeyError:
            cache[value] = result = bind(value)
            return result

    return bound
