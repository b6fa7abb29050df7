"""The one send pipeline: reconcile → resolve → render → guard and record → approval → dispatch → outcomes.

A flow only says what its occurrence is (an `OccurrencePlan`: the SOP, step, day, the audience's
shape and what renders its texts); every kind of SOP then goes through the same stages, so
reconciliation, approval and the restraint guards hold everywhere.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Iterable, Iterator, Sequence
from typing import Any, Literal

from prefect import get_run_logger, unmapped
from prefect.client.schemas.objects import State
from prefect.futures import PrefectFuture
from prefect.runtime import flow_run
from prefect.states import Failed
from prefect.utilities.annotations import opaque

from core.clock import local_today
from core.errors import UnsettledTouches
from core.settings import get_settings
from engine.audience import ResolvedBatch
from engine.compose import Content, Rendered
from engine.outcomes import RunTally, unsettled_message
from engine.plan import PlannedBatch
from engine.reconcile import ReconcileSummary
from flows.approval import approval_gate
from models.audience import CustomerFilter, GroupFilter, IdRange
from models.deliveries import Occurrence
from soplang.spec import SopSpec
from tasks.audience import (
    plan_customer_batches,
    plan_group_batches,
    resolve_customers,
    resolve_groups,
)
from tasks.compose import render_messages
from tasks.dispatch import dispatch_senders, plan_dispatch
from tasks.outcomes import publish_outcomes
from tasks.plan import occurrence_started, record_planned
from tasks.reconcile import reconcile_sending

# A batch's three tasks each hold a thread while waiting for their inputs: four threads let the
# next batch be read while this one is written. SQLite has one writer; more would only queue.
WORKERS = 4

LEAD = 10  # see `led_in`
Shape = Literal["groups", "customers"]


@dataclasses.dataclass(frozen=True)
class OccurrencePlan:
    """What a flow says its occurrence is; the pipeline does the rest."""

    spec: SopSpec
    step: str
    day: dt.date
    label: str  # the occurrence in idempotency keys: the day, or a campaign's code
    shape: Shape
    audience: GroupFilter | CustomerFilter | None
    content: Content

    @property
    def chat_type(self) -> str:
        """WeCom's chat type of the mass messages: customer groups, or 1:1 to customers."""
        return "group" if self.shape == "groups" else "single"


def send_occurrence(plan: OccurrencePlan, *, now: dt.datetime) -> tuple[dict[str, Any], list[str]]:
    """Send one occurrence of one step through every stage; its published summary and the errors
    of send tasks that failed (the caller ends the run Failed with them)."""
    settings = get_settings()
    spec = plan.spec
    key = Occurrence(spec.id, plan.step, plan.label, settings.channel, flow_run.id)
    key = dataclasses.replace(key, fresh=not occurrence_started(key))
    # Rows an interrupted run left `sending` are settled with WeCom before anything is resent.
    reconciled = ReconcileSummary() if key.fresh else reconcile_sending(key)
    if settings.occurrence_workers > 1:
        from flows.partitioned import send_partitioned  # built on this module's stages

        return send_partitioned(plan, key, reconciled, now)
    tally = RunTally(reconciled=reconciled.counts())
    ranges = batch_ranges(plan, now)
    if key.fresh:  # a re-run's batches are mostly counted, not recorded: nothing to lead
        ranges = led_in(ranges)
    for planned, (sample, sample_for) in prepared_batches(plan, key, ranges, now):
        tally.add_prepared(planned, sample, sample_for)
    errors: list[str] = []
    if approval_gate(spec, key, plan.chat_type, tally, now).proceed:
        # Per sender over the whole occurrence: one WeCom task per staff member and text.
        buckets = plan_dispatch(key, now)
        senders = dispatch_senders.map(
            unmapped(key),
            unmapped(plan.chat_type),
            [bucket.senders for bucket in buckets],
            unmapped(now),
            [opaque(bucket.ids) for bucket in buckets],
        )
        results, errors = gather(senders)
        for result in results:
            tally.add_dispatched(result)
    summary = publish_outcomes(key, spec, tally, now)
    get_run_logger().info("%s %s %s: %s", spec.id, plan.step, plan.label, summary["in_words"])
    return summary, errors


def batch_ranges(plan: OccurrencePlan, now: dt.datetime) -> list[IdRange]:
    """The audience split into id ranges of about `batch_size` targets."""
    size = get_settings().batch_size
    if plan.shape == "groups":
        return plan_group_batches(plan.audience, size)
    return plan_customer_batches(plan.audience, size, now)


def led_in(ranges: list[IdRange]) -> list[IdRange]:
    """The first of several ranges cut into a lead of about 1/`LEAD` of it and the rest.

    Batches are read and rendered while the one before holds the single writer, but the first
    has nothing to overlap: the writer idles through a whole batch's read (and the next batch,
    read alongside, slows it). A small lead is read at once and recorded while the rest is read.
    """
    if len(ranges) < 2:
        return ranges
    start, end = ranges[0]
    cut = start + (end - start) // LEAD
    return [(start, cut), (cut + 1, end), *ranges[1:]] if cut > start else ranges


Submitted = tuple[
    PrefectFuture[ResolvedBatch], PrefectFuture[Rendered], PrefectFuture[PlannedBatch]
]


def submit_batch(
    plan: OccurrencePlan, key: Occurrence, id_range: IdRange, now: dt.datetime
) -> Submitted:
    """Resolve, render, then guard and record one batch (rows written once, with their text)."""
    if plan.shape == "groups":
        resolved = resolve_groups.submit(plan.audience, id_range)
    else:
        resolved = resolve_customers.submit(plan.audience, id_range, now, key)
    # `opaque`: hand the batch over as it is; Prefect would otherwise walk every item of it.
    rendered = render_messages.submit(plan.content, opaque(resolved))  # type: ignore[call-overload]
    planned = record_planned.submit(plan.spec, key, opaque(resolved), opaque(rendered), now)  # type: ignore[call-overload]
    return resolved, rendered, planned


def prepared_batches(
    plan: OccurrencePlan, key: Occurrence, ranges: Sequence[IdRange], now: dt.datetime
) -> Iterator[tuple[PlannedBatch, tuple[str | None, str | None]]]:
    """Each batch recorded, with its sample and whose text it is. The next batch is submitted
    before one is collected: it is read and rendered while this one holds the database's single
    writer, and memory holds two batches however large the audience."""
    waiting: Submitted | None = None
    for id_range in [*ranges, None]:
        submitted = submit_batch(plan, key, id_range, now) if id_range else None
        if waiting is not None:
            resolved, rendered, planned = (future.result() for future in waiting)
            yield planned, (rendered.sample, rendered.sample_for)  # type: ignore[union-attr,misc]
            release(resolved, rendered, planned)  # type: ignore[arg-type]
        waiting = submitted


def release(resolved: ResolvedBatch, rendered: Rendered, planned: PlannedBatch) -> None:
    """Drop the rows of a batch already counted. Prefect's futures hold results in reference
    cycles, which only a full garbage collection frees: at 10^5 rows a batch, emptying them is
    far cheaper than collecting."""
    resolved.targets.clear()
    rendered.clear()
    planned.touches.clear()


def gather(futures: Iterable[Any]) -> tuple[list[Any], list[str]]:
    """The results of finished task futures; a failed one gives None and its error's text."""
    results: list[Any] = []
    errors: list[str] = []
    for future in futures:
        try:
            results.append(future.result())
        except Exception as error:  # noqa: BLE001 - the run reports it after publishing outcomes
            results.append(None)
            errors.append(f"{type(error).__name__}: {error}"[:500])
    return results, errors


def unsettled_failure(
    summaries: list[dict[str, Any]], errors: Sequence[str] = ()
) -> State[Any] | None:
    """The run's final state when touches are unsettled or a send task failed, else None."""
    message = unsettled_message(summaries)
    if message is None and not errors:
        return None
    because = f" — last error: {errors[-1]}" if errors else ""
    return failed_run((message or "a send task failed") + because, summaries)


def failed_run(message: str, summaries: Sequence[dict[str, Any]] = ()) -> State[Any]:
    """A Failed state saying `message` and nothing else (no traceback in the UI); calling the
    flow directly raises `UnsettledTouches` carrying the summaries."""
    return Failed(message=message, data=UnsettledTouches(message, summaries=list(summaries)))


def occurrence_day(day: dt.date | None = None) -> dt.date:
    """The day a run is for: given, else the local date the run was scheduled for."""
    if day is not None:
        return day
    scheduled = flow_run.scheduled_start_time
    tz = get_settings().timezone
    return local_today(scheduled, tz) if scheduled else local_today(tz=tz)
