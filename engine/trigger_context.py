"""Template variables of trigger messages (event, product, order) from the claimed events' rows."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlmodel import Session, col

from core.clock import local
from engine.complaints import complaint_variables
from engine.events import PendingEvent
from engine.seed_events import birthday_variables, checkin_variables, member_joined_variables
from models.commerce import Order, OrderLine, Product

Variables = dict[str, Any]


def order_number(order_id: int, placed_at: dt.datetime, tz: str) -> str:
    """The order number customers see, e.g. SO202611240123."""
    return f"SO{local(placed_at, tz):%Y%m%d}{order_id:04d}"


def _price_drop_variables(
    events: Sequence[PendingEvent], tz: str, session: Session
) -> dict[int, Variables | str]:
    """`product` {name, unit, price, old_price} of each favourite.price_drop event."""
    ids = {e.product_id for e in events if e.product_id is not None}
    products = {
        p.id: p for p in session.execute(select(Product).where(col(Product.id).in_(ids))).scalars()
    }
    found: dict[int, Variables | str] = {}
    for event in events:
        product = products.get(event.product_id)
        old, new = event.payload.get("old_price"), event.payload.get("new_price")
        if product is None:
            found[event.id] = "event names no product"
        elif not (isinstance(old, int) and isinstance(new, int)):
            found[event.id] = "price drop without old_price and new_price"
        else:
            view = {"name": product.name, "unit": product.unit, "price": new, "old_price": old}
            found[event.id] = {"product": view}
    return found


def _order_variables(
    events: Sequence[PendingEvent], tz: str, session: Session
) -> dict[int, Variables | str]:
    """`order` {id, total, item_count} of each order.shipped/received event, for the order's own customer."""
    ids = {e.payload.get("order_id") for e in events} - {None}
    statement = (
        select(
            col(Order.id),
            col(Order.customer_id),
            col(Order.placed_at),
            col(Order.total_fen),
            func.coalesce(func.sum(OrderLine.quantity), 0),
        )
        .outerjoin(OrderLine, col(OrderLine.order_id) == col(Order.id))
        .where(col(Order.id).in_(ids))
        .group_by(col(Order.id))
    )
    orders = {row[0]: row for row in session.execute(statement)}
    found: dict[int, Variables | str] = {}
    for event in events:
        order = orders.get(event.payload.get("order_id"))
        if order is None or order[1] != event.customer_id:
            found[event.id] = "no order of this customer in the event"
            continue
        order_id, _, placed_at, total, items = order
        view = {
            "id": order_number(order_id, placed_at, tz),
            "total": total,
            "item_count": int(items),
        }
        found[event.id] = {"order": view}
    return found


KIND_VARIABLES: dict[
    str, Callable[[Sequence[PendingEvent], str, Session], dict[int, Variables | str]]
] = {
    "favourite.price_drop": _price_drop_variables,
    "order.shipped": _order_variables,
    "order.received": _order_variables,
    "customer.birthday": birthday_variables,
    "checkin": checkin_variables,
    "group.member_joined": member_joined_variables,
    "complaint.opened": complaint_variables,
    "complaint.updated": complaint_variables,
    "complaint.closed": complaint_variables,
}


def event_variables(
    events: Sequence[PendingEvent], *, tz: str, session: Session
) -> dict[int, Variables | str]:
    """Per event, the variables its message gets (soplang/context.py), or why it cannot be sent."""
    if not events:
        return {}
    specific = KIND_VARIABLES.get(events[0].kind)
    extra = specific(events, tz, session) if specific else {}
    zone = ZoneInfo(tz)
    found: dict[int, Variables | str] = {}
    for event in events:
        more = extra.get(event.id, {})
        found[event.id] = (
            more
            if isinstance(more, str)
            else {
                "event": {"kind": event.kind, "occurred_at": event.occurred_at.astimezone(zone)},
                **more,
            }
        )
    return found


def event_categories(events: Sequence[PendingEvent], *, session: Session) -> dict[int, str]:
    """The category of each event's product, for events about a product."""
    ids = {e.product_id for e in events if e.product_id is not None}
    rows = session.execute(
        select(col(Product.id), col(Product.category)).where(col(Product.id).in_(ids))
    )
    category_of = dict(rows.tuples().all())
    return {e.id: category_of[e.product_id] for e in events if e.product_id in category_of}
