"""The cost of touching: people who deleted the contact or opted out within 7 days after a touch."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

from sqlalchemy import and_, func, literal, select, union, union_all
from sqlalchemy.sql.expression import ColumnElement
from sqlmodel import Session, col

from models.delivery import Delivery, DeliveryStatus
from models.people import Customer, GroupMember, OptOut
from review.attribution import PLANNING_SLACK_HOURS
from review.model import Row, rate
from review.period import Period, in_period, sop_filter
from review.sql_time import hours_after, hours_before

AFTER_TOUCH_DAYS = 7


def after_touch(
    session: Session, period: Period, sop_id: str | None, reached: Mapping[str, int]
) -> list[Row]:
    """Per SOP: people reached, and how many deleted the contact or opted out within 7 days after.

    `reached` counts people per touch (a customer touched twice counts twice), like an email
    unsubscribe rate per delivered message. Starts from the few who left (deleted or opted out up to 7 days after the period) and looks
    back at the touches that reached them, so a month of millions of rows is never joined whole.
    """
    reach_days = AFTER_TOUCH_DAYS * 24
    until = period.end_utc + dt.timedelta(hours=reach_days)
    leavers = union_all(
        select(
            literal("deleted").label("kind"),
            col(Customer.id).label("customer_id"),
            col(Customer.deleted_at).label("at"),
        ).where(col(Customer.deleted_at) >= period.start_utc, col(Customer.deleted_at) < until),
        select(literal("opted_out"), col(OptOut.customer_id), col(OptOut.created_at)).where(
            col(OptOut.created_at) >= period.start_utc, col(OptOut.created_at) < until
        ),
    ).subquery("leaver")

    def touched_before(target: Any, target_kind: str) -> ColumnElement[bool]:
        return and_(
            target,
            _delivered(period, sop_id, target_kind),
            col(Delivery.planned_at) <= leavers.c.at,
            col(Delivery.planned_at)
            >= hours_before(leavers.c.at, reach_days + PLANNING_SLACK_HOURS),
            col(Delivery.sent_at) < leavers.c.at,
            hours_after(Delivery.sent_at, reach_days) >= leavers.c.at,
        )

    keys: tuple[Any, ...] = (
        col(Delivery.sop_id).label("sop_id"),
        leavers.c.kind,
        leavers.c.customer_id,
    )
    direct = select(*keys).join(
        Delivery, touched_before(col(Delivery.customer_id) == leavers.c.customer_id, "customer")
    )
    via_groups = (
        select(*keys)
        .join(GroupMember, col(GroupMember.customer_id) == leavers.c.customer_id)
        .join(Delivery, touched_before(col(Delivery.group_id) == GroupMember.group_id, "group"))
    )
    left = union(direct, via_groups).subquery("left_after_touch")
    counted: dict[tuple[str, str], int] = {
        (sop, kind): int(n)
        for sop, kind, n in session.execute(
            select(left.c.sop_id, left.c.kind, func.count()).group_by(left.c.sop_id, left.c.kind)
        )
    }
    rows = []
    for sop, count in sorted(reached.items()):
        if not count:
            continue
        deleted, opted = counted.get((sop, "deleted"), 0), counted.get((sop, "opted_out"), 0)
        rows.append(
            {
                "sop_id": sop,
                "touched": count,
                "deleted_7d": deleted,
                "opted_out_7d": opted,
                "deletion_rate": rate(deleted, count),
                "opt_out_rate": rate(opted, count),
            }
        )
    return rows


def _delivered(period: Period, sop_id: str | None, target_kind: str) -> ColumnElement[bool]:
    return and_(
        col(Delivery.status) == DeliveryStatus.DELIVERED.value,
        col(Delivery.target_kind) == target_kind,
        in_period(Delivery.planned_at, period),
        sop_filter(sop_id),
    )
