"""The review's numbers for one period: set-based SQL over Delivery, Attribution, orders and contacts."""

from __future__ import annotations

import datetime as dt
import math
import statistics
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_, case, distinct, func, literal, or_, select, union, union_all
from sqlmodel import Session, col

from core.clock import at_local
from models.commerce import Event, Order
from models.delivery import HOLDOUT, Delivery, DeliveryStatus, MassTask
from models.people import Customer, CustomerGroup, GroupMember, OptOut, Staff, Store
from models.review import Attribution
from review.attribution import (
    PLANNING_SLACK_HOURS,
    converted_within,
    counted_orders,
    window_of,
)
from review.model import Row, Uplift
from review.sql_time import hours_after, hours_before, local_day

S = DeliveryStatus
# WeCom accepted the mass message: the row is `sent` or has a result since.
ACCEPTED = (S.SENT, S.DELIVERED, S.NOT_A_FRIEND, S.OVER_WECOM_LIMIT, S.UNCONFIRMED)
# Rows past the holdout guard that were not held out: the treated arm (intention to treat).
TREATED = (*ACCEPTED, S.FAILED, S.UNKNOWN)
RESULTED = (S.DELIVERED, S.NOT_A_FRIEND, S.OVER_WECOM_LIMIT)
OUTCOME_COLUMNS = (
    "planned",
    "sent",
    "delivered",
    "not_a_friend",
    "over_wecom_limit",
    "unconfirmed",
    "awaiting_results",
    "failed",
    "unknown",
    "skipped",
    "not_sent_yet",
    "reached",
    "orders",
    "revenue_fen",
)
AFTER_TOUCH_DAYS = 7
# Activity that shows a customer was active on a day besides ordering (system events excluded).
ACTIVE_EVENT_KINDS = ("checkin", "browse", "favourite")
Z_95 = 1.959963984540054


@dataclass(frozen=True)
class Period:
    """Local calendar days [starts, ends] in `tz`, and the UTC instants bounding them."""

    starts: dt.date
    ends: dt.date
    tz: str

    @property
    def days(self) -> list[dt.date]:
        return [
            self.starts + dt.timedelta(days=n) for n in range((self.ends - self.starts).days + 1)
        ]

    @property
    def start_utc(self) -> dt.datetime:
        return at_local(self.starts, 0, 0, self.tz)

    @property
    def end_utc(self) -> dt.datetime:
        return at_local(self.ends + dt.timedelta(days=1), 0, 0, self.tz)


def rate(part: float | None, whole: float | None) -> float | None:
    return part / whole if part is not None and whole else None


def _in_period(column: Any, period: Period) -> Any:
    return and_(column >= period.start_utc, column < period.end_utc)


def _sop_filter(sop_id: str | None) -> Any:
    return col(Delivery.sop_id) == sop_id if sop_id else literal(True)


# ------------------------------------------------------------------ outcomes by breakdown

BREAKDOWNS: dict[str, tuple[str, ...]] = {
    "sop": ("sop_id",),
    "step": ("sop_id", "step"),
    "channel": ("target_kind", "channel"),
    "region": ("region",),
    "store": ("store",),
    "staff": ("sender",),
    "day": ("day",),
}


@dataclass(frozen=True)
class Directory:
    """Stores, staff and groups (small tables, read once): names, and where each row belongs.

    A 1:1 row belongs to the store of the staff member who sent it (the customer's advisor) and
    that store's city; a group row to the group's store and region.
    """

    stores: dict[int, tuple[str, str]]  # id -> (name, city)
    staff: dict[str, tuple[str, int | None]]  # userid -> (name, store id)
    groups: dict[int, tuple[str, int | None, int]]  # id -> (region, store id, members)

    @classmethod
    def read(cls, session: Session) -> Directory:
        return cls(
            stores={
                i: (n, c) for i, n, c in session.execute(select(Store.id, Store.name, Store.city))
            },
            staff={
                u: (n, s)
                for u, n, s in session.execute(select(Staff.userid, Staff.name, Staff.store_id))
            },
            groups={
                i: (r, s, m or 0)
                for i, r, s, m in session.execute(
                    select(
                        CustomerGroup.id,
                        CustomerGroup.region,
                        CustomerGroup.store_id,
                        CustomerGroup.member_count,
                    )
                )
            },
        )

    def staff_name(self, userid: str | None) -> str:
        return self.staff.get(userid or "", (userid or "—", None))[0]

    def place(self, sender: str | None, group_id: int | None) -> tuple[str, str]:
        """(region, store name) of a row."""
        if group_id is not None and group_id in self.groups:
            region, store_id, _ = self.groups[group_id]
            return region, self.stores.get(store_id, ("—", ""))[0] if store_id else "—"
        store_id = self.staff.get(sender or "", ("", None))[1]
        name, city = self.stores.get(store_id, ("—", "—")) if store_id else ("—", "—")
        return city, name

    def members(self, group_id: int | None) -> int:
        return self.groups[group_id][2] if group_id in self.groups else 1


def _period_rows(period: Period, sop_id: str | None) -> Any:
    return and_(_in_period(Delivery.planned_at, period), _sop_filter(sop_id))


def outcome_grain(session: Session, period: Period, sop_id: str | None) -> list[Row]:
    """One pass over the period's rows, no joins: counts by SOP, step, channel, sender, group,
    day, status, skip reason and mass message, and when each message first went out."""
    skip_reason = case(
        (col(Delivery.status) == S.SKIPPED.value, col(Delivery.reason)), else_=None
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


def _touch_keys() -> tuple[Any, ...]:
    return (
        col(Delivery.sop_id),
        col(Delivery.step),
        col(Delivery.target_kind),
        col(Delivery.channel),
        col(Delivery.sender),
        col(Delivery.group_id),
    )


def attributed_grain(session: Session, period: Period, sop_id: str | None) -> list[Row]:
    """Attributed orders and revenue of the period's orders, by the touch's breakdown keys.

    A touch planned before the period may convert in it: its day is None ("earlier")."""
    day = case(
        (
            _in_period(Delivery.planned_at, period),
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
        .where(_in_period(Attribution.placed_at, period), _sop_filter(sop_id))
        .group_by(*keys)
    )
    return [dict(row._mapping) for row in session.execute(statement)]


def _status_counts(status: str, rows: int) -> Counter[str]:
    counts: Counter[str] = Counter(planned=rows)
    if status in {s.value for s in ACCEPTED}:
        counts["sent"] += rows
    column = {
        S.SENT.value: "awaiting_results",
        S.PLANNED.value: "not_sent_yet",
        S.SENDING.value: "not_sent_yet",
    }.get(status, status)
    counts[column] += rows
    return counts


def reached_by_sop(outcomes: Iterable[Row], directory: Directory) -> dict[str, int]:
    """People reached per SOP: a delivered 1:1 row is one, a delivered group row its members."""
    reached: Counter[str] = Counter()
    for row in outcomes:
        if row["status"] == S.DELIVERED.value:
            reached[row["sop_id"]] += int(row["rows"]) * directory.members(row["group_id"])
    return dict(reached)


def rollup(
    outcomes: Iterable[Row], attributed: Iterable[Row], directory: Directory
) -> dict[str, list[Row]]:
    """Every breakdown table from the grain rows, with conversion = orders / people reached.

    A delivered 1:1 row reaches one person; a delivered group row reaches the group's members.
    """
    tables: dict[str, dict[tuple[Any, ...], Counter[str]]] = {
        name: defaultdict(Counter) for name in BREAKDOWNS
    }

    def add(row: Row, counts: Counter[str]) -> None:
        region, store = directory.place(row["sender"], row["group_id"])
        values = dict(row, region=region, store=store, day=row["day"] or "earlier")
        for name in BREAKDOWNS:
            tables[name][tuple(values[k] for k in BREAKDOWNS[name])].update(counts)

    for row in outcomes:
        counts = _status_counts(row["status"], int(row["rows"]))
        if row["status"] == S.DELIVERED.value:
            counts["reached"] += int(row["rows"]) * directory.members(row["group_id"])
        add(row, counts)
    for row in attributed:
        add(row, Counter(orders=int(row["orders"]), revenue_fen=int(row["revenue_fen"] or 0)))
    result: dict[str, list[Row]] = {}
    for name, grouped in tables.items():
        rows = []
        for key, counts in grouped.items():
            row = dict(zip(BREAKDOWNS[name], key, strict=True))
            row.update({column: counts.get(column, 0) for column in OUTCOME_COLUMNS})
            row["conversion_rate"] = rate(row["orders"], row["reached"])
            rows.append(row)
        rows.sort(key=lambda r: (-r["planned"], *(str(r[k]) for k in BREAKDOWNS[name])))
        if name == "day":
            rows.sort(key=lambda r: str(r["day"]))
        result[name] = rows
    for row in result["staff"]:
        row["staff_name"] = directory.staff_name(row["sender"])
    return result


def skip_reasons(outcomes: Iterable[Row]) -> list[Row]:
    counts: Counter[str] = Counter()
    for row in outcomes:
        if row["status"] == S.SKIPPED.value:
            counts[row["skip_reason"] or "—"] += int(row["rows"])
    return [{"reason": reason, "count": count} for reason, count in counts.most_common()]


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
            if row["status"] == S.DELIVERED.value:
                series[row["day"]]["delivered"] += int(row["rows"])
    order_day = local_day(Attribution.placed_at, period.days, period.tz)
    orders = select(order_day.label("day"), func.count(), func.sum(Attribution.revenue_fen)).where(
        _in_period(Attribution.placed_at, period),
        col(Attribution.sop_id) == sop_id if sop_id else literal(True),
    )
    for key, count, revenue in session.execute(orders.group_by(order_day)):
        if key in series:
            series[key].update(orders=int(count or 0), revenue_fen=int(revenue or 0))
    columns = ("sent", "delivered", "orders", "revenue_fen")
    return [
        {"day": key, **{c: counts.get(c, 0) for c in columns}} for key, counts in series.items()
    ]


# ------------------------------------------------------------------ uplift against the holdout


def wald_interval(
    treated: int, treated_converted: int, control: int, control_converted: int
) -> tuple[float, float, float] | None:
    """Difference of two proportions with its 95 % Wald interval; None without both arms."""
    if treated == 0 or control == 0:
        return None
    p1, p0 = treated_converted / treated, control_converted / control
    spread = Z_95 * math.sqrt(p1 * (1 - p1) / treated + p0 * (1 - p0) / control)
    return p1 - p0, p1 - p0 - spread, p1 - p0 + spread


def uplift(
    session: Session, period: Period, sop_id: str | None, windows: Mapping[str, int]
) -> list[Uplift]:
    """Per SOP with a holdout: conversion within the window after the planned touch, treated vs control."""
    with_holdout = (
        select(distinct(Delivery.sop_id))
        .where(
            col(Delivery.status) == S.SKIPPED.value,
            col(Delivery.reason) == HOLDOUT,
            _in_period(Delivery.planned_at, period),
            _sop_filter(sop_id),
        )
        .scalar_subquery()
    )
    is_control = col(Delivery.status) == S.SKIPPED.value
    converted = converted_within(
        Delivery.planned_at, Delivery.customer_id, window_of(Delivery.sop_id, windows)
    )
    statement = (
        select(
            col(Delivery.sop_id),
            case((is_control, 1), else_=0).label("control"),
            func.count(),
            func.sum(case((converted, 1), else_=0)),  # type: ignore[arg-type]
        )
        .where(
            col(Delivery.sop_id).in_(with_holdout),
            col(Delivery.target_kind) == "customer",
            _in_period(Delivery.planned_at, period),
            or_(
                and_(col(Delivery.status) == S.SKIPPED.value, col(Delivery.reason) == HOLDOUT),
                col(Delivery.status).in_([s.value for s in TREATED]),
            ),
        )
        .group_by(col(Delivery.sop_id), "control")
    )
    arms: dict[str, dict[int, tuple[int, int]]] = defaultdict(dict)
    for sop, control, n, converted_n in session.execute(statement):
        arms[sop][int(control)] = (int(n), int(converted_n or 0))
    result = []
    for sop in sorted(arms):
        treated, treated_converted = arms[sop].get(0, (0, 0))
        control, control_converted = arms[sop].get(1, (0, 0))
        interval = wald_interval(treated, treated_converted, control, control_converted)
        result.append(
            Uplift(
                sop_id=sop,
                treated=treated,
                treated_converted=treated_converted,
                control=control,
                control_converted=control_converted,
                treated_rate=rate(treated_converted, treated),
                control_rate=rate(control_converted, control),
                uplift=interval[0] if interval else None,
                ci_low=interval[1] if interval else None,
                ci_high=interval[2] if interval else None,
            )
        )
    return result


# ------------------------------------------------------------------ the cost of touching


def _delivered(period: Period, sop_id: str | None, target_kind: str) -> Any:
    return and_(
        col(Delivery.status) == S.DELIVERED.value,
        col(Delivery.target_kind) == target_kind,
        _in_period(Delivery.planned_at, period),
        _sop_filter(sop_id),
    )


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

    def touched_before(target: Any, target_kind: str) -> Any:
        return and_(
            target,
            _delivered(period, sop_id, target_kind),
            col(Delivery.planned_at) <= leavers.c.at,
            col(Delivery.planned_at)
            >= hours_before(leavers.c.at, reach_days + PLANNING_SLACK_HOURS),
            col(Delivery.sent_at) < leavers.c.at,
            hours_after(Delivery.sent_at, reach_days) >= leavers.c.at,
        )

    keys = (col(Delivery.sop_id).label("sop_id"), leavers.c.kind, leavers.c.customer_id)
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


# ------------------------------------------------------------------ customers and staff


def loyalty(session: Session, period: Period) -> tuple[list[Row], int]:
    """Group members vs non-members among current contacts: buyers, repurchase and basket size;
    and the period's orders of everyone (deleted contacts included)."""
    members = select(GroupMember.customer_id)
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
            _in_period(Order.placed_at, period)
        ),
        select(event_day.label("day"), col(Event.customer_id).label("customer_id")).where(
            _in_period(Event.occurred_at, period),
            col(Event.kind).in_(ACTIVE_EVENT_KINDS),
            col(Event.customer_id).is_not(None),
        ),
    ).subquery("active")
    per_day = dict(session.execute(select(active.c.day, func.count()).group_by(active.c.day)).all())
    contacts = session.execute(
        select(func.count()).where(col(Customer.contact_state) == "active")
    ).scalar_one()
    if not contacts:
        return None
    return statistics.fmean(per_day.get(d.isoformat(), 0) / contacts for d in period.days)


def staff_confirmation(session: Session, outcomes: Iterable[Row]) -> list[Row]:
    """Per staff member: mass messages to confirm, how many were, and the median delay."""
    resulted = {s.value for s in RESULTED}
    messages: dict[tuple[str, str], list[Any]] = {}
    for row in outcomes:
        if not row["msgid"] or row["channel"] != "wecom":
            continue
        key = (row["msgid"], row["sender"] or "—")
        first, done = messages.get(key, (None, False))
        sent = row["first_sent"]
        if sent is not None and (first is None or sent < first):
            first = sent
        messages[key] = [first, done or row["status"] in resulted]
    confirmed_at = dict(
        session.execute(
            select(MassTask.msgid, MassTask.confirmed_at).where(
                col(MassTask.confirmed_at).is_not(None)
            )
        )
        .tuples()
        .all()
    )
    tasks: dict[str, list[tuple[bool, float | None]]] = defaultdict(list)
    for (msgid, sender), (first, done) in messages.items():
        confirmed = confirmed_at.get(msgid)
        delay = None
        if confirmed is not None and first is not None:
            delay = max(0.0, (_aware(confirmed) - _aware(first)).total_seconds())
        tasks[sender].append((done or confirmed is not None, delay))
    rows = []
    for sender, items in tasks.items():
        confirmed = sum(1 for done, _ in items if done)
        delays = [delay for _, delay in items if delay is not None]
        rows.append(
            {
                "sender": sender,
                "tasks": len(items),
                "confirmed": confirmed,
                "confirmation_rate": rate(confirmed, len(items)),
                "median_delay_seconds": statistics.median(delays) if delays else None,
            }
        )
    rows.sort(key=lambda r: (r["confirmation_rate"] or 0, -r["tasks"], r["sender"]))
    return rows


def _aware(value: dt.datetime) -> dt.datetime:
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)
