"""The demo world as the import files ops would bring (`sopflow demo-data --as-files DIR`)."""

from __future__ import annotations

import csv
import datetime as dt
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, select

from core.clock import local
from models.commerce import Campaign, CampaignItem, Deal, Order, OrderLine, Product
from models.people import Customer, Staff, Store
from models.vocab import CATEGORIES, GENDERS

# The order `sopflow import` takes them in: each file only refers to kinds before it.
IMPORT_ORDER = ("stores", "staff", "products", "members", "orders", "deals", "campaign")
STATUS_NAMES = {"paid": "已支付", "shipped": "已发货", "received": "已收货", "refunded": "已退款"}
ROLE_NAMES = {"advisor": "导购", "manager": "店长", "ops": "运营"}
SLOT_NAMES = {"morning": "早报价", "evening": "晚安心选"}


def member_no(customer_id: int) -> str:
    """The loyalty number the demo gives each customer."""
    return f"M{customer_id:08d}"


def order_no(order_id: int) -> str:
    """The chain's order number the demo gives each order."""
    return f"D{order_id:010d}"


def demo_as_files(folder: Path, *, customers: int, seed: int) -> dict[str, Path]:
    """Load the demo world into a scratch SQLite database and write it as import files."""
    from core.settings import get_settings
    from demo.world import load_demo_world
    from models.db import make_engine, upgrade

    with tempfile.TemporaryDirectory(prefix="sopflow-demo-") as scratch:
        url = f"sqlite:///{Path(scratch) / 'demo.db'}"
        upgrade(url)
        load_demo_world(url, customers=customers, seed=seed)
        engine = make_engine(url)
        try:
            return write_as_files(engine, folder, tz=get_settings().timezone)
        finally:
            engine.dispose()


def write_as_files(engine: Engine, folder: Path, *, tz: str) -> dict[str, Path]:
    """Write the world in `engine`'s database as one CSV (UTF-8 with BOM) per kind into `folder`."""
    folder.mkdir(parents=True, exist_ok=True)
    with engine.connect() as conn:
        stores = {r.id: r.code for r in conn.execute(select(Store.__table__))}  # type: ignore[attr-defined]
        skus = {r.id: r.sku for r in conn.execute(select(Product.__table__))}  # type: ignore[attr-defined]

        def rows(model: Any, *order: Any) -> Iterator[Any]:
            table = model.__table__
            statement = select(table).order_by(*(order or (table.c.id,)))
            yield from conn.execution_options(stream_results=True, yield_per=5000).execute(
                statement
            )

        def when(value: dt.datetime | None) -> str:
            return "" if value is None else local(value, tz).strftime("%Y-%m-%d %H:%M:%S")

        def yuan(fen: int | None) -> str:
            return "" if fen is None else f"{fen / 100:.2f}"

        written = {
            "stores": _write(
                folder / "stores.csv",
                ("门店编码", "门店名称", "城市"),
                ((r.code, r.name, r.city) for r in rows(Store)),
            ),
            "staff": _write(
                folder / "staff.csv",
                ("员工账号", "姓名", "门店编码", "角色"),
                (
                    (r.userid, r.name, stores.get(r.store_id, ""), ROLE_NAMES.get(r.role, r.role))
                    for r in rows(Staff)
                ),
            ),
            "products": _write(
                folder / "products.csv",
                ("商品编码", "商品名称", "品类", "单位", "售价", "图片"),
                (
                    (
                        r.sku,
                        r.name,
                        CATEGORIES[r.category],
                        r.unit,
                        yuan(r.list_price_fen),
                        r.picture or "",
                    )
                    for r in rows(Product)
                ),
            ),
            "members": _write(
                folder / "members.csv",
                ("会员号", "姓名", "手机号", "门店编码", "性别", "生日", "入会时间"),
                (
                    (
                        member_no(r.id),
                        r.name,
                        r.phone or "",
                        stores.get(r.store_id, ""),
                        GENDERS.get(r.gender or "", ""),
                        r.birthday.isoformat() if r.birthday else "",
                        when(r.added_at),
                    )
                    for r in rows(Customer)
                ),
            ),
            "orders": _write(
                folder / "orders.csv",
                (
                    "订单号",
                    "会员号",
                    "门店编码",
                    "下单时间",
                    "订单状态",
                    "商品编码",
                    "数量",
                    "单价",
                    "实付金额",
                    "优惠金额",
                ),
                _order_rows(rows, stores, skus, when, yuan),
            ),
            "deals": _write(
                folder / "deals.csv",
                (
                    "日期",
                    "时段",
                    "区域",
                    "商品编码",
                    "活动价",
                    "原价",
                    "限购",
                    "库存",
                    "品类",
                    "排序",
                ),
                (
                    (
                        r.day.isoformat(),
                        SLOT_NAMES[r.slot],
                        r.region or "全国",
                        skus[r.product_id],
                        yuan(r.price_fen),
                        yuan(r.list_price_fen),
                        r.limit_per_order,
                        r.stock,
                        CATEGORIES[r.category],
                        r.position,
                    )
                    for r in rows(Deal)
                ),
            ),
        }
        campaigns = {r.id: r for r in rows(Campaign)}
        written["campaign"] = _write(
            folder / "campaign.csv",
            (
                "活动编码",
                "活动名称",
                "开始时间",
                "结束时间",
                "商品编码",
                "活动价",
                "竞品平台",
                "竞品价",
                "库存",
            ),
            (
                (
                    campaigns[r.campaign_id].code,
                    campaigns[r.campaign_id].name,
                    when(campaigns[r.campaign_id].starts_at),
                    when(campaigns[r.campaign_id].ends_at),
                    skus[r.product_id],
                    yuan(r.price_fen),
                    r.competitor_name,
                    yuan(r.competitor_price_fen),
                    r.stock,
                )
                for r in rows(
                    CampaignItem, CampaignItem.__table__.c.campaign_id, CampaignItem.__table__.c.id
                )  # type: ignore[attr-defined]
            ),
        )
    return {kind: written[kind] for kind in IMPORT_ORDER}


def _order_rows(
    rows: Any, stores: dict[int, str], skus: dict[int, str], when: Any, yuan: Any
) -> Iterator[tuple[Any, ...]]:
    """One row per order line, an order's lines together (both streams go by order id)."""
    lines = iter(rows(OrderLine, OrderLine.__table__.c.order_id, OrderLine.__table__.c.id))  # type: ignore[attr-defined]
    line = next(lines, None)
    for order in rows(Order):
        head = (
            order_no(order.id),
            member_no(order.customer_id),
            stores.get(order.store_id, ""),
            when(order.placed_at),
            STATUS_NAMES[order.status],
        )
        while line is not None and line.order_id < order.id:
            line = next(lines, None)  # a line without its order: nothing to carry
        while line is not None and line.order_id == order.id:
            yield (
                *head,
                skus[line.product_id],
                line.quantity,
                yuan(line.price_fen),
                yuan(order.total_fen),
                yuan(order.saved_fen),
            )
            line = next(lines, None)


def _write(path: Path, header: tuple[str, ...], rows: Iterable[tuple[Any, ...]]) -> Path:
    with path.open("w", encoding="utf-8-sig", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)
    return path
