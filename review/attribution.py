"""Last-touch attribution: each order goes to the latest delivered touch within its SOP's window."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from typing import Any

from sqlalchemy import Integer, Select, and_, case, delete, func, insert, literal, select, union_all
from sqlalchemy.sql.expression import ColumnElement, Exists
from sqlmodel import Session, col

from core.clock import utcnow
from models.commerce import Order
from models.delivery import Delivery, DeliveryStatus
from models.people import GroupMember
from models.review import Attribution
from review.sql_time import hours_after, hours_before
from soplang.spec import WINDOW_PATTERN, SopSpec

DEFAULT_WINDOW_HOURS = 72
# A touch's row is planned before it is sent (deferral over quiet hours, an approval pause), so
# candidate rows are found through the (target, planned_at) indexes with this much slack before
# the window, then held to the window by sent_at.
PLANNING_SLACK_HOURS = 48
# Orders that count: refunded ones are not conversions.
COUNTED_ORDER_STATUSES = ("paid", "shipped")


def window_hours(window: str | None) -> int:
    """`72h` → 72, `3d` → 72; None → the default window."""
    if not window:
        return DEFAULT_WINDOW_HOURS
    match = WINDOW_PATTERN.match(window)
    if not match:
        raise ValueError(f"attribution window `{window}`: write it as `72h` or `3d`")
    amount, unit = int(match.group(1)), match.group(2)
    return amount * 24 if unit == "d" else amount


def sop_windows(specs: Iterable[SopSpec]) -> dict[str, int]:
    """Each loaded SOP's attribution window in hours (`attribution: {window: …}`)."""
    return {
        spec.id: window_hours(spec.attribution.window if spec.attribution else None)
        for spec in specs
    }


def window_of(sop_column: Any, windows: Mapping[str, int]) -> ColumnElement[int]:
    """The window in hours of the SOP in `sop_column`, as an SQL expression."""
    if not windows:
        return literal(DEFAULT_WINDOW_HOURS, Integer)
    return case(
        {sop: literal(hours, Integer) for sop, hours in windows.items()},
        value=sop_column,
        else_=literal(DEFAULT_WINDOW_HOURS, Integer),
    )


def counted_orders(starts: dt.datetime, ends: dt.datetime) -> ColumnElement[bool]:
    """Orders placed in [starts, ends) that count as conversions."""
    return and_(
        col(Order.placed_at) >= starts,
        col(Order.placed_at) < ends,
        col(Order.status).in_(COUNTED_ORDER_STATUSES),
    )


def _candidates(
    starts: dt.datetime, ends: dt.datetime, windows: Mapping[str, int], *, through_groups: bool
) -> Select[Any]:
    """(order, delivered touch) pairs where the touch was sent within the SOP's window before it."""
    window = window_of(Delivery.sop_id, windows)
    longest = max([DEFAULT_WINDOW_HOURS, *windows.values()])
    columns = [
        col(Order.id).label("order_id"),
        col(Delivery.id).label("delivery_id"),
        col(Delivery.sop_id).label("sop_id"),
        col(Delivery.step).label("step"),
        col(Delivery.channel).label("channel"),
        col(Order.customer_id).label("customer_id"),
        col(Delivery.sent_at).label("touched_at"),
        col(Order.placed_at).label("placed_at"),
        col(Order.total_fen).label("revenue_fen"),
        window.label("window_hours"),
    ]
    touch = [
        col(Delivery.status) == DeliveryStatus.DELIVERED.value,
        col(Delivery.planned_at) <= Order.placed_at,
        col(Delivery.planned_at) >= hours_before(Order.placed_at, longest + PLANNING_SLACK_HOURS),
        col(Delivery.sent_at) <= Order.placed_at,
        col(Delivery.sent_at) >= hours_before(Order.placed_at, window),
    ]
    statement = select(*columns).where(counted_orders(starts, ends))
    if through_groups:
        return statement.join(GroupMember, col(GroupMember.customer_id) == Order.customer_id).join(
            Delivery, and_(col(Delivery.group_id) == GroupMember.group_id, *touch)
        )
    return statement.join(Delivery, and_(col(Delivery.customer_id) == Order.customer_id, *touch))


def attribute_orders(
    starts: dt.datetime,
    ends: dt.datetime,
    windows: Mapping[str, int],
    *,
    session: Session,
    now: dt.datetime | None = None,
) -> int:
    """Recompute and store the attribution of every order placed in [starts, ends); returns the count.

    Replacing the period's rows in one transaction keeps reruns identical and never leaves a
    half-attributed period behind.
    """
    now = now or utcnow()
    candidates = union_all(
        _candidates(starts, ends, windows, through_groups=False),
        _candidates(starts, ends, windows, through_groups=True),
    ).subquery("candidate")
    ranked = select(
        *candidates.c,
        func.row_number()
        .over(
            partition_by=candidates.c.order_id,
            order_by=(candidates.c.touched_at.desc(), candidates.c.delivery_id.desc()),
        )
        .label("rank"),
    ).subquery("ranked")
    latest = select(
        ranked.c.order_id,
        ranked.c.delivery_id,
        ranked.c.sop_id,
        ranked.c.step,
        ranked.c.channel,
        ranked.c.customer_id,
        ranked.c.touched_at,
        ranked.c.placed_at,
        ranked.c.revenue_fen,
        ranked.c.window_hours,
        literal(now, Attribution.__table__.c.attributed_at.type).label("attributed_at"),  # type: ignore[attr-defined]
    ).where(ranked.c.rank == 1)
    session.execute(
        delete(Attribution).where(
            col(Attribution.placed_at) >= starts, col(Attribution.placed_at) < ends
        )
    )
    result = session.execute(
        insert(Attribution).from_select(
            [
                "order_id",
                "delivery_id",
                "sop_id",
                "step",
                "channel",
                "customer_id",
                "touched_at",
                "placed_at",
                "revenue_fen",
                "window_hours",
                "attributed_at",
            ],
            latest,
        )
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


def converted_within(touched_at: Any, customer_id: Any, window: Any) -> Exists:
    """EXISTS an order of `customer_id` placed within `window` hours after `touched_at`."""
    return (
        select(literal(1))
        .where(
            col(Order.customer_id) == customer_id,
            col(Order.placed_at) >= touched_at,
            col(Order.placed_at) <= hours_after(touched_at, window),
            col(Order.status).in_(COUNTED_ORDER_STATUSES),
        )
        .exists()
    )
