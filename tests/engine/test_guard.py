"""The restraint guards record every skip and deferral on its Delivery row, in the documented order."""

from __future__ import annotations

import datetime as dt

import pytest

from core.clock import at_local
from core.settings import get_settings, reset_settings
from engine.guard import in_quiet_hours, quiet_hours_end
from engine.plan import plan_customers, plan_groups
from models.audience import group_id_ranges, groups_in_range
from models.db import session_scope
from models.deliveries import Occurrence
from models.delivery import Delivery
from soplang.spec import GroupAudience
from tests.factories import (
    add_customers,
    audience_of,
    customer_sop,
    delivery_rows,
    make_world,
    mark_sent,
    occurrence_of,
    opt_out,
    plan_audience,
)

DAY = dt.date(2026, 11, 24)
MORNING = at_local(DAY, 10, 0)
LATE = at_local(DAY, 23, 0)
NEXT_MORNING = at_local(DAY + dt.timedelta(days=1), 8, 0)


def occurrence(spec, day: dt.date = DAY) -> Occurrence:
    return occurrence_of(spec, day)


def plan(spec, now: dt.datetime, day: dt.date = DAY):
    return plan_audience(spec, now, day)


@pytest.fixture
def world(database_url: str):
    return make_world(DAY, database_url)


def test_deleted_contact_is_skipped_as_not_a_contact(world) -> None:
    active, deleted = add_customers(1), add_customers(1, first=10, contact_state="deleted")

    batch = plan(customer_sop(), MORNING)

    assert [t.target.id for t in batch.touches] == active
    row = delivery_rows()[deleted[0]]
    assert (row.status, row.reason) == ("skipped", "not a contact")
    assert batch.skipped == {"not a contact": 1}


def test_opted_out_customer_is_skipped_with_the_category_of_the_sop(world) -> None:
    fresh_haters, baby_haters = add_customers(2), add_customers(2, first=10)
    opt_out(fresh_haters, "fresh")
    opt_out(baby_haters, "baby")

    batch = plan(customer_sop(category="fresh"), MORNING)

    assert sorted(t.target.id for t in batch.touches) == baby_haters
    assert {delivery_rows()[i].reason for i in fresh_haters} == {"opted out of fresh"}


def test_an_opt_out_of_promotions_does_not_hold_back_a_service_message(world) -> None:
    fresh_haters = add_customers(2)
    opt_out(fresh_haters, "fresh")

    batch = plan(customer_sop(category="fresh", priority="service"), MORNING)

    assert sorted(t.target.id for t in batch.touches) == fresh_haters


def test_each_customer_is_recorded_with_the_first_guard_that_stops_it(world) -> None:
    deleted_and_opted_out = add_customers(1, contact_state="deleted")
    opted_out_at_night = add_customers(1, first=10)
    opt_out(deleted_and_opted_out + opted_out_at_night, "fresh")

    plan(customer_sop(), LATE)

    assert delivery_rows()[deleted_and_opted_out[0]].reason == "not a contact"
    assert delivery_rows()[opted_out_at_night[0]].reason == "opted out of fresh"


def test_a_customer_touch_at_23_00_waits_for_08_00_and_a_later_run_sends_it_once(world) -> None:
    customers = add_customers(3)
    spec = customer_sop()

    night = plan(spec, LATE)

    assert (night.touches, night.deferred) == ([], 3)
    deferred = delivery_rows()[customers[0]]
    assert (deferred.status, deferred.reason) == ("planned", "deferred: quiet hours")
    assert deferred.not_before == NEXT_MORNING  # 08:00 Asia/Shanghai
    too_early = plan(spec, NEXT_MORNING - dt.timedelta(minutes=1))
    assert (too_early.touches, too_early.deferred) == ([], 3)
    morning = plan(spec, NEXT_MORNING + dt.timedelta(minutes=5))
    assert sorted(t.target.id for t in morning.touches) == customers
    assert {t.delivery_id for t in morning.touches} == {r.id for r in delivery_rows().values()}
    mark_sent(morning)
    again = plan(spec, NEXT_MORNING + dt.timedelta(hours=1))
    assert (again.touches, again.already_done, len(delivery_rows())) == ([], {"sent": 3}, 3)


def groups(spec_audience: GroupAudience | None = None):
    with session_scope() as session:
        ranges = group_id_ranges(spec_audience, batch_size=100, session=session)
        return [g for r in ranges for g in groups_in_range(spec_audience, r, session=session)]


def test_a_group_touch_in_quiet_hours_waits_for_the_morning_run(world) -> None:
    group_occurrence = Occurrence("morning-price", "main", DAY.isoformat(), "outbox")

    night = plan_groups(group_occurrence, groups(), now=LATE)
    morning = plan_groups(group_occurrence, groups(), now=NEXT_MORNING)

    assert night.touches == [] and night.deferred == 4
    assert {(r.status, r.reason) for r in delivery_rows().values()} == {
        ("planned", "deferred: quiet hours")
    }
    assert len(morning.touches) == 4


def test_quiet_hours_come_from_the_settings_and_may_not_wrap_midnight(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    reset_settings()
    assert in_quiet_hours(LATE, get_settings()) and in_quiet_hours(
        at_local(DAY, 7, 59), get_settings()
    )
    assert not in_quiet_hours(at_local(DAY, 8, 0), get_settings())
    assert quiet_hours_end(at_local(DAY, 3, 0), get_settings()) == at_local(DAY, 8, 0)
    monkeypatch.setenv("SOPFLOW_QUIET_START", "12:00")
    monkeypatch.setenv("SOPFLOW_QUIET_END", "13:30")
    reset_settings()
    assert in_quiet_hours(at_local(DAY, 12, 15), get_settings()) and not in_quiet_hours(
        LATE, get_settings()
    )
    assert quiet_hours_end(at_local(DAY, 12, 15), get_settings()) == at_local(DAY, 13, 30)
    reset_settings()


def held_out(sop_id: str) -> set[int]:
    return {i for i, r in delivery_rows(sop_id).items() if r.reason == "holdout"}


def test_holdout_keeps_a_stable_tenth_of_the_audience_out_day_after_day(world) -> None:
    add_customers(2000)
    spec = customer_sop(holdout=0.1)

    first = plan(spec, MORNING)
    mark_sent(first)

    assert 0.08 * 2000 <= first.skipped["holdout"] <= 0.12 * 2000
    monday = held_out(spec.id)
    with session_scope() as session:
        session.execute(Delivery.__table__.delete())
    plan(spec, MORNING + dt.timedelta(days=1), day=DAY + dt.timedelta(days=1))
    assert held_out(spec.id) == monday
    other = customer_sop("birthday-care", holdout=0.1)
    plan(other, MORNING + dt.timedelta(days=2), day=DAY + dt.timedelta(days=2))
    assert len(held_out(other.id) & monday) < 0.3 * len(
        monday
    )  # another SOP, another control group


def test_a_second_plan_records_nothing_new_and_reports_rows_already_done(world) -> None:
    add_customers(4)
    add_customers(1, first=10, contact_state="deleted")
    spec = customer_sop()
    first = plan(spec, MORNING)
    mark_sent(first)
    before = {i: (r.id, r.status, r.reason, r.updated_at) for i, r in delivery_rows().items()}

    second = plan(spec, MORNING + dt.timedelta(minutes=5))

    assert (second.touches, second.skipped, second.deferred) == ([], {}, 0)
    assert second.already_done == {"sent": 4, "skipped": 1}
    assert {
        i: (r.id, r.status, r.reason, r.updated_at) for i, r in delivery_rows().items()
    } == before


def test_a_row_left_planned_by_a_crashed_run_is_offered_again_under_the_same_id(world) -> None:
    add_customers(3)
    spec = customer_sop()

    first = plan(spec, MORNING)  # never dispatched
    second = plan(spec, MORNING + dt.timedelta(minutes=5))

    assert sorted(t.delivery_id for t in second.touches) == sorted(
        t.delivery_id for t in first.touches
    )
    assert len(delivery_rows()) == 3


def group_post(sop_id: str, now: dt.datetime = MORNING, spec=None):
    return plan_groups(
        Occurrence(sop_id, "main", DAY.isoformat(), "outbox"), groups(), now=now, spec=spec
    )


def test_a_fourth_marketing_post_to_a_group_on_one_day_is_capped(world) -> None:
    """The default allowance is the seeds' weekday rhythm: morning, noon and evening slots."""
    for sop_id in ("morning-price", "noon-coupon", "evening-flash-sale"):
        mark_sent(group_post(sop_id))

    fourth = group_post("late-extra", MORNING + dt.timedelta(hours=8))

    assert fourth.touches == [] and fourth.skipped == {"capped (daily limit)": 4}
    notice = customer_sop("store-notice", priority="service")
    assert (
        len(group_post("store-notice", MORNING + dt.timedelta(hours=9), spec=notice).touches) == 4
    )


def test_a_5000_customer_batch_is_guarded_whole_in_one_pass(world) -> None:
    """Every customer of a large batch is planned or skipped with its reason (the speed of this
    pass is measured by `make bench`, not here)."""
    customers = add_customers(5000)
    opt_out(customers[::10], "fresh")
    spec = customer_sop(holdout=0.1)
    mark_sent(plan(customer_sop("yesterday", cron="0 10 * * *"), MORNING - dt.timedelta(days=1)))
    audience = audience_of(spec)

    planned = plan_customers(spec, occurrence(spec), audience, now=MORNING)

    assert len(planned.touches) + sum(planned.skipped.values()) == 5000
    assert planned.skipped["opted out of fresh"] == 500


@pytest.mark.postgres
def test_guards_deferral_and_idempotency_hold_on_postgresql(postgres_url: str) -> None:
    make_world(DAY, postgres_url)
    customers = add_customers(4)
    opt_out(customers[:1], "fresh")
    spec = customer_sop()

    night = plan(spec, LATE)
    morning = plan(spec, NEXT_MORNING)
    mark_sent(morning)
    again = plan(spec, NEXT_MORNING + dt.timedelta(hours=1))

    assert (night.deferred, night.skipped) == (3, {"opted out of fresh": 1})
    assert sorted(t.target.id for t in morning.touches) == customers[1:]
    assert again.already_done == {"sent": 3, "skipped": 1} and len(delivery_rows()) == 4
