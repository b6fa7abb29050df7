"""Plan the day ahead: reserve each customer's and group's capped slots for the highest-priority SOPs."""

from __future__ import annotations

import datetime as dt

from prefect import task
from prefect.cache_policies import NO_CACHE

from engine.reservations import DayPlan, reserve_day
from models.db import session_scope
from soplang.spec import SopSpec


@task(name="reserve-day", cache_policy=NO_CACHE)
def reserve_day_task(
    specs: list[SopSpec], day: dt.date, as_of: dt.datetime | None = None
) -> DayPlan:
    """Plan the day ahead: reserve each customer's and group's capped slots for the highest-priority SOPs."""
    with session_scope() as session:
        return reserve_day(specs, day, as_of, session=session)
