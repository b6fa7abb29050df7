"""Caps hold across SOPs; the day-ahead plan gives a customer's last slot to the higher priority."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select

from core.clock import at_local
from core.settings import reset_settings
from engine import reservations
from engine.reservations import scheduled_steps
from models.commerce import Campaign
from models.db import session_scope
from models.deliveries import set_status
from models.delivery import Delivery, DeliveryStatus
from models.holdout import is_held_out
from models.restraint import CapReservation
from soplang.spec import SopSpec
from tests.factories import (
    add_customers,
    customer_sop,
    delivery_rows,
    make_world,
    mark_sent,
    opt_out,
    plan_audience,
)

DAY = dt.date(2026, 11, 24)  # a Tuesday
PLANNING = at_local(DAY, 6, 0)
LOW = customer_sop("weekly-tips", priority="low", cron="0 9 * * *")
HIGH = customer_sop("vip-early-access", priority="high", cron="0 18 * * *", category="baby")


def at(hour: int, day: dt.date = DAY) -> dt.datetime:
    return at_local(day, hour, 0)


def reserve_day(specs: list[SopSpec], day: dt.date, as_of: dt.datetime) -> reservations.DayPlan:
    """Plan `day` as the plan-day flow does, in one transaction."""
    with session_scope() as session:
        return reservations.reserve_day(specs, day, as_of, session=session)


def outcome(spec: SopSpec) -> dict[int, tuple[str, str | None]]:
    return {i: (r.status, r.reason) for i, r in delivery_rows(spec.id).items()}


def run(spec: SopSpec, hour: int, day: dt.date = DAY):
    """One occurrence of the SOP at `hour`, its touches then sent."""
    batch = plan_audience(spec, at(hour, day), day)
    mark_sent(batch)
    return batch


@pytest.fixture
def world(database_url: str):
    return make_world(DAY, database_url)


def test_without_a_day_plan_the_first_sop_takes_the_only_daily_slot(world) -> None:
    (customer,) = add_customers(1)

    run(LOW, 9)
    run(HIGH, 18)

    assert outcome(LOW)[customer] == ("sent", None)
    assert outcome(HIGH)[customer] == ("skipped", "capped (daily limit)")


def test_after_reserve_day_a_low_priority_sop_at_09_loses_the_last_slot_to_a_high_one_at_18(
    world,
) -> None:
    contested = add_customers(2)
    only_low = add_customers(1, first=10, region="北京")  # outside the high SOP's audience
    high = customer_sop(
        HIGH.id, priority="high", cron="0 18 * * *", category="baby", region=["上海"]
    )

    plan = reserve_day([LOW, high], DAY, PLANNING)
    run(LOW, 9)
    run(high, 18)

    assert plan.reserved == {"weekly-tips:main": 3, "vip-early-access:main": 2}
    assert plan.won == {"weekly-tips:main": 1, "vip-early-access:main": 2}
    low = outcome(LOW)
    assert {low[i] for i in contested} == {("skipped", "capped (lost to vip-early-access)")}
    assert low[only_low[0]] == ("sent", None)
    assert {outcome(high)[i] for i in contested} == {("sent", None)}


def test_a_reservation_is_only_made_where_the_sop_can_reach_the_customer(world) -> None:
    opted_out_of_baby = add_customers(1)
    opt_out(opted_out_of_baby, "baby")
    deleted = add_customers(1, first=10, contact_state="deleted")
    reachable = add_customers(1, first=20)

    plan = reserve_day([LOW, HIGH], DAY, PLANNING)
    run(LOW, 9)

    assert plan.won["vip-early-access:main"] == 1
    low = outcome(LOW)
    assert low[opted_out_of_baby[0]] == ("sent", None)  # the high SOP could never use the slot
    assert low[deleted[0]] == ("skipped", "not a contact")
    assert low[reachable[0]] == ("skipped", "capped (lost to vip-early-access)")


def test_held_out_customers_keep_their_slot_for_the_next_sop(world) -> None:
    customers = add_customers(300)
    high = customer_sop(HIGH.id, priority="high", cron="0 18 * * *", holdout=0.2)
    held = {i for i in customers if is_held_out(i, high.id, 0.2)}

    reserve_day([LOW, high], DAY, PLANNING)
    run(LOW, 9)
    run(high, 18)

    low, high_outcome = outcome(LOW), outcome(high)
    assert held and {low[i] for i in held} == {("sent", None)}
    # caps come before holdout, so the evening run records them as capped by the morning touch
    assert {high_outcome[i] for i in held} == {("skipped", "capped (daily limit)")}
    assert {high_outcome[i] for i in customers if i not in held} == {("sent", None)}


def test_a_service_sop_bypasses_the_caps_and_does_not_count_against_them(world) -> None:
    (customer,) = add_customers(1)
    notice = customer_sop("order-shipped", priority="service", cron="0 8 * * *")

    reserve_day([LOW, HIGH, notice], DAY, PLANNING)
    run(notice, 8)
    run(HIGH, 18)
    notice_again = plan_audience(notice, at(20), DAY + dt.timedelta(days=1))

    assert outcome(HIGH)[customer] == ("sent", None)  # the notice did not use the daily slot
    assert len(notice_again.touches) == 1  # and the notice ignores a full day
    with session_scope() as session:
        reserved = session.execute(select(CapReservation.sop_id).distinct()).scalars().all()
    assert set(reserved) == {LOW.id, HIGH.id}  # service never competes for slots


def test_skipped_failed_and_undelivered_touches_do_not_count(world) -> None:
    customers = add_customers(3)
    first = plan_audience(LOW, at(9), DAY)
    with session_scope() as session:
        for touch, status in zip(
            first.touches,
            (DeliveryStatus.FAILED, DeliveryStatus.NOT_A_FRIEND, DeliveryStatus.UNCONFIRMED),
            strict=True,
        ):
            set_status([touch.delivery_id], status, session=session)

    run(HIGH, 18)

    assert {outcome(HIGH)[i] for i in customers} == {("sent", None)}


def test_the_30_day_cap_counts_touches_of_earlier_days(world) -> None:
    (customer,) = add_customers(1)
    days = [DAY + dt.timedelta(days=n) for n in range(0, 8, 2)]  # four touches in a week
    for day in days:
        run(LOW, 9, day)

    fifth = days[-1] + dt.timedelta(days=2)
    run(LOW, 9, fifth)
    month_later = days[0] + dt.timedelta(days=30)
    run(LOW, 9, month_later)

    rows = {r.occurrence: (r.status, r.reason) for r in delivery_rows_all()}
    assert rows[fifth.isoformat()] == ("skipped", "capped (30-day limit)")
    assert rows[month_later.isoformat()] == ("sent", None)  # the first touch left the window


def delivery_rows_all() -> list[Delivery]:
    with session_scope() as session:
        return list(session.execute(select(Delivery)).scalars())


def test_caps_come_from_the_settings(world, monkeypatch: pytest.MonkeyPatch) -> None:
    (customer,) = add_customers(1)
    monkeypatch.setenv("SOPFLOW_CAP_CUSTOMER_DAY", "2")
    reset_settings()

    reserve_day([LOW, HIGH], DAY, PLANNING)
    run(LOW, 9)
    run(HIGH, 18)

    assert outcome(LOW)[customer] == outcome(HIGH)[customer] == ("sent", None)


def campaign(sop_id: str, starts: dt.date) -> None:
    with session_scope() as session:
        session.add(
            Campaign(
                code=f"{sop_id}-{starts}",
                name="双11",
                sop_id=sop_id,
                starts_at=at_local(starts, 0, 0),
                ends_at=at_local(starts + dt.timedelta(days=2), 0, 0),
                status="scheduled",
            )
        )


def slots(spec: SopSpec, day: dt.date) -> list[tuple[str, dt.datetime]]:
    with session_scope() as session:
        return [(s.step, s.slot_at) for s in scheduled_steps(spec, day, session=session)]


def test_only_steps_scheduled_that_day_reserve_slots(world) -> None:
    national_day = dt.date(2026, 10, 1)
    workdays = customer_sop("workday-tips", days="workdays")
    mondays = customer_sop("monday-digest", cron="0 9 * * 1")
    coupon = customer_sop(
        "dormant-coupon", steps=[{"name": "coupon", "after": "3d", "send_at": "10:00"}]
    )
    promo = SopSpec(
        id="double-eleven",
        title="双11",
        kind="promotion",
        channel="customer",
        category="snacks",
        audience={"customers": {}},
        steps=[{"name": "preview", "at": "-1d 20:00"}, {"name": "burst", "at": "0d 10:00"}],
    )
    campaign(promo.id, DAY + dt.timedelta(days=1))

    assert slots(workdays, DAY) == [("main", at(9))] and slots(workdays, national_day) == []
    assert slots(mondays, DAY) == [] and slots(mondays, DAY - dt.timedelta(days=1)) != []
    assert slots(coupon, DAY) == [("coupon", at(10))]
    assert slots(promo, DAY) == [("preview", at(20))]
    assert slots(promo, DAY + dt.timedelta(days=1)) == [
        ("burst", at(10, DAY + dt.timedelta(days=1)))
    ]


def test_a_lifecycle_step_reserves_only_customers_who_entered_their_stage_that_many_days_ago(
    world,
) -> None:
    due = add_customers(2, stage_since=at_local(DAY - dt.timedelta(days=3), 15, 0))
    add_customers(2, first=10, stage_since=at_local(DAY - dt.timedelta(days=4), 23, 0))
    coupon = customer_sop(
        "dormant-coupon",
        stage=["dormant"],
        steps=[{"name": "coupon", "after": "3d", "send_at": "10:00"}],
    )

    plan = reserve_day([coupon], DAY, PLANNING)

    assert plan.reserved == {"dormant-coupon:coupon": 2}
    with session_scope() as session:
        reserved = session.execute(select(CapReservation.customer_id)).scalars().all()
    assert sorted(reserved) == due


def test_reserve_day_runs_again_with_the_caps_already_used_that_day(world) -> None:
    add_customers(3)
    first = reserve_day([LOW, HIGH], DAY, PLANNING)
    assert reserve_day([LOW, HIGH], DAY, PLANNING) == first

    run(customer_sop("early-bird", cron="0 7 * * *"), 7)  # not in the plan: first come
    replanned = reserve_day([LOW, HIGH], DAY, at(8))

    assert replanned.reserved == first.reserved
    assert replanned.won == {"weekly-tips:main": 0, "vip-early-access:main": 0}
    run(HIGH, 18)
    assert set(outcome(HIGH).values()) == {("skipped", "capped (daily limit)")}


@pytest.mark.postgres
def test_priority_arbitration_and_caps_hold_on_postgresql(postgres_url: str) -> None:
    make_world(DAY, postgres_url)
    customers = add_customers(3)
    notice = customer_sop("order-shipped", priority="service", cron="0 8 * * *")

    plan = reserve_day([LOW, HIGH, notice], DAY, PLANNING)
    run(notice, 8)
    run(LOW, 9)
    run(HIGH, 18)

    assert plan.won == {"weekly-tips:main": 0, "vip-early-access:main": 3}
    assert {outcome(LOW)[i] for i in customers} == {
        ("skipped", "capped (lost to vip-early-access)")
    }
    assert {outcome(HIGH)[i] for i in customers} == {("sent", None)}
    assert {outcome(notice)[i] for i in customers} == {("sent", None)}


def reserved_days() -> set[dt.date]:
    with session_scope() as session:
        return set(session.execute(select(CapReservation.day).distinct()).scalars())


def test_planning_a_day_deletes_the_reservations_of_days_already_over(world) -> None:
    add_customers(2)
    tomorrow = DAY + dt.timedelta(days=1)
    reserve_day([LOW, HIGH], DAY, PLANNING)

    reserve_day([LOW, HIGH], tomorrow, at(21))  # planned the evening before: today still counts
    assert reserved_days() == {DAY, tomorrow}

    reserve_day([LOW, HIGH], tomorrow, at(6, tomorrow))
    assert reserved_days() == {tomorrow}
