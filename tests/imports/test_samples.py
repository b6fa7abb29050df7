"""Every shipped sample imports, each format and encoding is read, and a re-import changes nothing."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlmodel import col
from typer.testing import CliRunner

from models.commerce import Campaign, CampaignItem, Deal, Order, OrderLine, Product
from models.db import session_scope
from models.members import Member
from models.people import Staff, Store
from sopflow.cli import app
from tests.imports.conftest import SAMPLE_FILES, SAMPLES, run

EXPECTED = {
    "stores": (2, "UTF-8"),
    "staff": (3, "UTF-8 with BOM"),
    "products": (6, "GBK/GB18030"),
    "members": (3, "UTF-8"),
    "orders": (3, "UTF-8"),
    "deals": (4, "sheet 早报价"),
    "campaign": (1, "sheet 双12"),
}


def test_every_sample_imports_and_a_second_import_changes_nothing(database_url: str) -> None:
    for kind, name in SAMPLE_FILES:
        first = run(kind, SAMPLES / name)
        assert first.problems == [], first.problems
        assert (first.counts.new, first.encoding) == EXPECTED[kind], kind
    for kind, name in SAMPLE_FILES:
        again = run(kind, SAMPLES / name)
        assert (again.counts.new, again.counts.changed) == (0, 0), kind
        assert again.counts.unchanged == EXPECTED[kind][0]
    with session_scope(readonly=True) as session:
        rows = {
            model.__name__: session.execute(select(func.count()).select_from(model)).scalar()
            for model in (
                Store,
                Staff,
                Product,
                Member,
                Order,
                OrderLine,
                Deal,
                Campaign,
                CampaignItem,
            )
        }
        eggs = session.execute(select(Product).where(col(Product.sku) == "F003")).scalar_one()
        order = session.execute(
            select(Order).where(col(Order.order_no) == "SO202612100001")
        ).scalar_one()
        beijing = session.execute(select(Deal).where(col(Deal.region) == "北京")).scalar_one()
    assert rows == {
        "Store": 2,
        "Staff": 3,
        "Product": 6,
        "Member": 3,
        "Order": 3,
        "OrderLine": 4,
        "Deal": 4,
        "Campaign": 1,
        "CampaignItem": 3,
    }
    assert eggs.list_price_fen == 159900  # "¥1,599.00" in GBK
    assert (order.total_fen, order.status, order.placed_at.hour) == (
        7570,
        "shipped",
        1,
    )  # 09:15 CST
    assert (beijing.price_fen, beijing.category, beijing.slot) == (990, "fresh", "morning")


def test_the_command_reports_each_file_and_exits_0(database_url: str) -> None:
    result = CliRunner().invoke(
        app, ["import", "stores", str(SAMPLES / "stores.csv")], catch_exceptions=False
    )
    assert result.exit_code == 0, result.output
    assert "stores.csv (UTF-8): 2 rows; 2 new, 0 changed, 0 unchanged, 0 rejected" in result.output
