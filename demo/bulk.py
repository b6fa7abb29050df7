"""Fast bulk inserts of tuples through the raw DBAPI connection, for SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from models.db import make_engine

# Indexes whose keys arrive in random order during a load: dropped on SQLite and rebuilt at the
# end, which is cheaper than updating them row by row. Indexes whose keys arrive in order (ids,
# customer ids) or that lead with a few distinct values stay live.
DEFERRED_INDEXES = (
    "ix_customer_stage",
    "ix_customer_last_order_at",
    "ix_orders_placed_at",
    "ix_order_line_product_id",
)

# Tables with an integer `id` whose PostgreSQL sequence must follow the explicit ids we insert.
ID_TABLES = (
    "store",
    "staff",
    "product",
    "tag",
    "deal",
    "campaign",
    "campaign_item",
    "customer_group",
    "customer",
    "orders",
    "order_line",
    "stage_transition",
    "event",
)

SQLITE_CACHE_KIB = 262_144  # 256 MiB page cache during the load only


class BulkWriter:
    """Inserts batches of tuples into one open transaction and counts the rows per table."""

    def __init__(self, dbapi_connection: Any, dialect: str) -> None:
        self.dbapi = dbapi_connection
        self.dialect = dialect
        self.counts: dict[str, int] = {}
        self._cursor = dbapi_connection.cursor()

    def insert(self, table: str, columns: Sequence[str], rows: Sequence[tuple[Any, ...]]) -> None:
        """Insert `rows` (tuples in `columns` order) into `table`."""
        self.counts[table] = self.counts.get(table, 0) + len(rows)
        if not rows:
            return
        names = ", ".join(columns)
        if self.dialect == "postgresql":
            from psycopg2.extras import execute_values

            sql = f"INSERT INTO {table} ({names}) VALUES %s"
            execute_values(self._cursor, sql, rows, page_size=5000)
            return
        marks = ", ".join("?" * len(columns))
        self._cursor.executemany(f"INSERT INTO {table} ({names}) VALUES ({marks})", rows)

    def execute(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """Run one statement (qmark placeholders are translated for PostgreSQL)."""
        if self.dialect == "postgresql":
            sql = sql.replace("?", "%s")
        self._cursor.execute(sql, tuple(params))
        if self._cursor.description is None:
            return []
        return list(self._cursor.fetchall())

    def executemany(self, sql: str, rows: Sequence[tuple[Any, ...]]) -> None:
        """Run one statement for many parameter tuples."""
        if self.dialect == "postgresql":
            sql = sql.replace("?", "%s")
        self._cursor.executemany(sql, rows)

    def timestamp(self, value: dt.datetime) -> str:
        """`value` as the text the UTCDateTime column stores (naive UTC on SQLite)."""
        utc = value.astimezone(dt.UTC).replace(tzinfo=None)
        text = utc.strftime("%Y-%m-%d %H:%M:%S.%f")
        return text + timestamp_suffix(self.dialect)


def timestamp_suffix(dialect: str) -> str:
    """What follows 'YYYY-MM-DD HH:MM:SS.ffffff' in a stored timestamp on `dialect`."""
    return "+00:00" if dialect == "postgresql" else ""


@contextmanager
def bulk_session(url: str) -> Iterator[BulkWriter]:
    """One transaction on a private connection, tuned for a bulk load and restored after."""
    engine = make_engine(url)
    try:
        raw = engine.raw_connection()
        try:
            dbapi = raw.dbapi_connection
            dialect = engine.dialect.name
            if dialect == "sqlite":
                with _sqlite_load(dbapi) as writer:
                    yield writer
            else:
                with _postgres_load(dbapi) as writer:
                    yield writer
        finally:
            raw.close()
    finally:
        engine.dispose()


@contextmanager
def _sqlite_load(dbapi: Any) -> Iterator[BulkWriter]:
    previous_isolation = dbapi.isolation_level
    dbapi.isolation_level = None  # we issue BEGIN / COMMIT ourselves
    cursor = dbapi.cursor()
    for pragma in (
        "PRAGMA foreign_keys=OFF",
        "PRAGMA synchronous=OFF",
        f"PRAGMA cache_size=-{SQLITE_CACHE_KIB}",
        "PRAGMA temp_store=MEMORY",
    ):
        cursor.execute(pragma)
    writer = BulkWriter(dbapi, "sqlite")
    try:
        cursor.execute("BEGIN")
        indexes = _drop_sqlite_indexes(writer)
        yield writer
        for sql in indexes:
            cursor.execute(sql)
        cursor.execute("COMMIT")
    except BaseException:
        if dbapi.in_transaction:
            cursor.execute("ROLLBACK")
        raise
    finally:
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA cache_size=-2000")
        dbapi.isolation_level = previous_isolation


def _drop_sqlite_indexes(writer: BulkWriter) -> list[str]:
    marks = ", ".join("?" * len(DEFERRED_INDEXES))
    rows = writer.execute(
        "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL "
        f"AND name IN ({marks}) ORDER BY name",
        DEFERRED_INDEXES,
    )
    for name, _sql in rows:
        writer.execute(f'DROP INDEX "{name}"')
    return [sql for _name, sql in rows]


@contextmanager
def _postgres_load(dbapi: Any) -> Iterator[BulkWriter]:
    writer = BulkWriter(dbapi, "postgresql")
    try:
        yield writer
        for table in ID_TABLES:
            writer.execute(
                f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                f"COALESCE((SELECT MAX(id) FROM {table}), 0) + 1, false)"
            )
        dbapi.commit()
    except BaseException:
        dbapi.rollback()
        raise
