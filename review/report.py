"""A review report from start to file: the period, the numbers, the HTML — for the CLI and the flow."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

from core.clock import local_today
from core.errors import SopError
from core.settings import Settings, get_settings
from review.build import Progress, build_review
from review.html import write_report
from review.model import Review
from review.period import Period
from review.targets import TARGETS_FILE
from soplang.loader import load_sops
from soplang.spec import did_you_mean

PERIODS = ("week", "month")
LONGEST_PERIOD_DAYS = 366


@dataclass(frozen=True)
class Report:
    """A review and where its HTML page was written."""

    review: Review
    path: Path


def last_period(kind: str, today: dt.date) -> tuple[dt.date, dt.date]:
    """The last complete week (Monday–Sunday) or calendar month before `today`."""
    if kind == "week":
        this_monday = today - dt.timedelta(days=today.weekday())
        return this_monday - dt.timedelta(days=7), this_monday - dt.timedelta(days=1)
    if kind == "month":
        last_day = today.replace(day=1) - dt.timedelta(days=1)
        return last_day.replace(day=1), last_day
    raise SopError(f"period `{kind}`: use one of {', '.join(PERIODS)}")


def check_period(starts: dt.date, ends: dt.date) -> None:
    """Refuse a period that ends before it starts or is longer than a year."""
    if ends < starts:
        raise SopError(
            f"the period ends ({ends}) before it starts ({starts}); swap --from and --to"
        )
    if (ends - starts).days >= LONGEST_PERIOD_DAYS:
        raise SopError(
            f"{starts} to {ends} is longer than {LONGEST_PERIOD_DAYS} days; review a year at most"
        )


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


def make_report(
    starts: dt.date,
    ends: dt.date,
    *,
    sop_id: str | None = None,
    progress: Progress | None = None,
    settings: Settings | None = None,
) -> Report:
    """Attribute, measure and write the HTML report of local days [starts, ends]."""
    settings = settings or get_settings()
    check_period(starts, ends)
    specs = load_sops([settings.sop_dir])
    ids = [spec.id for spec in specs]
    if sop_id and sop_id not in ids:
        raise SopError(
            f"no SOP `{sop_id}` under {settings.sop_dir}{did_you_mean(sop_id, ids)}; "
            f"known: {', '.join(sorted(ids))}"
        )
    review = build_review(
        Period(starts, ends, settings.timezone),
        specs=specs,
        targets_path=settings.sop_dir / TARGETS_FILE,
        sop_id=sop_id,
        progress=progress,
    )
    return Report(review, write_report(review, settings.reports_dir))
