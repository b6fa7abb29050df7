"""Small hand-built worlds for tests: stores, staff, groups, products and today's deals."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from sqlmodel import select

from models.commerce import Deal, Product
from models.db import session_scope
from models.people import CustomerGroup, Staff, Store
from sopflow.clock import utcnow


@dataclass
class World:
    day: dt.date
    chat_ids: dict[str, str] = field(default_factory=dict)  # group name -> chat_id
    owners: dict[str, str] = field(default_factory=dict)  # group name -> owner userid


GROUPS = [
    # name, region, theme, owner, dismissed
    ("北京生鲜爱好者群", "北京", "生鲜", "zhangwei.bj01", False),
    ("北京生鲜二群", "北京", "生鲜", "zhangwei.bj01", False),
    ("上海母婴用品群", "上海", "母婴", "lina.sh01", False),
    ("上海酒水品鉴群", "上海", "酒水", "lina.sh01", False),  # no deals for 酒水 in this world
    ("北京家电老群", "北京", "家电", "zhangwei.bj01", True),
]

DEALS = [
    # slot, category, region, sku, name, unit, price, list price, limit, stock
    ("morning", "fresh", None, "F001", "鸡蛋", "斤", 399, 599, 200, 500),
    ("morning", "fresh", "北京", "F002", "平谷大桃", "斤", 990, 1580, 5, 300),
    ("morning", "baby", None, "B001", "婴儿纸尿裤", "包", 5990, 8990, 2, 100),
    ("evening", "fresh", None, "F003", "进口车厘子", "盒", 2990, 5980, 1, 50),
    ("evening", "baby", None, "B002", "有机米粉", "盒", 2450, 4900, 2, 80),
]


def make_world(day: dt.date, url: str | None = None) -> World:
    """Two cities, two staff, five groups (one dismissed, one without deals) and `day`'s deals."""
    world = World(day=day)
    now = utcnow()
    with session_scope(url) as session:
        stores = {
            city: Store(code=f"S-{i}", name=f"{city}旗舰店", city=city)
            for i, city in enumerate(("北京", "上海"))
        }
        session.add_all(stores.values())
        session.flush()
        staff: dict[str, Staff] = {}
        for userid, city, name in (
            ("zhangwei.bj01", "北京", "张伟"),
            ("lina.sh01", "上海", "李娜"),
        ):
            staff[userid] = Staff(userid=userid, name=name, store_id=stores[city].id)
        session.add_all(staff.values())
        session.flush()
        for i, (name, region, theme, owner, dismissed) in enumerate(GROUPS):
            chat_id = f"wrTEST{i:04d}"
            session.add(
                CustomerGroup(
                    chat_id=chat_id,
                    name=name,
                    region=region,
                    theme=theme,
                    owner_staff_id=staff[owner].id,
                    store_id=stores[region].id,
                    member_count=100 + i,
                    created_at=now,
                    dismissed_at=now if dismissed else None,
                )
            )
            world.chat_ids[name] = chat_id
            world.owners[name] = owner
        for _slot, category, _region, sku, name, unit, _price, list_price, *_ in DEALS:
            session.add(
                Product(sku=sku, name=name, category=category, unit=unit, list_price_fen=list_price)
            )
    add_deals(day, url)
    return world


def add_deals(day: dt.date, url: str | None = None) -> None:
    """The world's morning and evening deals on `day`."""
    with session_scope(url) as session:
        products = {p.sku: p.id for p in session.exec(select(Product)).all()}
        for position, deal in enumerate(DEALS):
            slot, category, region, sku, _name, _unit, price, list_price, limit, stock = deal
            session.add(
                Deal(
                    day=day,
                    slot=slot,
                    category=category,
                    region=region,
                    product_id=products[sku],
                    price_fen=price,
                    list_price_fen=list_price,
                    limit_per_order=limit,
                    stock=stock,
                    position=position,
                )
            )
