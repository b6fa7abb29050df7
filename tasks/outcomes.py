"""Prefect tasks that publish what an occurrence did: the outcome table and the summary with a sample."""

from __future__ import annotations

import datetime as dt
from typing import Any

from prefect import task
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.cache_policies import NO_CACHE
from prefect.runtime import deployment

from engine.outcomes import RunTally, artifact_key, occurrence_report
from models.deliveries import Occurrence
from soplang.spec import SopSpec


@task(name="publish-outcomes", cache_policy=NO_CACHE)
def publish_outcomes(
    occurrence: Occurrence, spec: SopSpec, tally: RunTally, now: dt.datetime | None = None
) -> dict[str, Any]:
    """Table artifact of the occurrence's touches by outcome, and a markdown summary saying when
    touches waiting for quiet hours go and which run sends them, with a rendered sample."""
    # A promotion step run by its deployment schedules a follow-up run for when quiet hours end
    # (tasks/campaign.follow_up_deferred); one started by hand does not.
    follow_up = spec.kind == "promotion" and deployment.id is not None
    report = occurrence_report(occurrence, spec, tally, now, follow_up_scheduled=follow_up)
    key = artifact_key(occurrence.sop_id, occurrence.step)
    title = f"{spec.title} · {occurrence.step} · {occurrence.occurrence}"
    create_table_artifact(
        key=f"{key}-outcomes", table=report.table, description=f"{title}: touches by outcome"
    )
    create_markdown_artifact(
        key=f"{key}-sample", markdown=report.markdown, description=f"{title}: summary and sample"
    )
    return report.summary


@task(name="publish-not-today", cache_policy=NO_CACHE)
def publish_not_today(sop_id: str, title: str, day: dt.date, days_rule: str) -> None:
    """Say in the UI why an occurrence sent nothing: the SOP does not run that day."""
    create_markdown_artifact(
        key=artifact_key(sop_id, "main", "sample"),
        markdown=f"# {title} · {day}\n\nNot sent: `days: {days_rule}` excludes {day} "
        "in the holiday calendar (China's official one with 调休, or sop/calendar.yaml for the "
        "years it lists).",
    )
