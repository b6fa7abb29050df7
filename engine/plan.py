"""Guard and record a batch: each target once under its idempotency key, with its text."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from sqlmodel import Session

from channels.attachments import Attachment, dumps
from core.clock import utcnow
from core.settings import get_settings
from engine.audience import ResolvedBatch
from engine.caps import register_priority
from engine.compose import Rendered
from engine.guard import (
    CUSTOMER_GUARDS,
    GROUP_GUARDS,
    Decision,
    Guard,
    GuardContext,
    group_caps,
    run_guards,
)
from engine.timing import gc_paused, timed
from models.audience import CustomerTarget, GroupTarget
from models.db import session_scope
from models.deliveries import (
    Occurrence,
    PlannedTarget,
    RecordedTouch,
    attach_messages,
    existing_rows,
    record_planned,
    set_status,
    store_message,
)
from models.delivery import SENDABLE, SENDABLE_VALUES, DeliveryStatus
from soplang.spec import SopSpec


class Touch(NamedTuple):
    """A target with its Delivery row, still to be rendered and sent."""

    delivery_id: int
    target: GroupTarget | CustomerTarget
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


def _new_row(
    target: PlannedTarget, decision: Decision | None, message_id: int | None
) -> PlannedTarget:
    """The target as its new row starts: planned (with its text), deferred until `not_before`, or skipped."""
    if decision is None:
        return target._replace(message_id=message_id)
    status = DeliveryStatus.PLANNED if decision.not_before else DeliveryStatus.SKIPPED
    return target._replace(
        status=status.value, reason=decision.reason, not_before=decision.not_before
    )


def _apply(decisions: dict[int, Decision], ids: dict[int, int], *, session: Session) -> None:
    """Write the guards' verdicts on rows that existed: one UPDATE per distinct decision."""
    by_decision: dict[Decision, list[int]] = {}
    for target_id, decision in decisions.items():
        if target_id in ids:
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


class _Messages:
    """Message ids of the batch's texts with their attachments, each distinct pair stored once."""

    def __init__(
        self,
        texts: Mapping[int, str],
        *,
        session: Session,
        now: dt.datetime,
        attachments: Mapping[int, tuple[Attachment, ...]] | None = None,
    ) -> None:
        self.texts, self.session, self.now = texts, session, now
        self.attachments = attachments or {}
        self.ids: dict[tuple[str, str | None], int] = {}
        # Targets alike share one attachments tuple (soplang.attachment_render): dump each once.
        self.stored: dict[int, tuple[tuple[Attachment, ...], str | None]] = {}

    def id_for(self, target_id: int) -> int | None:
        content = self.texts.get(target_id)
        if content is None:
            return None
        key = (content, self._dumped(self.attachments.get(target_id, ())))
        if key not in self.ids:
            self.ids[key] = store_message(
                content, session=self.session, now=self.now, attachments=key[1]
            )
        return self.ids[key]

    def _dumped(self, attachments: tuple[Attachment, ...]) -> str | None:
        if not attachments:
            return None
        known = self.stored.get(id(attachments))
        if known is None or known[0] is not attachments:
            known = self.stored[id(attachments)] = (attachments, dumps(attachments))
        return known[1]


def _reconsider(row: RecordedTouch | None, now: dt.datetime, batch: PlannedBatch) -> bool:
    """Whether a target with this row is guarded again: no row yet, or still sendable and due.

    Rows not reconsidered are counted in `batch` (deferred, or already done by their status).
    """
    if row is None or (row.status in SENDABLE_VALUES and (row.not_before or now) <= now):
        return True
    if row.status in SENDABLE_VALUES:
        batch.deferred += 1
    else:
        _count(batch.already_done, row.status)
    return False


def plan_batch(
    occurrence: Occurrence,
    targets: Sequence[Any],
    as_planned: Callable[[Any], PlannedTarget],
    guard: Callable[[list[Any]], dict[int, Decision]],
    *,
    now: dt.datetime,
    session: Session,
    texts: Mapping[int, str] | None = None,
    skips: Mapping[int, str] | None = None,
    attachments: Mapping[int, tuple[Attachment, ...]] | None = None,
) -> PlannedBatch:
    """Guard and record a batch in one transaction; rows already final are reported, never touched.

    A target is (re)considered when it has no row yet, or its row is still sendable (planned or
    failed) and due (no `not_before`, or it has passed). Guards see only those targets. New rows
    are written once, in the state the guards decided; rows that existed get the verdict by
    UPDATE. With `texts` (target id -> rendered text) the touches to send point at their Message
    already, and new rows are written in (sender, message) order so each mass-message call's rows
    sit together. Targets that pass the guards but have no content (`skips`: target id -> why,
    e.g. no deals for the group today) are recorded as skipped with that reason.
    """
    batch = PlannedBatch()
    planned = {t.id: as_planned(t) for t in targets}
    existing = existing_rows(occurrence, planned.values(), session=session)
    candidates = [
        t for t in targets if _reconsider(existing.get(planned[t.id].target_id), now, batch)
    ]
    with timed("guards"):
        decisions = guard(candidates)
    if skips:  # few targets lack content; the 1:1 path has none, so it never walks its batch here
        considered = {target.id for target in candidates}
        for target_id, reason in skips.items():
            if target_id in considered and target_id not in decisions:
                decisions[target_id] = Decision(reason)
    with timed("record"):
        messages = _Messages(texts or {}, session=session, now=now, attachments=attachments)
        new = [
            _new_row(
                planned[t.id],
                decisions.get(t.id),
                None if t.id in decisions else messages.id_for(t.id),
            )
            for t in candidates
            if planned[t.id].target_id not in existing
        ]
        new.sort(key=lambda p: (p.status, p.sender or "", p.message_id or 0))
        recorded = record_planned(occurrence, new, session=session, now=now)
        rows = {**existing, **{row.target_id: row for row in recorded}}
        # Rows this run did not write itself (they existed, or appeared meanwhile) get the verdict
        # by UPDATE, and only while still sendable.
        kept = {
            t.id: rows[planned[t.id].target_id]
            for t in candidates
            if not rows[planned[t.id].target_id].new
        }
        _apply(decisions, {i: row.delivery_id for i, row in kept.items()}, session=session)
        for target in candidates:
            row, decision = rows[planned[target.id].target_id], decisions.get(target.id)
            if not row.new and row.status not in SENDABLE_VALUES:
                _count(batch.already_done, row.status)  # settled meanwhile by a concurrent run
            elif decision is None:
                batch.touches.append(Touch(row.delivery_id, target, planned[target.id].sender))
            elif decision.not_before:
                batch.deferred += 1
            else:
                _count(batch.skipped, decision.reason or "")
        if texts:
            _attach_texts(
                [t for t in batch.touches if t.target.id in kept], messages, session=session
            )
    return batch


def _attach_texts(touches: Sequence[Touch], messages: _Messages, *, session: Session) -> None:
    """Point rows written before this run (deferred, failed) at the text they will send now."""
    by_message: dict[int, list[int]] = {}
    for touch in touches:
        message_id = messages.id_for(touch.target.id)
        if message_id is not None:
            by_message.setdefault(message_id, []).append(touch.delivery_id)
    attach_messages(by_message, session=session)


def _plan_guarded(
    occurrence: Occurrence,
    targets: Sequence[Any],
    as_planned: Callable[[Any], PlannedTarget],
    guards: Sequence[Guard],
    *,
    now: dt.datetime,
    spec: SopSpec | None,
    rendered: Rendered | None = None,
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
            texts=rendered.texts if rendered else None,
            skips=rendered.skipped if rendered else None,
            attachments=rendered.attachments if rendered else None,
        )
        if spec is not None:
            register_priority(spec.id, spec.priority, session=session, now=now)
    return batch


def plan_customers(
    spec: SopSpec,
    occurrence: Occurrence,
    customers: Sequence[CustomerTarget],
    *,
    now: dt.datetime,
    rendered: Rendered | None = None,
    guards: Sequence[Guard] = CUSTOMER_GUARDS,
) -> PlannedBatch:
    """Guard a batch of customers for one step and record every one; return the touches to send now.

    With `rendered` the touches are recorded with their Message (and content-less ones skipped).
    """
    return _plan_guarded(
        occurrence,
        customers,
        customer_target,
        guards,
        now=now,
        spec=spec,
        rendered=rendered,
    )


def plan_groups(
    occurrence: Occurrence,
    groups: Sequence[GroupTarget],
    *,
    now: dt.datetime | None = None,
    spec: SopSpec | None = None,
    rendered: Rendered | None = None,
) -> PlannedBatch:
    """Guard a batch of groups (quiet hours, daily cap) and record each once; return those to send.

    Quiet hours are judged only against a clock the caller passes (`now`); without one the call
    behaves as before the guards existed, except for the daily cap at the current instant.
    """
    guards = GROUP_GUARDS if now is not None else (group_caps,)
    return _plan_guarded(
        occurrence, groups, group_target, guards, now=now or utcnow(), spec=spec, rendered=rendered
    )


def plan_resolved(
    spec: SopSpec,
    occurrence: Occurrence,
    resolved: ResolvedBatch,
    rendered: Rendered,
    *,
    now: dt.datetime,
) -> PlannedBatch:
    """Guard and record a resolved batch with its texts; rows the resolver found settled or
    waiting (customers) are counted as such without being read again."""
    batch = PlannedBatch()
    if resolved.targets:
        with gc_paused():
            if resolved.shape == "groups":
                batch = plan_groups(
                    occurrence, resolved.targets, now=now, spec=spec, rendered=rendered
                )
            else:
                batch = plan_customers(
                    spec, occurrence, resolved.targets, now=now, rendered=rendered
                )
    for status, rows in resolved.already_done.items():
        batch.already_done[status] = batch.already_done.get(status, 0) + rows
    batch.deferred += resolved.deferred
    return batch
