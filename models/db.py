"""The database engine, sessions, and schema upgrades through Alembic."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache, partial
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, event, inspect
from sqlmodel import Session, SQLModel, create_engine

from core.errors import SchemaMismatch
from core.settings import get_settings

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
READONLY = "sopflow_readonly"  # execution option: a session that only reads


def all_tables() -> type[SQLModel]:
    """Import every table module so SQLModel.metadata knows the whole schema."""
    from models import (  # noqa: F401
        callbacks,  # noqa: F401
        commerce,
        coupons,  # noqa: F401
        delivery,
        directory,  # noqa: F401
        media,  # noqa: F401
        members,  # noqa: F401
        partitions,  # noqa: F401
        people,
        restraint,
        review,
        tag_push,  # noqa: F401
        trigger_steps,  # noqa: F401
    )

    return SQLModel


def make_engine(url: str, *, foreign_keys: bool = True) -> Engine:
    """An engine for `url`; SQLite gets WAL, a busy timeout and foreign keys (migrations turn
    them off: SQLite alters a table by copying it, and dropping the old one would fail)."""
    if url.startswith("sqlite"):
        path = url.split(":///", 1)[-1]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        busy = get_settings().sqlite_busy_seconds
        connect_args = {
            "check_same_thread": False,
            "timeout": busy,
            "cached_statements": CACHED_STATEMENTS,
        }
        engine = create_engine(url, connect_args=connect_args)
        pragmas = partial(_sqlite_pragmas, busy_ms=int(busy * 1000), foreign_keys=foreign_keys)
        event.listen(engine, "connect", pragmas)
        event.listen(engine, "begin", _sqlite_begin)
        event.listen(engine, "checkin", _sqlite_checkin)
        return engine
    return create_engine(url, pool_pre_ping=True, pool_size=8, max_overflow=8)


def _sqlite_pragmas(
    dbapi_connection: Any, _record: Any, *, busy_ms: int, foreign_keys: bool
) -> None:
    # SQLAlchemy starts transactions itself (below), not the sqlite3 module.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute(f"PRAGMA foreign_keys={'ON' if foreign_keys else 'OFF'}")
    cursor.execute(f"PRAGMA busy_timeout={busy_ms:d}")
    cursor.execute(f"PRAGMA cache_size=-{IDLE_CACHE_KB:d}")
    cursor.execute("PRAGMA wal_autocheckpoint=10000")  # checkpoint the WAL in bigger steps
    cursor.close()


# Bulk writes of a whole batch touch thousands of index pages: a write transaction keeps them in
# memory until its commit. Reads, and connections idle in the pool, get by with a few MB (pages
# come back from the OS's file cache), else every pooled connection keeps its own 64 MB of pages
# (the pool hands them out in turn) and the worker's memory grows with the database (#17).
WRITE_CACHE_KB = 65536
IDLE_CACHE_KB = 4096
# Compiled statements a connection keeps (the sqlite3 module's default is 128): a bulk INSERT of
# 1,500 rows compiles to ~1 MB, and each pooled connection would keep a hundred of them.
CACHED_STATEMENTS = 32


def _sqlite_begin(connection: Any) -> None:
    # A transaction that reads, then writes, must take the write lock up front: a deferred one
    # fails at once with "database is locked" when another connection wrote in between, instead
    # of waiting for busy_timeout. Read-only sessions read a snapshot and never wait for writers.
    readonly = connection.get_execution_options().get(READONLY, False)
    if not readonly:
        connection.exec_driver_sql(f"PRAGMA cache_size=-{WRITE_CACHE_KB:d}")
    connection.exec_driver_sql("BEGIN" if readonly else "BEGIN IMMEDIATE")


def _sqlite_checkin(dbapi_connection: Any, _record: Any) -> None:
    # Back in the pool (its transaction ended): give a write transaction's pages back.
    if dbapi_connection is not None:
        dbapi_connection.execute(f"PRAGMA cache_size=-{IDLE_CACHE_KB:d}")


@lru_cache(maxsize=4)
def _engine_for(url: str) -> Engine:
    engine = make_engine(url)
    check_schema(engine)
    return engine


@lru_cache(maxsize=1)
def head_revision() -> str:
    """The revision this sopflow's migrations end at."""
    from alembic.script import ScriptDirectory

    return str(ScriptDirectory.from_config(alembic_config("sqlite://")).get_current_head())


def check_schema(engine: Engine) -> None:
    """Refuse a database that was migrated, but not to this sopflow's head: after an upgrade of
    sopflow its queries would fail on a missing column with a traceback. A database without a
    schema yet passes (`sopflow db upgrade`, `demo-data` and `make up` create it)."""
    with engine.connect() as connection:
        if not inspect(connection).has_table("alembic_version"):
            return
        found = connection.exec_driver_sql("SELECT version_num FROM alembic_version").scalar()
    head = head_revision()
    if found is None or found == head:
        return
    newer = found > head  # revisions are zero-padded numbers: 0007 < 0012
    raise SchemaMismatch(
        f"the database's schema is at migration {found}, "
        + (
            f"newer than this sopflow knows ({head}): run the sopflow version that migrated it"
            if newer
            else f"this sopflow needs {head}: run `sopflow db upgrade` (`make up` does it too)"
        )
    )


def get_engine(url: str | None = None) -> Engine:
    """The process-wide engine for `url` (default: the configured database)."""
    return _engine_for(url or get_settings().database_url)


def dispose_engines() -> None:
    """Forget every cached engine (tests switching databases call this)."""
    _engine_for.cache_clear()
    _readonly_engine_for.cache_clear()


@lru_cache(maxsize=4)
def _readonly_engine_for(url: str) -> Engine:
    return _engine_for(url).execution_options(**{READONLY: True})


@contextmanager
def session_scope(url: str | None = None, *, readonly: bool = False) -> Iterator[Session]:
    """A session that commits on success and rolls back on error; `readonly` ones don't queue behind writers."""
    url = url or get_settings().database_url
    engine = _readonly_engine_for(url) if readonly else get_engine(url)
    with Session(engine, expire_on_commit=False) as session:
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise


def alembic_config(url: str | None = None) -> Any:
    """Alembic's configuration for this project, built in code (no alembic.ini needed)."""
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.set_main_option(
        "sqlalchemy.url", (url or get_settings().database_url).replace("%", "%%")
    )
    return config


def upgrade(url: str | None = None, revision: str = "head") -> None:
    """Bring the schema of `url` up to `revision`."""
    from alembic import command

    command.upgrade(alembic_config(url), revision)


def is_empty(url: str | None = None) -> bool:
    """Whether the database holds no customers yet (or no schema at all)."""
    engine = make_engine(url or get_settings().database_url)  # not pooled: bulk loads follow
    try:
        if not inspect(engine).has_table("customer"):
            return True
        with engine.connect() as conn:
            return conn.exec_driver_sql("SELECT 1 FROM customer LIMIT 1").first() is None
    finally:
        engine.dispose()
