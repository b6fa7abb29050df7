"""Frequency caps across all SOPs at send time: what counts against a cap, and who is capped now.

What counts. A Delivery row counts against its customer's (or group's) marketing caps when
- its status is one that may have reached, or will reach, the target (`models.delivery.COUNTED`:
  planned, sending, sent, delivered or unknown; skipped, failed, not_a_friend, over_wecom_limit
  and unconfirmed never did);
- its SOP's priority is not `service` (priorities live in `sop_priority`; unknown SOPs count);
- its moment, the first of sent_at, not_before (deferred past quiet hours) and planned_at, falls
  in the window: the local day of `now` for the daily caps, the 30 local days ending with it for
  the 30-day cap;
- it is not a row of the occurrence being planned (so re-planning a row never caps itself).

Customers and groups also yield to the day's reservations (engine/reservations.py plans them): a
step yields to every won reservation that ranks before it and has not run yet for that target
today; a step without a reservation ranks after every reserved step of its own or higher
priority. When it yields the last slot it is skipped `capped (lost to <sop>)`. Without
reservations for a target the caps are first come, first served.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import ColumnElement, and_, case, exists, func, select
from sqlmodel import Session, col

from core.clock import day_window, local
from core.settings import Settings
from models.audience import IdRange
from models.bulk import dialect_insert
from models.deliveries import Occurrence
from models.delivery import COUNTED, Delivery, status_values
from models.restraint import CapReservation, SopPriority

PRIORITY_RANK = {"service": 0, "high": 1, "normal": 2, "low": 3}
CAPPED_DAILY = "capped (daily limit)"
CAPPED_30_DAYS = "capped (30-day limit)"
WINDOW_DAYS = 30
NEVER = dt.datetime.max.replace(tzinfo=dt.UTC)
_COUNTED_STATES = status_values(COUNTED)


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


def register_priority(sop_id: str, priority: str, *, session: Session, now: dt.datetime) -> None:
    """Remember the SOP's priority so other SOPs' caps know whether its rows are `service`."""
    statement = dialect_insert(session, SopPriority.__table__).values(  # type: ignore[attr-defined]
        sop_id=sop_id, priority=priority, updated_at=now
    )
    statement = statement.on_conflict_do_update(
        index_elements=["sop_id"],
        set_={"priority": statement.excluded.priority, "updated_at": statement.excluded.updated_at},
    )
    session.execute(statement)


def _target_column(target_kind: str) -> Any:
    return col(Delivery.customer_id) if target_kind == "customer" else col(Delivery.group_id)


def counted_conditions(
    target_kind: str, day: dt.date, tz: str
) -> tuple[list[ColumnElement[bool]], ColumnElement[bool]]:
    """Conditions for a Delivery row to count in the 30-day window ending `day`, and "it is today"."""
    moment = func.coalesce(Delivery.sent_at, Delivery.not_before, Delivery.planned_at)
    today_start, end = day_window(day, tz)
    window_start = day_window(day - dt.timedelta(days=WINDOW_DAYS - 1), tz)[0]
    conditions = [
        col(Delivery.target_kind) == target_kind,
        # `|| ''` keeps SQLite's planner (no statistics) off ix_delivery_status, which would scan
        # every counted row of the table instead of the targets' rows for each batch.
        (col(Delivery.status) + "").in_(_COUNTED_STATES),
        moment >= window_start,
        moment < end,
    ]
    return conditions, moment >= today_start


# Rows of SOPs never registered count as marketing.
MARKETING = func.coalesce(SopPriority.priority, "normal") != "service"


def _usage_select(target_kind: str, day: dt.date, tz: str) -> Any:
    """(target id, today, last_30_days) per target, over the counted rows of the window ending `day`."""
    column = _target_column(target_kind)
    conditions, today = counted_conditions(target_kind, day, tz)
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
    """A reservation of one target's slot for one SOP step on one day, in arbitration order."""

    priority_rank: int
    slot_at: dt.datetime
    sop_id: str
    step: str
    won: bool = field(default=False, compare=False)
    taken: bool = field(default=False, compare=False)  # the step already ran for the target


def reservation_column(target_kind: str) -> Any:
    """The CapReservation column that holds a target of this kind (customer or group)."""
    return (
        col(CapReservation.customer_id)
        if target_kind == "customer"
        else col(CapReservation.group_id)
    )


def reservations(
    target_kind: str, span: IdRange, day: dt.date, *, tz: str, session: Session
) -> dict[int, list[Slot]]:
    """The day's reservations of the targets in `span`, each marked taken once its step ran."""
    start, end = day_window(day, tz)
    target = reservation_column(target_kind)
    taken = exists().where(
        _target_column(target_kind) == target,
        col(Delivery.target_kind) == target_kind,
        col(Delivery.sop_id) == col(CapReservation.sop_id),
        col(Delivery.step) == col(CapReservation.step),
        col(Delivery.planned_at) >= start,
        col(Delivery.planned_at) < end,
    )
    statement = select(
        target,
        CapReservation.priority_rank,
        CapReservation.slot_at,
        CapReservation.sop_id,
        CapReservation.step,
        CapReservation.won,
        taken.label("taken"),
    ).where(col(CapReservation.day) == day, target.between(*span))
    found: dict[int, list[Slot]] = {}
    for target_id, rank, slot_at, sop_id, step, won, was_taken in session.execute(statement):
        slot = Slot(rank, slot_at, sop_id, step, won=bool(won), taken=bool(was_taken))
        found.setdefault(target_id, []).append(slot)
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

    Targets with reservations that day also yield to those ranked before this step.
    """
    if priority == "service" or not target_ids:
        return {}
    tz = settings.timezone
    day = local(now, tz).date()
    span = (min(target_ids), max(target_ids))
    used = usage(target_kind, span, day, tz=tz, session=session, exclude=occurrence)
    queue = reservations(target_kind, span, day, tz=tz, session=session)
    limits = customer_limits(settings) if target_kind == "customer" else group_limits(settings)
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
