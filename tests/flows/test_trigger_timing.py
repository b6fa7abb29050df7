"""Trigger steps that wait (`after`, `send_at`): sent once when due by the drain, never before, never twice."""

from __future__ import annotations

import datetime as dt
from collections import Counter
from pathlib import Path

import pytest
from sqlmodel import col, select

from core.clock import at_local
from core.settings import reset_settings
from engine.events import EVENT_COLUMNS, PendingEvent
from engine.trigger_due import claim_due, release_due, send_due
from engine.trigger_timing import due_time
from engine.triggers import send_event_step
from flows.triggers import drain_events
from models.commerce import Event
from models.db import session_scope
from models.trigger_steps import DueStep
from soplang.spec import Step
from tasks.dispatch import open_channel
from tasks.triggers import load_trigger_sops
from tests.factories import add_customers, add_events, make_world, tag_customers

DAY = dt.date(2026, 11, 24)
TEN = at_local(DAY, 10, 0)
TZ = "Asia/Shanghai"

SOP = """---
id: timed-welcome
title: 欢迎与回访
kind: trigger
on: contact.added
channel: customer
category: daily
priority: service
audience:
  customers: {tags_none: [勿扰]}
steps:
  - {name: hello}
  - {name: soon, after: 1h}
  - {name: morning, send_at: "10:00"}
  - {name: day3, after: 3d, send_at: "10:00"}
---
## hello
你好{{ customer.name }}
## soon
一小时回访{{ customer.name }}
## morning
早安回访{{ customer.name }}
## day3
三天回访{{ customer.name }}
"""


@pytest.fixture
def world(database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    folder = tmp_path / "sop" / "triggers"
    folder.mkdir(parents=True)
    (folder / "timed-welcome.md").write_text(SOP, encoding="utf-8")
    monkeypatch.setenv("SOPFLOW_SOP_DIR", str(folder.parent))
    reset_settings()
    world = make_world(DAY, database_url)
    world.customers = add_customers(2)
    return world


def sent(emulator) -> Counter[str]:
    """Texts the emulator received, counted per recipient (`一小时回访客户0` …)."""
    return Counter(m["content"] for m in emulator.messages for _ in m["targets"])


def rows() -> dict[tuple[int, str], DueStep]:
    with session_scope() as session:
        return {(r.event_id, r.step): r for r in session.exec(select(DueStep)).all()}


def test_due_times_follow_after_and_send_at() -> None:
    """`after` counts hours or days from the event; `send_at` picks a local time."""
    at = at_local(DAY, 15, 30)  # 15:30 local
    assert due_time(Step(name="a", after="1h"), at, TZ) == at + dt.timedelta(hours=1)
    assert due_time(Step(name="a", after="3d"), at, TZ) == at + dt.timedelta(days=3)
    assert due_time(Step(name="a", after="3d", send_at="10:00"), at, TZ) == at_local(
        DAY + dt.timedelta(days=3), 10, 0
    )
    assert due_time(Step(name="a", send_at="10:00"), at, TZ) == at_local(
        DAY + dt.timedelta(days=1), 10, 0
    )
    assert due_time(Step(name="a", send_at="18:00"), at, TZ) == at_local(DAY, 18, 0)


def test_waiting_steps_send_when_due_once_and_exit_when_the_customer_leaves_the_audience(
    world, emulator
) -> None:
    first, second = world.customers
    events = add_events("contact.added", [first, second], at=TEN)

    drain_events(now=TEN)
    assert sent(emulator) == {"你好客户0": 1, "你好客户1": 1}
    assert {(e, s) for (e, s) in rows()} == {
        (e, s) for e in events for s in ("soon", "morning", "day3")
    }
    assert all(r.status == "waiting" for r in rows().values())

    drain_events(now=TEN + dt.timedelta(minutes=59))  # nothing is due yet
    assert sum(sent(emulator).values()) == 2

    summary = drain_events(now=TEN + dt.timedelta(hours=1, minutes=5))
    assert sent(emulator)["一小时回访客户0"] == sent(emulator)["一小时回访客户1"] == 1
    assert summary["timed-welcome"]["due_steps"] == {"sent through the 1:1 guards": 2}

    drain_events(now=at_local(DAY + dt.timedelta(days=1), 10, 0))
    assert sent(emulator)["早安回访客户0"] == sent(emulator)["早安回访客户1"] == 1

    tag_customers("勿扰", [second])  # the second customer leaves the audience before day 3
    drain_events(now=at_local(DAY + dt.timedelta(days=3), 9, 59))
    assert not any(text.startswith("三天") for text in sent(emulator))
    drain_events(now=at_local(DAY + dt.timedelta(days=3), 10, 0))
    drain_events(now=at_local(DAY + dt.timedelta(days=3), 10, 20))  # a re-run finds nothing new

    assert sent(emulator) == {
        **{f"{t}客户{i}": 1 for t in ("你好", "一小时回访", "早安回访") for i in (0, 1)},
        "三天回访客户0": 1,
    }
    day3 = {e: rows()[(e, "day3")] for e in events}
    assert (day3[events[0]].status, day3[events[0]].reason) == ("done", None)
    assert (day3[events[1]].status, day3[events[1]].reason) == (
        "skipped",
        "exited: no longer in the SOP's audience",
    )


def test_a_due_pass_that_died_is_taken_over_after_the_lease_without_sending_twice(
    world, emulator
) -> None:
    first, second = world.customers
    events = add_events("contact.added", [first, second], at=TEN)
    drain_events(now=TEN)
    due = TEN + dt.timedelta(hours=1)
    with session_scope() as session:
        dead = claim_due(limit=10, now=due, session=session)  # the pass claims, then dies…
        pending = claimed_events_of(events[:1], session)
    assert dead.count == 2  # only `soon` is due
    # …after sending the first customer's step, before settling its row.
    spec = load_trigger_sops.fn()["contact.added"][0]
    send_event_step(open_channel, spec, "soon", pending, now=due, day=DAY, flow_run_id=None)
    assert sent(emulator)["一小时回访客户0"] == 1

    drain_events(now=due + dt.timedelta(minutes=5))  # still leased by the dead pass
    assert sent(emulator)["一小时回访客户1"] == 0
    drain_events(now=due + dt.timedelta(minutes=16))  # the lease ran out

    assert sent(emulator)["一小时回访客户0"] == sent(emulator)["一小时回访客户1"] == 1
    assert {rows()[(e, "soon")].status for e in events} == {"done"}
    with session_scope() as session:  # the dead claim holds nothing any more
        assert release_due(dead.token, session=session) == 0
    assert send_due(open_channel, {}, dead.token, now=due, flow_run_id=None).outcomes == {}


def claimed_events_of(ids: list[int], session) -> list[PendingEvent]:
    return [
        PendingEvent(*row)
        for row in session.execute(select(*EVENT_COLUMNS).where(col(Event.id).in_(ids)))
    ]
