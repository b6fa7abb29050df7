"""Alembic environment: migrates the database in the configuration to SQLModel's metadata."""

from __future__ import annotations

from typing import Any

from alembic import context

from models.db import all_tables, make_engine

target_metadata = all_tables().metadata


def run_migrations() -> None:
    url = context.config.get_main_option("sqlalchemy.url")
    if context.is_offline_mode():
        context.configure(url=url, target_metadata=target_metadata, render_as_batch=True)
        with context.begin_transaction():
            context.run_migrations()
        return
    engine = make_engine(url, foreign_keys=False)
    with engine.connect() as connection:
        context.configure(
            connection=connection, target_metadata=target_metadata, render_as_batch=True
        )
        with context.begin_transaction():
            context.run_migrations()
            _check_foreign_keys(connection)
    engine.dispose()


def _check_foreign_keys(connection: Any) -> None:
    """With foreign keys off during the copy, prove no row lost its parent (else roll back)."""
    if connection.dialect.name != "sqlite":
        return
    broken = connection.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
    if broken:
        tables = sorted({row[0] for row in broken})
        raise RuntimeError(
            f"migration left {len(broken)} rows without their parent row in {', '.join(tables)}"
        )


run_migrations()
