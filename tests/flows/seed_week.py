"""A simulated week: every run the worker would start, in clock order, through the real flows."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import time_machine
from croniter import croniter
from sqlmodel import col, select

from core.clock import at_local, local
from engine.events import record_event
from flows.community import community_sop
from flows.maintenance import plan_day
from flows.promotion import promotion_step
from flows.triggers import drain_events
from models.db import session_scope
from models.delivery import Delivery
from soplang.spec import SopSpec

TZ = "Asia/Shanghai"
DEBOUNCE = dt.timedelta(seconds=10)  # the drain's deployment trigger runs 10 s after an event
# The drain's safety poll runs every 15 minutes; the week runs the polls that find due steps
# (10:00 progress and review invites, 11:00 one-hour SLA checks) and skips the empty ones.
POLLS = ((10, 5), (11, 5))


@dataclass(frozen=True)
class Event:
    """Something that happens to a customer at a local moment of the week."""

    at: dt.datetime
    kind: str
    customer: str  # external_userid
    payload: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Campaign:
    code: str
    sop: SopSpec
    starts_at: dt.datetime


@dataclass(frozen=True)
class Run:
    at: dt.datetime
    label: str
    call: Callable[[], object]


@dataclass
class Week:
    """What each day of the week sent: `sent[day][sop/step]` = sorted target names; the same
    for touches not sent (`held[day][sop/step]` = sorted `name: status reason`) and robot posts."""

    sent: dict[dt.date, dict[str, list[str]]] = field(
        default_factory=lambda: defaultdict(lambda: defaultdict(list))
    )
    held: dict[dt.date, dict[str, list[str]]] = field(
        default_factory=lambda: defaultdict(lambda: defaultdict(list))
    )
    robot: dict[dt.date, list[str]] = field(default_factory=lambda: defaultdict(list))
    runs: int = 0


def cron_runs(spec: SopSpec, day: dt.date) -> list[Run]:
    """The community SOP's scheduled runs on the local `day`, as its cron deployment fires them."""
    assert spec.schedule is not None
    start = at_local(day, 0, 0, spec.schedule.timezone)
    fires = croniter(spec.schedule.cron, local(start, spec.schedule.timezone))
    runs = []
    while (moment := fires.get_next(dt.datetime)).date() == day:
        when = moment.astimezone(dt.UTC)
        runs.append(Run(when, spec.id, _community(spec.id, day, when)))
    return runs


def _community(sop_id: str, day: dt.date, now: dt.datetime) -> Callable[[], object]:
    return lambda: community_sop(sop_id=sop_id, day=day, now=now)


def campaign_runs(campaign: Campaign, day: dt.date) -> list[Run]:
    """The promotion steps falling on `day`, as `sopflow campaign schedule` creates them."""
    runs = []
    start_day = local(campaign.starts_at, TZ).date()
    for step in campaign.sop.step_list:
        assert step.at_offset is not None
        days, hour, minute = step.at_offset
        if start_day + dt.timedelta(days=days) == day:
            when = at_local(day, hour, minute, TZ)
            call = _promotion(campaign.code, step.name, when)
            runs.append(Run(when, f"{campaign.sop.id} {step.name}", call))
    return runs


def _promotion(code: str, step: str, now: dt.datetime) -> Callable[[], object]:
    return lambda: promotion_step(campaign_code=code, step=step, now=now)


def event_runs(events: Iterable[Event], day: dt.date) -> list[Run]:
    """Each event recorded at its moment, and the drain its recording starts."""
    runs = []
    for event in events:
        if local(event.at, TZ).date() == day:
            runs.append(Run(event.at, f"record {event.kind}", _record(event)))
            runs.append(Run(event.at + DEBOUNCE, "drain", _drain(event.at + DEBOUNCE)))
    return runs


def _record(event: Event) -> Callable[[], object]:
    def record() -> int:
        with session_scope() as session:
            return record_event(
                event.kind,
                customer=event.customer,
                payload=event.payload,
                now=event.at,
                session=session,
            )

    return record


def _drain(now: dt.datetime) -> Callable[[], object]:
    return lambda: drain_events(now=now)


def day_runs(
    day: dt.date, specs: list[SopSpec], campaigns: list[Campaign], events: list[Event]
) -> list[Run]:
    """Every run of `day` in clock order: plan-day first, then schedules, campaigns, events."""
    planning = at_local(day, 0, 5, TZ)
    runs = [Run(planning, "plan-day", lambda: plan_day(day=day, now=planning))]
    for spec in specs:
        if spec.kind == "community":
            runs += cron_runs(spec, day)
    for campaign in campaigns:
        runs += campaign_runs(campaign, day)
    runs += event_runs(events, day)
    runs += [
        Run(at_local(day, h, m, TZ), "drain", _drain(at_local(day, h, m, TZ))) for h, m in POLLS
    ]
    return sorted(runs, key=lambda run: run.at)


def run_week(
    days: list[dt.date],
    specs: list[SopSpec],
    *,
    campaigns: list[Campaign],
    events: list[Event],
    names: dict[str, str],
    robot_posts: Callable[[], list[str]],
) -> Week:
    """Run every day's runs and note, per day, which SOP step reached whom (by `names` of their
    external_userid / chat_id) or why not, from the Delivery rows each run wrote."""
    week = Week()
    seen, posted = 0, 0
    for day in days:
        for run in day_runs(day, specs, campaigns, events):
            # The process clock starts at the run's moment, as the worker would start it: what a
            # run stamps itself (a touch's sent_at) counts towards the caps of the right day.
            with time_machine.travel(run.at, tick=True):
                run.call()
            week.runs += 1
            with session_scope(readonly=True) as session:
                rows = session.exec(
                    select(Delivery).where(col(Delivery.id) > seen).order_by(col(Delivery.id))
                ).all()
            for row in rows:
                _note(week, day, row, names)
            seen = max([seen, *(row.id or 0 for row in rows)])
            posts = robot_posts()
            week.robot[day] += posts[posted:]
            posted = len(posts)
    return week


def _note(week: Week, day: dt.date, row: Delivery, names: dict[str, str]) -> None:
    key = f"{row.sop_id}/{row.step}"
    who = names.get(row.target_id, row.target_id)
    if row.status == "sent":
        week.sent[day][key].append(who)
    else:
        week.held[day][key].append(f"{who}: {row.status} {row.reason or ''}".strip())
    week.sent[day][key].sort()
    week.held[day][key].sort()
