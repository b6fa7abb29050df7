"""1:1 touches: one flow run sends one occurrence of an SOP step to the SOP's customer audience."""

from __future__ import annotations

import datetime as dt
from typing import Any

from prefect import flow
from prefect.client.schemas.objects import State
from prefect.runtime import flow_run
from prefect.task_runners import ThreadPoolTaskRunner

from core.clock import utcnow
from engine.compose import Content, CustomerContent
from flows.pipeline import (
    WORKERS,
    OccurrencePlan,
    occurrence_day,
    send_occurrence,
    unsettled_failure,
)
from models.audience import CustomerFilter
from soplang.spec import CustomerAudience, SopSpec
from tasks.sops import load_sop_by_id


def customer_plan(
    spec: SopSpec,
    step: str,
    day: dt.date,
    *,
    label: str | None = None,
    audience: CustomerFilter | None = None,
    content: Content | None = None,
) -> OccurrencePlan:
    """A 1:1 occurrence of `step`: the SOP's `customers:` audience (or `audience`), each customer's
    text rendered by `content` (default: the 1:1 context), named by `label` (default: the day).

    The community rhythm sent 1:1 (会员日), promotion steps on `channel: customer` and lifecycle
    steps all go through it, so the same caps, reservations and idempotency keys apply.
    """
    customers = audience if audience is not None else spec.audience.customers
    return OccurrencePlan(
        spec,
        step,
        day,
        label=label or day.isoformat(),
        shape="customers",
        audience=customers,
        content=content or CustomerContent(spec, step, day),
    )


def run_name() -> str:
    """`dormant-care coupon 2026-11-24`: the SOP, its step and its occurrence."""
    parameters = flow_run.parameters
    day = parameters.get("day")
    if isinstance(day, str):
        day = dt.date.fromisoformat(day)
    step = parameters.get("step") or "main"
    label = parameters["sop_id"] if step == "main" else f"{parameters['sop_id']} {step}"
    return f"{label} {occurrence_day(day).isoformat()}"


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
    plan = customer_plan(spec, step, day, label=occurrence, audience=audience)
    summary, errors = send_occurrence(plan, now=now)
    return unsettled_failure([summary], errors) or summary
