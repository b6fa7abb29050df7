"""Small hand-built worlds for tests: stores, staff, groups, customers, products, deals and 1:1 SOPs."""

from __future__ import annotations

import datetime as dt
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import func, insert
from sqlmodel import col, select

from core.clock import utcnow
from core.settings import PROJECT_ROOT
from engine.plan import PlannedBatch, plan_customers
from models.audience import CustomerTarget, customer_id_ranges, customers_in_range
from models.commerce import Campaign, CampaignItem, Deal, Event, Order, OrderLine, Product
from models.db import session_scope
from models.deliveries import Occurrence, set_status
from models.delivery import Delivery, DeliveryStatus
from models.people import Customer, CustomerGroup, CustomerTag, OptOut, Staff, Store, Tag
from soplang.spec import SopSpec


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


def add_customers(
    count: int,
    *,
    url: str | None = None,
    owner: str = "zhangwei.bj01",
    first: int = 0,
    **fields: Any,
) -> list[int]:
    """`count` customers of `owner` (dormant bronze 上海 contacts unless `fields` say otherwise)."""
    now = utcnow()
    with session_scope(url) as session:
        owner_id = session.exec(select(Staff.id).where(Staff.userid == owner)).one()
        rows = [
            {
                "external_userid": f"wmTEST{first + i:07d}",
                "name": f"客户{first + i}",
                "phone": f"1380000{first + i:04d}",
                "region": "上海",
                "owner_staff_id": owner_id,
                "tier": "bronze",
                "stage": "dormant",
                "stage_since": now - dt.timedelta(days=40),
                "added_at": now - dt.timedelta(days=400),
                "contact_state": "active",
                "last_order_at": now - dt.timedelta(days=45),
                **fields,
            }
            for i in range(count)
        ]
        session.execute(insert(Customer), rows)
        external_ids = [row["external_userid"] for row in rows]
        found = session.exec(
            select(Customer.id).where(col(Customer.external_userid).in_(external_ids))
        ).all()
    return sorted(found)


def tag_customers(tag: str, customer_ids: list[int], url: str | None = None) -> None:
    """Give `customer_ids` the manual tag `tag` (created on first use)."""
    with session_scope(url) as session:
        found = session.exec(select(Tag).where(Tag.name == tag)).first()
        if found is None:
            found = Tag(name=tag, group_name="属性")
            session.add(found)
            session.flush()
        session.add_all(
            CustomerTag(customer_id=i, tag_id=found.id, created_at=utcnow()) for i in customer_ids
        )


def opt_out(customer_ids: list[int], category: str, url: str | None = None) -> None:
    """The customers no longer want promotions of `category`."""
    with session_scope(url) as session:
        session.add_all(
            OptOut(customer_id=i, category=category, created_at=utcnow()) for i in customer_ids
        )


def customer_sop(
    sop_id: str = "dormant-care",
    *,
    priority: str = "normal",
    cron: str = "0 9 * * *",
    days: str = "everyday",
    category: str = "fresh",
    steps: list[dict[str, str]] | None = None,
    **audience: Any,
) -> SopSpec:
    """A 1:1 SOP (kind lifecycle, channel customer) built in code; `audience` is its `customers:`."""
    return SopSpec(
        id=sop_id,
        title=sop_id,
        kind="lifecycle",
        channel="customer",
        category=category,
        priority=priority,
        schedule={"cron": cron, "days": days},
        audience={"customers": audience},
        steps=steps,
    )


def audience_of(spec: SopSpec) -> list[CustomerTarget]:
    """Every customer of the SOP's `customers:` audience, as one batch."""
    customers = spec.audience.customers if spec.audience else None
    with session_scope() as session:
        ranges = customer_id_ranges(customers, batch_size=10**6, session=session)
        return [c for r in ranges for c in customers_in_range(customers, r, session=session)]


def occurrence_of(spec: SopSpec, day: dt.date, step: str = "main") -> Occurrence:
    return Occurrence(spec.id, step, day.isoformat(), "outbox")


def plan_audience(
    spec: SopSpec, now: dt.datetime, day: dt.date, step: str = "main"
) -> PlannedBatch:
    """Plan the SOP's whole audience for one occurrence at `now`."""
    return plan_customers(spec, occurrence_of(spec, day, step), audience_of(spec), now=now)


def mark_sent(batch: PlannedBatch) -> None:
    """What a dispatch would do to the batch's touches."""
    with session_scope() as session:
        set_status([t.delivery_id for t in batch.touches], DeliveryStatus.SENT, session=session)


def delivery_rows(sop_id: str | None = None) -> dict[int, Delivery]:
    """Delivery rows by customer (or group) id, optionally of one SOP."""
    with session_scope() as session:
        statement = select(Delivery)
        if sop_id:
            statement = statement.where(Delivery.sop_id == sop_id)
        return {r.customer_id or r.group_id: r for r in session.exec(statement).all()}


def deliveries() -> list[Delivery]:
    """Every Delivery row, oldest first."""
    with session_scope() as session:
        return list(session.execute(select(Delivery).order_by(Delivery.id)).scalars())


CAMPAIGN_ITEMS = [
    # sku, price, competitor price, stock
    ("F001", 199, 399, 100),
    ("B001", 2990, 4990, 20),
    ("F003", 1990, 2590, 50),
]


def add_campaign(
    starts_at: dt.datetime,
    *,
    code: str = "double12-2026",
    sop_id: str = "double12",
    status: str = "draft",
    url: str | None = None,
) -> int:
    """A two-day campaign from `starts_at` with CAMPAIGN_ITEMS (products of `make_world`)."""
    with session_scope(url) as session:
        campaign = Campaign(
            code=code,
            name="双12年终大促",
            sop_id=sop_id,
            starts_at=starts_at,
            ends_at=starts_at + dt.timedelta(days=2),
            status=status,
        )
        session.add(campaign)
        session.flush()
        products = {p.sku: p.id for p in session.exec(select(Product)).all()}
        session.add_all(
            CampaignItem(
                campaign_id=campaign.id,
                product_id=products[sku],
                price_fen=price,
                competitor_price_fen=rival,
                stock=stock,
            )
            for sku, price, rival, stock in CAMPAIGN_ITEMS
        )
        return int(campaign.id)


def add_order(
    customer_id: int,
    placed_at: dt.datetime,
    lines: list[tuple[str, int, int]],
    *,
    status: str = "paid",
) -> None:
    """One order of `customer_id` with (sku, quantity, unit price in fen) lines."""
    with session_scope() as session:
        products = {p.sku: p.id for p in session.exec(select(Product)).all()}
        order = Order(
            customer_id=customer_id,
            placed_at=placed_at,
            total_fen=sum(quantity * price for _sku, quantity, price in lines),
            status=status,
        )
        session.add(order)
        session.flush()
        session.add_all(
            OrderLine(
                order_id=order.id, product_id=products[sku], quantity=quantity, price_fen=price
            )
            for sku, quantity, price in lines
        )


def add_events(
    kind: str,
    customer_ids: list[int],
    *,
    sku: str | None = None,
    payload: dict[str, Any] | None = None,
    at: dt.datetime | None = None,
) -> list[int]:
    """One pending `kind` event per customer (about product `sku` when given), in one INSERT."""
    with session_scope() as session:
        product = session.exec(select(Product.id).where(Product.sku == sku)).one() if sku else None
        first = session.exec(select(func.coalesce(func.max(Event.id), 0))).one()
        rows = [
            {
                "kind": kind,
                "customer_id": customer_id,
                "product_id": product,
                "payload": payload or {},
                "occurred_at": at or utcnow(),
            }
            for customer_id in customer_ids
        ]
        session.execute(insert(Event), rows)
        return list(session.exec(select(Event.id).where(Event.id > first).order_by(Event.id)))


def workdays_community_sops(folder: Path, *, with_calendar: bool = False) -> Path:
    """A copy of the shipped community SOPs in `folder` (and the shipped calendar.yaml when
    asked), with morning-price sent on workdays only; point SOPFLOW_SOP_DIR at the result."""
    shutil.copytree(PROJECT_ROOT / "sop" / "community", folder / "community")
    if with_calendar:
        shutil.copy(PROJECT_ROOT / "sop" / "calendar.yaml", folder / "calendar.yaml")
    price = folder / "community" / "morning-price.md"
    price.write_text(
        price.read_text(encoding="utf-8").replace("days: everyday", "days: workdays"),
        encoding="utf-8",
    )
    return folder
