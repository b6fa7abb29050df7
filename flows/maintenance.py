"""Housekeeping flows: plan the day's capped slots by priority, and collect WeCom send results."""

from __future__ import annotations

import datetime as dt
from typing import Any

from prefect import flow, get_run_logger
from prefect.artifacts import create_table_artifact
from prefect.client.schemas.objects import State
from prefect.runtime import flow_run

from core.clock import local, local_today, utcnow
from core.settings import get_settings
from engine.results import unknown_message
from flows.pipeline import failed_run
from tasks.birthdays import record_birthdays_task
from tasks.caps import reserve_day_task
from tasks.moments import collect_moments_task
from tasks.results import collect_results_task
from tasks.sops import load_all_sops


def _run_moment() -> dt.datetime:
    """The instant a run is about: its `now` parameter, else when it was due to start (a
    scheduled run's slot, not the minute a worker picked it up)."""
    now = flow_run.parameters.get("now")
    if isinstance(now, str):
        now = dt.datetime.fromisoformat(now)
    return now or flow_run.scheduled_start_time


def plan_day_run_name() -> str:
    """`plan-day 2026-12-02`: the day whose capped slots the run reserves."""
    day = flow_run.parameters.get("day") or local_today(_run_moment(), get_settings().timezone)
    return f"plan-day {day}"


def collect_results_run_name() -> str:
    """`collect-results 2026-12-02 10:30`: the poll's minute on the local clock."""
    return f"collect-results {local(_run_moment(), get_settings().timezone):%Y-%m-%d %H:%M}"


@flow(name="plan-day", flow_run_name=plan_day_run_name)
def plan_day(day: dt.date | None = None, now: dt.datetime | None = None) -> dict[str, Any]:
    """Before the first send, reserve each customer's and group's capped slots for the highest-priority
    SOPs, and record today's customer.birthday events."""
    now = now or utcnow()
    day = day or local_today(now, get_settings().timezone)
    plan = reserve_day_task(load_all_sops(), day, now)
    create_table_artifact(
        key="plan-day",
        table=[
            {"sop step": key, "reserved": plan.reserved[key], "won": plan.won.get(key, 0)}
            for key in sorted(plan.reserved)
        ],
        description=f"Capped slots reserved for {day}: who gets each customer's and group's last slot",
    )
    get_run_logger().info("reserved %s", plan.reserved)
    # Birthdays only for the day itself: a plan run for another day sends no greeting early or late.
    today = day == local_today(now, get_settings().timezone)
    birthdays = record_birthdays_task(day) if today else {}
    return {
        "day": day.isoformat(),
        "reserved": plan.reserved,
        "won": plan.won,
        "birthdays": birthdays,
    }


@flow(name="collect-results", flow_run_name=collect_results_run_name)
def collect_results(now: dt.datetime | None = None) -> dict[str, int] | State[Any]:
    """Move sent rows to delivered / not a friend / over limit / unconfirmed / unknown; remind staff."""
    totals = collect_results_task(now)
    # 朋友圈: which staff posted their moments, reminders to the rest (engine/moments_results.py).
    totals.update(collect_moments_task(now))
    create_table_artifact(
        key="collect-results",
        table=[{"outcome": outcome, "rows": rows} for outcome, rows in sorted(totals.items())],
        description="What this poll of WeCom's send results changed",
    )
    # WeCom no longer knew some msgids (rows now `unknown`): end Failed with counts and what to do.
    if problem := unknown_message(totals):
        get_run_logger().error(problem)
        return failed_run(problem)
    return totals
