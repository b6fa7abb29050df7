"""A group's daily allowance goes to the day's highest-priority posts once the day is planned."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select

from core.clock import at_local
from core.settings import reset_settings
from engine import reservations
from engine.plan import plan_groups
from models.audience import group_id_ranges, groups_in_range
from models.db import session_scope
from models.deliveries import Occurrence
from models.restraint import CapReservation
from soplang.spec import SopSpec
from tests.factories import add_customers, customer_sop, delivery_rows, make_world, mark_sent

DAY = dt.date(2026, 11, 24)  # a Tuesday
PLANNING = at_local(DAY, 6, 0)
FRESH = {"theme": ["生鲜"]}  # the world's two 北京生鲜 groups


def group_sop(sop_id: str, priority: str, cron: str, **audience) -> SopSpec:
    """A community SOP posting to the fresh-food groups, built in code."""
    return SopSpec(
        id=sop_id,
        title=sop_id,
        kind="community",
        channel="group",
        category="fresh",
        priority=priority,
        schedule={"cron": cron},
        audience={"groups": audience or FRESH},
    )


MORNING = group_sop("morning-price", "high", "30 8 * * *")
NOON = group_sop("noon-topic", "low", "0 12 * * *")
EXTRA = group_sop("afternoon-extra", "low", "0 15 * * *")
EVENING = group_sop("evening-flash-sale", "normal", "0 21 * * *")
DAY_PLAN = [MORNING, NOON, EXTRA, EVENING]


@pytest.fixture
def world(database_url: str):
    return make_world(DAY, database_url)


@pytest.fixture
def allowance(monkeypatch: pytest.MonkeyPatch):
    def set_allowance(posts: int) -> None:
        monkeypatch.setenv("SOPFLOW_CAP_GROUP_DAY", str(posts))
        reset_settings()

    return set_allowance


def reserve_day(specs: list[SopSpec]) -> reservations.DayPlan:
    """Plan DAY at 06:00 as the plan-day flow does, in one transaction."""
    with session_scope() as session:
        return reservations.reserve_day(specs, DAY, PLANNING, session=session)


def post(spec: SopSpec, hour: int, minute: int = 0) -> None:
    """The SOP's post to its groups at hour:minute through the real group guards, then sent."""
    groups = spec.audience.groups if spec.audience else None
    with session_scope() as session:
        ranges = group_id_ranges(groups, batch_size=100, session=session)
        targets = [g for r in ranges for g in groups_in_range(groups, r, session=session)]
    occurrence = Occurrence(spec.id, "main", DAY.isoformat(), "outbox")
    mark_sent(plan_groups(occurrence, targets, now=at_local(DAY, hour, minute), spec=spec))


def run_the_day() -> None:
    """The day's posts in clock order."""
    post(MORNING, 8, 30)
    post(NOON, 12)
    post(EXTRA, 15)
    post(EVENING, 21)


def outcome(spec: SopSpec) -> set[tuple[str, str | None]]:
    """The (status, reason) of the SOP's rows, over every group it posted to."""
    rows = delivery_rows(spec.id)
    assert len(rows) == 2, f"{spec.id} should reach the two fresh-food groups, got {rows}"
    return {(r.status, r.reason) for r in rows.values()}


SENT = {("sent", None)}


def test_with_three_posts_a_day_the_low_priority_15_00_post_yields_to_the_evening_sale(
    world,
) -> None:
    plan = reserve_day(DAY_PLAN)
    run_the_day()

    assert plan.reserved == dict.fromkeys(
        [
            "morning-price:main",
            "noon-topic:main",
            "afternoon-extra:main",
            "evening-flash-sale:main",
        ],
        2,
    )
    assert plan.won == {
        "morning-price:main": 2,
        "noon-topic:main": 2,  # low like the 15:00 post, but earlier in the day
        "afternoon-extra:main": 0,
        "evening-flash-sale:main": 2,
    }
    assert outcome(EXTRA) == {("skipped", "capped (lost to evening-flash-sale)")}
    assert outcome(MORNING) == outcome(NOON) == outcome(EVENING) == SENT


def test_with_two_posts_a_day_the_noon_topic_loses_to_the_evening_sale(world, allowance) -> None:
    allowance(2)

    plan = reserve_day(DAY_PLAN)
    run_the_day()

    assert plan.won["noon-topic:main"] == 0 and plan.won["evening-flash-sale:main"] == 2
    assert outcome(NOON) == outcome(EXTRA) == {("skipped", "capped (lost to evening-flash-sale)")}
    assert outcome(MORNING) == outcome(EVENING) == SENT


def test_without_a_day_plan_the_first_three_posts_take_the_groups_slots(world) -> None:
    run_the_day()

    assert outcome(MORNING) == outcome(NOON) == outcome(EXTRA) == SENT
    assert outcome(EVENING) == {("skipped", "capped (daily limit)")}


def test_a_service_post_neither_reserves_nor_waits_for_a_slot(world, allowance) -> None:
    allowance(2)
    notice = group_sop("store-closed-notice", "service", "0 16 * * *")
    pickup = group_sop("pickup-reminder", "service", "30 21 * * *")

    reserve_day([*DAY_PLAN, notice, pickup])
    post(MORNING, 8, 30)
    post(notice, 16)  # the evening sale still holds the last slot
    post(EVENING, 21)
    post(pickup, 21, 30)  # both slots used

    assert outcome(notice) == outcome(EVENING) == outcome(pickup) == SENT
    with session_scope() as session:
        reserved = set(session.execute(select(CapReservation.sop_id)).scalars())
    assert reserved == {spec.id for spec in DAY_PLAN}


def test_a_group_the_evening_sale_does_not_reach_keeps_its_slot_for_the_noon_topic(
    world, allowance
) -> None:
    allowance(2)
    wider_noon = group_sop("noon-topic", "low", "0 12 * * *", theme=["生鲜", "母婴"])

    reserve_day([MORNING, wider_noon, EVENING])
    post(MORNING, 8, 30)
    post(wider_noon, 12)

    noon = [(r.status, r.reason) for r in delivery_rows(wider_noon.id).values()]
    assert sorted(noon) == [
        ("sent", None),  # the 母婴 group: neither the morning nor the evening post goes there
        ("skipped", "capped (lost to evening-flash-sale)"),
        ("skipped", "capped (lost to evening-flash-sale)"),
    ]


def test_customer_and_group_reservations_are_arbitrated_apart(world) -> None:
    """A customer's won slot never counts against a group with the same id, nor the reverse."""
    customers = add_customers(2)
    low_1to1 = customer_sop("weekly-tips", priority="low", cron="0 9 * * *")

    plan = reserve_day([*DAY_PLAN, low_1to1])

    assert plan.won["weekly-tips:main"] == len(customers)  # the customers' one slot each
    assert plan.won["noon-topic:main"] == 2 and plan.won["afternoon-extra:main"] == 0


@pytest.mark.postgres
def test_group_arbitration_holds_on_postgresql(postgres_url: str) -> None:
    make_world(DAY, postgres_url)

    reserve_day(DAY_PLAN)
    run_the_day()

    assert outcome(EXTRA) == {("skipped", "capped (lost to evening-flash-sale)")}
    assert outcome(MORNING) == outcome(NOON) == outcome(EVENING) == SENT
