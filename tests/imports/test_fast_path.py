"""The order CSV fast path (staged or not) accepts, refuses and writes exactly what the general path does."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from imports.run import FileResult, import_files
from models import db
from models.commerce import Order, OrderLine, Product
from tests.imports.conftest import SAMPLE_FILES, SAMPLES

HEADER = "订单号,会员号,门店编码,下单时间,订单状态,商品编码,数量,单价,实付金额,备注,优惠金额\n"
LONG = "x" * 4001
ROWS = [
    "A1,M0001,S-BJ01,2026-12-10 09:15:00,已发货,F001,2,29.90,75.70,,",
    "A1,M0001,S-BJ01,2026-12-10 09:15:00,已发货,F002,1,15.9,75.70,,",
    "A2,M0002,,2026/12/10 20:03,,B001,2,89.90,,,1",
    "A3, M0003 ,S-BJ01,2026年12月11日 08:30,RECEIVED,B002,1,¥49.00,,,0.5",
    "A4,M0001,S-BJ01,2026-12-10 09:15:00,paid,F001,1,29.90",  # short row: blanks after
    "A5,M0001,S-BJ01,2026-02-30 09:15:00,paid,F001,1,29.90,,,",  # no such day
    "A6,M0001,S-BJ01,2026-12-10 24:00:00,paid,F001,1,29.90,,,",  # no such time
    "A7,M0001,S-BJ01,2026-12-10 09:15:00,paid,F001,0,29.90,,,",  # quantity below 1
    "A8,M0001,S-BJ01,2026-12-10 09:15:00,paid,F001,1,-1,,,",  # negative price
    "A9,M0001,S-BJ01,2026-12-10 09:15:00,paid,F001,1,29.999,,,",  # three decimals
    "A10,M0001,S-BJ01,2026-12-10 09:15:00,lost,F001,1,29.90,,,",  # unknown status
    "A11,M0001,S-BJ01,2026-12-10 09:15:00,paid,NOPE,1,29.90,,,",  # unknown SKU
    "A12,M0001,S-BJ01,2026-12-10 09:15:00,paid,F001,1,29.90,,,",
    "A12,M0002,S-BJ01,2026-12-10 09:15:00,paid,F002,1,15.90,,,",  # contradicts its first row
    "A2,M0002,,2026/12/10 20:03,,B001,1,89.90,,,",  # not consecutive
    "A13,M0001,S-BJ01,2026-12-10 09:15:00,paid,F001,1,29.90,,,,extra",  # one cell too many
    "A14,M0001,S-BJ01,2026-12-10 09:15:00,paid,F001,1,29.90,,,,",  # a blank extra cell is fine
    f"A15,M0001,S-BJ01,2026-12-10 09:15:00,paid,F001,1,29.90,,{LONG},",  # unread cell too long
    f"{'B' * 65},M0001,S-BJ01,2026-12-10 09:15:00,paid,F001,1,29.90,,,",  # order number too long
    ",M0001,S-BJ01,2026-12-10 09:15:00,paid,F001,1,29.90,,,",  # no order number
    "A16,M0001,S-XX99,2026-12-10 09:15:00,paid,F001,1,29.90,1.00,,",  # unknown store, total low
    "A17,M0001,S-BJ01,2026-12-10 09:15:00,paid,F001,1,29.90,99.00,,",  # total above lines
    "A18,M0009,S-BJ01,2026-12-10 09:15:00,paid,F001,1,1000000.01,,,",  # unknown member, dear
    '"A19",M0001,S-BJ01," 2026-12-10 09:15 ",已完成,F002,"1,000",15.90,"15,900.00",,',
]


def _world(url: str) -> None:
    for kind, name in SAMPLE_FILES[:4]:
        [done] = import_files(kind, [SAMPLES / name], url=url)
        assert done.written, done.problems


def _outcome(url: str, result: FileResult) -> dict[str, Any]:
    with db.session_scope(url) as session:
        skus = dict(session.execute(select(Product.id, Product.sku)).all())
        orders = {
            row.id: (row.order_no, row.member_id, row.store_id, row.placed_at, row.status)
            + (row.total_fen, row.saved_fen, row.customer_id)
            for row in session.execute(select(Order)).scalars()
        }
        lines = sorted(
            (orders[line.order_id][0], skus[line.product_id], line.quantity, line.price_fen)
            for line in session.execute(select(OrderLine)).scalars()
        )
    rejected = [(r.line, r.reason, r.cells) for r in result.rejected]
    return {
        "orders": sorted(orders.values()),
        "lines": lines,
        "problems": result.problems,
        "rejected": rejected,
        "counts": result.counts,
        "written": result.written,
    }


@pytest.mark.parametrize("skip_bad", [True, False])
def test_fast_and_general_paths_give_the_same_rows_and_errors(
    database_url: str, tmp_path: Path, skip_bad: bool
) -> None:
    path = tmp_path / "orders.csv"
    path.write_text(HEADER + "\n".join(ROWS) + "\n", encoding="utf-8")
    outcomes = []
    for fast, staged in ((True, True), (True, False), (False, False)):
        url = f"sqlite:///{tmp_path / f'fast-{fast}-{staged}.db'}"
        db.upgrade(url)
        _world(url)
        options = {"skip_bad": skip_bad, "fast_path": fast, "staged": staged}
        [result] = import_files("orders", [path], url=url, **options)
        outcomes.append(_outcome(url, result))
    staged_outcome, fast_outcome, general = outcomes
    assert staged_outcome == fast_outcome == general
    assert len(general["problems"]) == 16
    assert bool(general["orders"]) is skip_bad
    if skip_bad:  # the good orders, with what the converters made of their spellings
        by_no = {o[0]: o for o in general["orders"]}
        assert set(by_no) == {"A1", "A2", "A3", "A4", "A14", "A19"}
        assert by_no["A19"][5] == 1_590_000 and ("A19", "F002", 1000, 1590) in general["lines"]


def test_an_order_file_imports_again_unchanged_on_postgresql(
    postgres_url: str, tmp_path: Path
) -> None:
    _world(postgres_url)
    path = tmp_path / "orders.csv"
    rows = list(ROWS[:4]) + [
        f"P{n:04d},M000{1 + n % 3},S-BJ01,2026-12-09 10:{n % 60:02d}:00,已发货,F001,1,29.90,,,"
        for n in range(50)
    ]
    path.write_text(HEADER + "\n".join(rows) + "\n", encoding="utf-8")
    [first] = import_files("orders", [path], url=postgres_url)
    assert first.written, first.problems
    assert (first.counts.new, first.counts.changed) == (53, 0)
    before = _outcome(postgres_url, first)
    [again] = import_files("orders", [path], url=postgres_url)
    assert (again.counts.new, again.counts.changed, again.counts.unchanged) == (0, 0, 53)
    after = _outcome(postgres_url, again)
    assert (after["orders"], after["lines"]) == (before["orders"], before["lines"])
    assert ("A1", "F002", 1, 1590) in after["lines"] and len(after["lines"]) == 54
    path.write_text(path.read_text(encoding="utf-8").replace(",1,29.90,,,", ",2,29.90,,,"))
    [changed] = import_files("orders", [path], url=postgres_url)
    assert (changed.counts.new, changed.counts.changed) == (0, 50), changed.problems
