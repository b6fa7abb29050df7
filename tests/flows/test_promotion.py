"""Promotion cadence end to end: scheduled runs in Prefect, each step sent once, the recap's real numbers."""

from __future__ import annotations

import datetime as dt
from collections import Counter

import pytest
from prefect.client.schemas.objects import StateType
from sqlalchemy import select

from core.clock import at_local
from core.settings import get_settings
from demo.world import load_demo_world
from engine.campaign import find_campaign, step_due_times, upcoming_codes
from flows.promotion import promotion_step
from models.commerce import Campaign
from models.db import session_scope
from models.delivery import Delivery, Message
from orchestration import campaigns
from soplang.loader import find_sop
from tests.factories import add_campaign, add_customers, add_order, deliveries, make_world

DAY = dt.date(2026, 12, 11)
START = at_local(DAY + dt.timedelta(days=1), 10, 0)
PREVIEW, BURST, RECAP = START - dt.timedelta(hours=14), START, at_local(DAY + dt.timedelta(2), 20)
CODE = "double12-2026"
LIVE_GROUPS = 4  # make_world: five groups, one dismissed


@pytest.fixture
def world(database_url: str):
    world = make_world(DAY, database_url)
    add_campaign(START)
    return world


@pytest.fixture(scope="module")
def deployment() -> str:
    """The promotion-step deployment registered on the session's Prefect test server."""
    return str(promotion_step.to_deployment(name="promotion-step").apply())


def texts(step: str) -> dict[str, str]:
    with session_scope() as session:
        rows = session.execute(
            select(Delivery.target_id, Message.content)
            .join(Message, Message.id == Delivery.message_id)
            .where(Delivery.step == step)
        ).all()
    return dict(rows)


def campaign_status() -> str:
    with session_scope() as session:
        return session.execute(select(Campaign.status).where(Campaign.code == CODE)).scalar_one()


def test_preview_burst_and_recap_each_reach_every_live_group_once(world) -> None:
    buyers = add_customers(2)
    add_order(buyers[0], BURST + dt.timedelta(minutes=3), [("F001", 100, 199), ("B001", 1, 2990)])
    add_order(buyers[1], BURST + dt.timedelta(hours=2), [("B001", 4, 2990)])
    add_order(buyers[1], RECAP + dt.timedelta(hours=1), [("F003", 9, 1990)])  # after the recap

    for step, now in (("preview", PREVIEW), ("burst", BURST), ("recap", RECAP)):
        summary = promotion_step(campaign_code=CODE, step=step, now=now)
        assert summary["this_run"] == {"sent": LIVE_GROUPS}, step
    again = promotion_step(campaign_code=CODE, step="recap", now=RECAP + dt.timedelta(hours=1))

    assert again["this_run"] == {} and again["already_done"] == {"sent": LIVE_GROUPS}
    rows = deliveries()
    assert Counter((r.step, r.status) for r in rows) == {
        (step, "sent"): LIVE_GROUPS for step in ("preview", "burst", "recap")
    }
    beijing = world.chat_ids["北京生鲜爱好者群"]
    assert {r.idempotency_key for r in rows if r.target_id == beijing} == {
        f"double12:{step}:{CODE}:group:{beijing}" for step in ("preview", "burst", "recap")
    }
    preview = texts("preview")[beijing]
    assert "北京生鲜爱好者群" in preview and "明天10点准时开抢，3款爆品3.3折起" in preview
    burst = texts("burst")[beijing]
    assert "鸡蛋 1.99元/斤，比某东低2元，库存仅100份" in burst
    recap = texts("recap")[beijing]
    assert "2位家人抢到心头好，一共卖出105件" in recap
    assert "已经抢光：鸡蛋" in recap and "婴儿纸尿裤 29.9元，仅剩15份" in recap
    assert campaign_status() == "done"


def test_a_cancelled_campaign_step_records_nothing(world) -> None:
    with session_scope() as session:
        session.execute(
            Campaign.__table__.update().where(Campaign.code == CODE).values(status="cancelled")
        )

    summary = promotion_step(campaign_code=CODE, step="burst", now=BURST)

    assert "cancelled" in summary["skipped"]
    assert deliveries() == []


def test_a_preview_that_wakes_up_after_the_burst_began_records_nothing(world) -> None:
    summary = promotion_step(campaign_code=CODE, step="preview", now=BURST + dt.timedelta(hours=1))

    assert "`burst` is already due" in summary["skipped"] and deliveries() == []


def scheduled(code: str = CODE) -> dict[str, tuple[dt.datetime, str]]:
    runs = campaigns.campaign_runs(code, states=campaigns.PENDING)
    return {run.parameters["step"]: (run.expected_start_time, run.state.name) for run in runs}


def test_scheduling_creates_one_run_per_step_at_the_shanghai_times(world, deployment) -> None:
    created = campaigns.schedule_campaign(CODE)
    campaigns.schedule_campaign(CODE)  # idempotent: the same three runs

    assert scheduled() == {
        "preview": (PREVIEW, "Scheduled"),
        "burst": (BURST, "Scheduled"),
        "recap": (RECAP, "Scheduled"),
    }
    assert PREVIEW == dt.datetime(2026, 12, 11, 12, 0, tzinfo=dt.UTC)  # 20:00 in Shanghai
    assert len(campaigns.campaign_runs(CODE)) == 3
    assert {r.step for r in created} == {"preview", "burst", "recap"}
    assert campaign_status() == "scheduled"


def test_rescheduling_replaces_the_pending_runs(world, deployment) -> None:
    code = "double12-moved"
    add_campaign(START, code=code)
    campaigns.schedule_campaign(code)

    campaigns.reschedule_campaign(code, dt.datetime(2026, 12, 13, 9, 30))

    moved = at_local(dt.date(2026, 12, 13), 9, 30)
    assert scheduled(code) == {
        "preview": (at_local(dt.date(2026, 12, 12), 20, 0), "Scheduled"),
        "burst": (at_local(dt.date(2026, 12, 13), 10, 0), "Scheduled"),
        "recap": (at_local(dt.date(2026, 12, 14), 20, 0), "Scheduled"),
    }
    assert len(campaigns.campaign_runs(code)) == 3  # the old ones are gone
    with session_scope() as session:
        campaign = session.execute(select(Campaign).where(Campaign.code == code)).scalar_one()
        assert (campaign.starts_at, campaign.ends_at) == (moved, moved + dt.timedelta(days=2))


def test_cancelling_cancels_pending_runs_and_rescheduling_later_brings_them_back(
    world, deployment
) -> None:
    code = "double12-cancelled"
    add_campaign(START, code=code)
    campaigns.schedule_campaign(code)

    cancelled = campaigns.cancel_campaign(code)

    assert {r.state for r in cancelled} == {"Cancelled"}
    assert scheduled(code) == {}
    assert {r.state.type for r in campaigns.campaign_runs(code)} == {StateType.CANCELLED}
    with session_scope() as session:
        status = session.execute(select(Campaign.status).where(Campaign.code == code)).scalar_one()
    assert status == "cancelled"

    campaigns.schedule_campaign(code)  # same times, same keys: the cancelled runs are replaced

    assert set(scheduled(code)) == {"preview", "burst", "recap"}
    assert len(campaigns.campaign_runs(code)) == 3


def test_the_shipped_double12_sop_runs_every_step_on_the_demo_campaign(database_url: str) -> None:

    load_demo_world(database_url, customers=200)
    with session_scope() as session:
        (code,) = upcoming_codes(at_local(dt.date.today(), 0, 0), session=session)
        demo = find_campaign(code, session=session)
    due = step_due_times(
        find_sop(demo.sop_id, get_settings().sop_dir), demo.starts_at, "Asia/Shanghai"
    )

    sent = {
        step: promotion_step(campaign_code=code, step=step, now=at)["this_run"]
        for step, at in due.items()
    }

    assert set(sent) == {"preview", "burst", "recap"}
    assert all(outcome.get("sent", 0) > 0 for outcome in sent.values()), sent
    assert "比" in next(iter(texts("burst").values()))
