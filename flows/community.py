"""Daily community rhythm: one flow run sends one occurrence of a community SOP to its groups."""

from __future__ import annotations

import datetime as dt
from typing import Any

from prefect import flow
from prefect.client.schemas.objects import State
from prefect.runtime import flow_run
from prefect.task_runners import ThreadPoolTaskRunner

from core.clock import utcnow
from engine.community_context import deal_slot
from engine.compose import CommunityContent
from flows.calendar_check import warn_unknown_calendar
from flows.customers import customer_plan
from flows.pipeline import (
    WORKERS,
    OccurrencePlan,
    occurrence_day,
    send_occurrence,
    unsettled_failure,
)
from soplang.selection import runs_that_day
from soplang.staff_audience import MOMENTS
from tasks.moments import send_moments_task
from tasks.outcomes import publish_not_today
from tasks.sops import load_sop_by_id


def run_name() -> str:
    """`morning-price 2026-11-24`: the SOP and its occurrence."""
    parameters = flow_run.parameters
    day = parameters.get("day")
    if isinstance(day, str):
        day = dt.date.fromisoformat(day)
    return f"{parameters['sop_id']} {occurrence_day(day).isoformat()}"


@flow(
    name="community-sop",
    flow_run_name=run_name,
    task_runner=ThreadPoolTaskRunner(max_workers=WORKERS),  # type: ignore[arg-type]
)
def community_sop(
    sop_id: str, day: dt.date | None = None, now: dt.datetime | None = None
) -> list[dict[str, Any]] | State[Any]:
    """Send one day's occurrence of a community SOP to every group in its audience (on
    `channel: customer`, 1:1 to every customer in it).

    `now` (default: the current instant) decides quiet hours and caps; tests move it.
    """
    day = occurrence_day(day)
    now = now or utcnow()
    spec = load_sop_by_id(sop_id)
    warn_unknown_calendar(spec, day)
    if not runs_that_day(spec, day):
        publish_not_today(spec.id, spec.title, day, spec.schedule.days)
        return []
    if spec.channel == MOMENTS:
        # 朋友圈: one moment task per step for the chosen staff (engine/moments.py).
        moments = [send_moments_task(spec, step, day) for step in spec.step_names]
        return unsettled_failure(moments) or moments
    slot = deal_slot(spec)
    summaries: list[dict[str, Any]] = []
    errors: list[str] = []
    for step in spec.step_names:
        # `channel: customer`: the same rhythm (会员日, weekly category day) sent 1:1.
        plan = (
            customer_plan(spec, step, day)
            if spec.channel == "customer"
            else OccurrencePlan(
                spec,
                step,
                day,
                label=day.isoformat(),
                shape="groups",
                audience=spec.audience.groups,
                content=CommunityContent(spec, step, day, slot),
            )
        )
        summary, failed = send_occurrence(plan, now=now)
        summaries.append(summary)
        errors += failed
    return unsettled_failure(summaries, errors) or summaries
