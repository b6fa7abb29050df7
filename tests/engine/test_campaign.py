"""Campaign steps: due times on the Shanghai wall clock, skip reasons, and the recap's real sales."""

from __future__ import annotations

import datetime as dt

import pytest

from core.clock import at_local
from core.settings import PROJECT_ROOT
from engine.campaign import (
    burst_stats,
    find_campaign,
    item_views,
    skip_reason,
    step_context,
    step_due_times,
)
from models.db import session_scope
from soplang.loader import find_sop
from tests.factories import add_campaign, add_customers, add_order, make_world

DAY = dt.date(2026, 12, 11)
START = at_local(DAY + dt.timedelta(days=1), 10, 0)  # 双12 10:00 Asia/Shanghai
TZ = "Asia/Shanghai"


@pytest.fixture
def spec():
    return find_sop("double12", PROJECT_ROOT / "sop")


@pytest.fixture
def campaign(database_url: str):
    make_world(DAY, database_url)
    add_campaign(START)
    with session_scope() as session:
        return find_campaign("double12-2026", session=session)


def test_steps_are_due_at_start_plus_offset_on_the_shanghai_wall_clock(spec) -> None:
    due = step_due_times(spec, START, TZ)

    assert due == {
        "preview": at_local(DAY, 20, 0),
        "burst": at_local(DAY + dt.timedelta(days=1), 10, 0),
        "recap": at_local(DAY + dt.timedelta(days=2), 20, 0),
    }
    assert due["preview"] == dt.datetime(2026, 12, 11, 12, 0, tzinfo=dt.UTC)


def test_a_start_late_in_the_evening_keeps_the_local_start_date(spec) -> None:
    """23:30 in Shanghai is 15:30 UTC the same day; the preview is the local evening before."""
    late = at_local(DAY, 23, 30)

    assert step_due_times(spec, late, TZ)["preview"] == at_local(DAY - dt.timedelta(days=1), 20, 0)


def test_a_step_is_refused_when_cancelled_early_or_overtaken(campaign, spec) -> None:
    due = step_due_times(spec, START, TZ)

    assert skip_reason(campaign, spec, "preview", due["preview"], TZ) is None
    assert "not due yet" in skip_reason(campaign, spec, "burst", due["preview"], TZ)
    assert "already due" in skip_reason(campaign, spec, "preview", due["burst"], TZ)
    assert "no step `teaser`" in skip_reason(campaign, spec, "teaser", due["burst"], TZ)
    cancelled = campaign.__class__(**{**campaign.__dict__, "status": "cancelled"})
    assert "cancelled" in skip_reason(cancelled, spec, "burst", due["burst"], TZ)


def test_recap_stats_count_only_campaign_items_ordered_during_the_burst(campaign, spec) -> None:
    buyers = add_customers(3)
    burst, recap = START, at_local(DAY + dt.timedelta(days=2), 20, 0)
    add_order(buyers[0], burst + dt.timedelta(minutes=1), [("F001", 60, 199), ("F002", 5, 990)])
    add_order(buyers[0], burst + dt.timedelta(hours=3), [("F001", 40, 199)])  # sells out F001
    add_order(buyers[1], burst + dt.timedelta(hours=5), [("B001", 2, 2990)])
    add_order(buyers[2], burst - dt.timedelta(minutes=1), [("B001", 9, 2990)])  # before the burst
    add_order(buyers[2], recap + dt.timedelta(minutes=1), [("F003", 9, 1990)])  # after the recap
    add_order(buyers[2], burst + dt.timedelta(hours=1), [("F003", 7, 1990)], status="refunded")

    with session_scope() as session:
        stats = step_context(campaign, spec, "recap", recap, session=session)["stats"]

    assert (stats["units_sold"], stats["buyers"]) == (102, 2)
    assert stats["revenue"] == 100 * 199 + 2 * 2990
    assert [i["name"] for i in stats["sold_out"]] == ["鸡蛋"]
    assert [(i["name"], i["stock"]) for i in stats["items_left"]] == [
        ("婴儿纸尿裤", 18),
        ("进口车厘子", 50),
    ]


def test_items_carry_prices_savings_and_discount_against_the_list_price(campaign) -> None:
    with session_scope() as session:
        items = item_views(campaign.id, session=session)
        empty = burst_stats(campaign.id, items, START, START, session=session)

    egg = items[0]
    assert (egg["name"], egg["price"], egg["competitor_name"], egg["saving"]) == (
        "鸡蛋",
        199,
        "某东",
        200,
    )
    assert (egg["list_price"], egg["discount"]) == (599, 0.33)
    assert empty["units_sold"] == 0 and len(empty["items_left"]) == 3


def test_burst_and_preview_get_no_stats(campaign, spec) -> None:
    with session_scope() as session:
        context = step_context(campaign, spec, "burst", START, session=session)

    assert set(context) == {"campaign", "items"}
    assert context["campaign"]["starts_at"].hour == 10  # local wall clock
