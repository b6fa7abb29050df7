"""The period's customers: group members vs non-members (buyers, repurchase, basket), daily activity."""

from __future__ import annotations

import statistics

from sqlalchemy import case, func, select, union
from sqlmodel import Session, col

from models.commerce import Event, Order
from models.people import Customer, GroupMember
from review.attribution import counted_orders
from review.model import Row, rate
from review.period import Period, in_period
from review.sql_time import local_day

# Activity that shows a customer was active on a day besides ordering (system events excluded).
ACTIVE_EVENT_KINDS = ("checkin", "browse", "favourite")


def loyalty(session: Session, period: Period) -> tuple[list[Row], int]:
    """Group members vs non-members among current contacts: buyers, repurchase and basket size;
    and the period's orders of everyone (deleted contacts included)."""
    members = select(col(GroupMember.customer_id))
    per_customer = (
        select(
            col(Order.customer_id),
            func.count().label("orders"),
            func.sum(Order.total_fen).label("spent"),
        )
        .where(counted_orders(period.start_utc, period.end_utc))
        .group_by(col(Order.customer_id))
        .subquery("per_customer")
    )
    is_member = case((col(Customer.id).in_(members), 1), else_=0).label("member")
    active = col(Customer.contact_state) == "active"
    is_active = case((active, 1), else_=0).label("active")
    contacts = dict(
        session.execute(select(is_member, func.count()).where(active).group_by(is_member))
        .tuples()
        .all()
    )
    buying = (
        select(
            is_member,
            is_active,
            func.count(),
            func.sum(case((per_customer.c.orders >= 2, 1), else_=0)),
            func.sum(per_customer.c.orders),
            func.sum(per_customer.c.spent),
        )
        .select_from(per_customer)
        .join(Customer, col(Customer.id) == per_customer.c.customer_id)
        .group_by(is_member, is_active)
    )
    bought: dict[int, tuple[int, ...]] = {}
    all_orders = 0
    for flag, active_flag, *numbers in session.execute(buying):
        all_orders += int(numbers[2] or 0)
        if active_flag:
            bought[flag] = tuple(numbers)
    rows = []
    for flag, segment in ((1, "group members"), (0, "non-members")):
        buyers, repeaters, orders, spent = bought.get(flag, (0, 0, 0, 0))
        rows.append(
            {
                "segment": segment,
                "customers": int(contacts.get(flag, 0)),
                "buyers": int(buyers or 0),
                "repurchase_rate": rate(repeaters or 0, buyers),
                "orders": int(orders or 0),
                "orders_per_buyer": rate(orders or 0, buyers),
                "average_order_fen": rate(spent or 0, orders),
            }
        )
    return rows, all_orders


def daily_active_ratio(session: Session, period: Period) -> float | None:
    """Mean over the period's days of (customers who ordered or acted that day / current contacts)."""
    order_day = local_day(Order.placed_at, period.days, period.tz)
    event_day = local_day(Event.occurred_at, period.days, period.tz)
    active = union(
        select(order_day.label("day"), col(Order.customer_id).label("customer_id")).where(
            in_period(Order.placed_at, period)
        ),
        select(event_day.label("day"), col(Event.customer_id).label("customer_id")).where(
            in_period(Event.occurred_at, period),
            col(Event.kind).in_(ACTIVE_EVENT_KINDS),
            col(Event.customer_id).is_not(None),
        ),
    ).subquery("active")
    per_day: dict[str, int] = dict(
        session.execute(select(active.c.day, func.count()).group_by(active.c.day)).tuples().all()
    )
    contacts = session.execute(
        select(func.count()).where(col(Customer.contact_state) == "active")
    ).scalar_one()
    if not contacts:
        return None
    return statistics.fmean(per_day.get(d.isoformat(), 0) / contacts for d in period.days)
