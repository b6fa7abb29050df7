"""Local days in SQL: date arithmetic for a fixed-offset zone, an exact CASE across a DST change."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import literal, select

from models.db import get_engine
from models.types import UTCDateTime
from review.sql_time import fixed_offset_minutes, local_day

UTC = dt.UTC


def day_of(url: str, moment: dt.datetime, days: list[dt.date], tz: str) -> str | None:
    with get_engine(url).connect() as connection:
        return connection.execute(
            select(local_day(literal(moment, UTCDateTime), days, tz))
        ).scalar()


def test_shanghai_days_by_offset(database_url: str) -> None:
    days = [dt.date(2026, 11, 1) + dt.timedelta(days=n) for n in range(30)]
    assert fixed_offset_minutes(days, "Asia/Shanghai") == 480
    assert (
        day_of(database_url, dt.datetime(2026, 11, 1, 15, 59, tzinfo=UTC), days, "Asia/Shanghai")
        == "2026-11-01"
    )
    assert (
        day_of(database_url, dt.datetime(2026, 11, 1, 16, 0, tzinfo=UTC), days, "Asia/Shanghai")
        == "2026-11-02"
    )


def test_a_zone_changing_offset_gets_exact_days(database_url: str) -> None:
    # Berlin leaves summer time on 2026-10-25: midnight is 22:00 UTC before, 23:00 UTC after.
    days = [dt.date(2026, 10, 20) + dt.timedelta(days=n) for n in range(10)]
    assert fixed_offset_minutes(days, "Europe/Berlin") is None
    assert (
        day_of(database_url, dt.datetime(2026, 10, 22, 22, 30, tzinfo=UTC), days, "Europe/Berlin")
        == "2026-10-23"
    )
    assert (
        day_of(database_url, dt.datetime(2026, 10, 27, 22, 30, tzinfo=UTC), days, "Europe/Berlin")
        == "2026-10-27"
    )
    assert (
        day_of(database_url, dt.datetime(2026, 11, 5, 12, 0, tzinfo=UTC), days, "Europe/Berlin")
        is None
    )
