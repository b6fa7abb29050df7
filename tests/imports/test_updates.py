"""A later export updates in place: status changes record order events once, refunds and price
changes overwrite, and members are linked to WeCom contacts by unionid or mobile."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from sqlalchemy import select, update
from sqlmodel import col

from core.clock import utcnow
from models.commerce import Event, Order, Product
from models.db import session_scope
from models.members import Linked, Member, link_members
from models.people import Customer
from tests.factories import add_customers
from tests.imports.conftest import SAMPLES, run

HEADER = "order_no,member_no,placed_at,status,sku,quantity,price\n"


def orders_file(tmp_path: Path, status: str) -> Path:
    path = tmp_path / f"orders-{status}.csv"
    placed = utcnow() - dt.timedelta(days=2)  # summaries count orders placed up to now
    path.write_text(HEADER + f"SO9,M0001,{placed:%Y-%m-%d},{status},F001,2,29.90\n", "utf-8")
    return path


def events() -> list[tuple[str, int | None, dict]]:
    with session_scope(readonly=True) as session:
        rows = session.execute(
            select(Event.kind, Event.customer_id, Event.payload).order_by(Event.id)
        )
        return [tuple(row) for row in rows]


def test_member_is_linked_by_mobile_and_status_changes_record_one_event_each(
    catalogue: str, tmp_path: Path
) -> None:
    customers = add_customers(3)  # phones 13800000000..2: M0001's and M0002's mobiles
    assert run("members", SAMPLES / "members.jsonl").counts.notes == [
        "2 member(s) linked to WeCom contacts"
    ]
    paid = run("orders", orders_file(tmp_path, "paid"))
    assert (paid.counts.new, events()) == (1, [])
    with session_scope(readonly=True) as session:
        order = session.execute(select(Order).where(col(Order.order_no) == "SO9")).scalar_one()
        customer = session.get(Customer, customers[1])
        assert customer is not None
    assert order.customer_id == customers[1]
    assert (customer.order_count, customer.total_spent_fen) == (1, 5980)  # summaries follow

    for status in ("shipped", "shipped", "received"):
        run("orders", orders_file(tmp_path, status))
    refunded = run("orders", orders_file(tmp_path, "refunded"))
    assert (refunded.counts.changed, refunded.counts.new) == (1, 0)
    assert events() == [
        ("order.shipped", customers[1], {"order_id": order.id}),
        ("order.received", customers[1], {"order_id": order.id}),
    ]
    with session_scope(readonly=True) as session:
        customer = session.get(Customer, customers[1])
        assert customer is not None and customer.order_count == 0  # refunds do not count


def test_orders_of_a_member_not_yet_in_wecom_wait_and_follow_the_link(
    catalogue: str, tmp_path: Path
) -> None:
    run("orders", orders_file(tmp_path, "shipped"))
    run("orders", orders_file(tmp_path, "received"))
    assert events() == []  # nobody to message yet: the status is kept, no event
    [customer] = add_customers(1, first=50)
    with session_scope() as session:  # the contact sync learns the contact's unionid…
        session.execute(update(Customer).values(unionid="oUnion0001"))
        session.execute(
            update(Member).where(col(Member.member_no) == "M0001").values(unionid="oUnion0001")
        )
        linked = link_members(now=utcnow(), session=session)  # …and links, as the import does
    assert (linked.members, linked.orders) == (1, 1)
    with session_scope(readonly=True) as session:
        order = session.execute(select(Order).where(col(Order.order_no) == "SO9")).scalar_one()
    assert (order.customer_id, order.status) == (customer, "received")
    with session_scope() as session:
        assert link_members(now=utcnow(), session=session) == Linked(0, 0)  # idempotent


def test_a_changed_price_is_updated_in_place(catalogue: str, tmp_path: Path) -> None:
    path = tmp_path / "price.csv"
    path.write_text("sku,name,category,unit,list_price\nF001,土鸡蛋 30枚,fresh,盒,25\n", "utf-8")
    result = run("products", path)
    assert (result.counts.new, result.counts.changed) == (0, 1)
    with session_scope(readonly=True) as session:
        price = session.execute(
            select(Product.list_price_fen).where(Product.sku == "F001")
        ).scalar()
    assert price == 2500
