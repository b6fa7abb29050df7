"""Frequency caps across all SOPs: what counts against a cap, and day-ahead slot reservations by priority.

What counts. A Delivery row counts against its customer's (or group's) marketing caps when
- its status is one that may have reached, or will reach, the target: planned, sending, sent,
  delivered or unknown (skipped, failed, not_a_friend, over_wecom_limit and unconfirmed never did);
- its SOP's priority is not `service` (priorities live in `sop_priority`; unknown SOPs count);
- its moment, the first of sent_at, not_before (deferred past quiet hours) and planned_at, falls
  in the window: the local day of `now` for the daily caps, the 30 local days ending with it for
  the 30-day cap;
- it is not a row of the occurrence being planned (so re-planning a row never caps itself).

Reservations. `reserve_day` runs before a day's first send. For every SOP step scheduled that day
with a customer audience and a marketing priority it inserts, in one INSERT ... SELECT, a row per
customer it would reach (contact, not opted out, not held out), with the step's priority rank and
scheduled time. Then per customer the reservations are ordered by (priority, scheduled time, SOP
id, step) and the first N are marked `won`, N being what is left of the customer's daily and
30-day caps. At send time a step yields to every won reservation that ranks before it and has not
run yet for that customer today; a step without a reservation ranks after every reserved step of
its own or higher priority. When it yields the last slot it is skipped `capped (lost to <sop>)`.
Without reservations for a customer the caps are first come, first served.

Scheduled that day: a cron `schedule` firing on the local day under its `days` rule (every step
at the first fire); lifecycle steps `{after: Nd, send_at}` for customers whose `stage_since` is
N local days earlier; promotion steps `{at: "±Nd HH:MM"}` of the SOP's campaigns not cancelled.
Triggers cannot be planned and stay first come, first served. A step scheduled inside quiet
hours reserves on its scheduled day although its touches go out the next morning.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo

from croniter import croniter
from prefect import task
from prefect.cache_policies import NO_CACHE
from sqlalchemy import (
    Date,
    Integer,
    String,
    and_,
    case,
    delete,
    exists,
    func,
    literal,
    select,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session, col

from core.clock import at_local, day_window, local, runs_on, utcnow
from core.settings import Settings, get_settings
from models.commerce import Campaign
from models.db import session_scope
from models.deliveries import Occurrence
from models.delivery import Delivery, DeliveryStatus
from models.people import Customer
from models.restraint import CapReservation, SopPriority
from models.types import UTCDateTime
from tasks.audience import IdRange, customer_filters, held_out_clause, reachable_filters

PRIORITY_RANK = {"service": 0, "high": 1, "normal": 2, "low": 3}
COUNTED = tuple(
    s.value
    for s in (
        DeliveryStatus.PLANNED,
        DeliveryStatus.SENDING,
        DeliveryStatus.SENT,
        DeliveryStatus.DELIVERED,
        DeliveryStatus.UNKNOWN,
    )
)
CAPPED_DAILY = "capped (daily limit)"
CAPPED_30_DAYS = "capped (30-day limit)"
WINDOW_DAYS = 30
NEVER = dt.datetime.max.replace(tzinfo=dt.UTC)


def lost_to(sop_id: str) -> str:
    return f"capped (lost to {sop_id})"


@dataclass(frozen=True)
class Usage:
    """Counted touches of one target: on the local day and in the 30 local days ending with it."""

    today: int = 0
    last_30_days: int = 0


@dataclass(frozen=True)
class Limits:
    per_day: int
    per_30_days: int | None = None  # groups have a daily cap only


def customer_limits(settings: Settings) -> Limits:
    return Limits(settings.cap_customer_day, settings.cap_customer_30d)


def group_limits(settings: Settings) -> Limits:
    return Limits(settings.cap_group_day)


def _insert(session: Session, table: Any) -> Any:
    """The dialect's INSERT, which knows ON CONFLICT."""
    dialect = session.get_bind().dialect.name
    return (postgresql.insert if dialect == "postgresql" else sqlite.insert)(table)


def register_priority(sop_id: str, priority: str, *, session: Session, now: dt.datetime) -> None:
    """Remember the SOP's priority so other SOPs' caps know whether its rows are `service`."""
    statement = _insert(session, SopPriority.__table__).values(  # type: ignore[attr-defined]
        sop_id=sop_id, priority=priority, updated_at=now
    )
    statement = statement.on_conflict_do_update(
        index_elements=["sop_id"],
        set_={"priority": statement.excluded.priority, "updated_at": statement.excluded.updated_at},
    )
    session.execute(statement)


def _target_column(target_kind: str) -> Any:
    return col(Delivery.customer_id) if target_kind == "customer" else col(Delivery.group_id)


def _counted(target_kind: str, day: dt.date, tz: str) -> tuple[list[Any], Any]:
    """Conditions for a Delivery row to count in the 30-day window ending `day`, and "it is today"."""
    moment = func.coalesce(Delivery.sent_at, Delivery.not_before, Delivery.planned_at)
    today_start, end = day_window(day, tz)
    window_start = day_window(day - dt.timedelta(days=WINDOW_DAYS - 1), tz)[0]
    conditions = [
        col(Delivery.target_kind) == target_kind,
        # `|| ''` keeps SQLite's planner (no statistics) off ix_delivery_status, which would scan
        # every counted row of the table instead of the targets' rows for each batch.
        (col(Delivery.status) + "").in_(COUNTED),
        moment >= window_start,
        moment < end,
    ]
    return conditions, moment >= today_start


# Rows of SOPs never registered count as marketing.
MARKETING = func.coalesce(SopPriority.priority, "normal") != "service"


def _usage_select(target_kind: str, day: dt.date, tz: str) -> Any:
    """(target id, today, last_30_days) per target, over the counted rows of the window ending `day`."""
    column = _target_column(target_kind)
    conditions, today = _counted(target_kind, day, tz)
    return (
        select(
            column.label("target"),
            func.sum(case((today, 1), else_=0)).label("today"),
            func.count().label("last_30_days"),
        )
        .outerjoin(SopPriority, col(SopPriority.sop_id) == col(Delivery.sop_id))
        .where(*conditions, MARKETING)
        .group_by(column)
    )


def usage(
    target_kind: str,
    span: IdRange,
    day: dt.date,
    *,
    tz: str,
    session: Session,
    exclude: Occurrence | None = None,
) -> dict[int, Usage]:
    """Counted touches per target id in `span` (customer or group ids), one aggregate query."""
    statement = _usage_select(target_kind, day, tz).where(
        _target_column(target_kind).between(*span)
    )
    if exclude is not None:
        statement = statement.where(
            ~and_(
                col(Delivery.sop_id) == exclude.sop_id,
                col(Delivery.step) == exclude.step,
                col(Delivery.occurrence) == exclude.occurrence,
            )
        )
    return {target: Usage(int(today), int(n)) for target, today, n in session.execute(statement)}


@dataclass(frozen=True, order=True)
class Slot:
    """A reservation of one customer's slot for one SOP step on one day, in arbitration order."""

    priority_rank: int
    slot_at: dt.datetime
    sop_id: str
    step: str
    won: bool = field(default=False, compare=False)
    taken: bool = field(default=False, compare=False)  # the step already ran for the customer


def reservations(
    span: IdRange, day: dt.date, *, tz: str, session: Session
) -> dict[int, list[Slot]]:
    """The day's reservations of the customers in `span`, each marked taken once its step ran."""
    start, end = day_window(day, tz)
    taken = exists().where(
        col(Delivery.customer_id) == col(CapReservation.customer_id),
        col(Delivery.target_kind) == "customer",
        col(Delivery.sop_id) == col(CapReservation.sop_id),
        col(Delivery.step) == col(CapReservation.step),
        col(Delivery.planned_at) >= start,
        col(Delivery.planned_at) < end,
    )
    statement = select(
        CapReservation.customer_id,
        CapReservation.priority_rank,
        CapReservation.slot_at,
        CapReservation.sop_id,
        CapReservation.step,
        CapReservation.won,
        taken.label("taken"),
    ).where(col(CapReservation.day) == day, col(CapReservation.customer_id).between(*span))
    found: dict[int, list[Slot]] = {}
    for customer_id, rank, slot_at, sop_id, step, won, was_taken in session.execute(statement):
        slot = Slot(rank, slot_at, sop_id, step, won=bool(won), taken=bool(was_taken))
        found.setdefault(customer_id, []).append(slot)
    return found


def cap_reason(used: Usage, limits: Limits, ahead: Sequence[Slot] = ()) -> str | None:
    """Why a touch must not go out under the caps, given won reservations still ahead of it; None if it may."""
    if used.today >= limits.per_day:
        return CAPPED_DAILY
    monthly = limits.per_30_days
    if monthly is not None and used.last_30_days >= monthly:
        return CAPPED_30_DAYS
    if ahead and (
        used.today + len(ahead) >= limits.per_day
        or (monthly is not None and used.last_30_days + len(ahead) >= monthly)
    ):
        return lost_to(ahead[0].sop_id)
    return None


def ahead_of(occurrence: Occurrence, rank: int, slots: Iterable[Slot]) -> list[Slot]:
    """Won, not yet taken reservations of other steps that rank before this step's own."""
    slots = list(slots)
    own = next(
        (s for s in slots if (s.sop_id, s.step) == (occurrence.sop_id, occurrence.step)),
        Slot(rank, NEVER, occurrence.sop_id, occurrence.step),
    )
    return sorted(s for s in slots if s.won and not s.taken and s < own)


def cap_reasons(
    target_kind: str,
    target_ids: Sequence[int],
    occurrence: Occurrence,
    priority: str,
    *,
    now: dt.datetime,
    session: Session,
    settings: Settings,
) -> dict[int, str]:
    """Targets this step may not touch now under the caps, with the reason; `service` is never capped.

    Customers also yield to the day's reservations; groups are first come, first served.
    """
    if priority == "service" or not target_ids:
        return {}
    tz = settings.timezone
    day = local(now, tz).date()
    span = (min(target_ids), max(target_ids))
    used = usage(target_kind, span, day, tz=tz, session=session, exclude=occurrence)
    is_customer = target_kind == "customer"
    queue = reservations(span, day, tz=tz, session=session) if is_customer else {}
    limits = customer_limits(settings) if is_customer else group_limits(settings)
    rank = PRIORITY_RANK[priority]
    # Most targets have neither a counted touch nor a reservation: one verdict for all of them.
    idle = cap_reason(Usage(), limits)
    reasons = dict.fromkeys(target_ids, idle) if idle else {}
    wanted = set(target_ids)
    for target_id in (used.keys() | queue.keys()) & wanted:
        slots = queue.get(target_id)
        ahead = ahead_of(occurrence, rank, slots) if slots else []
        reason = cap_reason(used.get(target_id, Usage()), limits, ahead)
        if reason:
            reasons[target_id] = reason
        else:
            reasons.pop(target_id, None)
    return reasons


# --- Day-ahead planning -------------------------------------------------------------------


@dataclass(frozen=True)
class StepSlot:
    """One step of an SOP scheduled on a day, and who it concerns beyond its audience."""

    step: str
    slot_at: dt.datetime
    where: tuple[Any, ...] = ()


def cron_fire_on(schedule: Any, day: dt.date) -> dt.datetime | None:
    """The first time `schedule` fires on local `day` (its cron and `days` rule), else None."""
    if not runs_on(day, schedule.days):
        return None
    tz = ZoneInfo(schedule.timezone)
    before = dt.datetime.combine(day, dt.time(0), tzinfo=tz) - dt.timedelta(seconds=1)
    fire: dt.datetime = croniter(schedule.cron, before).get_next(dt.datetime)
    return fire.astimezone(dt.UTC) if fire.astimezone(tz).date() == day else None


def scheduled_steps(spec: Any, day: dt.date, *, session: Session) -> list[StepSlot]:
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


def _lifecycle_step(spec: Any, step: Any, day: dt.date) -> StepSlot | None:
    """`{after: 3d, send_at: "10:00"}`: customers who entered their stage 3 local days before `day`."""
    if spec.schedule and not runs_on(day, spec.schedule.days):
        return None
    tz = spec.schedule.timezone if spec.schedule else get_settings().timezone
    hour, minute = step.send_time or (0, 0)
    entered = day_window(day - dt.timedelta(days=step.after_days), tz)
    where = (col(Customer.stage_since) >= entered[0], col(Customer.stage_since) < entered[1])
    return StepSlot(step.name, at_local(day, hour, minute, tz), where)


def _campaign_steps(spec: Any, day: dt.date, *, session: Session) -> list[StepSlot]:
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


def _competes(spec: Any) -> bool:
    audience = getattr(spec, "audience", None)
    return bool(audience and audience.customers is not None and spec.priority != "service")


def _insert_reservations(
    spec: Any, slot: StepSlot, day: dt.date, *, as_of: dt.datetime, session: Session
) -> None:
    """INSERT ... SELECT a reservation for every customer this step would reach."""
    audience = spec.audience.customers
    where = [
        *customer_filters(audience, as_of=as_of),
        *reachable_filters(spec.category),
        *slot.where,
    ]
    if audience.holdout:
        where.append(~held_out_clause(spec.id, audience.holdout))
    source = select(
        literal(day, Date),
        Customer.id,
        literal(spec.id, String),
        literal(slot.step, String),
        literal(PRIORITY_RANK[spec.priority], Integer),
        literal(slot.slot_at, UTCDateTime()),
        literal(False),
        literal(as_of, UTCDateTime()),
    ).where(*where)
    columns = [
        "day",
        "customer_id",
        "sop_id",
        "step",
        "priority_rank",
        "slot_at",
        "won",
        "created_at",
    ]
    # `where` is never empty, which SQLite needs to parse INSERT ... SELECT ... ON CONFLICT.
    insert = _insert(session, CapReservation.__table__).from_select(columns, source)
    session.execute(insert.on_conflict_do_nothing())


def _mark_winners(day: dt.date, *, settings: Settings, session: Session) -> None:
    """Per customer, the first N reservations by (priority, time, SOP, step) win; N = cap left.

    The reservations are joined to the customer's counted Delivery rows through the
    (customer_id, planned_at) index, so SQLite needs no index on an aggregated subquery.
    """
    on_day = col(CapReservation.day) == day
    order = (
        CapReservation.priority_rank,
        CapReservation.slot_at,
        CapReservation.sop_id,
        CapReservation.step,
    )
    ranked = (
        select(
            CapReservation.id,
            CapReservation.customer_id,
            func.row_number()
            .over(partition_by=CapReservation.customer_id, order_by=order)
            .label("n"),
        )
        .where(on_day)
        .subquery()
    )
    counted, today = _counted("customer", day, settings.timezone)
    touched = and_(col(Delivery.id).is_not(None), MARKETING)
    limits = customer_limits(settings)
    winners = (
        select(ranked.c.id)
        .select_from(ranked)
        .outerjoin(Delivery, and_(col(Delivery.customer_id) == ranked.c.customer_id, *counted))
        .outerjoin(SopPriority, col(SopPriority.sop_id) == col(Delivery.sop_id))
        .where(ranked.c.n <= limits.per_day)
        .group_by(ranked.c.id, ranked.c.n)
        .having(
            ranked.c.n <= limits.per_day - func.sum(case((and_(touched, today), 1), else_=0)),
            ranked.c.n <= (limits.per_30_days or 0) - func.sum(case((touched, 1), else_=0)),
        )
    )
    session.execute(update(CapReservation).where(on_day).values(won=False))
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
    specs: Sequence[Any],
    day: dt.date,
    as_of: dt.datetime | None = None,
    *,
    session: Session | None = None,
) -> DayPlan:
    """Reserve `day`'s cap slots for every customer-audience SOP step scheduled on it (re-runnable).

    Pass every SOP: reservations of the given SOPs for `day` are replaced, others kept, and the
    winners of the whole day recomputed from the caps left at `as_of`.
    """
    if session is None:
        with session_scope() as scoped:
            return reserve_day(specs, day, as_of, session=scoped)
    as_of = as_of or utcnow()
    for spec in specs:
        register_priority(spec.id, spec.priority, session=session, now=as_of)
    competing = [spec for spec in specs if _competes(spec)]
    session.execute(
        delete(CapReservation).where(
            col(CapReservation.day) == day,
            col(CapReservation.sop_id).in_([spec.id for spec in competing]),
        )
    )
    for spec in competing:
        for slot in scheduled_steps(spec, day, session=session):
            _insert_reservations(spec, slot, day, as_of=as_of, session=session)
    _mark_winners(day, settings=get_settings(), session=session)
    reserved, won = _count_by_step(day, session=session)
    return DayPlan(day, reserved, won)


def prune_reservations(before: dt.date, *, session: Session) -> int:
    """Delete reservations of days before `before` (they only matter on their day)."""
    result = session.execute(delete(CapReservation).where(col(CapReservation.day) < before))
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


@task(name="reserve-day", cache_policy=NO_CACHE)
def reserve_day_task(specs: list[Any], day: dt.date, as_of: dt.datetime | None = None) -> DayPlan:
    """Plan the day ahead: reserve each customer's capped slots for the highest-priority SOPs."""
    return reserve_day(specs, day, as_of)
