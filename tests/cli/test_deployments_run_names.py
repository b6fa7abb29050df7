"""The deployments' maintenance runs carry names that say what they did and for when."""

from __future__ import annotations

import datetime as dt
from typing import Any

from prefect import flow, get_client
from prefect.client.schemas.objects import State

from channels.emulator import WeComEmulator
from core.clock import at_local
from flows.maintenance import collect_results, plan_day
from flows.review import review_run_name

DAY = dt.date(2026, 12, 2)


def run_name(state: State[Any]) -> str:
    with get_client(sync_client=True) as client:
        return client.read_flow_run(state.state_details.flow_run_id).name


def test_plan_day_is_named_after_the_day_it_plans(database_url: str) -> None:
    given = plan_day(day=DAY, now=at_local(DAY, 0, 5), return_state=True)
    from_now = plan_day(now=at_local(DAY, 23, 59), return_state=True)

    assert run_name(given) == "plan-day 2026-12-02"
    assert run_name(from_now) == "plan-day 2026-12-02"  # 15:59 UTC is still the 2nd in Shanghai


def test_collect_results_is_named_after_its_local_minute(emulator: WeComEmulator) -> None:
    state = collect_results(now=at_local(DAY, 10, 30), return_state=True)

    assert run_name(state) == "collect-results 2026-12-02 10:30"


def test_a_collect_results_run_without_now_is_named_after_when_it_was_due(
    emulator: WeComEmulator,
) -> None:
    state = collect_results(return_state=True)

    name = run_name(state)
    assert name.startswith("collect-results 20") and len(name) == len(
        "collect-results 2026-12-02 10:30"
    )


@flow(flow_run_name=review_run_name)
def review_named(
    period: str = "week",
    starts: dt.date | None = None,
    ends: dt.date | None = None,
    sop: str | None = None,
) -> None:
    """Runs only to be named as the review flow names its runs."""


def test_a_review_is_named_after_the_days_it_reviews() -> None:
    custom = review_named(
        starts=dt.date(2026, 11, 16),
        ends=dt.date(2026, 11, 22),
        sop="morning-price",
        return_state=True,
    )

    assert run_name(custom) == "review custom 2026-11-16 – 2026-11-22 morning-price"
