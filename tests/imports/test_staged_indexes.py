"""A staged first load rebuilds the order tables' indexes it dropped, and a rollback keeps them."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from imports.run import import_files
from tests.imports.test_staged_path import CLEAN, HEADER, _world


def _indexes(url: str) -> list[tuple[str, str, str | None]]:
    with sqlite3.connect(url.removeprefix("sqlite:///")) as connection:
        return connection.execute(
            "SELECT name, tbl_name, sql FROM sqlite_master WHERE type = 'index' "
            "AND tbl_name IN ('orders', 'order_line') ORDER BY name"
        ).fetchall()


def _plan(url: str, query: str) -> str:
    with sqlite3.connect(url.removeprefix("sqlite:///")) as connection:
        return " ".join(row[3] for row in connection.execute(f"EXPLAIN QUERY PLAN {query}"))


def test_a_first_load_into_empty_tables_leaves_every_index_as_it_was(
    migrated_sqlite: Path, tmp_path: Path
) -> None:
    url = _world(migrated_sqlite, tmp_path / "orders.db")
    before = _indexes(url)
    assert {"ix_orders_customer", "ix_order_line_product_id"} <= {name for name, *_ in before}
    path = tmp_path / "orders.csv"
    path.write_text(HEADER + "\n".join(CLEAN) + "\n", encoding="utf-8")
    [dry] = import_files("orders", [path], url=url, dry_run=True)
    assert dry.counts.new == 7 and not dry.written
    assert _indexes(url) == before  # dropped inside the rolled-back transaction: still there
    [done] = import_files("orders", [path], url=url)
    assert done.written and done.counts.new == 7
    assert _indexes(url) == before
    lines = "SELECT * FROM order_line WHERE product_id = 1"
    assert "USING INDEX ix_order_line_product_id" in _plan(url, lines)
    with sqlite3.connect(url.removeprefix("sqlite:///")) as connection:
        assert connection.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        per_member = (
            "SELECT count(*) FROM orders INDEXED BY ix_orders_member_id WHERE member_id > 0"
        )
        assert connection.execute(per_member).fetchone()[0] == 7


def test_new_orders_added_to_known_ones_keep_the_indexes(
    migrated_sqlite: Path, tmp_path: Path
) -> None:
    url = _world(migrated_sqlite, tmp_path / "orders.db")
    before = _indexes(url)
    text = HEADER + "\n".join(CLEAN) + "\n"
    more = text + "C9,M0002,S-SH01,2026-12-12 10:00:00,paid,B002,1,49,,,\n"
    for n, body in enumerate((text, more)):
        path = tmp_path / f"orders-{n}.csv"
        path.write_text(body, encoding="utf-8")
        [done] = import_files("orders", [path], url=url)
        assert done.written
    assert done.counts.new == 1 and done.counts.unchanged == 7
    assert _indexes(url) == before
