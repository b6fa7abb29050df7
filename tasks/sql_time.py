"""Time arithmetic inside SQL that SQLite and PostgreSQL spell differently, and local-day buckets."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import Integer, case, literal
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.expression import ColumnElement, FunctionElement

from models.types import UTCDateTime
from tasks.caps import day_window


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


def local_day(column: Any, days: list[dt.date], tz: str) -> ColumnElement[str]:
    """The local calendar day (ISO text) of `column` among `days`, else NULL; portable and exact."""
    whens = []
    for day in days:
        start, end = day_window(day, tz)
        whens.append(((column >= start) & (column < end), day.isoformat()))
    return case(*whens, else_=None)
