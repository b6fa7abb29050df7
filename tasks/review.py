"""Review (复盘) tasks: build the report with its progress shown, publish it as artifacts."""

from __future__ import annotations

import datetime as dt
from typing import cast
from uuid import UUID

from prefect import get_run_logger, task
from prefect.artifacts import (
    create_markdown_artifact,
    create_progress_artifact,
    create_table_artifact,
    update_progress_artifact,
)
from prefect.cache_policies import NO_CACHE

from review.markdown import artifact_tables, headline_markdown
from review.report import Report, make_report


@task(name="build-review", cache_policy=NO_CACHE)
def build_review_task(starts: dt.date, ends: dt.date, sop: str | None) -> Report:
    """Attribute the period's orders, compute the KPIs and write the HTML report, showing progress."""
    progress_id = cast(
        UUID,
        create_progress_artifact(
            progress=0.0, key="review-progress", description=f"Review {starts} – {ends}: starting"
        ),
    )

    def report(fraction: float, stage: str) -> None:
        get_run_logger().info("review %s – %s: %s", starts, ends, stage)
        update_progress_artifact(progress_id, progress=round(fraction * 100, 1))

    return make_report(starts, ends, sop_id=sop, progress=report)


@task(name="publish-review", cache_policy=NO_CACHE)
def publish_review(result: Report, label: str) -> None:
    """Publish the headline KPIs as markdown and the main tables as table artifacts."""
    review = result.review
    create_markdown_artifact(
        key=f"review-{label}",
        markdown=headline_markdown(review, result.path),
        description=f"Review {review.starts} – {review.ends}: headline KPIs against sop/targets.yaml",
    )
    for key, description, rows in artifact_tables(review):
        create_table_artifact(
            key=f"review-{key.replace('_', '-')}", table=rows, description=description
        )
