"""Daily community rhythm: one flow run sends one occurrence of a community SOP to its groups."""

from __future__ import annotations

import datetime as dt
from typing import Any

from prefect import flow, get_run_logger, unmapped
from prefect.client.schemas.objects import State
from prefect.runtime import flow_run

from core.clock import local_today, utcnow
from core.settings import get_settings
from engine.community_context import deal_slot
from models.deliveries import Occurrence
from tasks.approval import approval_gate
from tasks.audience import plan_group_batches, resolve_groups
from tasks.compose import render_group_messages
from tasks.dispatch import dispatch_batch
from tasks.outcomes import (
    RunTally,
    gather,
    publish_not_today,
    publish_outcomes,
    unsettled_failure,
)
from tasks.plan import plan_group_touches
from tasks.reconcile import reconcile_sending
from tasks.sops import load_sop_by_id, runs_that_day


def occurrence_day(day: dt.date | None = None) -> dt.date:
    """The day a run is for: given, else the local date the run was scheduled for."""
    if day is not None:
        return day
    scheduled = flow_run.scheduled_start_time
    return (
        local_today(scheduled, get_settings().timezone)
        if scheduled
        else local_today(tz=get_settings().timezone)
    )


def run_name() -> str:
    """`morning-price 2026-11-24`: the SOP and its occurrence."""
    parameters = flow_run.parameters
    day = parameters.get("day")
    if isinstance(day, str):
        day = dt.date.fromisoformat(day)
    return f"{parameters['sop_id']} {occurrence_day(day).isoformat()}"


@flow(name="community-sop", flow_run_name=run_name)
def community_sop(
    sop_id: str, day: dt.date | None = None, now: dt.datetime | None = None
) -> list[dict[str, Any]] | State[Any]:
    """Send one day's occurrence of a community SOP to every group in its audience.

    `now` (default: the current instant) decides quiet hours and caps; tests move it.
    """
    logger = get_run_logger()
    day = occurrence_day(day)
    now = now or utcnow()
    spec = load_sop_by_id(sop_id)
    if not runs_that_day(spec, day):
        publish_not_today(spec.id, spec.title, day, spec.schedule.days)
        return []
    slot = deal_slot(spec)
    channel = get_settings().channel
    ranges = plan_group_batches(spec.audience.groups, get_settings().batch_size)
    summaries = []
    errors: list[str] = []
    for step in spec.step_names:
        occurrence = Occurrence(spec.id, step, day.isoformat(), channel, flow_run.id)
        reconciled = reconcile_sending(occurrence)  # rows a crash left `sending`, before any resend
        decision = approval_gate(spec, occurrence, day=day, now=now)
        if not decision.proceed:
            summaries.append(publish_outcomes(occurrence, spec.title, decision.tally, now))
            continue
        groups = resolve_groups.map(unmapped(spec.audience.groups), ranges)
        planned = plan_group_touches.map(
            unmapped(occurrence), groups, unmapped(now), unmapped(spec)
        )
        composed = render_group_messages.map(
            unmapped(spec), unmapped(step), planned, unmapped(day), unmapped(slot)
        )
        dispatched = dispatch_batch.map(unmapped("group"), composed)
        tally = RunTally(reconciled=reconciled.counts())
        sent, failed = gather(dispatched)
        errors += failed
        for batch in zip(planned.result(), composed.result(), sent, strict=True):
            tally.add(*batch)
        summaries.append(publish_outcomes(occurrence, spec.title, tally, now))
        logger.info(
            "%s %s %s: %s", spec.id, step, day, summaries[-1]["this_run"] or "nothing new to send"
        )
    return unsettled_failure(summaries, errors) or summaries
