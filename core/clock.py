"""Time in one place: UTC in the database, Asia/Shanghai at the edges, China's workday calendar."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field

import chinese_calendar
import pendulum

DEFAULT_TZ = "Asia/Shanghai"
DAY_RULES = ("everyday", "workdays", "weekends")


def utcnow() -> dt.datetime:
    """The current instant as an aware UTC datetime."""
    return pendulum.now("UTC")


def as_utc(value: dt.datetime) -> dt.datetime:
    """An aware UTC datetime; naive input is taken to be UTC already."""
    if value.tzinfo is None:
        return value.replace(tzinfo=dt.UTC)
    return value.astimezone(dt.UTC)


def local(value: dt.datetime, tz: str = DEFAULT_TZ) -> pendulum.DateTime:
    """`value` seen on the wall clock of `tz`."""
    return pendulum.instance(as_utc(value)).in_timezone(tz)


def local_today(now: dt.datetime | None = None, tz: str = DEFAULT_TZ) -> dt.date:
    """The calendar date in `tz` at `now` (default: the current instant)."""
    return local(now or utcnow(), tz).date()


def at_local(day: dt.date, hour: int, minute: int = 0, tz: str = DEFAULT_TZ) -> dt.datetime:
    """The UTC instant of `hour:minute` on `day` in `tz`."""
    moment = pendulum.datetime(day.year, day.month, day.day, hour, minute, tz=tz)
    return moment.in_timezone("UTC")


@dataclass(frozen=True)
class WorkCalendar:
    """Years ops published themselves (sop/calendar.yaml), layered over the chinese-calendar package.

    For a year in `years` the file wins: `changes` holds its holidays (False) and make-up
    workdays (True); every other day of that year follows Mon–Fri.
    """

    years: frozenset[int] = frozenset()
    changes: Mapping[dt.date, bool] = field(default_factory=dict)
    source: str = "sop/calendar.yaml"


@dataclass(frozen=True)
class Workday:
    """Whether a day is worked, and the warning when no official calendar knows its year."""

    is_workday: bool
    warning: str | None = None


def workday(day: dt.date, calendar: WorkCalendar | None = None) -> Workday:
    """Whether `day` is a working day: `calendar`'s years first, then the package's, else Mon–Fri
    with a warning (a year nobody has published yet must not stop the rhythm)."""
    calendar = calendar or WorkCalendar()
    if day.year in calendar.years:
        return Workday(calendar.changes.get(day, day.weekday() < 5))
    if package_knows(day.year):
        return Workday(bool(chinese_calendar.is_workday(day)))
    return Workday(day.weekday() < 5, unknown_year_warning(day.year, calendar))


def is_workday(day: dt.date, calendar: WorkCalendar | None = None) -> bool:
    """Whether `day` is a working day in China's official calendar (调休 included)."""
    return workday(day, calendar).is_workday


def runs_on(day: dt.date, rule: str, calendar: WorkCalendar | None = None) -> bool:
    """Whether an SOP with `days: rule` runs on `day`."""
    if rule == "everyday":
        return True
    if rule == "workdays":
        return is_workday(day, calendar)
    if rule == "weekends":
        return not is_workday(day, calendar)
    raise ValueError(f"unknown days rule {rule!r}; use one of {', '.join(DAY_RULES)}")


def package_knows(year: int) -> bool:
    """Whether the installed chinese-calendar package has `year`'s official schedule."""
    first, last = package_years()
    return first <= year <= last


def package_years() -> tuple[int, int]:
    """The first and last year the chinese-calendar package knows."""
    holidays = chinese_calendar.constants.holidays
    return min(holidays).year, max(holidays).year


def unknown_year_warning(year: int, calendar: WorkCalendar | None = None) -> str:
    """What to tell ops when no official calendar knows `year`."""
    first, last = package_years()
    source = calendar.source if calendar else "sop/calendar.yaml"
    return (
        f"no official holiday calendar is known for {year} (chinese-calendar knows "
        f"{first}-{last}, {source} does not list {year}): `days: workdays|weekends` follow "
        f"plain Mon–Fri, ignoring holidays and 调休; add {year} to {source} once the "
        "State Council publishes it"
    )


def day_window(day: dt.date, tz: str = DEFAULT_TZ) -> tuple[dt.datetime, dt.datetime]:
    """[start, end) of a local day as UTC instants."""
    return at_local(day, 0, 0, tz), at_local(day + dt.timedelta(days=1), 0, 0, tz)
