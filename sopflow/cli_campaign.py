"""`sopflow campaign schedule|reschedule|cancel`: a promotion campaign's scheduled step runs."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

import typer

from core.settings import get_settings
from sopflow.cli_common import fail, say, sop_errors

campaign_app = typer.Typer(
    no_args_is_help=True, help="Promotion campaigns: scheduled runs of their SOP's steps."
)


def _show_runs(code: str, runs: list, verb: str) -> None:
    from core.clock import local

    tz = get_settings().timezone
    say(f"{code}: {verb} {len(runs)} run(s) on deployment promotion-step")
    for run in runs:
        when = local(run.scheduled_at, tz).strftime("%Y-%m-%d %H:%M")
        say(f"  {run.step:<10} {when} ({tz})  {run.state:<10} {run.flow_run_id}")


def _campaign_call(action: str, code: str, **kwargs: object) -> list:
    """Run one action of orchestration.campaigns, turning a domain error into a plain message."""
    from orchestration import campaigns

    with sop_errors():
        return getattr(campaigns, f"{action}_campaign")(code, **kwargs)
    return []


@campaign_app.command("schedule")
def campaign_schedule(code: Annotated[str, typer.Argument(help="The campaign code.")]) -> None:
    """Create one scheduled run per SOP step at start + offset; the campaign becomes scheduled."""
    _show_runs(code, _campaign_call("schedule", code), "scheduled")


@campaign_app.command("reschedule")
def campaign_reschedule(
    code: Annotated[str, typer.Argument(help="The campaign code.")],
    start: Annotated[str, typer.Option(help='New start, local time: "YYYY-MM-DD HH:MM".')],
) -> None:
    """Move the campaign's start (its end moves with it) and replace its pending runs."""
    try:
        starts_local = dt.datetime.strptime(start, "%Y-%m-%d %H:%M")
    except ValueError:
        fail(f'--start {start!r} is not a time; write it as "YYYY-MM-DD HH:MM"')
    _show_runs(code, _campaign_call("reschedule", code, starts_local=starts_local), "rescheduled")


@campaign_app.command("cancel")
def campaign_cancel(code: Annotated[str, typer.Argument(help="The campaign code.")]) -> None:
    """Cancel the campaign's pending runs and mark it cancelled."""
    _show_runs(code, _campaign_call("cancel", code), "cancelled")
