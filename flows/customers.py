"""1:1 touches: one flow run sends one occurrence of an SOP step to the SOP's customer audience."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

from prefect import flow, get_run_logger, unmapped
from prefect.futures import PrefectFutureList
from prefect.runtime import flow_run
from prefect.task_runners import ThreadPoolTaskRunner
from prefect.utilities.annotations import opaque

from flows.community import occurrence_day
from models.sop_spec import CustomerAudience
from sopflow.clock import utcnow
from sopflow.settings import get_settings
from tasks.audience import IdRange, plan_customer_batches, resolve_customers
from tasks.compose import ComposedBatch, render_customer_messages
from tasks.deliveries import Occurrence
from tasks.dispatch import dispatch_senders, plan_dispatch
from tasks.outcomes import RunTally, publish_outcomes
from tasks.plan import PlannedBatch, occurrence_started, plan_customer_touches
from tasks.sops import load_sop_by_id
from tasks.timing import collect_garbage

WINDOW = 2  # batches per window; two windows are in flight at once
# SQLite has one writer: more threads only queue for it (and hold more batches in memory).
WORKERS = 3


def run_name() -> str:
    """`dormant-care coupon 2026-11-24`: the SOP, its step and its occurrence."""
    parameters = flow_run.parameters
    day = parameters.get("day")
    if isinstance(day, str):
        day = dt.date.fromisoformat(day)
    step = parameters.get("step") or "main"
    label = parameters["sop_id"] if step == "main" else f"{parameters['sop_id']} {step}"
    return f"{label} {occurrence_day(day).isoformat()}"


def submit_window(
    spec: Any,
    step: str,
    key: Occurrence,
    audience: CustomerAudience,
    window: list[IdRange],
    now: dt.datetime,
    day: dt.date,
    fresh: bool,
) -> tuple[PrefectFutureList[PlannedBatch], PrefectFutureList[ComposedBatch]]:
    """Resolve, render and plan a window of batches: what each batch planned, and its sample."""
    customers = resolve_customers.map(
        unmapped(audience), window, unmapped(now), unmapped(key), unmapped(fresh)
    )
    # `opaque`: hand each batch over as it is; Prefect would otherwise walk every item of it.
    composed = render_customer_messages.map(
        unmapped(spec), unmapped(step), [opaque(c) for c in customers], unmapped(day)
    )
    planned = plan_customer_touches.map(
        unmapped(spec),
        unmapped(key),
        [opaque(c) for c in customers],
        [opaque(c) for c in composed],
        unmapped(now),
    )
    return planned, composed


def prepared_batches(
    spec: Any,
    step: str,
    key: Occurrence,
    audience: CustomerAudience,
    ranges: list[IdRange],
    now: dt.datetime,
    day: dt.date,
    fresh: bool,
) -> Iterator[tuple[PlannedBatch, ComposedBatch]]:
    """Each batch planned, with its sample, a window at a time (memory stays bounded however large
    the audience); the next window is submitted before one is collected, so workers never idle."""
    windows = [ranges[start : start + WINDOW] for start in range(0, len(ranges), WINDOW)]
    waiting = None
    for window in [*windows, None]:
        submitted = (
            submit_window(spec, step, key, audience, window, now, day, fresh) if window else None
        )
        if waiting is not None:
            yield from zip(waiting[0].result(), waiting[1].result(), strict=True)
            waiting = None
            collect_garbage()  # the window's batches, held in cycles by Prefect's futures
        waiting = submitted


@flow(
    name="customer-sop",
    flow_run_name=run_name,
    task_runner=ThreadPoolTaskRunner(max_workers=WORKERS),  # type: ignore[arg-type]
)
def customer_sop(
    sop_id: str,
    step: str = "main",
    day: dt.date | None = None,
    now: dt.datetime | None = None,
    occurrence: str | None = None,
    audience: CustomerAudience | None = None,
) -> dict[str, Any]:
    """Send `step` of a 1:1 SOP to its customer audience, batch by batch, through the guards.

    `occurrence` names the occurrence in idempotency keys (default: the day); `now` decides
    quiet hours, caps and recency and lets tests move the clock. `audience` replaces the SOP's
    (a lifecycle step narrows it to the customers who entered their stage on one day).
    """
    now = now or utcnow()
    day = occurrence_day(day)
    spec = load_sop_by_id(sop_id)
    audience = audience or spec.audience.customers
    channel = get_settings().channel
    key = Occurrence(spec.id, step, occurrence or day.isoformat(), channel, flow_run.id)
    ranges = plan_customer_batches(audience, get_settings().batch_size, now)
    started = occurrence_started(key)
    tally = RunTally()
    for batch in prepared_batches(spec, step, key, audience, ranges, now, day, not started):
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
