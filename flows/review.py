"""The review (复盘) flow: weekly and monthly KPIs against targets, as artifacts and an HTML report."""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal

from prefect import flow, get_run_logger
from prefect.runtime import flow_run

from core.errors import SopError
from review.report import review_period
from tasks.review import build_review_task, publish_review


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
    publish_review(result, label)
    get_run_logger().info("review written to %s", result.path)
    return {
        "starts": starts.isoformat(),
        "ends": ends.isoformat(),
        "report": str(result.path),
        "missed": [kpi.name for kpi in result.review.misses],
    }
