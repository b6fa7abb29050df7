"""1:1 touches: one flow run sends one occurrence of an SOP step to the SOP's customer audience."""

from __future__ import annotations

import datetime as dt
from typing import Any

from prefect import flow, get_run_logger, unmapped
from prefect.runtime import flow_run

from flows.community import occurrence_day
from sopflow.clock import utcnow
from sopflow.settings import get_settings
from tasks.audience import plan_customer_batches, resolve_customers
from tasks.compose import render_customer_messages
from tasks.deliveries import Occurrence
from tasks.dispatch import dispatch_senders, plan_dispatch
from tasks.outcomes import RunTally, publish_outcomes
from tasks.plan import plan_customer_touches
from tasks.sops import load_sop_by_id

WINDOW = 8  # batches in flight at once


def run_name() -> str:
    """`dormant-care coupon 2026-11-24`: the SOP, its step and its occurrence."""
    parameters = flow_run.parameters
    day = parameters.get("day")
    if isinstance(day, str):
        day = dt.date.fromisoformat(day)
    step = parameters.get("step") or "main"
    label = parameters["sop_id"] if step == "main" else f"{parameters['sop_id']} {step}"
    return f"{label} {occurrence_day(day).isoformat()}"


@flow(name="customer-sop", flow_run_name=run_name)
def customer_sop(
    sop_id: str,
    step: str = "main",
    day: dt.date | None = None,
    now: dt.datetime | None = None,
    occurrence: str | None = None,
) -> dict[str, Any]:
    """Send `step` of a 1:1 SOP to its customer audience, batch by batch, through the guards.

    `occurrence` names the occurrence in idempotency keys (default: the day); `now` decides
    quiet hours, caps and recency and lets tests move the clock.
    """
    now = now or utcnow()
    day = occurrence_day(day)
    spec = load_sop_by_id(sop_id)
    audience = spec.audience.customers
    channel = get_settings().channel
    key = Occurrence(spec.id, step, occurrence or day.isoformat(), channel, flow_run.id)
    ranges = plan_customer_batches(audience, get_settings().batch_size, now)
    tally = RunTally()
    # A window of batches at a time keeps memory bounded however large the audience.
    for start in range(0, len(ranges), WINDOW):
        window = ranges[start : start + WINDOW]
        customers = resolve_customers.map(unmapped(audience), window, unmapped(now))
        planned = plan_customer_touches.map(unmapped(spec), unmapped(key), customers, unmapped(now))
        composed = render_customer_messages.map(
            unmapped(spec), unmapped(step), planned, unmapped(day)
        )
        for batch in zip(planned.result(), composed.result(), strict=True):
            tally.add_prepared(*batch)
    # Dispatch per sender over the whole occurrence: one WeCom task per staff member and text.
    buckets = plan_dispatch(key, now)
    senders = dispatch_senders.map(unmapped(key), unmapped("single"), buckets, unmapped(now))
    for result in senders.result():
        tally.add_dispatched(result)
    summary = publish_outcomes(key, spec.title, tally)
    get_run_logger().info(
        "%s %s %s: %s", spec.id, step, key.occurrence, summary["this_run"] or "nothing new to send"
    )
    return summary
