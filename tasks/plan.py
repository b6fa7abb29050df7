"""Plan a batch: guard it, record each target once under its idempotency key, keep those to send now."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from prefect import task
from prefect.cache_policies import NO_CACHE
from sqlalchemy import select
from sqlmodel import Session, col

from models.db import session_scope
from models.delivery import Delivery, DeliveryStatus
from models.people import Customer
from sopflow.clock import utcnow
from sopflow.settings import get_settings
from tasks.audience import CustomerTarget, GroupTarget, IdRange, customer_select
from tasks.caps import register_priority
from tasks.deliveries import SENDABLE, Occurrence, PlannedTarget, record_planned, set_status
from tasks.guard import (
    CUSTOMER_GUARDS,
    GROUP_GUARDS,
    Decision,
    Guard,
    GuardContext,
    group_caps,
    run_guards,
)
from tasks.timing import timed

SENDABLE_VALUES = frozenset(s.value for s in SENDABLE)


@dataclass(frozen=True)
class Touch:
    """A target with its Delivery row, still to be rendered and sent."""

    delivery_id: int
    target: Any  # GroupTarget | CustomerTarget
    sender: str | None  # the group's owner, or the customer's owner staff member


@dataclass
class PlannedBatch:
    """What planning a batch found: touches to send now, skips, deferrals, rows already settled."""

    touches: list[Touch] = field(default_factory=list)
    already_done: dict[str, int] = field(default_factory=dict)  # status -> rows settled earlier
    skipped: dict[str, int] = field(default_factory=dict)  # reason -> rows skipped by this run
    deferred: int = 0  # rows waiting for quiet hours to end (new or still waiting)


def group_target(group: GroupTarget) -> PlannedTarget:
    """A group as a Delivery target; the group's owner sends to it."""
    return PlannedTarget("group", group.chat_id, group.owner_userid, group_id=group.id)


def customer_target(customer: CustomerTarget) -> PlannedTarget:
    """A customer as a Delivery target; their owner staff member sends to them."""
    return PlannedTarget(
        "customer", customer.external_userid, customer.owner_userid, customer_id=customer.id
    )


def _count(counts: dict[str, int], key: str) -> None:
    counts[key] = counts.get(key, 0) + 1


def _existing_rows(
    occurrence: Occurrence, targets: Sequence[PlannedTarget], *, session: Session
) -> dict[str, tuple[str, dt.datetime | None]]:
    """target_id -> (status, not_before) of the rows this occurrence already has for `targets`."""
    keys = [occurrence.key(t.target_kind, t.target_id) for t in targets]
    rows = session.execute(
        select(Delivery.target_id, Delivery.status, Delivery.not_before).where(
            col(Delivery.idempotency_key).in_(keys)
        )
    )
    return {target_id: (status, not_before) for target_id, status, not_before in rows}


def _apply(decisions: dict[int, Decision], ids: dict[int, int], *, session: Session) -> None:
    """Write the guards' verdicts: one UPDATE per distinct decision (skip reason or deferral)."""
    by_decision: dict[Decision, list[int]] = {}
    for target_id, decision in decisions.items():
        by_decision.setdefault(decision, []).append(ids[target_id])
    for decision, delivery_ids in by_decision.items():
        status = DeliveryStatus.PLANNED if decision.not_before else DeliveryStatus.SKIPPED
        set_status(
            delivery_ids,
            status,
            session=session,
            only_from=SENDABLE,
            reason=decision.reason,
            not_before=decision.not_before,
        )


def plan_batch(
    occurrence: Occurrence,
    targets: Sequence[Any],
    as_planned: Callable[[Any], PlannedTarget],
    guard: Callable[[list[Any]], dict[int, Decision]],
    *,
    now: dt.datetime,
    session: Session,
) -> PlannedBatch:
    """Guard and record a batch in one transaction; rows already final are reported, never touched.

    A target is (re)considered when it has no row yet, or its row is still sendable (planned or
    failed) and due (no `not_before`, or it has passed). Guards see only those targets.
    """
    batch = PlannedBatch()
    planned = {t.id: as_planned(t) for t in targets}
    existing = _existing_rows(occurrence, list(planned.values()), session=session)
    candidates = []
    for target in targets:
        status, not_before = existing.get(planned[target.id].target_id, (None, None))
        if status is None or (status in SENDABLE_VALUES and (not_before or now) <= now):
            candidates.append(target)
        elif status in SENDABLE_VALUES:
            batch.deferred += 1
        else:
            _count(batch.already_done, status)
    with timed("guards"):
        decisions = guard(candidates)
    with timed("record"):
        recorded = record_planned(
            occurrence, [planned[t.id] for t in candidates], session=session, now=now
        )
        rows = {row.target_id: row for row in recorded}
        ids = {t.id: rows[planned[t.id].target_id].delivery_id for t in candidates}
        _apply(decisions, ids, session=session)
    for target in candidates:
        row, decision = rows[planned[target.id].target_id], decisions.get(target.id)
        if row.status not in SENDABLE_VALUES:  # settled meanwhile by a concurrent run
            _count(batch.already_done, row.status)
        elif decision is None:
            batch.touches.append(Touch(row.delivery_id, target, planned[target.id].sender))
        elif decision.not_before:
            batch.deferred += 1
        else:
            _count(batch.skipped, decision.reason or "")
    return batch


def _plan_guarded(
    occurrence: Occurrence,
    targets: Sequence[Any],
    as_planned: Callable[[Any], PlannedTarget],
    guards: Sequence[Guard],
    *,
    now: dt.datetime,
    spec: Any,
) -> PlannedBatch:
    """Plan a batch through `guards` in one transaction; the SOP's priority is remembered for caps."""
    with session_scope() as session:
        settings = get_settings()
        ctx = (
            GuardContext.for_spec(spec, occurrence, now=now, settings=settings, session=session)
            if spec is not None
            else GuardContext(
                occurrence, now=now, settings=settings, session=session, sop_id=occurrence.sop_id
            )
        )
        batch = plan_batch(
            occurrence,
            targets,
            as_planned,
            lambda candidates: run_guards(ctx, candidates, guards),
            now=now,
            session=session,
        )
        if spec is not None:
            register_priority(spec.id, spec.priority, session=session, now=now)
    return batch


def plan_customers(
    spec: Any, occurrence: Occurrence, customers: Sequence[CustomerTarget], *, now: dt.datetime
) -> PlannedBatch:
    """Guard a batch of customers for one step and record every one; return the touches to send now."""
    return _plan_guarded(
        occurrence, customers, customer_target, CUSTOMER_GUARDS, now=now, spec=spec
    )


def plan_groups(
    occurrence: Occurrence,
    groups: Sequence[GroupTarget],
    *,
    now: dt.datetime | None = None,
    spec: Any = None,
) -> PlannedBatch:
    """Guard a batch of groups (quiet hours, daily cap) and record each once; return those to send.

    Quiet hours are judged only against a clock the caller passes (`now`); without one the call
    behaves as before the guards existed, except for the daily cap at the current instant.
    """
    guards = GROUP_GUARDS if now is not None else (group_caps,)
    return _plan_guarded(occurrence, groups, group_target, guards, now=now or utcnow(), spec=spec)


def due_deferred(
    occurrence: Occurrence,
    *,
    now: dt.datetime,
    session: Session,
    id_range: IdRange | None = None,
) -> list[CustomerTarget]:
    """Customers whose touch of this occurrence waited out quiet hours and may go now.

    Pass them to `plan_customers`, which guards them again (a contact may have been deleted
    overnight) and returns their touches without re-resolving the whole audience.
    """
    statement = (
        customer_select()
        .join(Delivery, col(Delivery.customer_id) == col(Customer.id))
        .where(
            col(Delivery.sop_id) == occurrence.sop_id,
            col(Delivery.step) == occurrence.step,
            col(Delivery.occurrence) == occurrence.occurrence,
            col(Delivery.target_kind) == "customer",
            col(Delivery.status) == DeliveryStatus.PLANNED.value,
            col(Delivery.not_before) <= now,
        )
        .order_by(Customer.id)
    )
    if id_range is not None:
        statement = statement.where(col(Customer.id).between(*id_range))
    return [CustomerTarget(*row) for row in session.execute(statement).all()]


@task(name="record-planned", cache_policy=NO_CACHE)
def plan_group_touches(
    occurrence: Occurrence,
    groups: list[GroupTarget],
    now: dt.datetime | None = None,
    spec: Any = None,
) -> PlannedBatch:
    """Guard the batch's groups, record them as planned (once per occurrence), keep those to send."""
    return plan_groups(occurrence, groups, now=now, spec=spec)


@task(name="plan-customer-touches", cache_policy=NO_CACHE)
def plan_customer_touches(
    spec: Any, occurrence: Occurrence, customers: list[CustomerTarget], now: dt.datetime
) -> PlannedBatch:
    """Guard the batch's customers, record every one with its outcome, keep those to send now."""
    return plan_customers(spec, occurrence, customers, now=now)


@task(name="resolve-due-deferred", cache_policy=NO_CACHE)
def resolve_due_deferred(
    occurrence: Occurrence, now: dt.datetime, id_range: IdRange | None = None
) -> list[CustomerTarget]:
    """The customers whose deferred touch of this occurrence is now due."""
    with session_scope() as session:
        return due_deferred(occurrence, now=now, session=session, id_range=id_range)
