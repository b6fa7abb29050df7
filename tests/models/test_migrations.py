"""The migrations build exactly the schema the models declare."""

from __future__ import annotations

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from core.errors import SchemaMismatch
from models.db import all_tables, check_schema, get_engine, make_engine, upgrade


def test_migrations_match_the_models(database_url: str) -> None:
    with get_engine(database_url).connect() as connection:
        differences = compare_metadata(
            MigrationContext.configure(connection), all_tables().metadata
        )

    assert differences == []


def test_a_populated_database_of_the_last_release_upgrades_with_its_rows(tmp_path) -> None:
    """0006 was the last released schema; later migrations copy `orders` (SQLite alters a table
    by copying it), which failed on a database with order lines while foreign keys were on."""
    url = f"sqlite:///{tmp_path / 'old.db'}"
    upgrade(url, "0006")
    engine = make_engine(url)
    with engine.begin() as connection:
        for statement in OLD_WORLD:
            connection.exec_driver_sql(statement)
    engine.dispose()

    with pytest.raises(SchemaMismatch, match="at migration 0006.*run `sopflow db upgrade`"):
        check_schema(make_engine(url))
    upgrade(url)

    with get_engine(url).connect() as connection:
        lines = connection.exec_driver_sql(
            "SELECT o.total_fen, l.quantity FROM order_line l JOIN orders o ON o.id = l.order_id"
        ).all()
        assert connection.exec_driver_sql("PRAGMA foreign_key_check").all() == []
    assert [tuple(row) for row in lines] == [(798, 2)]


OLD_WORLD = [
    "INSERT INTO store (id, code, name, city) VALUES (1, 'bj01', '北京店', '北京')",
    "INSERT INTO staff (id, userid, name, store_id, role) VALUES (1, 'zw', '张伟', 1, 'advisor')",
    "INSERT INTO customer (id, external_userid, name, region, store_id, owner_staff_id, tier, "
    "is_paid_member, stage, stage_since, added_at, contact_state, order_count, total_spent_fen) "
    "VALUES (1, 'wm1', '王芳', '北京', 1, 1, 'bronze', 0, 'new', '2026-11-01 00:00:00', "
    "'2026-11-01 00:00:00', 'active', 1, 798)",
    "INSERT INTO product (id, sku, name, category, unit, list_price_fen) "
    "VALUES (1, 'F001', '鸡蛋', 'fresh', '斤', 599)",
    "INSERT INTO orders (id, customer_id, store_id, placed_at, total_fen, saved_fen, status) "
    "VALUES (1, 1, 1, '2026-11-20 02:00:00', 798, 0, 'paid')",
    "INSERT INTO order_line (id, order_id, product_id, quantity, price_fen) VALUES (1, 1, 1, 2, 399)",
]
