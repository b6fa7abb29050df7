"""Touches waiting for quiet hours: the sentence says when they go and which run truly sends them."""

from __future__ import annotations

import datetime as dt

import pytest

from core.clock import at_local
from core.settings import PROJECT_ROOT
from engine.waiting import scheduled_run_at, wait_sentence
from soplang.loader import find_sop
from soplang.spec import SopSpec

DAY = dt.date(2026, 11, 24)
TZ = "Asia/Shanghai"
MORNING = at_local(DAY, 8, 0)  # quiet hours end (22:00-08:00)


def shipped(sop_id: str) -> SopSpec:
    return find_sop(sop_id, PROJECT_ROOT / "sop")


def test_a_night_run_of_a_morning_sop_is_sent_by_that_mornings_scheduled_run() -> None:
    said = wait_sentence(shipped("morning-price"), "main", "2026-11-24", 48, MORNING, tz=TZ)

    assert said == (
        "48 touches wait for quiet hours to end at 08:00 (2026-11-24); the scheduled run at "
        "08:30 (`morning-price 2026-11-24`) sends them, as would any run of this occurrence "
        "started from then on"
    )


def test_an_evening_sop_run_at_night_is_sent_by_the_evening_run_of_the_same_day() -> None:
    spec = shipped("evening-flash-sale")

    assert scheduled_run_at(spec, "main", "2026-11-24", MORNING, TZ) == at_local(DAY, 21, 0)


def test_a_run_after_quiet_hours_begin_has_no_scheduled_run_of_its_day_left() -> None:
    """23:00 on the 24th waits for 08:00 on the 25th; the 25th's runs are another occurrence."""
    next_morning = at_local(DAY + dt.timedelta(days=1), 8, 0)

    said = wait_sentence(
        shipped("evening-flash-sale"), "main", "2026-11-24", 1, next_morning, tz=TZ
    )

    assert said == (
        "1 touch waits for quiet hours to end at 08:00 (2026-11-25); no scheduled run of this "
        "occurrence comes after that, so start one from then on: "
        "`prefect deployment run 'community-sop/evening-flash-sale' --param day=2026-11-24`"
    )


def test_a_lifecycle_step_is_sent_by_its_daily_run_at_its_send_time() -> None:
    said = wait_sentence(shipped("dormant-recall"), "coupon", "2026-11-24", 5, MORNING, tz=TZ)

    assert "the scheduled run at 10:00 (`dormant-recall coupon 2026-11-24`) sends them" in said


@pytest.mark.parametrize(
    ("scheduled", "sends"),
    [
        (True, "a run of this step that this run schedules for then (`double12-2026 burst`)"),
        (
            False,
            "this run was started by hand, so no run is scheduled for them: start one from then "
            "on: `prefect deployment run 'promotion-step/promotion-step' "
            "--param campaign_code=double12-2026 --param step=burst`",
        ),
    ],
)
def test_a_promotion_step_is_sent_by_the_follow_up_run_its_deployment_run_schedules(
    scheduled: bool, sends: str
) -> None:
    said = wait_sentence(
        shipped("double12"), "burst", "double12-2026", 40, MORNING, tz=TZ,
        follow_up_scheduled=scheduled,
    )  # fmt: skip

    assert said.startswith("40 touches wait for quiet hours to end at 08:00 (2026-11-24); ")
    assert sends in said
