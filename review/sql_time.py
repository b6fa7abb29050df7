"""Time arithmetic inside SQL that SQLite and PostgreSQL spell differently, and local-day buckets."""

from __future__ import annotations

import datetime as dt
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Integer, String, case, literal
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.expression import ColumnElement, FunctionElement

from core.clock import day_window
from models.types import UTCDateTime


class shifted_hours(FunctionElement[dt.datetime]):
    """`moment + hours` (hours may be negative or a column); compared with stored datetimes."""

    type = UTCDateTime()
    inherit_cache = True
    name = "shifted_hours"


@compiles(shifted_hours, "sqlite")
def _shifted_sqlite(element: shifted_hours, compiler: Any, **kw: Any) -> str:
    moment, hours = list(element.clauses)
    # SQLite keeps datetimes as 'YYYY-MM-DD HH:MM:SS.ffffff' text; datetime() writes the same
    # layout without the fraction, so text comparison stays chronological.
    return (
        f"datetime({compiler.process(moment, **kw)}, "
        f"printf('%+d hours', {compiler.process(hours, **kw)}))"
    )


@compiles(shifted_hours, "postgresql")
def _shifted_postgresql(element: shifted_hours, compiler: Any, **kw: Any) -> str:
    moment, hours = list(element.clauses)
    return (
        f"({compiler.process(moment, **kw)} + make_interval(hours => "
        f"CAST({compiler.process(hours, **kw)} AS INTEGER)))"
    )


def hours_after(moment: Any, hours: Any) -> ColumnElement[dt.datetime]:
    """`moment` plus `hours` (an int or an integer SQL expression)."""
    return shifted_hours(
        moment, hours if isinstance(hours, ColumnElement) else literal(hours, Integer)
    )


def hours_before(moment: Any, hours: Any) -> ColumnElement[dt.datetime]:
    """`moment` minus `hours`."""
    return hours_after(moment, -hours)


class local_date(FunctionElement[str]):
    """The ISO calendar day of `moment` shifted by a fixed number of minutes (a zone without DST)."""

    type = String()
    inherit_cache = True
    name = "local_date"


@compiles(local_date, "sqlite")
def _local_date_sqlite(element: local_date, compiler: Any, **kw: Any) -> str:
    moment, minutes = list(element.clauses)
    return (
        f"date({compiler.process(moment, **kw)}, "
        f"printf('%+d minutes', {compiler.process(minutes, **kw)}))"
    )


@compiles(local_date, "postgresql")
def _local_date_postgresql(element: local_date, compiler: Any, **kw: Any) -> str:
    moment, minutes = list(element.clauses)
    return (
        f"to_char({compiler.process(moment, **kw)} AT TIME ZONE 'UTC' + make_interval(mins => "
        f"CAST({compiler.process(minutes, **kw)} AS INTEGER)), 'YYYY-MM-DD')"
    )


def fixed_offset_minutes(days: list[dt.date], tz: str) -> int | None:
    """The zone's UTC offset in minutes when it is the same all through `days`, else None."""
    zone = ZoneInfo(tz)
    offsets = {
        zone.utcoffset(dt.datetime.combine(day, dt.time(hour), tzinfo=None))
        for day in (days[0], days[-1], *days[:: max(1, len(days) // 12)])
        for hour in (0, 12)
    }
    if len(offsets) != 1 or any(o is None for o in offsets):
        return None
    (offset,) = offsets
    return int(offset.total_seconds() // 60)  # type: ignore[union-attr]


def local_day(column: Any, days: list[dt.date], tz: str) -> ColumnElement[str]:
    """The local calendar day (ISO text) of `column` in `tz`, NULL outside `days` when that matters.

    A zone with one offset through the period (Asia/Shanghai) is plain date arithmetic; a zone
    changing offset (DST) gets an exact CASE over the period's days.
    """
    offset = fixed_offset_minutes(days, tz)
    if offset is not None:
        return local_date(column, literal(offset, Integer))
    whens = []
    for day in days:
        start, end = day_window(day, tz)
        whens.append(((column >= start) & (column < end), day.isoformat()))
    return case(*whens, else_=None)
