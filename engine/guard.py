"""Restraint guards over a whole batch: contact, opt-out, quiet hours, caps, holdout — each with its reason."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlmodel import Session, col

from core.clock import at_local, local
from core.settings import Settings
from engine.caps import cap_reasons
from models.deliveries import Occurrence
from models.delivery import HOLDOUT
from models.holdout import holdout_bucket, holdout_threshold
from models.people import OptOut
from soplang.spec import SopSpec

NOT_A_CONTACT = "not a contact"
DEFERRED = "deferred: quiet hours"


def opted_out(category: str) -> str:
    return f"opted out of {category}"


@dataclass(frozen=True)
class Decision:
    """A guard's verdict on one target: skipped with `reason`, or deferred until `not_before`."""

    reason: str | None = None
    not_before: dt.datetime | None = None


@dataclass(frozen=True)
class GuardContext:
    """What the guards of one batch need to know: the step, the moment and the SOP's rules."""

    occurrence: Occurrence
    now: dt.datetime
    settings: Settings
    session: Session
    sop_id: str
    category: str | None = None
    priority: str = "normal"
    holdout: float = 0.0

    @classmethod
    def for_spec(cls, spec: SopSpec, occurrence: Occurrence, **kwargs: Any) -> GuardContext:
        customers = spec.audience.customers if spec.audience else None
        return cls(
            occurrence,
            sop_id=spec.id,
            category=spec.category,
            priority=spec.priority,
            holdout=customers.holdout if customers else 0.0,
            **kwargs,
        )


Guard = Callable[[GuardContext, list[Any]], dict[int, Decision]]


def run_guards(
    ctx: GuardContext, targets: Sequence[Any], guards: Sequence[Guard]
) -> dict[int, Decision]:
    """Apply `guards` in order; a target stopped by one is not shown to the next. Keyed by target id."""
    decisions: dict[int, Decision] = {}
    remaining = list(targets)
    for guard in guards:
        if not remaining:
            break
        decided = guard(ctx, remaining)
        if decided:
            decisions.update(decided)
            remaining = [t for t in remaining if t.id not in decided]
    return decisions


def in_quiet_hours(now: dt.datetime, settings: Settings) -> bool:
    """Whether `now` is inside the quiet hours on the local wall clock (a window may wrap midnight)."""
    start, end = settings.quiet_start, settings.quiet_end
    moment = local(now, settings.timezone).time()
    if start == end:
        return False
    if start < end:
        return start <= moment < end
    return moment >= start or moment < end


def quiet_hours_end(now: dt.datetime, settings: Settings) -> dt.datetime:
    """The first allowed instant after `now`, which is in quiet hours (e.g. 08:00 the next morning)."""
    start, end = settings.quiet_start, settings.quiet_end
    here = local(now, settings.timezone)
    day = here.date()
    if start > end and here.time() >= start:
        day += dt.timedelta(days=1)
    return at_local(day, end.hour, end.minute, settings.timezone)


def _skip_all(targets: list[Any], reason: str) -> dict[int, Decision]:
    return {t.id: Decision(reason) for t in targets}


def not_a_contact(ctx: GuardContext, customers: list[Any]) -> dict[int, Decision]:
    """Customers who deleted the contact (or were deleted) are never messaged."""
    return _skip_all([c for c in customers if c.contact_state != "active"], NOT_A_CONTACT)


def opted_out_of_category(ctx: GuardContext, customers: list[Any]) -> dict[int, Decision]:
    """Customers who opted out of the SOP's category (屏蔽家电促销): one query for the batch.

    Opt-outs are from promotions; a `service` touch (您的商品已出库) still reaches them.
    """
    if not ctx.category or ctx.priority == "service":
        return {}
    ids = [c.id for c in customers]
    found = set(
        ctx.session.execute(
            select(OptOut.customer_id).where(
                col(OptOut.category) == ctx.category,
                col(OptOut.customer_id).between(min(ids), max(ids)),
            )
        ).scalars()
    )
    return _skip_all([c for c in customers if c.id in found], opted_out(ctx.category))


def defer_in_quiet_hours(ctx: GuardContext, targets: list[Any]) -> dict[int, Decision]:
    """Touches in quiet hours wait for their end and are sent by a later run of the occurrence.

    Groups wait too rather than being dropped: a manual run at night must not use up the
    occurrence that its scheduled run would send in the morning.
    """
    if not in_quiet_hours(ctx.now, ctx.settings):
        return {}
    until = quiet_hours_end(ctx.now, ctx.settings)
    return {t.id: Decision(DEFERRED, not_before=until) for t in targets}


def _caps(target_kind: str) -> Guard:
    def caps(ctx: GuardContext, targets: list[Any]) -> dict[int, Decision]:
        reasons = cap_reasons(
            target_kind,
            [t.id for t in targets],
            ctx.occurrence,
            ctx.priority,
            now=ctx.now,
            session=ctx.session,
            settings=ctx.settings,
        )
        return {i: Decision(reason) for i, reason in reasons.items()}

    caps.__doc__ = f"Caps across all SOPs for {target_kind}s (see engine/caps.py)."
    return caps


# Daily and 30-day caps per customer, a daily allowance per group; both with the day-ahead
# reservations by priority (engine/reservations.py) when the day was planned.
customer_caps = _caps("customer")
group_caps = _caps("group")


def holdout(ctx: GuardContext, customers: list[Any]) -> dict[int, Decision]:
    """The SOP's control group: a stable share of its audience, by hash of customer and SOP."""
    if ctx.holdout <= 0:
        return {}
    limit = holdout_threshold(ctx.holdout)
    held = [c for c in customers if holdout_bucket(c.id, ctx.sop_id) < limit]
    return _skip_all(held, HOLDOUT)


# "Already done" comes last in the documented order and is applied by engine/plan.py: rows whose
# idempotency key is already final are never shown to these guards and never touched.
CUSTOMER_GUARDS: tuple[Guard, ...] = (
    not_a_contact,
    opted_out_of_category,
    defer_in_quiet_hours,
    customer_caps,
    holdout,
)
GROUP_GUARDS: tuple[Guard, ...] = (defer_in_quiet_hours, group_caps)
