"""Promotion cadence (预告-爆发-复盘): one flow run sends one step of a campaign's SOP to its groups or customers."""

from __future__ import annotations

import datetime as dt
from typing import Any

from prefect import flow, get_run_logger
from prefect.client.schemas.objects import State
from prefect.runtime import flow_run
from prefect.task_runners import ThreadPoolTaskRunner

from core.clock import local_today, utcnow
from core.errors import SopDefinitionError
from core.settings import get_settings
from engine.compose import CampaignContent, CampaignCustomerContent
from flows.customers import customer_plan
from flows.pipeline import WORKERS, OccurrencePlan, send_occurrence, unsettled_failure
from tasks.campaign import (
    campaign_context,
    check_campaign_step,
    finish_campaign,
    follow_up_deferred,
    load_campaign,
    publish_campaign_skip,
)
from tasks.sops import load_sop_by_id

# Promotion steps post to customer groups (客户群群发) or go 1:1 to customers (客户群发).
CHANNELS = ("group", "customer")


def run_name() -> str:
    """`double12-2026 burst`: the campaign and its step."""
    parameters = flow_run.parameters
    return f"{parameters['campaign_code']} {parameters['step']}"


@flow(
    name="promotion-step",
    flow_run_name=run_name,
    task_runner=ThreadPoolTaskRunner(max_workers=WORKERS),  # type: ignore[arg-type]
)
def promotion_step(
    campaign_code: str, step: str, now: dt.datetime | None = None
) -> dict[str, Any] | State[Any]:
    """Send one step (preview, burst, recap …) of a campaign's SOP to the SOP's groups, or 1:1
    to its customers on `channel: customer`.

    The occurrence is the campaign code, so each campaign and step is sent at most once per
    group or customer. A cancelled campaign, a step not due yet or overtaken by a later step sends nothing
    and says why in an artifact. `now` (default: the current instant) lets tests move the clock.
    """
    now = now or utcnow()
    campaign = load_campaign(campaign_code)
    if campaign.sop_id is None:
        raise SopDefinitionError(f"campaign {campaign.code} has no sop_id; set the SOP it runs")
    spec = load_sop_by_id(campaign.sop_id)
    if spec.kind != "promotion" or spec.channel not in CHANNELS:
        raise SopDefinitionError(
            f"campaign {campaign.code} runs SOP {spec.id} ({spec.kind}, {spec.channel}); "
            f"it needs kind promotion and channel {' or '.join(CHANNELS)}",
            sop_id=spec.id,
        )
    reason = check_campaign_step(campaign, spec, step, now)
    if reason:
        publish_campaign_skip(campaign, spec.title, step, reason)
        get_run_logger().warning("%s %s: nothing sent: %s", campaign.code, step, reason)
        return {"occurrence": campaign.code, "step": step, "skipped": reason}
    shared = campaign_context(campaign, spec, step, now)
    day = local_today(now, get_settings().timezone)
    if spec.channel == "customer":
        content = CampaignCustomerContent(spec, step, day, shared)
        plan = customer_plan(spec, step, day, label=campaign.code, content=content)
    else:
        plan = OccurrencePlan(
            spec,
            step,
            day,
            label=campaign.code,
            shape="groups",
            audience=spec.audience.groups,
            content=CampaignContent(spec, step, day, shared),
        )
    summary, errors = send_occurrence(plan, now=now)
    follow_up_deferred(campaign, step, summary["deferred"], now)
    finish_campaign(campaign, spec, step)
    return unsettled_failure([summary], errors) or summary
