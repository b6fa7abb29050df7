"""The period's outcomes read from the database: the grain of Delivery rows, attributed orders, days."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from typing import Any

from sqlalchemy import and_, case, func, literal, select
from sqlalchemy.sql.expression import ColumnElement
from sqlmodel import Session, col

from models.delivery import Delivery, DeliveryStatus
from models.review import Attribution
from review.model import Row
from review.period import Period, in_period, sop_filter
from review.sql_time import local_day
from review.statuses import ACCEPTED


def outcome_grain(session: Session, period: Period, sop_id: str | None) -> list[Row]:
    """One pass over the period's rows, no joins: counts by SOP, step, channel, sender, group,
    day, status, skip reason and mass message, and when each message first went out."""
    skip_reason = case(
        (col(Delivery.status) == DeliveryStatus.SKIPPED.value, col(Delivery.reason)), else_=None
    ).label("skip_reason")
    keys = (
        *_touch_keys(),
        local_day(Delivery.planned_at, period.days, period.tz).label("day"),
        col(Delivery.status),
        skip_reason,
        col(Delivery.msgid),
    )
    statement = (
        select(*keys, func.count().label("rows"), func.min(Delivery.sent_at).label("first_sent"))
        .where(_period_rows(period, sop_id))
        .group_by(*keys)
    )
    return [dict(row._mapping) for row in session.execute(statement)]


def attributed_grain(session: Session, period: Period, sop_id: str | None) -> list[Row]:
    """Attributed orders and revenue of the period's orders, by the touch's breakdown keys.

    A touch planned before the period may convert in it: its day is None ("earlier")."""
    day = case(
        (
            in_period(Delivery.planned_at, period),
            local_day(Delivery.planned_at, period.days, period.tz),
        ),
        else_=None,
    ).label("day")
    keys = (*_touch_keys(), day)
    statement = (
        select(
            *keys,
            func.count().label("orders"),
            func.sum(Attribution.revenue_fen).label("revenue_fen"),
        )
        .join(Attribution, col(Attribution.delivery_id) == Delivery.id)
        .where(in_period(Attribution.placed_at, period), sop_filter(sop_id))
        .group_by(*keys)
    )
    return [dict(row._mapping) for row in session.execute(statement)]


def daily_series(
    session: Session, period: Period, sop_id: str | None, outcomes: Iterable[Row]
) -> list[Row]:
    """Per local day: rows sent and delivered (by planned day), and orders attributed (by order day)."""
    series: dict[str, Counter[str]] = {d.isoformat(): Counter() for d in period.days}
    accepted = {s.value for s in ACCEPTED}
    for row in outcomes:
        if row["day"] in series:
            if row["status"] in accepted:
                series[row["day"]]["sent"] += int(row["rows"])
            if row["status"] == DeliveryStatus.DELIVERED.value:
                series[row["day"]]["delivered"] += int(row["rows"])
    order_day = local_day(Attribution.placed_at, period.days, period.tz)
    orders = select(order_day.label("day"), func.count(), func.sum(Attribution.revenue_fen)).where(
        in_period(Attribution.placed_at, period),
        col(Attribution.sop_id) == sop_id if sop_id else literal(True),
    )
    for key, count, revenue in session.execute(orders.group_by(order_day)):
        if key in series:
            series[key].update(orders=int(count or 0), revenue_fen=int(revenue or 0))
    columns = ("sent", "delivered", "orders", "revenue_fen")
    return [
        {"day": key, **{c: counts.get(c, 0) for c in columns}} for key, counts in series.items()
    ]


def _period_rows(period: Period, sop_id: str | None) -> ColumnElement[bool]:
    return and_(in_period(Delivery.planned_at, period), sop_filter(sop_id))


def _touch_keys() -> tuple[Any, ...]:
    return (
        col(Delivery.sop_id),
        col(Delivery.step),
        col(Delivery.target_kind),
        col(Delivery.channel),
        col(Delivery.sender),
        col(Delivery.group_id),
    )
