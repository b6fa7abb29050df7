"""Prefect task recording the day's customer.birthday events (part of plan-day), then telling Prefect."""

from __future__ import annotations

import datetime as dt

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from core.settings import get_settings
from engine.birthdays import BIRTHDAY, record_birthdays
from models.db import session_scope
from orchestration.events import announce_events


@task(name="record-birthdays", cache_policy=NO_CACHE)
def record_birthdays_task(day: dt.date) -> dict[str, int]:
    """Record one customer.birthday event per customer born on `day` (on the 1st, also one per
    customer born that month), commit, and announce them so the drain sends them."""
    with session_scope() as session:
        recorded = record_birthdays(day, tz=get_settings().timezone, session=session)
    announced = announce_events(
        BIRTHDAY, sum(recorded.values()), source="plan-day", details={"day": day.isoformat()}
    )
    get_run_logger().info("birthday events for %s: %s; %s", day, recorded, announced.detail)
    return recorded
