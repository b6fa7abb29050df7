"""Turn a claimed batch of events into guarded 1:1 touches: one per event and trigger SOP step."""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from functools import cached_property

from sqlmodel import Session, col

from channels.base import Channel
from core.settings import get_settings
from engine.attachments import segment_attachments
from engine.compose import Composed, Rendered
from engine.coupons import with_coupons
from engine.customer_context import segment_renderer
from engine.events import Claim, PendingEvent, claimed_events
from engine.guard import CUSTOMER_GUARDS, Guard
from engine.outcomes import OutcomeReport, RunTally, outcome_words, pending_lines
from engine.plan import PlannedBatch, plan_customers
from engine.seed_events import step_events
from engine.timing import timed
from engine.trigger_context import Variables, event_categories, event_variables
from engine.welcome import dispatch_events
from models.audience import CustomerFilter, CustomerTarget, customer_filters, customer_select
from models.db import session_scope
from models.deliveries import Occurrence
from models.outcomes import Unsettled, run_outcomes, unsettled_by_run
from models.people import Customer
from soplang.attachment_render import compile_attachments, with_cards
from soplang.spec import SopSpec
from soplang.template import compile_step

NO_CUSTOMER = "event names no customer"
NOT_IN_AUDIENCE = "not in the SOP's audience"


@dataclass(frozen=True)
class EventOccurrence(Occurrence):
    """Events of one trigger step for different customers: each idempotency key names its event.

    `occurrence` labels the chunk (caps never count a chunk's own rows); the key of a target is
    `<sop>:<step>:event-<id>:customer:<external_userid>`, so every event fires once per step.
    """

    event_of: tuple[tuple[str, int], ...] = field(default=(), repr=False)  # (target_id, event id)

    @cached_property
    def _event_ids(self) -> dict[str, int]:
        return dict(self.event_of)

    def key(self, target_kind: str, target_id: str) -> str:
        event = self._event_ids[target_id]
        return f"{self.sop_id}:{self.step}:event-{event}:{target_kind}:{target_id}"


@dataclass
class TriggerBatch:
    """A claimed batch recorded for one step: what planning decided, and the touches to send."""

    events: int
    planned: PlannedBatch = field(default_factory=PlannedBatch)
    ready: list[Composed] = field(default_factory=list)
    sample: str | None = None
    welcome_codes: dict[int, str] = field(default_factory=dict)  # delivery id -> WelcomeCode


@dataclass
class Drained:
    """What a drain took of one event kind: events and the batches they came in."""

    events: int = 0
    batches: int = 0
    due: dict[str, int] = field(default_factory=dict)  # waiting steps that came due, by outcome

    def add(self, batch: Claim) -> None:
        self.events += batch.count
        self.batches += 1


# ---------------------------------------------------------------- planning


def event_customers(
    events: Sequence[PendingEvent],
    audience: CustomerFilter | None,
    *,
    now: dt.datetime,
    session: Session,
) -> dict[int, CustomerTarget]:
    """The events' customers who match the SOP's `customers:` audience (all of them without one)."""
    ids = {e.customer_id for e in events if e.customer_id is not None}
    statement = customer_select().where(
        col(Customer.id).in_(ids), *customer_filters(audience, as_of=now)
    )
    return {row[0]: CustomerTarget(*row) for row in session.execute(statement)}


@dataclass(frozen=True)
class EventTouch:
    """An event that becomes a touch: its customer, the category opt-outs are judged by, its variables."""

    event_id: int
    customer: CustomerTarget
    category: str
    variables: Variables = field(compare=False)


def rounds(touches: Sequence[EventTouch]) -> list[list[EventTouch]]:
    """Split touches so no customer is twice in a round; a customer's later events go in later rounds."""
    seen: Counter[int] = Counter()
    found: list[list[EventTouch]] = []
    for touch in touches:
        index = seen[touch.customer.id]
        seen[touch.customer.id] += 1
        if index == len(found):
            found.append([])
        found[index].append(touch)
    return found


def _merge(into: PlannedBatch, batch: PlannedBatch) -> None:
    into.touches.extend(batch.touches)
    into.deferred += batch.deferred
    for counts, more in ((into.skipped, batch.skipped), (into.already_done, batch.already_done)):
        for reason, rows in more.items():
            counts[reason] = counts.get(reason, 0) + rows


def _why_not_sent(
    event: PendingEvent, found: Variables | str, customer: CustomerTarget | None
) -> str | None:
    """Why an event yields no touch (and no Delivery row), or None."""
    if event.customer_id is None:
        return NO_CUSTOMER
    if isinstance(found, str):
        return found
    return NOT_IN_AUDIENCE if customer is None else None


def event_touches(
    spec: SopSpec, events: Sequence[PendingEvent], *, now: dt.datetime, skipped: dict[str, int]
) -> list[EventTouch]:
    """The events that can become touches; the others are counted in `skipped` by reason.

    Opt-outs are judged by the category of the event's product when it has one (a customer who
    blocked 家电促销 hears of no appliance price drop), else by the SOP's `category`.
    """
    audience = spec.audience.customers if spec.audience else None
    with session_scope() as session:
        variables = event_variables(events, tz=get_settings().timezone, session=session)
        customers = event_customers(events, audience, now=now, session=session)
        categories = event_categories(events, session=session)
    touches = []
    for event in events:
        found = variables[event.id]
        customer = customers.get(event.customer_id or 0)
        reason = _why_not_sent(event, found, customer)
        if reason is not None:
            skipped[reason] = skipped.get(reason, 0) + 1
        elif customer is not None and not isinstance(found, str):
            category = categories.get(event.id, spec.category)
            touches.append(EventTouch(event.id, customer, category, found))
    return touches


def plan_events(
    spec: SopSpec,
    step: str,
    events: Sequence[PendingEvent],
    *,
    now: dt.datetime,
    day: dt.date,
    flow_run_id: str | None = None,
    guards: Sequence[Guard] = CUSTOMER_GUARDS,
    answers_welcome: bool = False,
) -> TriggerBatch:
    """Render, guard and record one touch per event through the 1:1 planner, chunk by chunk.

    Each chunk holds every customer once, so its texts are keyed by customer like any 1:1 batch
    and each row is written once with its text.
    """
    batch = TriggerBatch(events=len(events))
    events = step_events(spec, step, events, batch.planned.skipped)
    touches = event_touches(spec, events, now=now, skipped=batch.planned.skipped)
    if not touches:
        return batch
    render_for = segment_renderer(
        compile_step(spec, step), day=day, sop_id=spec.id, sop_title=spec.title
    )
    step_attachments = compile_attachments(spec, step)
    size = get_settings().batch_size
    # A WelcomeCode lives 20 s and answers once: only the first step of the one SOP that answers
    # it (engine/welcome_now.answering_sop) sends with it; any other is a normal 1:1 message.
    first = answers_welcome and step == spec.step_names[0]
    codes = {
        e.id: e.payload["welcome_code"] for e in events if first and e.payload.get("welcome_code")
    }
    for category in dict.fromkeys(t.category for t in touches):
        scoped = spec.model_copy(update={"category": category})
        for same_round in rounds([t for t in touches if t.category == category]):
            for start in range(0, len(same_round), size):
                chunk = same_round[start : start + size]
                with timed("render"):
                    texts = (
                        {}  # a coupon step is rendered once its coupons are issued
                        if spec.step(step).issue
                        else {t.customer.id: render_for(t.customer, t.variables) for t in chunk}
                    )
                    attachments = segment_attachments(
                        step_attachments,
                        [t.customer for t in chunk],
                        day=day,
                        sop_id=spec.id,
                        sop_title=spec.title,
                        extra={t.customer.id: t.variables for t in chunk},
                    )
                rendered = Rendered(texts=texts, attachments=attachments)
                occurrence = _occurrence(spec, step, chunk, flow_run_id)
                customers = [t.customer for t in chunk]
                planned = plan_customers(
                    scoped, occurrence, customers, now=now, rendered=rendered, guards=guards
                )
                if spec.step(step).issue:  # engine/coupons.py
                    texts = with_coupons(
                        spec, step, occurrence, planned, chunk, render_for, attachments, now=now
                    )
                batch.ready += [
                    Composed(
                        touch.delivery_id,
                        touch.target.external_userid,
                        touch.sender,
                        texts[touch.target.id],
                        attachments.get(touch.target.id, ()),
                    )
                    for touch in planned.touches
                ]
                event_of = {t.customer.id: t.event_id for t in chunk}
                batch.welcome_codes.update(
                    (touch.delivery_id, codes[event_of[touch.target.id]])
                    for touch in planned.touches
                    if event_of[touch.target.id] in codes
                )
                if batch.sample is None and texts:
                    first_id = next(iter(texts))
                    batch.sample = with_cards(
                        texts[first_id], attachments.get(first_id, ()), get_settings().sop_dir
                    )
                _merge(batch.planned, planned)
    return batch


def _occurrence(
    spec: SopSpec, step: str, chunk: Sequence[EventTouch], flow_run_id: str | None
) -> EventOccurrence:
    """The occurrence of a chunk of events whose customers are all different."""
    return EventOccurrence(
        spec.id,
        step,
        f"events-{chunk[0].event_id}-{chunk[-1].event_id}",
        get_settings().channel,
        flow_run_id,
        event_of=tuple((t.customer.external_userid, t.event_id) for t in chunk),
    )


def send_events(
    open_channel: Callable[[], AbstractContextManager[Channel]],
    spec: SopSpec,
    step: str,
    batch: Claim,
    *,
    now: dt.datetime,
    day: dt.date,
    flow_run_id: str | None,
    answers_welcome: bool = False,
) -> RunTally:
    """Render, guard, record and send one step for a claimed batch; what it did, without the rows.

    The channel is opened (holding its share of WeCom's call limit) only when there is something
    to send."""
    with session_scope() as session:
        events = claimed_events(batch.token, session=session)
    return send_event_step(
        open_channel,
        spec,
        step,
        events,
        now=now,
        day=day,
        flow_run_id=flow_run_id,
        answers_welcome=answers_welcome,
    )


def send_event_step(
    open_channel: Callable[[], AbstractContextManager[Channel]],
    spec: SopSpec,
    step: str,
    events: Sequence[PendingEvent],
    *,
    now: dt.datetime,
    day: dt.date,
    flow_run_id: str | None,
    answers_welcome: bool = False,
) -> RunTally:
    """Render, guard, record and send one step for these events (drained now, or whose waiting
    step is due); the idempotency key names the event, so a step is sent once per event."""
    prepared = plan_events(
        spec,
        step,
        events,
        now=now,
        day=day,
        flow_run_id=flow_run_id,
        answers_welcome=answers_welcome,
    )
    tally = RunTally()
    tally.add_prepared(prepared.planned, prepared.sample)
    if prepared.ready:
        with open_channel() as channel:
            result = dispatch_events(
                channel, prepared.ready, prepared.welcome_codes, flow_run_id=flow_run_id
            )
        tally.add_dispatched(result)
    return tally


def add_tally(total: RunTally, part: RunTally) -> None:
    """Add one batch's tally to the drain's tally of the same SOP."""
    total.recipients += part.recipients
    total.this_run.update(part.this_run)
    total.already_done.update(part.already_done)
    total.calls += part.calls
    total.sample = total.sample or part.sample


def trigger_report(
    spec: SopSpec, drained: Drained, tally: RunTally, *, run_id: str | None, now: dt.datetime
) -> OutcomeReport:
    """What one trigger SOP's drain did, read back from the Delivery log (rows it recorded or
    claimed), so every attempt of a retried batch counts, not only the last one."""
    pending = Unsettled()
    if run_id:
        with session_scope(readonly=True) as session:
            counts, tally.calls = run_outcomes(spec.id, run_id, session=session)
            pending = unsettled_by_run(spec.id, run_id, now=now, session=session)
        tally.this_run = Counter(counts)
    table = [
        {"outcome": outcome_words(status, reason), "touches": n}
        for (status, reason), n in sorted(tally.this_run.items())
    ] + [
        {"outcome": f"{outcome_words(status)} (settled by an earlier drain)", "touches": n}
        for status, n in sorted(tally.already_done.items())
    ]
    summary = {
        "label": f"{spec.id} (on {spec.on})",
        "reconciled": dict(tally.reconciled),
        "unsettled": pending.faults(),
        "events": drained.events,
        "batches": drained.batches,
        "due_steps": dict(drained.due),
        "recipients": tally.recipients,
        "calls": tally.calls,
        "this_run": {f"{s}:{r}" if r else s: n for (s, r), n in tally.this_run.items()},
        "already_done": dict(tally.already_done),
    }
    markdown = _summary(spec, drained, tally, pending_lines(pending))
    return OutcomeReport(table, markdown, summary)


def _summary(spec: SopSpec, drained: Drained, tally: RunTally, pending: list[str]) -> str:
    sent = sum(n for (status, _), n in tally.this_run.items() if status == "sent")
    lines = [
        f"# {spec.title} · on `{spec.on}`",
        "",
        f"- events drained: **{drained.events}** in {drained.batches} batch(es)"
        f" (priority `{spec.priority}`)",
        f"- sent: **{sent}** in {tally.calls} mass-message call(s)",
        f"- settled by an earlier drain (not sent again): **{sum(tally.already_done.values())}**",
    ]
    lines += [
        f"- waiting step came due, {outcome}: {n}" for outcome, n in sorted(drained.due.items())
    ]
    lines += [
        f"- {outcome_words(status, reason)}: {n}"
        for (status, reason), n in sorted(tally.this_run.items())
        if status != "sent"
    ]
    if tally.reconciled:
        found = ", ".join(f"{n} {outcome_words(s)}" for s, n in sorted(tally.reconciled.items()))
        lines.append(f"- caught mid-send by an interrupted drain, settled with WeCom: {found}")
    lines += pending
    lines += ["", "## Rendered sample", ""]
    lines += ["```text", tally.sample, "```"] if tally.sample else ["_Nothing was rendered._"]
    return "\n".join(lines)
