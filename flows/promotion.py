"""Promotion cadence (预告-爆发-复盘): one flow run sends one step of a campaign's SOP to its groups."""

from __future__ import annotations

import datetime as dt
from typing import Any

from prefect import flow, get_run_logger, unmapped
from prefect.client.schemas.objects import State
from prefect.runtime import flow_run

from core.clock import local_today, utcnow
from core.errors import SopDefinitionError
from core.settings import get_settings
from models.deliveries import Occurrence
from tasks.audience import plan_group_batches, resolve_groups
from tasks.campaign import (
    campaign_context,
    check_campaign_step,
    finish_campaign,
    follow_up_deferred,
    load_campaign,
    publish_campaign_skip,
    render_campaign_messages,
)
from tasks.dispatch import dispatch_batch
from tasks.outcomes import RunTally, gather, publish_outcomes, unsettled_failure
from tasks.plan import plan_group_touches
from tasks.reconcile import reconcile_sending
from tasks.sops import load_sop_by_id

CHANNELS = ("group",)  # promotion steps post to customer groups (客户群群发)


def run_name() -> str:
    """`double12-2026 burst`: the campaign and its step."""
    parameters = flow_run.parameters
    return f"{parameters['campaign_code']} {parameters['step']}"


@flow(name="promotion-step", flow_run_name=run_name)
def promotion_step(
    campaign_code: str, step: str, now: dt.datetime | None = None
) -> dict[str, Any] | State[Any]:
    """Send one step (preview, burst, recap …) of a campaign's SOP to the SOP's groups.

    The occurrence is the campaign code, so each campaign and step is sent at most once per
    group. A cancelled campaign, a step not due yet or overtaken by a later step sends nothing
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
    occurrence = Occurrence(spec.id, step, campaign.code, get_settings().channel, flow_run.id)
    tally = RunTally(reconciled=reconcile_sending(occurrence).counts())
    ranges = plan_group_batches(spec.audience.groups, get_settings().batch_size)
    groups = resolve_groups.map(unmapped(spec.audience.groups), ranges)
    planned = plan_group_touches.map(unmapped(occurrence), groups, unmapped(now), unmapped(spec))
    composed = render_campaign_messages.map(
        unmapped(spec), unmapped(step), planned, unmapped(shared), unmapped(day)
    )
    dispatched = dispatch_batch.map(unmapped("group"), composed)
    sent, errors = gather(dispatched)
    for batch in zip(planned.result(), composed.result(), sent, strict=True):
        tally.add(*batch)
    summary = publish_outcomes(occurrence, spec.title, tally, now)
    follow_up_deferred(campaign, step, tally, now)
    finish_campaign(campaign, spec, step)
    get_run_logger().info(
        "%s %s: %s", campaign.code, step, summary["this_run"] or "nothing new to send"
    )
    return unsettled_failure([summary], errors) or summary
