"""Prefect tasks of the event drain: which trigger SOPs, quiet hours, one claimed batch, the outcomes."""

from __future__ import annotations

import datetime as dt
from typing import Any

from prefect import task
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.cache_policies import NO_CACHE
from prefect.runtime import flow_run

from core.settings import get_settings
from engine.events import Claim, claimed_events
from engine.guard import in_quiet_hours, quiet_hours_end
from engine.outcomes import RunTally, artifact_key
from engine.trigger_due import DueBatch, DueClaim, claim_due, release_due, schedule_due, send_due
from engine.triggers import Drained, send_events, trigger_report
from models.db import session_scope
from soplang.selection import trigger_sops
from soplang.spec import SopSpec
from tasks.dispatch import SENDING_TASK, open_channel


def _current_flow_run_id() -> str | None:
    run_id = flow_run.id
    return str(run_id) if run_id else None


@task(name="load-trigger-sops", cache_policy=NO_CACHE)
def load_trigger_sops() -> dict[str, list[SopSpec]]:
    """The trigger SOPs in the SOP folder, by event kind."""
    return trigger_sops(get_settings().sop_dir)


@task(name="quiet-hours-wait", cache_policy=NO_CACHE)
def quiet_hours_wait(now: dt.datetime) -> dt.datetime | None:
    """When quiet hours end if `now` is inside them (events wait in the table), else None."""
    settings = get_settings()
    return quiet_hours_end(now, settings) if in_quiet_hours(now, settings) else None


@task(name="send-trigger-batch", **SENDING_TASK)
def send_trigger_batch(
    spec: SopSpec,
    step: str,
    batch: Claim,
    now: dt.datetime,
    day: dt.date,
    answers_welcome: bool = False,
) -> RunTally:
    """Send a trigger SOP's step for every event of a claimed batch, through the guards.

    One task per batch keeps the 10,000 rows inside it (only counts cross to the flow); a retry
    after a transient WeCom error re-plans the same chunks, so nothing is sent twice.
    """
    return send_events(
        open_channel,
        spec,
        step,
        batch,
        now=now,
        day=day,
        flow_run_id=_current_flow_run_id(),
        answers_welcome=answers_welcome,
    )


@task(name="schedule-waiting-steps", cache_policy=NO_CACHE)
def schedule_waiting_steps(specs: list[SopSpec], batch: Claim) -> int:
    """A row per event of the batch and waiting step (`after`, `send_at`), due when it says."""
    with session_scope() as session:
        events = claimed_events(batch.token, session=session)
        return schedule_due(specs, events, session=session)


@task(name="claim-due-steps", cache_policy=NO_CACHE)
def claim_due_steps(now: dt.datetime, limit: int) -> DueClaim:
    """Take a batch of waiting steps that are due, under a lease."""
    with session_scope() as session:
        return claim_due(limit=limit, now=now, session=session)


@task(name="send-due-steps", **SENDING_TASK)
def send_due_steps(specs: dict[str, SopSpec], claim: DueClaim, now: dt.datetime) -> DueBatch:
    """Early exits, then the due steps through the 1:1 guards or to their robot; a retry after a
    transient error re-plans only the rows not yet settled, so nothing is sent twice."""
    return send_due(open_channel, specs, claim.token, now=now, flow_run_id=_current_flow_run_id())


@task(name="release-due-steps", cache_policy=NO_CACHE)
def release_due_steps(claim: DueClaim) -> int:
    """Hand the claim's unsettled rows back for the next drain."""
    with session_scope() as session:
        return release_due(claim.token, session=session)


@task(name="publish-trigger-outcomes", cache_policy=NO_CACHE)
def publish_trigger_outcomes(
    spec: SopSpec, drained: Drained, tally: RunTally, now: dt.datetime
) -> dict[str, Any]:
    """Outcome table and a markdown summary with a rendered sample for one trigger SOP's drain."""
    report = trigger_report(spec, drained, tally, run_id=_current_flow_run_id(), now=now)
    key = artifact_key("trigger", spec.id)
    create_table_artifact(
        key=f"{key}-outcomes",
        table=report.table,
        description=f"{spec.title} · on {spec.on}: {drained.events} event(s) drained, "
        "touches by outcome",
    )
    create_markdown_artifact(key=f"{key}-sample", markdown=report.markdown)
    return report.summary
