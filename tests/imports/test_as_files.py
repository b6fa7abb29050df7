"""The demo world written as import files and imported into an empty database is the same world."""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path
from typing import Any

from sqlalchemy import text

from demo.as_files import IMPORT_ORDER, member_no, order_no, write_as_files
from demo.world import load_demo_world
from imports.run import import_files
from models.db import get_engine, make_engine

DAY = dt.date(2026, 12, 1)
# What each table carries through the files, by the chain's own keys (ids differ between the two
# databases). Not carried, because no import file has them: customers themselves and everything
# hung on them (WeCom ids, tags, groups, stages, events, opt-outs) come from the WeCom sync; an
# order's customer_id comes from linking its member to that contact; a campaign's sop_id and
# status are set by `sopflow campaign schedule`.
SAME = {
    "stores": "SELECT code, name, city FROM store",
    "staff": "SELECT s.userid, s.name, st.code, s.role FROM staff s LEFT JOIN store st ON st.id = s.store_id",
    "products": "SELECT sku, name, category, unit, list_price_fen FROM product",
    "deals": "SELECT d.day, d.slot, d.region, p.sku, d.category, d.price_fen, d.list_price_fen,"
    " d.limit_per_order, d.stock, d.position FROM deal d JOIN product p ON p.id = d.product_id",
    "campaign": "SELECT c.code, c.name, c.starts_at, c.ends_at, p.sku, i.price_fen,"
    " i.competitor_name, i.competitor_price_fen, i.stock FROM campaign_item i"
    " JOIN campaign c ON c.id = i.campaign_id JOIN product p ON p.id = i.product_id",
    "lines": "SELECT {order_no}, p.sku, l.quantity, l.price_fen FROM order_line l"
    " JOIN orders o ON o.id = l.order_id JOIN product p ON p.id = l.product_id",
    "orders": "SELECT {order_no}, st.code, o.placed_at, o.status, o.total_fen, o.saved_fen"
    " FROM orders o LEFT JOIN store st ON st.id = o.store_id"
    " WHERE EXISTS (SELECT 1 FROM order_line l WHERE l.order_id = o.id)",
}


def _rows(url: str, sql: str, order_key: str) -> list[tuple[Any, ...]]:
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            return sorted(
                tuple("" if v is None else str(v) for v in row)
                for row in conn.execute(text(sql.format(order_no=order_key)))
            )
    finally:
        engine.dispose()


def test_demo_world_as_files_imports_to_the_same_world(database_url: str, tmp_path: Path) -> None:
    """Each kind's file, imported in the documented order, gives the direct load's rows."""
    direct = tmp_path / "direct.db"
    shutil.copyfile(database_url.split(":///", 1)[1], direct)
    direct_url = f"sqlite:///{direct}"
    load_demo_world(direct_url, customers=300, seed=7, today=DAY)
    engine = make_engine(direct_url)
    files = write_as_files(engine, tmp_path / "files", tz="Asia/Shanghai")
    engine.dispose()
    assert tuple(files) == IMPORT_ORDER

    for kind, path in files.items():
        [result] = import_files(kind, [path])
        assert result.written, (kind, result.problems[:5])
        assert result.counts.rejected == 0

    for name, sql in SAME.items():
        before = _rows(direct_url, sql, "'D' || substr('0000000000' || o.id, -10)")
        after = _rows(database_url, sql, "o.order_no")
        assert before == after, name
        assert before, f"the demo world has no {name}"

    with get_engine().connect() as conn:
        members = conn.execute(
            text("SELECT member_no, name, mobile, gender, birthday FROM member")
        ).all()
    customers = _rows(direct_url, "SELECT id, name, phone, gender, birthday FROM customer", "")
    assert sorted(
        (str(m[0]), m[1], m[2] or "", m[3] or "", str(m[4] or "")) for m in members
    ) == sorted((member_no(int(c[0])), *c[1:]) for c in customers)
    assert order_no(7) == "D0000000007"
