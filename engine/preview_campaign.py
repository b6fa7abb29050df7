"""Preview of a promotion step: the campaign it runs for, when the step is due, its shared context per group or customer."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select
from sqlmodel import Session, col

from core.clock import local
from core.errors import SopError
from core.settings import get_settings
from engine.campaign import BURST_STEP, CampaignInfo, find_campaign, step_context, step_due_times
from engine.compose import CampaignContent, CampaignCustomerContent
from engine.preview_customers import fill_customers
from engine.preview_groups import heading, preview_groups
from engine.preview_report import Preview, plural
from models.commerce import Campaign
from models.db import session_scope
from soplang.context import RECAP_STEP
from soplang.spec import SopSpec


def preview_promotion(
    spec: SopSpec,
    step: str,
    day: dt.date,
    chat_id: str | None,
    code: str | None,
    external_userid: str | None = None,
) -> Preview:
    """The step for `code` (default: the newest campaign running this SOP), with the context its
    run gets at its due time: the campaign, its items and, for the recap, the burst's sales; to
    its groups, or 1:1 to its customers on `channel: customer`."""
    tz = get_settings().timezone
    with session_scope(readonly=True) as session:
        campaign = _campaign(spec, code, session=session)
        due = step_due_times(spec, campaign.starts_at, tz)[step]
        # A run at its due time: the recap counts the burst's orders up to then.
        shared = step_context(campaign, spec, step, due, session=session)
    due_local = local(due, tz)
    preview = Preview(heading(spec, step), when=_when(campaign, step, due_local, day, tz))
    if step == RECAP_STEP and "stats" in shared:
        stats = shared["stats"]
        preview.when.append(
            f"recap stats 战报: orders from `{BURST_STEP}` to the recap's due time: "
            f"{plural(stats['units_sold'], 'unit')}, {plural(stats['buyers'], 'buyer')}, "
            f"{len(stats['sold_out'])} item(s) sold out"
        )
    if spec.channel == "customer":
        return fill_customers(
            spec,
            step,
            preview,
            CampaignCustomerContent(spec, step, due_local.date(), shared),
            spec.audience.customers if spec.audience else None,
            moment=due,
            label=campaign.code,
            external_userid=external_userid,
        )
    content = CampaignContent(spec, step, due_local.date(), shared)
    return preview_groups(spec, step, preview, content, chat_id)


def _when(campaign: CampaignInfo, step: str, due: dt.datetime, day: dt.date, tz: str) -> list[str]:
    starts = local(campaign.starts_at, tz)
    lines = [
        f"campaign 活动 {campaign.code} · {campaign.name} ({campaign.status}), "
        f"starts {starts:%Y-%m-%d %H:%M} ({tz})",
    ]
    on_day = "on" if due.date() == day else "NOT on"
    lines.append(
        f"step `{step}` is due {due:%Y-%m-%d %H:%M} ({tz}): {on_day} {day.isoformat()}; "
        "`sopflow campaign schedule` creates its run"
    )
    if campaign.status == "cancelled":
        lines.append(f"campaign {campaign.code} is cancelled: the step sends nothing")
    elif campaign.status == "done":
        lines.append(f"campaign {campaign.code} is done: its steps have run")
    return lines


def _campaign(spec: SopSpec, code: str | None, *, session: Session) -> CampaignInfo:
    """The campaign `--campaign` names, or the newest one that runs this SOP."""
    if code is None:
        newest = session.execute(
            select(col(Campaign.code))
            .where(col(Campaign.sop_id) == spec.id)
            .order_by(col(Campaign.starts_at).desc(), col(Campaign.id).desc())
            .limit(1)
        ).scalar()
        if newest is None:
            raise SopError(
                f"no campaign in the database runs SOP {spec.id}; create one whose sop_id is "
                f"{spec.id} (the demo world has one: `sopflow demo-data`) or pass --campaign CODE",
                sop_id=spec.id,
            )
        code = newest
    campaign = find_campaign(code, session=session)
    if campaign.sop_id != spec.id:
        raise SopError(
            f"--campaign {code} runs SOP {campaign.sop_id or '(none)'}, not {spec.id}; "
            f"preview that SOP's file, or leave --campaign out for the newest campaign of {spec.id}",
            sop_id=spec.id,
        )
    return campaign
