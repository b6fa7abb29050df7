"""Prefect task that shows in the UI when a run's day has no official holiday calendar."""

from __future__ import annotations

import datetime as dt

from prefect import task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE

from engine.outcomes import artifact_key


@task(name="publish-calendar-warning", cache_policy=NO_CACHE)
def publish_calendar_warning(sop_id: str, title: str, day: dt.date, warning: str) -> None:
    """A markdown artifact saying the run decided `days:` by plain Mon–Fri, and why."""
    create_markdown_artifact(
        key=artifact_key(sop_id, "calendar", "warning"),
        markdown=f"# {title} · {day}\n\n**⚠ Holiday calendar unknown:** {warning}.",
        description=f"{title} · {day}: no official holiday calendar for {day.year}",
    )
