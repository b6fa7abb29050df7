"""Lifecycle touches: classify every customer's stage daily, and send each lifecycle SOP step on its day."""

from __future__ import annotations

import datetime as dt
from typing import Any

from prefect import flow, get_run_logger
from prefect.artifacts import create_table_artifact
from prefect.runtime import flow_run

from core.clock import local_today, utcnow
from core.settings import get_settings
from engine.lifecycle_context import stage_entry_audience
from flows.calendar_check import warn_unknown_calendar
from flows.customers import customer_sop, run_name
from flows.pipeline import occurrence_day
from soplang.selection import runs_that_day
from tasks.derive import derive_customers_task, push_tags_task
from tasks.outcomes import publish_not_today
from tasks.sops import load_sop_by_id
from tasks.stages import classify_stages_task, stage_totals_task


def classify_run_name() -> str:
    """`classify-stages 2026-11-24`: the local day classified."""
    now = flow_run.parameters.get("now")
    if isinstance(now, str):
        now = dt.datetime.fromisoformat(now)
    day = local_today(now, get_settings().timezone) if now else occurrence_day()
    return f"classify-stages {day.isoformat()}"


@flow(name="classify-stages", flow_run_name=classify_run_name)
def classify_stages(now: dt.datetime | None = None) -> dict[str, Any]:
    """Recompute tiers and automatic tags, give every customer the lifecycle stage their orders and
    contact say (log the transitions), then push the changed tags to WeCom."""
    now = now or utcnow()
    # Stages are classified even when sop/tiers.yaml or sop/tags.yaml has an error; the run then fails.
    derived = derive_customers_task(now, return_state=True)
    classified = classify_stages_task(now)
    totals = stage_totals_task()
    day = local_today(now, get_settings().timezone)
    create_table_artifact(
        key="classify-stages",
        table=[
            {
                "stage": stage,
                "customers": n,
                "entered today": _entered(classified.transitions, stage),
            }
            for stage, n in totals.items()
        ],
        description=f"Lifecycle stages on {day}: {classified.moved} customers changed stage",
    )
    get_run_logger().info("stage changes on %s: %s", day, classified.transitions or "none")
    derived.result()  # raises the tier/tag file's error, after the stages are classified
    push_tags_task()
    return {"day": day.isoformat(), "updated": classified.updated, **classified.transitions}


def _entered(transitions: dict[str, int], stage: str) -> int:
    return sum(n for move, n in transitions.items() if move.endswith(f"→{stage}"))


@flow(name="lifecycle-sop", flow_run_name=run_name)
def lifecycle_sop(
    sop_id: str, step: str, day: dt.date | None = None, now: dt.datetime | None = None
) -> dict[str, Any]:
    """Send `step` to the SOP's customers still in its stage who entered it `after` days before `day`.

    A customer who left the stage before the step (bought again, was reclassified) is not in the
    audience any more: that is the early exit. The 1:1 pipeline does the rest (`customer-sop`).
    """
    day = occurrence_day(day)
    spec = load_sop_by_id(sop_id)
    warn_unknown_calendar(spec, day)
    if not runs_that_day(spec, day):
        publish_not_today(spec.id, spec.title, day, spec.schedule.days)
        return {}
    audience = stage_entry_audience(spec, step, day)
    return customer_sop(sop_id=sop_id, step=step, day=day, now=now, audience=audience)
