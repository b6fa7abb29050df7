"""1:1 touches: one flow run sends one occurrence of an SOP step to the SOP's customer audience."""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Iterator
from typing import Any

from prefect import flow, get_run_logger, unmapped
from prefect.client.schemas.objects import State
from prefect.futures import PrefectFuture
from prefect.runtime import flow_run
from prefect.task_runners import ThreadPoolTaskRunner
from prefect.utilities.annotations import opaque

from core.clock import utcnow
from core.settings import get_settings
from flows.community import occurrence_day
from models.deliveries import Occurrence
from soplang.spec import CustomerAudience
from tasks.audience import IdRange, ResolvedBatch, plan_customer_batches, resolve_customers
from tasks.compose import ComposedBatch, render_customer_messages
from tasks.dispatch import dispatch_senders, plan_dispatch
from tasks.outcomes import RunTally, gather, publish_outcomes, unsettled_failure
from tasks.plan import PlannedBatch, occurrence_started, plan_customer_touches
from tasks.reconcile import ReconcileSummary, reconcile_sending
from tasks.sops import load_sop_by_id

# A batch's three tasks each hold a thread while waiting for their inputs: four threads let the
# next batch be read while this one is written. SQLite has one writer; more would only queue.
WORKERS = 4


def run_name() -> str:
    """`dormant-care coupon 2026-11-24`: the SOP, its step and its occurrence."""
    parameters = flow_run.parameters
    day = parameters.get("day")
    if isinstance(day, str):
        day = dt.date.fromisoformat(day)
    step = parameters.get("step") or "main"
    label = parameters["sop_id"] if step == "main" else f"{parameters['sop_id']} {step}"
    return f"{label} {occurrence_day(day).isoformat()}"


def submit_batch(
    spec: Any,
    step: str,
    key: Occurrence,
    audience: CustomerAudience,
    id_range: IdRange,
    now: dt.datetime,
    day: dt.date,
) -> tuple[PrefectFuture[ResolvedBatch], PrefectFuture[ComposedBatch], PrefectFuture[PlannedBatch]]:
    """Resolve, render and plan one batch: its customers, their texts and its plan."""
    customers = resolve_customers.submit(audience, id_range, now, key)
    # `opaque`: hand the batch over as it is; Prefect would otherwise walk every item of it.
    composed = render_customer_messages.submit(spec, step, opaque(customers), day)  # type: ignore[call-overload]
    planned = plan_customer_touches.submit(spec, key, opaque(customers), opaque(composed), now)  # type: ignore[call-overload]
    return customers, composed, planned


def release(*batches: Any) -> None:
    """Drop the rows of batches already counted. Prefect's futures hold results in reference
    cycles, which only a full garbage collection frees: at 10^5 rows a batch, emptying them is
    far cheaper than collecting."""
    for batch in batches:
        for rows in ("customers", "texts", "ready", "touches"):
            getattr(batch, rows, {}).clear()


def prepared_batches(
    spec: Any,
    step: str,
    key: Occurrence,
    audience: CustomerAudience,
    ranges: list[IdRange],
    now: dt.datetime,
    day: dt.date,
) -> Iterator[tuple[PlannedBatch, ComposedBatch]]:
    """Each batch planned, with its sample. The next batch is submitted before one is collected:
    it is read and rendered while this one holds the database's single writer, and memory holds
    two batches however large the audience."""
    waiting = None
    for id_range in [*ranges, None]:
        submitted = (
            submit_batch(spec, step, key, audience, id_range, now, day) if id_range else None
        )
        if waiting is not None:
            customers, composed, planned = (future.result() for future in waiting)
            yield planned, composed  # type: ignore[misc]
            release(customers, composed, planned)
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
) -> dict[str, Any] | State[Any]:
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
    key = dataclasses.replace(key, fresh=not occurrence_started(key))
    # Rows an interrupted run left `sending` are settled with WeCom before anything is resent.
    reconciled = ReconcileSummary() if key.fresh else reconcile_sending(key)
    tally = RunTally(reconciled=reconciled.counts())
    for batch in prepared_batches(spec, step, key, audience, ranges, now, day):
        tally.add_prepared(*batch)
    # Dispatch per sender over the whole occurrence: one WeCom task per staff member and text.
    buckets = plan_dispatch(key, now)
    senders = dispatch_senders.map(unmapped(key), unmapped("single"), buckets, unmapped(now))
    results, errors = gather(senders)
    for result in results:
        tally.add_dispatched(result)
    summary = publish_outcomes(key, spec.title, tally, now)
    get_run_logger().info(
        "%s %s %s: %s", spec.id, step, key.occurrence, summary["this_run"] or "nothing new to send"
    )
    return unsettled_failure([summary], errors) or summary
