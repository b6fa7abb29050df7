"""`last_purchase_days` counts calendar days in the chain's time zone, not 24-hour stretches."""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

import pytest

from core.clock import at_local
from core.settings import PROJECT_ROOT, reset_settings
from flows.customers import customer_sop
from models.audience import count_customers, customer_id_ranges, customers_in_range
from models.db import session_scope
from soplang.spec import CustomerAudience
from tests.factories import add_customers, deliveries, make_world

RUN_DAY = dt.date(2026, 11, 24)  # a Tuesday; 7 days before is Tuesday 11-17
EDGES = ((0, 5), (12, 0), (23, 55))  # the local times of day that matter: both ends and noon
WEEK_AGO = {"gte": 7, "lte": 7}


def bought(days_ago: int, count: int, first: int) -> list[int]:
    """`count` customers whose last order was `days_ago` local days before RUN_DAY, spread over
    the edges of that day (Asia/Shanghai)."""
    day = RUN_DAY - dt.timedelta(days=days_ago)
    ids: list[int] = []
    for i in range(count):
        hour, minute = EDGES[i % len(EDGES)]
        at = at_local(day, hour, minute)
        ids += add_customers(1, first=first + i, last_order_at=at)
    return ids


def selected(days: dict[str, int], now: dt.datetime) -> list[int]:
    """The customers `last_purchase_days: days` selects for a run at `now`, batch by batch."""
    audience = CustomerAudience(last_purchase_days=days)
    with session_scope() as session:
        ranges = customer_id_ranges(audience, batch_size=4, session=session, as_of=now)
        found = [
            c.id
            for r in ranges
            for c in customers_in_range(audience, r, session=session, as_of=now)
        ]
        assert count_customers(audience, session=session, as_of=now) == len(found)
    return found


def week_world() -> dict[str, list[int]]:
    """15 customers who last bought exactly 7 local days before RUN_DAY, at 00:05, 12:00 and
    23:55; a few at 6 and 8 days, today and yesterday (at the same edges), and one who never did."""
    world = {
        "seven": bought(7, 15, first=0),
        "six": bought(6, 3, first=100),
        "eight": bought(8, 3, first=200),
        "today": add_customers(1, first=300, last_order_at=at_local(RUN_DAY, 0, 5)),
        "yesterday": bought(1, 3, first=400),
    }
    add_customers(1, first=500, last_order_at=None)
    return world


@pytest.fixture
def world(database_url: str) -> dict[str, list[int]]:
    make_world(RUN_DAY, database_url)
    return week_world()


@pytest.mark.parametrize("hour, minute", [(9, 0), (23, 30), (0, 5)])
def test_seven_days_ago_selects_everyone_who_bought_on_that_local_day(world, hour, minute) -> None:
    """Whatever the run's time of day, an order at 00:05 or 23:55 seven local days back counts."""
    now = at_local(RUN_DAY, hour, minute)

    assert selected(WEEK_AGO, now) == world["seven"]
    assert selected({"gte": 6, "lte": 6}, now) == world["six"]
    assert selected({"gte": 7, "lte": 8}, now) == world["seven"] + world["eight"]


def test_lte_0_means_bought_today_in_local_time(world) -> None:
    """`lte: 0` is the run's local date; an order at 23:55 local yesterday is yesterday's."""
    now = at_local(RUN_DAY, 9, 0)

    assert selected({"lte": 0}, now) == world["today"]
    assert selected({"lte": 1}, now) == world["today"] + world["yesterday"]
    assert selected({"gte": 1, "lte": 1}, now) == world["yesterday"]


def test_a_run_just_after_local_midnight_counts_from_the_new_day(world) -> None:
    """23:30 on the 24th and 00:10 on the 25th are 40 minutes apart but one calendar day: the
    week-ago customers move from 7 to 8 days, the 6-day ones become 7."""
    before = at_local(RUN_DAY, 23, 30)
    after = at_local(RUN_DAY + dt.timedelta(days=1), 0, 10)

    assert selected(WEEK_AGO, before) == world["seven"]
    assert selected(WEEK_AGO, after) == world["six"]
    assert selected({"gte": 8, "lte": 8}, after) == world["seven"]
    assert selected({"lte": 0}, after) == []


def test_the_chain_time_zone_setting_decides_where_a_day_starts(
    world, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With the chain on UTC, an order at 00:05 Shanghai falls on the UTC day before (16:05)."""
    monkeypatch.setenv("SOPFLOW_TIMEZONE", "UTC")
    reset_settings()
    now = dt.datetime.combine(RUN_DAY, dt.time(9, 0), tzinfo=dt.UTC)

    early = world["seven"][0::3]  # the 00:05 Shanghai orders: 8 UTC days back
    six_early = world["six"][0::3]  # 00:05 Shanghai six days back: 7 UTC days back
    assert selected(WEEK_AGO, now) == sorted(set(world["seven"]) - set(early) | set(six_early))
    assert early == sorted(set(selected({"gte": 8, "lte": 8}, now)) & set(world["seven"]))


def test_a_1to1_run_at_nine_reaches_all_15_week_ago_customers(
    world, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The observed bug end to end: the flow passes its `now` and every intended customer is
    touched (the 24-hour count reached 1 of 15)."""
    folder = tmp_path / "sop"
    shutil.copytree(PROJECT_ROOT / "tests" / "fixtures" / "sop_customer", folder)
    monkeypatch.setenv("SOPFLOW_SOP_DIR", str(folder))
    reset_settings()

    summary = customer_sop(
        sop_id="dormant-care",
        step="care",
        day=RUN_DAY,
        now=at_local(RUN_DAY, 9, 0),
        audience=CustomerAudience(last_purchase_days=WEEK_AGO),
    )

    assert isinstance(summary, dict) and summary["recipients"] == 15
    assert sorted(r.customer_id for r in deliveries()) == world["seven"]


@pytest.mark.postgres
def test_seven_days_ago_is_the_same_on_postgresql(postgres_url: str) -> None:
    make_world(RUN_DAY, postgres_url)
    world = week_world()

    for hour, minute in [(9, 0), (23, 30)]:
        assert selected(WEEK_AGO, at_local(RUN_DAY, hour, minute)) == world["seven"]
    assert selected({"lte": 0}, at_local(RUN_DAY, 9, 0)) == world["today"]
    after_midnight = at_local(RUN_DAY + dt.timedelta(days=1), 0, 10)
    assert selected(WEEK_AGO, after_midnight) == world["six"]
