"""The review's numbers for one period: set-based SQL over Delivery, Attribution, orders and contacts."""

from __future__ import annotations

import datetime as dt
import math
import statistics
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_, case, distinct, func, literal, or_, select, union, union_all
from sqlmodel import Session, col

from models.commerce import Event, Order
from models.delivery import Delivery, DeliveryStatus, MassTask
from models.people import Customer, CustomerGroup, GroupMember, OptOut, Staff, Store
from models.review import Attribution
from sopflow.clock import at_local
from tasks.attribution import converted_within, counted_orders, window_of
from tasks.guard import HOLDOUT
from tasks.review_model import Row, Uplift
from tasks.sql_time import hours_after, local_day

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
GRAIN = ("sop_id", "step", "target_kind", "channel", "sender", "region", "store_id", "day")


def _grain_columns(period: Period, day_column: Any) -> list[Any]:
    return [
        col(Delivery.sop_id),
        col(Delivery.step),
        col(Delivery.target_kind),
        col(Delivery.channel),
        col(Delivery.sender),
        func.coalesce(Customer.region, CustomerGroup.region).label("region"),
        func.coalesce(Customer.store_id, CustomerGroup.store_id).label("store_id"),
        local_day(day_column, period.days, period.tz).label("day"),
    ]


def _with_targets(statement: Any) -> Any:
    return statement.outerjoin(Customer, col(Customer.id) == Delivery.customer_id).outerjoin(
        CustomerGroup, col(CustomerGroup.id) == Delivery.group_id
    )


def outcome_grain(session: Session, period: Period, sop_id: str | None) -> list[Row]:
    """Row counts by every breakdown key at once, and the people each delivered row reached."""
    grain = _grain_columns(period, Delivery.planned_at)
    reached = case(
        (col(Delivery.target_kind) == "group", func.coalesce(CustomerGroup.member_count, 0)),
        else_=1,
    )
    statement = _with_targets(
        select(
            *grain,
            col(Delivery.status),
            func.count().label("rows"),
            func.sum(case((col(Delivery.status) == S.DELIVERED.value, reached), else_=0)).label(
                "reached"
            ),
        )
    ).where(_in_period(Delivery.planned_at, period), _sop_filter(sop_id))
    statement = statement.group_by(*grain, col(Delivery.status))
    return [dict(row._mapping) for row in session.execute(statement)]


def attributed_grain(session: Session, period: Period, sop_id: str | None) -> list[Row]:
    """Attributed orders and revenue of the period's orders, by the touch's breakdown keys."""
    grain = _grain_columns(period, Delivery.planned_at)
    statement = _with_targets(
        select(
            *grain,
            func.count().label("orders"),
            func.sum(Attribution.revenue_fen).label("revenue_fen"),
        ).join(Attribution, col(Attribution.delivery_id) == Delivery.id)
    ).where(_in_period(Attribution.placed_at, period), _sop_filter(sop_id))
    return [dict(row._mapping) for row in session.execute(statement.group_by(*grain))]


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


def rollup(
    outcomes: Iterable[Row], attributed: Iterable[Row], labels: Mapping[str, Callable[[Any], str]]
) -> dict[str, list[Row]]:
    """Every breakdown table from the grain rows, with conversion = orders / people reached."""
    tables: dict[str, dict[tuple[Any, ...], Counter[str]]] = {
        name: defaultdict(Counter) for name in BREAKDOWNS
    }

    def keys_of(row: Row) -> dict[str, tuple[Any, ...]]:
        values = dict(row, store=labels["store"](row["store_id"]), day=row["day"] or "earlier")
        return {name: tuple(values[k] for k in keys) for name, keys in BREAKDOWNS.items()}

    for row in outcomes:
        counts = _status_counts(row["status"], int(row["rows"]))
        counts["reached"] += int(row["reached"] or 0)
        for name, key in keys_of(row).items():
            tables[name][key].update(counts)
    for row in attributed:
        counts = Counter(orders=int(row["orders"]), revenue_fen=int(row["revenue_fen"] or 0))
        for name, key in keys_of(row).items():
            tables[name][key].update(counts)
    result: dict[str, list[Row]] = {}
    for name, groups in tables.items():
        rows = []
        for key, counts in groups.items():
            row = dict(zip(BREAKDOWNS[name], key, strict=True))
            row.update({column: counts.get(column, 0) for column in OUTCOME_COLUMNS})
            row["conversion_rate"] = rate(row["orders"], row["reached"])
            rows.append(row)
        rows.sort(key=lambda r: (-r["planned"], *(str(r[k]) for k in BREAKDOWNS[name])))
        if name == "day":
            rows.sort(key=lambda r: str(r["day"]))
        result[name] = rows
    if "staff" in result:
        for row in result["staff"]:
            row["staff_name"] = labels["staff"](row["sender"])
    return result


def labels(session: Session) -> dict[str, Callable[[Any], str]]:
    """Readable names for store ids and staff userids (small tables, read once)."""
    stores = dict(session.execute(select(Store.id, Store.name)).all())
    staff = dict(session.execute(select(Staff.userid, Staff.name)).all())
    return {
        "store": lambda store_id: stores.get(store_id, "—") if store_id is not None else "—",
        "staff": lambda userid: staff.get(userid, userid or "—"),
    }


def skip_reasons(session: Session, period: Period, sop_id: str | None) -> list[Row]:
    statement = (
        select(col(Delivery.reason), func.count().label("count"))
        .where(
            col(Delivery.status) == S.SKIPPED.value,
            _in_period(Delivery.planned_at, period),
            _sop_filter(sop_id),
        )
        .group_by(col(Delivery.reason))
        .order_by(func.count().desc())
    )
    return [
        {"reason": reason or "—", "count": count} for reason, count in session.execute(statement)
    ]


def daily_series(session: Session, period: Period, sop_id: str | None) -> list[Row]:
    """Per local day: rows sent and delivered (by planned day), and orders attributed (by order day)."""
    day = local_day(Delivery.planned_at, period.days, period.tz)
    sends = select(
        day.label("day"),
        func.sum(case((col(Delivery.status).in_([s.value for s in ACCEPTED]), 1), else_=0)),
        func.sum(case((col(Delivery.status) == S.DELIVERED.value, 1), else_=0)),
    ).where(_in_period(Delivery.planned_at, period), _sop_filter(sop_id))
    order_day = local_day(Attribution.placed_at, period.days, period.tz)
    orders = select(order_day.label("day"), func.count(), func.sum(Attribution.revenue_fen)).where(
        _in_period(Attribution.placed_at, period),
        col(Attribution.sop_id) == sop_id if sop_id else literal(True),
    )
    series = {d.isoformat(): Counter() for d in period.days}
    for key, sent, delivered in session.execute(sends.group_by(day)):
        if key in series:
            series[key].update(sent=int(sent or 0), delivered=int(delivered or 0))
    for key, count, revenue in session.execute(orders.group_by(order_day)):
        if key in series:
            series[key].update(orders=int(count or 0), revenue_fen=int(revenue or 0))
    return [
        {
            "day": key,
            **{c: counts.get(c, 0) for c in ("sent", "delivered", "orders", "revenue_fen")},
        }
        for key, counts in series.items()
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


def _reached_people(period: Period, sop_id: str | None) -> Any:
    """(sop_id, customer_id, touched_at) of every person a delivered touch reached in the period."""
    delivered = and_(
        col(Delivery.status) == S.DELIVERED.value,
        _in_period(Delivery.planned_at, period),
        _sop_filter(sop_id),
    )
    direct = select(
        col(Delivery.sop_id), col(Delivery.customer_id).label("customer_id"), col(Delivery.sent_at)
    ).where(delivered, col(Delivery.target_kind) == "customer")
    through_groups = (
        select(col(Delivery.sop_id), col(GroupMember.customer_id), col(Delivery.sent_at))
        .join(GroupMember, col(GroupMember.group_id) == Delivery.group_id)
        .where(delivered, col(Delivery.target_kind) == "group")
    )
    return union_all(direct, through_groups).subquery("reached")


def after_touch(session: Session, period: Period, sop_id: str | None) -> list[Row]:
    """Per SOP: people reached, and how many deleted the contact or opted out within 7 days after."""
    reached = _reached_people(period, sop_id)
    touched = dict(
        session.execute(
            select(reached.c.sop_id, func.count(distinct(reached.c.customer_id))).group_by(
                reached.c.sop_id
            )
        ).all()
    )

    def left_within(moment: Any, customer: Any) -> Any:
        return and_(
            reached.c.customer_id == customer,
            moment > reached.c.sent_at,
            moment <= hours_after(reached.c.sent_at, AFTER_TOUCH_DAYS * 24),
        )

    deleted = select(reached.c.sop_id, func.count(distinct(reached.c.customer_id))).join(
        Customer, left_within(Customer.deleted_at, Customer.id)
    )
    opted = select(reached.c.sop_id, func.count(distinct(reached.c.customer_id))).join(
        OptOut, left_within(OptOut.created_at, OptOut.customer_id)
    )
    deletions = dict(session.execute(deleted.group_by(reached.c.sop_id)).all())
    opt_outs = dict(session.execute(opted.group_by(reached.c.sop_id)).all())
    return [
        {
            "sop_id": sop,
            "touched": int(count),
            "deleted_7d": int(deletions.get(sop, 0)),
            "opted_out_7d": int(opt_outs.get(sop, 0)),
            "deletion_rate": rate(deletions.get(sop, 0), count),
            "opt_out_rate": rate(opt_outs.get(sop, 0), count),
        }
        for sop, count in sorted(touched.items())
    ]


# ------------------------------------------------------------------ customers and staff


def loyalty(session: Session, period: Period) -> list[Row]:
    """Group members vs non-members among current contacts: buyers, repurchase and basket size."""
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
    member = select(literal(1)).where(col(GroupMember.customer_id) == Customer.id).exists()
    statement = (
        select(
            case((member, 1), else_=0).label("member"),
            func.count(),
            func.count(per_customer.c.customer_id),
            func.sum(case((per_customer.c.orders >= 2, 1), else_=0)),
            func.sum(per_customer.c.orders),
            func.sum(per_customer.c.spent),
        )
        .select_from(Customer)
        .outerjoin(per_customer, per_customer.c.customer_id == Customer.id)
        .where(col(Customer.contact_state) == "active")
        .group_by("member")
    )
    rows = []
    for is_member, customers, buyers, repeaters, orders, spent in session.execute(statement):
        rows.append(
            {
                "segment": "group members" if is_member else "non-members",
                "customers": int(customers),
                "buyers": int(buyers or 0),
                "repurchase_rate": rate(repeaters or 0, buyers),
                "orders": int(orders or 0),
                "orders_per_buyer": rate(orders or 0, buyers),
                "average_order_fen": rate(spent or 0, orders),
            }
        )
    rows.sort(key=lambda r: r["segment"] != "group members")
    return rows


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


def staff_confirmation(session: Session, period: Period, sop_id: str | None) -> list[Row]:
    """Per staff member: mass messages to confirm, how many were, and the median delay."""
    resulted = func.max(case((col(Delivery.status).in_([s.value for s in RESULTED]), 1), else_=0))
    statement = (
        select(
            col(Delivery.msgid),
            col(Delivery.sender),
            func.min(Delivery.sent_at),
            resulted,
            func.max(MassTask.confirmed_at),
        )
        .outerjoin(MassTask, col(MassTask.msgid) == Delivery.msgid)
        .where(
            col(Delivery.msgid).is_not(None),
            col(Delivery.channel) == "wecom",
            _in_period(Delivery.planned_at, period),
            _sop_filter(sop_id),
        )
        .group_by(col(Delivery.msgid), col(Delivery.sender))
    )
    tasks: dict[str, list[tuple[bool, float | None]]] = defaultdict(list)
    for _msgid, sender, sent_at, has_results, confirmed_at in session.execute(statement):
        delay = None
        if confirmed_at is not None and sent_at is not None:
            delay = max(0.0, (_aware(confirmed_at) - _aware(sent_at)).total_seconds())
        tasks[sender or "—"].append((bool(has_results) or confirmed_at is not None, delay))
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


def all_orders(session: Session, period: Period) -> int:
    return int(
        session.execute(
            select(func.count()).where(counted_orders(period.start_utc, period.end_utc))
        ).scalar_one()
    )
