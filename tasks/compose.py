"""Render each touch of a batch; identical texts are stored once as a Message."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from prefect import task
from prefect.cache_policies import NO_CACHE

from engine.community_context import deals_for_group, deals_of_day, render_for_group
from engine.customer_context import segment_renderer
from engine.lifecycle_context import lifecycle_context
from engine.timing import gc_paused, timed
from models.db import session_scope
from models.deliveries import attach_messages, set_status, store_message
from models.delivery import DeliveryStatus
from soplang.template import compile_step
from tasks.audience import CustomerTarget, ResolvedBatch
from tasks.plan import PlannedBatch, Touch


class Composed(NamedTuple):
    """A touch with its rendered text, ready to dispatch."""

    delivery_id: int
    target_id: str
    sender: str | None
    content: str


@dataclass
class ComposedBatch:
    ready: list[Composed] = field(default_factory=list)
    skipped: dict[str, int] = field(default_factory=dict)  # reason -> rows
    sample: str | None = None
    texts: dict[int, str] = field(default_factory=dict)  # customer id -> text, before planning


def store_texts(composed: list[Composed], *, session: Any) -> None:
    """Store each distinct text once as a Message and point the Delivery rows at it."""
    message_ids: dict[str, int] = {}
    by_message: dict[int, list[int]] = {}
    for item in composed:
        if item.content not in message_ids:
            message_ids[item.content] = store_message(item.content, session=session)
        by_message.setdefault(message_ids[item.content], []).append(item.delivery_id)
    attach_messages(by_message, session=session)


def compose_group_messages(
    spec: Any, step: str, touches: list[Touch], *, day: dt.date, slot: str
) -> ComposedBatch:
    """Render the step for each group with its theme's deals; groups without deals are skipped."""
    batch = ComposedBatch()
    if not touches:
        return batch
    compiled = compile_step(spec, step)
    no_deals: list[int] = []
    with session_scope() as session:
        deals = deals_of_day(day, slot, session=session)
        for touch in touches:
            group_deals = deals_for_group(deals, touch.target)
            if not group_deals:
                no_deals.append(touch.delivery_id)
                continue
            content = render_for_group(
                compiled, spec, touch.target, group_deals, day=day, slot=slot
            )
            batch.ready.append(
                Composed(touch.delivery_id, touch.target.chat_id, touch.sender, content)
            )
        store_texts(batch.ready, session=session)
        reason = f"no {slot} deals today for this group's theme"
        set_status(no_deals, DeliveryStatus.SKIPPED, session=session, reason=reason)
    if no_deals:
        batch.skipped[reason] = len(no_deals)
    batch.sample = batch.ready[0].content if batch.ready else None
    return batch


def render_customer_texts(
    spec: Any, step: str, customers: Sequence[CustomerTarget], *, day: dt.date
) -> ComposedBatch:
    """Render the step for each customer; customers who read the same fields share one text."""
    batch = ComposedBatch()
    if not customers:
        return batch
    render_for = segment_renderer(
        compile_step(spec, step), day=day, sop_id=spec.id, sop_title=spec.title
    )
    with timed("render"):
        extra = lifecycle_context(spec, step, customers, day=day)
        batch.texts = {c.id: render_for(c, extra.get(c.id)) for c in customers}
    batch.sample = next(iter(batch.texts.values()))
    return batch


@task(name="render-customer-messages", cache_policy=NO_CACHE)
def render_customer_messages(
    spec: Any, step: str, resolved: ResolvedBatch, day: dt.date
) -> ComposedBatch:
    """Render the step for each customer of the batch still to plan (texts are stored by planning)."""
    with gc_paused():
        return render_customer_texts(spec, step, resolved.customers, day=day)


@task(name="render-messages", cache_policy=NO_CACHE)
def render_group_messages(
    spec: Any, step: str, planned: PlannedBatch, day: dt.date, slot: str
) -> ComposedBatch:
    """Render the step for each group of the batch still to be sent."""
    return compose_group_messages(spec, step, planned.touches, day=day, slot=slot)
