"""`sopflow report`: the review (复盘) of a period as an HTML report and a headline."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Annotated

import typer

from core.settings import get_settings
from sopflow.cli_common import day_option, say, sop_errors


def report(
    starts: Annotated[
        str | None,
        typer.Option("--from", help="First day YYYY-MM-DD (default: last week's Monday)."),
    ] = None,
    ends: Annotated[
        str | None,
        typer.Option("--to", help="Last day YYYY-MM-DD, inclusive (default: --from + 6 days)."),
    ] = None,
    sop: Annotated[str | None, typer.Option(help="Review one SOP by id.")] = None,
    out: Annotated[
        Path | None, typer.Option(help="Folder for the HTML report (default: reports/).")
    ] = None,
) -> None:
    """Review (复盘) a period: attribute orders, KPIs against sop/targets.yaml, an HTML report."""
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    from core.clock import local_today
    from review.markdown import headline_markdown
    from review.report import last_period, make_report

    settings = get_settings()
    first, last = day_option(starts, "--from"), day_option(ends, "--to")
    if first is None:
        first, default_last = last_period("week", local_today(tz=settings.timezone))
        last = last or default_last
    last = last or first + dt.timedelta(days=6)
    if out is not None:
        settings = settings.model_copy(update={"reports_dir": out})
    columns = (TextColumn("{task.description}"), BarColumn(), TimeElapsedColumn())
    with sop_errors(), Progress(*columns, transient=True, console=None) as bar:
        job = bar.add_task("reviewing", total=1.0)
        result = make_report(
            first,
            last,
            sop_id=sop,
            settings=settings,
            progress=lambda done, stage: bar.update(job, completed=done, description=stage),
        )
    say(headline_markdown(result.review, result.path))
