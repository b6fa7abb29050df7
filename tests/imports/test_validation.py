"""Bad rows: every one reported with file and line, nothing written by default; --skip-bad writes
exactly the good rows and a rejects file; --dry-run writes nothing."""

from __future__ import annotations

import csv
import datetime as dt
from pathlib import Path

import pytest
from sqlalchemy import func, select
from typer.testing import CliRunner

from imports import values
from imports.errors import RowError
from models.commerce import Order, OrderLine, Product
from models.db import session_scope
from sopflow.cli import app
from tests.imports.conftest import run

PRODUCTS = """商品编码,商品名称,品类,单位,售价
G001,好苹果,生鲜,斤,12.5
G002,坏价格,生鲜,斤,12.555
G003,负价格,生鲜,斤,-3
G001,重复,生鲜,斤,1
G004,无品类,家具,个,10
G005,好梨,fresh,斤,"¥1,200"
"""
ORDERS = """订单号,会员号,下单时间,商品编码,数量,单价
SO1,M0001,2026-12-10 09:00,F001,1,29.90
SO1,M0001,2026-12-10 09:00,NOPE,1,1
SO2,M0002,2026/12/10,F002,2,15.80
SO3,M9999,2026-13-01,F001,1,29.90
SO4,M0003,2026年12月11日 10:30,B001,1,89.90
"""


def write(tmp_path: Path, name: str, text: str, encoding: str = "utf-8") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding=encoding)
    return path


def products() -> dict[str, int]:
    with session_scope(readonly=True) as session:
        return dict(session.execute(select(Product.sku, Product.list_price_fen)).all())


def test_every_bad_row_is_reported_with_its_line_and_nothing_is_written(
    database_url: str, tmp_path: Path
) -> None:
    path = write(tmp_path, "products.csv", PRODUCTS)
    result = run("products", path)
    assert not result.written
    assert [p.split(": error: ")[0] for p in result.problems] == [
        f"{path}:3",
        f"{path}:4",
        f"{path}:5",
        f"{path}:6",
    ]
    assert "more than two decimals" in result.problems[0]
    assert "negative" in result.problems[1]
    assert "is already on line 2" in result.problems[2]
    assert "not a category" in result.problems[3]
    assert products() == {}


def test_skip_bad_writes_exactly_the_good_rows_and_the_rejects_with_reasons(
    database_url: str, tmp_path: Path
) -> None:
    path = write(tmp_path, "products.csv", PRODUCTS, encoding="gb18030")
    rejects = tmp_path / "out" / "rejects.csv"
    cli = CliRunner().invoke(app, ["import", "products", str(path), "--skip-bad", str(rejects)])
    assert cli.exit_code == 0, cli.output
    assert products() == {"G001": 1250, "G005": 120000}
    assert rejects.read_bytes().startswith(b"\xef\xbb\xbf")  # Excel reads the BOM as UTF-8
    with rejects.open(encoding="utf-8-sig") as handle:
        rows = list(csv.DictReader(handle))
    assert [(r["line"], r["商品编码"]) for r in rows] == [
        ("3", "G002"),
        ("4", "G003"),
        ("5", "G001"),
        ("6", "G004"),
    ]
    assert all(r["error"] and r["file"] == str(path) for r in rows)


def test_a_bad_line_rejects_its_whole_order_and_unknown_references_are_named(
    catalogue: str, tmp_path: Path
) -> None:
    path = write(tmp_path, "orders.csv", ORDERS)
    result = run("orders", path, skip_bad=True)
    assert result.written
    messages = "\n".join(result.problems)
    assert f"{path}:3: error: unknown SKU 'NOPE'" in messages
    assert f"{path}:5: error: placed_at" not in messages  # the header as written is named
    assert f"{path}:5: error: 下单时间: '2026-13-01' is no day of the calendar" in messages
    assert [r.line for r in result.rejected] == [2, 3, 5]  # SO1 both lines, SO3
    with session_scope(readonly=True) as session:
        orders = session.execute(select(Order.order_no).order_by(Order.order_no)).scalars().all()
        lines = session.execute(select(func.count()).select_from(OrderLine)).scalar()
    assert (orders, lines) == (["SO2", "SO4"], 2)


def test_dry_run_validates_everything_and_writes_nothing(catalogue: str, tmp_path: Path) -> None:
    good = write(
        tmp_path, "orders.csv", "\n".join(ORDERS.splitlines()[:1] + ORDERS.splitlines()[3:4])
    )
    result = run("orders", good, dry_run=True)
    assert (result.problems, result.counts.new, result.written) == ([], 1, False)
    with session_scope(readonly=True) as session:
        assert session.execute(select(func.count()).select_from(Order)).scalar() == 0


def test_a_missing_column_is_one_error_naming_the_names_it_accepts(
    database_url: str, tmp_path: Path
) -> None:
    path = write(tmp_path, "p.csv", "商品编码,商品名称,单位,售价\nX1,x,个,1\n")
    result = run("products", path)
    assert result.problems == [
        f"{path}:1: error: missing column category (name it any of: category, 品类, 类目, 分类)"
    ]


@pytest.mark.parametrize(
    ("typed", "fen"),
    [("19.9", 1990), ("¥1,299.00", 129900), ("0", 0), (19.9, 1990), ("88元", 8800)],
)
def test_money_in_yuan_becomes_fen(typed: object, fen: int) -> None:
    assert values.money(typed) == fen


@pytest.mark.parametrize("typed", ["1.999", "-1", "abc", "99999999", "nan"])
def test_money_that_is_not_a_price_is_refused(typed: str) -> None:
    with pytest.raises(RowError):
        values.money(typed)


@pytest.mark.parametrize("typed", ["2026-12-12", "2026/12/12", "2026年12月12日", "2026/1/2 "])
def test_dates_in_the_spellings_ops_type(typed: str) -> None:
    assert values.day(typed) in (dt.date(2026, 12, 12), dt.date(2026, 1, 2))


def test_a_local_time_is_stored_as_utc() -> None:
    moment = values.moment("2026年12月12日 08:30", "Asia/Shanghai")
    assert moment == dt.datetime(2026, 12, 12, 0, 30, tzinfo=dt.UTC)
    assert values.moment("2026-12-12", "Asia/Shanghai").hour == 16  # local midnight
