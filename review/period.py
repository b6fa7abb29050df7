"""What a review covers: local calendar days, their UTC bounds, and the SQL filters on period and SOP."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_, literal
from sqlalchemy.sql.expression import ColumnElement
from sqlmodel import col

from core.clock import at_local
from models.delivery import Delivery


@dataclass(frozen=True)
class Period:
    """Local calendar days [starts, ends] in `tz`, and the UTC instants bounding them."""

    starts: dt.date
    ends: dt.date
    tz: str

    @property
    def days(self) -> list[dt.date]:
        return [
            self.starts + dt.timedelta(days=n) for n in range((self.ends - self.starts).days + 1)
        ]

    @property
    def start_utc(self) -> dt.datetime:
        return at_local(self.starts, 0, 0, self.tz)

    @property
    def end_utc(self) -> dt.datetime:
        return at_local(self.ends + dt.timedelta(days=1), 0, 0, self.tz)


def in_period(column: Any, period: Period) -> ColumnElement[bool]:
    """`column` (a stored UTC datetime) falls in the period."""
    return and_(column >= period.start_utc, column < period.end_utc)


def sop_filter(sop_id: str | None) -> ColumnElement[bool]:
    """Delivery rows of `sop_id`, or every row when the review covers all SOPs."""
    return col(Delivery.sop_id) == sop_id if sop_id else literal(True)
