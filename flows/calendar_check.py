"""The loud warning a run gives when its day's year has no official holiday calendar."""

from __future__ import annotations

import datetime as dt

from prefect import get_run_logger

from soplang.calendar_file import calendar_warning
from soplang.spec import SopSpec
from tasks.calendar import publish_calendar_warning


def warn_unknown_calendar(spec: SopSpec, day: dt.date) -> str | None:
    """Log and publish the warning when the SOP has a `days:` rule and no official calendar knows
    `day`'s year (the run then follows plain Mon–Fri); the warning, or None."""
    if spec.schedule is None or spec.schedule.days == "everyday":
        return None
    warning = calendar_warning(day)
    if warning:
        get_run_logger().warning("%s: %s", spec.id, warning)
        publish_calendar_warning(spec.id, spec.title, day, warning)
    return warning
