"""Complaints (投诉): events validated, the shipped complaint-sla SOP answers at once and alerts the robot once on a breach."""

from __future__ import annotations

import datetime as dt
import json
import shutil
from collections import Counter
from pathlib import Path

import pytest
from sqlmodel import select

from core.clock import at_local
from core.errors import EventError
from core.settings import PROJECT_ROOT, get_settings, reset_settings
from engine.events import record_event
from engine.preview_events import preview_trigger
from flows.triggers import drain_events
from models.db import session_scope
from models.people import Customer
from models.trigger_steps import DueStep
from soplang.selection import trigger_sops
from tests.factories import add_customers, make_world

DAY = dt.date(2026, 11, 24)
TEN = at_local(DAY, 10, 0)
KEY = "robot-key-service-ops"


@pytest.fixture
def world(database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    folder = tmp_path / "sop" / "triggers"
    folder.mkdir(parents=True)
    shutil.copy(PROJECT_ROOT / "sop" / "triggers" / "complaint-sla.md", folder)
    monkeypatch.setenv("SOPFLOW_SOP_DIR", str(folder.parent))
    monkeypatch.setenv("SOPFLOW_ROBOT_KEYS", json.dumps({"service-ops": KEY}))
    reset_settings()
    world = make_world(DAY, database_url)
    world.customers = add_customers(2)
    return world


def complaint(kind: str, customer_id: int, ident: str, at: dt.datetime, **more: str) -> int:
    with session_scope() as session:
        external = session.get(Customer, customer_id).external_userid
        payload = {"complaint_id": ident, **more}
        return record_event(kind, customer=external, payload=payload, now=at, session=session)


def texts(emulator) -> Counter[str]:
    return Counter(m["content"] for m in emulator.messages for _ in m["targets"])


def alerts(emulator) -> list[dict]:
    return [post["text"] for post in emulator.robot_posts.get(KEY, [])]


@pytest.mark.parametrize(
    ("kind", "payload", "message"),
    [
        ("complaint.opened", {}, "needs a payload with `complaint_id`"),
        ("complaint.opened", {"complaint_id": "A", "level": "p0"}, "use one of: normal, high"),
        ("complaint.opened", {"complaint_id": "A", "summary": 3}, "`summary` must be text"),
        ("complaint.closed", {"complaint_id": "never"}, "record `complaint.opened` first"),
    ],
)
def test_complaint_events_without_a_usable_payload_are_refused(
    world, kind, payload, message
) -> None:
    with session_scope() as session, pytest.raises(EventError, match=message):
        external = session.get(Customer, world.customers[0]).external_userid
        record_event(kind, customer=external, payload=payload, now=TEN, session=session)


def test_sla_alert_reaches_the_robot_once_and_not_for_a_complaint_answered_in_time(
    world, emulator
) -> None:
    answered, ignored = world.customers
    complaint("complaint.opened", answered, "TS-1", TEN, summary="鸡蛋破损")
    complaint("complaint.opened", ignored, "TS-2", TEN, summary="配送超时", level="high")

    drain_events(now=TEN)
    received = [t for t in texts(emulator) if "我们已经收到" in t]
    assert len(received) == 2 and any("单号TS-2" in t for t in received)

    complaint("complaint.updated", answered, "TS-1", TEN + dt.timedelta(minutes=30))
    drain_events(now=TEN + dt.timedelta(hours=1, minutes=1))
    drain_events(now=TEN + dt.timedelta(hours=1, minutes=20))  # a re-run posts nothing again

    [alert] = alerts(emulator)
    assert alert["content"].startswith("【投诉超时未响应】单号TS-2（配送超时）已超过1小时")
    assert "专属顾问张伟" in alert["content"] and "客户1" in alert["content"]
    assert alert["mentioned_list"] == ["zhangwei.bj01"]
    assert "1380000" not in alert["content"]  # no phone numbers
    with session_scope() as session:
        found = {(r.event_id, r.step): (r.status, r.reason) for r in session.exec(select(DueStep))}
    assert sorted(v for (_, step), v in found.items() if step == "sla_alert") == [
        ("sent", None),
        ("skipped", "exited: complaint updated"),
    ]

    complaint("complaint.closed", ignored, "TS-2", TEN + dt.timedelta(hours=3))
    drain_events(now=at_local(DAY + dt.timedelta(days=1), 10, 0))

    progress = [t for t in texts(emulator) if "正在加急处理中" in t]
    assert progress == [t for t in progress if "TS-1" in t] and len(progress) == 1
    resolve = [a["content"] for a in alerts(emulator)[1:]]
    assert len(resolve) == 1 and resolve[0].startswith("【投诉24小时未解决】单号TS-1已超过24小时")


def test_preview_of_a_waiting_step_says_when_it_would_send(world) -> None:
    complaint("complaint.opened", world.customers[0], "TS-9", at_local(DAY, 9, 30))
    spec = trigger_sops(get_settings().sop_dir)["complaint.opened"][0]

    alert = preview_trigger(spec, "sla_alert", DAY, kind=None, customer=None, payload=None)
    progress = preview_trigger(spec, "progress", DAY, kind=None, customer=None, payload=None)
    received = preview_trigger(spec, "received", DAY, kind=None, customer=None, payload=None)

    assert any("due 2026-11-24 10:30" in line for line in alert.when)
    assert any("`complaint.updated` or `complaint.closed`" in line for line in alert.when)
    assert any("posted to robot `service-ops`" in line for line in alert.when)
    assert any("due 2026-11-25 10:00" in line for line in progress.when)
    assert not any("due" in line for line in received.when)
