"""Day-ahead cap reservations: before a day's first send, who gets each customer's and group's
capped slots.

`reserve_day` runs before a day's first send. For every SOP step scheduled that day with a
marketing priority it inserts, in one INSERT ... SELECT, a row per target it would reach: per
customer (contact, not opted out, not held out) for a customer audience, per group (not
dismissed) for a community or promotion SOP posting to groups, with the step's priority rank and
scheduled time. Then per target the reservations are ordered by (priority, scheduled time, SOP
id, step) and the first N are marked `won`, N being what is left of the target's caps (a
customer's daily and 30-day caps, a group's daily allowance; engine/caps.py counts them, and
makes a step yield to won reservations at send time). Reservations only matter on their day:
planning a day deletes those of earlier days.

Scheduled that day: a cron `schedule` firing on the local day under its `days` rule (every step
at the first fire); lifecycle steps `{after: Nd, send_at}` for customers whose `stage_since` is
N local days earlier; promotion steps `{at: "±Nd HH:MM"}` of the SOP's campaigns not cancelled.
Triggers cannot be planned and stay first come, first served. A step scheduled inside quiet
hours reserves on its scheduled day although its touches go out the next morning.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo

from croniter import croniter
from sqlalchemy import (
    ColumnElement,
    Date,
    Integer,
    String,
    and_,
    case,
    delete,
    func,
    literal,
    select,
    update,
)
from sqlmodel import Session, col

from core.clock import at_local, day_window, local, utcnow
from core.settings import Settings, get_settings
from engine.caps import (
    MARKETING,
    PRIORITY_RANK,
    counted_conditions,
    customer_limits,
    group_limits,
    register_priority,
    reservation_column,
)
from models.audience import customer_filters, group_filters, reachable_filters
from models.bulk import dialect_insert
from models.commerce import Campaign
from models.delivery import Delivery
from models.holdout import held_out_clause
from models.people import Customer, CustomerGroup
from models.restraint import CapReservation, SopPriority
from models.types import UTCDateTime
from soplang.calendar_file import runs_on
from soplang.spec import Schedule, SopSpec, Step


@dataclass(frozen=True)
class StepSlot:
    """One step of an SOP scheduled on a day, and who it concerns beyond its audience."""

    step: str
    slot_at: dt.datetime
    where: tuple[ColumnElement[bool], ...] = ()


def cron_fire_on(schedule: Schedule, day: dt.date) -> dt.datetime | None:
    """The first time `schedule` fires on local `day` (its cron and `days` rule), else None."""
    if not runs_on(day, schedule.days):
        return None
    tz = ZoneInfo(schedule.timezone)
    before = dt.datetime.combine(day, dt.time(0), tzinfo=tz) - dt.timedelta(seconds=1)
    fire: dt.datetime = croniter(schedule.cron, before).get_next(dt.datetime)
    return fire.astimezone(dt.UTC) if fire.astimezone(tz).date() == day else None


def scheduled_steps(spec: SopSpec, day: dt.date, *, session: Session) -> list[StepSlot]:
    """The SOP's steps that send on `day`: by cron, by stage entry (lifecycle) or by campaign (promotion)."""
    if spec.kind == "promotion":
        return _campaign_steps(spec, day, session=session)
    steps = [
        _lifecycle_step(spec, step, day) for step in spec.step_list if step.after_days is not None
    ]
    if steps:
        return [s for s in steps if s is not None]
    fire = cron_fire_on(spec.schedule, day) if spec.schedule else None
    return [StepSlot(name, fire) for name in spec.step_names] if fire else []


def _lifecycle_step(spec: SopSpec, step: Step, day: dt.date) -> StepSlot | None:
    """`{after: 3d, send_at: "10:00"}`: customers who entered their stage 3 local days before `day`."""
    if step.after_days is None or (spec.schedule and not runs_on(day, spec.schedule.days)):
        return None
    tz = spec.schedule.timezone if spec.schedule else get_settings().timezone
    hour, minute = step.send_time or (0, 0)
    entered = day_window(day - dt.timedelta(days=step.after_days), tz)
    where = (col(Customer.stage_since) >= entered[0], col(Customer.stage_since) < entered[1])
    return StepSlot(step.name, at_local(day, hour, minute, tz), where)


def _campaign_steps(spec: SopSpec, day: dt.date, *, session: Session) -> list[StepSlot]:
    """`{at: "-1d 20:00"}` steps of the SOP's live campaigns that fall on `day`."""
    tz = get_settings().timezone
    starts = session.execute(
        select(Campaign.starts_at).where(
            col(Campaign.sop_id) == spec.id, col(Campaign.status) != "cancelled"
        )
    ).scalars()
    slots = []
    for starts_at in starts:
        for step in spec.step_list:
            offset = step.at_offset
            first_day = local(starts_at, tz).date()
            if offset and first_day + dt.timedelta(days=offset[0]) == day:
                slots.append(StepSlot(step.name, at_local(day, offset[1], offset[2], tz)))
    return slots


@dataclass
class DayPlan:
    """What `reserve_day` reserved: rows and winners per `sop_id:step`."""

    day: dt.date
    reserved: dict[str, int] = field(default_factory=dict)
    won: dict[str, int] = field(default_factory=dict)


TARGET_KINDS = ("customer", "group")
# What flows/community.py and flows/promotion.py post to groups, through the group caps.
_GROUP_POSTS = {("community", "group"), ("community", "robot"), ("promotion", "group")}


def _target_kind(spec: SopSpec) -> str | None:
    """Whose slots the SOP competes for: customers, groups, or none (`service` never competes)."""
    if spec.priority == "service":
        return None
    if spec.audience and spec.audience.customers is not None:
        return "customer"
    return "group" if (spec.kind, spec.channel) in _GROUP_POSTS else None


def _targets(
    spec: SopSpec, kind: str, slot: StepSlot, *, as_of: dt.datetime
) -> tuple[Any, list[ColumnElement[bool]]]:
    """The id column and WHERE clauses selecting every target of `kind` the step would reach."""
    if kind == "group":
        groups = spec.audience.groups if spec.audience else None
        return col(CustomerGroup.id), [*group_filters(groups), *slot.where]
    audience = spec.audience.customers if spec.audience else None
    where = [
        *customer_filters(audience, as_of=as_of),
        *reachable_filters(spec.category),
        *slot.where,
    ]
    if audience and audience.holdout:
        where.append(~held_out_clause(spec.id, audience.holdout))
    return col(Customer.id), where


def _insert_reservations(
    spec: SopSpec, kind: str, slot: StepSlot, day: dt.date, *, as_of: dt.datetime, session: Session
) -> None:
    """INSERT ... SELECT a reservation for every customer or group this step would reach."""
    target_id, where = _targets(spec, kind, slot, as_of=as_of)
    source = select(
        literal(day, Date),
        target_id,
        literal(spec.id, String),
        literal(slot.step, String),
        literal(PRIORITY_RANK[spec.priority], Integer),
        literal(slot.slot_at, UTCDateTime()),
        literal(False),
        literal(as_of, UTCDateTime()),
    ).where(*where)
    columns = [
        "day",
        f"{kind}_id",
        "sop_id",
        "step",
        "priority_rank",
        "slot_at",
        "won",
        "created_at",
    ]
    # `where` is never empty, which SQLite needs to parse INSERT ... SELECT ... ON CONFLICT.
    table = CapReservation.__table__  # type: ignore[attr-defined]
    insert = dialect_insert(session, table).from_select(columns, source)
    session.execute(insert.on_conflict_do_nothing())


def _mark_winners(day: dt.date, kind: str, *, settings: Settings, session: Session) -> None:
    """Per target of `kind`, the first N reservations by (priority, time, SOP, step) win; N = cap left.

    The reservations are joined to the target's counted Delivery rows through the
    (customer_id or group_id, planned_at) index, so SQLite needs no index on an aggregated subquery.
    """
    on_day = col(CapReservation.day) == day
    target = reservation_column(kind)
    order = (
        CapReservation.priority_rank,
        CapReservation.slot_at,
        CapReservation.sop_id,
        CapReservation.step,
    )
    ranked = (
        select(
            CapReservation.id,
            target.label("target"),
            func.row_number().over(partition_by=target, order_by=order).label("n"),
        )
        .where(on_day, target.is_not(None))
        .subquery()
    )
    counted, today = counted_conditions(kind, day, settings.timezone)
    touched = and_(col(Delivery.id).is_not(None), MARKETING)
    limits = customer_limits(settings) if kind == "customer" else group_limits(settings)
    left = [ranked.c.n <= limits.per_day - func.sum(case((and_(touched, today), 1), else_=0))]
    if limits.per_30_days is not None:
        left.append(ranked.c.n <= limits.per_30_days - func.sum(case((touched, 1), else_=0)))
    delivery_target = col(Delivery.customer_id if kind == "customer" else Delivery.group_id)
    winners = (
        select(ranked.c.id)
        .select_from(ranked)
        .outerjoin(Delivery, and_(delivery_target == ranked.c.target, *counted))
        .outerjoin(SopPriority, col(SopPriority.sop_id) == col(Delivery.sop_id))
        .where(ranked.c.n <= limits.per_day)
        .group_by(ranked.c.id, ranked.c.n)
        .having(*left)
    )
    session.execute(
        update(CapReservation).where(col(CapReservation.id).in_(winners)).values(won=True)
    )


def _count_by_step(day: dt.date, *, session: Session) -> tuple[dict[str, int], dict[str, int]]:
    statement = (
        select(
            CapReservation.sop_id,
            CapReservation.step,
            func.count(),
            func.sum(case((col(CapReservation.won), 1), else_=0)),
        )
        .where(col(CapReservation.day) == day)
        .group_by(CapReservation.sop_id, CapReservation.step)
    )
    rows = session.execute(statement).all()
    return (
        {f"{sop}:{step}": int(n) for sop, step, n, _ in rows},
        {f"{sop}:{step}": int(won or 0) for sop, step, _, won in rows},
    )


def reserve_day(
    specs: Sequence[SopSpec],
    day: dt.date,
    as_of: dt.datetime | None = None,
    *,
    session: Session,
    settings: Settings | None = None,
) -> DayPlan:
    """Reserve `day`'s cap slots for every customer or group SOP step scheduled on it (re-runnable).

    Pass every SOP: reservations of the given SOPs for `day` are replaced, others kept, and the
    winners of the whole day recomputed from the caps left at `as_of`. Reservations of days before
    both `day` and the local day of `as_of` are deleted: they only mattered on their day.
    """
    as_of = as_of or utcnow()
    settings = settings or get_settings()
    prune_reservations(min(day, local(as_of, settings.timezone).date()), session=session)
    for spec in specs:
        register_priority(spec.id, spec.priority, session=session, now=as_of)
    competing = [(spec, kind) for spec in specs if (kind := _target_kind(spec))]
    session.execute(
        delete(CapReservation).where(
            col(CapReservation.day) == day,
            col(CapReservation.sop_id).in_([spec.id for spec, _ in competing]),
        )
    )
    for spec, kind in competing:
        for slot in scheduled_steps(spec, day, session=session):
            _insert_reservations(spec, kind, slot, day, as_of=as_of, session=session)
    session.execute(update(CapReservation).where(col(CapReservation.day) == day).values(won=False))
    for kind in TARGET_KINDS:
        _mark_winners(day, kind, settings=settings, session=session)
    reserved, won = _count_by_step(day, session=session)
    return DayPlan(day, reserved, won)


def prune_reservations(before: dt.date, *, session: Session) -> int:
    """Delete reservations of days before `before`; how many were deleted."""
    result = session.execute(delete(CapReservation).where(col(CapReservation.day) < before))
    return int(result.rowcount or 0)  # type: ignore[attr-defined]
