"""The migrations build exactly the schema the models declare."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from models.db import all_tables, get_engine


def test_migrations_match_the_models(database_url: str) -> None:
    with get_engine(database_url).connect() as connection:
        differences = compare_metadata(
            MigrationContext.configure(connection), all_tables().metadata
        )

    assert differences == []
