"""The review (复盘) flow: weekly and monthly KPIs against targets, as artifacts and an HTML report."""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal

from prefect import flow, get_run_logger, task
from prefect.artifacts import (
    create_markdown_artifact,
    create_progress_artifact,
    create_table_artifact,
    update_progress_artifact,
)
from prefect.cache_policies import NO_CACHE
from prefect.runtime import flow_run

from core.clock import local_today
from core.errors import SopError
from core.settings import get_settings
from review.markdown import headline_markdown, table_rows
from review.report import Report, check_period, last_period, make_report

# Table artifacts published per review, each with the rows an operator sorts in the UI.
TABLES = {
    "sop": "Outcomes and conversion per SOP",
    "step": "Outcomes per SOP step",
    "region": "Outcomes per region",
    "uplift": "Treated vs holdout conversion per SOP (95 % CI)",
    "after_touch": "Deletions and opt-outs within 7 days after touches",
    "staff_confirmation": "Staff confirmation of mass messages (least confirmed first)",
}
TABLE_ROWS = 200  # the UI lists a table artifact in full; the HTML report has the rest


@task(name="build-review", cache_policy=NO_CACHE)
def build_review_task(starts: dt.date, ends: dt.date, sop: str | None) -> Report:
    """Attribute the period's orders, compute the KPIs and write the HTML report, showing progress."""
    progress_id = create_progress_artifact(
        progress=0.0, key="review-progress", description=f"Review {starts} – {ends}: starting"
    )

    def report(fraction: float, stage: str) -> None:
        get_run_logger().info("review %s – %s: %s", starts, ends, stage)
        update_progress_artifact(progress_id, progress=round(fraction * 100, 1))

    return make_report(starts, ends, sop_id=sop, progress=report)


def review_period(
    period: str, starts: dt.date | str | None, ends: dt.date | str | None
) -> tuple[dt.date, dt.date]:
    """The days reviewed: `starts`–`ends` when given, else the last complete week or month."""
    if (starts is None) != (ends is None):
        raise ValueError("give both `starts` and `ends`, or neither to review the last period")
    if starts is None or ends is None:
        return last_period(period, local_today(tz=get_settings().timezone))
    first, last = (
        d if isinstance(d, dt.date) else dt.date.fromisoformat(d) for d in (starts, ends)
    )
    check_period(first, last)
    return first, last


def review_run_name() -> str:
    """`review week 2026-11-16 – 2026-11-22`: what the run reviews, readable in the runs list."""
    parameters = flow_run.parameters
    period = parameters.get("period", "week")
    try:
        starts, ends = review_period(period, parameters.get("starts"), parameters.get("ends"))
    except (ValueError, SopError):
        return f"review {period}"
    label = period if parameters.get("starts") is None else "custom"
    sop = f" {parameters['sop']}" if parameters.get("sop") else ""
    return f"review {label} {starts} – {ends}{sop}"


@flow(name="review", flow_run_name=review_run_name)
def review(
    period: Literal["week", "month"] = "week",
    starts: dt.date | None = None,
    ends: dt.date | None = None,
    sop: str | None = None,
) -> dict[str, Any]:
    """Review the last week or month (or `starts`–`ends`), optionally of one SOP; publish artifacts."""
    label = period if starts is None else "custom"
    starts, ends = review_period(period, starts, ends)
    result = build_review_task(starts, ends, sop)
    numbers = result.review
    create_markdown_artifact(
        key=f"review-{label}",
        markdown=headline_markdown(numbers, result.path),
        description=f"Review {starts} – {ends}: headline KPIs against sop/targets.yaml",
    )
    for key, description in TABLES.items():
        rows = table_rows(numbers, key, limit=TABLE_ROWS)
        if rows:
            create_table_artifact(
                key=f"review-{key.replace('_', '-')}", table=rows, description=description
            )
    get_run_logger().info("review written to %s", result.path)
    return {
        "starts": starts.isoformat(),
        "ends": ends.isoformat(),
        "report": str(result.path),
        "missed": [kpi.name for kpi in numbers.misses],
    }
