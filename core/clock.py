"""Time in one place: UTC in the database, Asia/Shanghai at the edges, China's workday calendar."""

from __future__ import annotations

import datetime as dt

import chinese_calendar
import pendulum

from core.errors import CalendarError

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


def is_workday(day: dt.date) -> bool:
    """Whether `day` is a working day in China's official calendar (调休 included)."""
    try:
        return bool(chinese_calendar.is_workday(day))
    except NotImplementedError as exc:
        first, last = _calendar_years()
        raise CalendarError(
            f"{day.isoformat()} is outside China's official holiday calendar "
            f"(known years {first}-{last}); upgrade the chinese-calendar package "
            "or use `days: everyday` for this SOP"
        ) from exc


def runs_on(day: dt.date, rule: str) -> bool:
    """Whether an SOP with `days: rule` runs on `day`."""
    if rule == "everyday":
        return True
    if rule == "workdays":
        return is_workday(day)
    if rule == "weekends":
        return not is_workday(day)
    raise ValueError(f"unknown days rule {rule!r}; use one of {', '.join(DAY_RULES)}")


def _calendar_years() -> tuple[int, int]:
    holidays = chinese_calendar.constants.holidays
    return min(holidays).year, max(holidays).year


def day_window(day: dt.date, tz: str = DEFAULT_TZ) -> tuple[dt.datetime, dt.datetime]:
    """[start, end) of a local day as UTC instants."""
    return at_local(day, 0, 0, tz), at_local(day + dt.timedelta(days=1), 0, 0, tz)
