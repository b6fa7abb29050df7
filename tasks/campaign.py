"""Prefect tasks of a promotion step: its campaign, whether the step may send, its shared context."""

from __future__ import annotations

import datetime as dt
from typing import Any

from prefect import task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE
from prefect.runtime import deployment

from core.settings import get_settings
from engine.campaign import CampaignInfo, find_campaign, set_campaign, skip_reason, step_context
from engine.guard import quiet_hours_end
from engine.outcomes import artifact_key
from models.db import session_scope
from orchestration.campaigns import follow_up_run
from soplang.spec import SopSpec


@task(name="load-campaign", cache_policy=NO_CACHE)
def load_campaign(code: str) -> CampaignInfo:
    """The campaign this run is for."""
    with session_scope() as session:
        return find_campaign(code, session=session)


@task(name="check-campaign-step", cache_policy=NO_CACHE)
def check_campaign_step(
    campaign: CampaignInfo, spec: SopSpec, step: str, now: dt.datetime
) -> str | None:
    """Why the step must not send now, or None when it may."""
    return skip_reason(campaign, spec, step, now, get_settings().timezone)


@task(name="campaign-context", cache_policy=NO_CACHE)
def campaign_context(
    campaign: CampaignInfo, spec: SopSpec, step: str, now: dt.datetime
) -> dict[str, Any]:
    """The step's shared context: the campaign, its items and, for the recap, the burst's sales."""
    with session_scope() as session:
        return step_context(campaign, spec, step, now, session=session)


@task(name="publish-campaign-skip", cache_policy=NO_CACHE)
def publish_campaign_skip(campaign: CampaignInfo, title: str, step: str, reason: str) -> None:
    """Say in the UI why a campaign step sent nothing."""
    create_markdown_artifact(
        key=artifact_key(campaign.sop_id or "promotion", step, "sample"),
        markdown=f"# {title} · {step} · {campaign.code}\n\nNot sent, nothing recorded: {reason}.",
        description=f"{campaign.code} {step}: skipped",
    )


@task(name="finish-campaign", cache_policy=NO_CACHE)
def finish_campaign(campaign: CampaignInfo, spec: SopSpec, step: str) -> None:
    """Mark the campaign done once its last step has run."""
    if step == spec.step_names[-1] and campaign.status != "cancelled":
        with session_scope() as session:
            set_campaign(campaign.code, session=session, status="done")


@task(name="follow-up-deferred", cache_policy=NO_CACHE)
def follow_up_deferred(campaign: CampaignInfo, step: str, deferred: int, now: dt.datetime) -> None:
    """Schedule a run of the step for when quiet hours end if touches wait for them.

    Only a run of the deployment can do so; a run started by hand is simply run again.
    """
    if not deferred or deployment.id is None:
        return
    follow_up_run(deployment.id, campaign.code, step, quiet_hours_end(now, get_settings()))
