"""The ops group hears of a run waiting for approval: the run's own notice, then the automation's reminder."""

from __future__ import annotations

import datetime as dt
import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from prefect import get_client
from prefect.blocks.notifications import CustomWebhookNotificationBlock
from prefect.events.actions import SendNotification
from prefect.events.schemas.automations import EventTrigger, Posture

from channels.emulator.core import WeComEmulator
from core.settings import get_settings, reset_settings
from orchestration.approval_notices import (
    NOTICE_BLOCK,
    REMINDER_AUTOMATION,
    approval_robot,
    ensure_approval_reminder,
    reminder_after,
    reminder_lead,
)
from orchestration.prefect_objects import ensure_prefect_objects
from tests.factories import make_world
from tests.flows.test_approval import (
    DAY,
    RUN_NAME,
    Background,
    approval_sop,
    background_runs,
    paused_run,
    resume,
)

KEY = "ops-robot-key-5d1c-do-not-leak"


@pytest.fixture
def world(database_url: str):
    return make_world(DAY, database_url)


@pytest.fixture
def approval_over(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Callable[[int], None]:
    return approval_sop(tmp_path, monkeypatch)


@pytest.fixture
def background() -> Iterator[list[Background]]:
    yield from background_runs()


@pytest.fixture
def ops_robot(emulator: WeComEmulator, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """The ops group's robot `ops` on the emulator, named by SOPFLOW_APPROVAL_ROBOT; the
    reminder automation and its block are removed from the session's server afterwards."""
    emulator.configure(robot_keys=[KEY])
    monkeypatch.setenv("SOPFLOW_ROBOT_KEYS", json.dumps({"ops": KEY, "ops-sh": "other-key"}))
    monkeypatch.setenv("SOPFLOW_APPROVAL_ROBOT", "ops")
    reset_settings()
    yield "ops"
    monkeypatch.delenv("SOPFLOW_APPROVAL_ROBOT", raising=False)
    reset_settings()
    ensure_approval_reminder()


def posts(emulator: WeComEmulator, deadline: float = 0) -> list[str]:
    """The markdown the ops robot received, waiting up to `deadline` seconds for a first one."""
    end = time.monotonic() + deadline
    while not emulator.robot_posts.get(KEY) and time.monotonic() < end:
        time.sleep(0.2)
    return [post["markdown"]["content"] for post in emulator.robot_posts.get(KEY, [])]


def test_a_run_pausing_for_approval_tells_the_ops_group_what_waits_and_where(
    world, approval_over, background, ops_robot: str, emulator: WeComEmulator
) -> None:
    approval_over(1)
    background.append(run := Background())

    paused = paused_run(run.started)

    (notice,) = posts(emulator)
    assert "待审批 · 早报价" in notice
    assert "SOP `morning-price` · 步骤 `main` · 2026-11-24" in notice
    assert "受众：4 个群 · 待发送 **3** 条" in notice
    assert f"运行 `{RUN_NAME}` 已暂停" in notice
    assert f"/runs/flow-run/{paused.id})" in notice
    assert resume(paused.id, {"approve": False}) == "ACCEPT"
    run.join()
    assert len(posts(emulator)) == 1  # told once, when it paused


def test_a_robot_name_missing_from_the_robot_keys_is_refused_with_what_to_do(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SOPFLOW_ROBOT_KEYS", json.dumps({"ops-bj": KEY}))
    monkeypatch.setenv("SOPFLOW_APPROVAL_ROBOT", "ops")
    reset_settings()

    with pytest.raises(ValueError, match=r"SOPFLOW_APPROVAL_ROBOT is 'ops'.*it has: ops-bj"):
        approval_robot(get_settings())
    monkeypatch.setenv("SOPFLOW_APPROVAL_ROBOT", "")
    reset_settings()
    assert approval_robot(get_settings()) is None
    reset_settings()


def test_a_failed_notice_still_pauses_the_run_for_approval(
    world, approval_over, background, ops_robot: str, emulator: WeComEmulator
) -> None:
    emulator.configure(robot_keys=["another-key"])  # WeCom answers 93000: invalid webhook key
    approval_over(1)
    background.append(run := Background())

    paused = paused_run(run.started)

    assert posts(emulator) == []
    assert resume(paused.id, {"approve": False}) == "ACCEPT"
    run.join()


@pytest.mark.parametrize(
    ("timeout_hours", "remind_minutes", "lead", "after"),
    [(6, 60, 60 * 60, 5 * 3600), (0.5, 60, 15 * 60, 15 * 60), (1 / 360, 60, 5, 10)],
)
def test_the_reminder_goes_its_lead_before_the_timeout(
    timeout_hours: float, remind_minutes: int, lead: int, after: int
) -> None:
    settings = get_settings().model_copy(
        update={"approval_timeout_hours": timeout_hours, "approval_remind_minutes": remind_minutes}
    )
    assert reminder_lead(settings) == dt.timedelta(seconds=lead)
    assert reminder_after(settings) == dt.timedelta(seconds=after)  # Prefect's minimum is 10 s


def reminders() -> list:
    with get_client(sync_client=True) as client:
        return client.read_automations_by_name(REMINDER_AUTOMATION)


def test_the_reminder_automation_waits_on_paused_runs_and_posts_through_the_robot(
    ops_robot: str, emulator: WeComEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert ensure_approval_reminder() == "created"
    assert ensure_approval_reminder() == "unchanged"

    (automation,) = reminders()
    trigger = automation.trigger
    assert isinstance(trigger, EventTrigger) and trigger.posture == Posture.Proactive
    assert trigger.after == {"prefect.flow-run.Paused"}
    assert "prefect.flow-run.Running" in trigger.expect  # resumed: approved or rejected
    assert "prefect.flow-run.Failed" in trigger.expect  # timed out
    assert trigger.for_each == {"prefect.resource.id"}
    assert trigger.within == dt.timedelta(hours=5)  # 6 h timeout, reminded 60 min before
    (action,) = automation.actions
    assert isinstance(action, SendNotification)
    assert "{{ flow_run.name }}" in action.body and "60 分钟后超时" in action.body
    block = CustomWebhookNotificationBlock.load(NOTICE_BLOCK)
    assert action.block_document_id == block._block_document_id
    assert block.url == f"{emulator.url}/cgi-bin/webhook/send"
    assert block.secrets.get_secret_value() == {"robot_key": KEY}
    assert KEY not in json.dumps(block.params) + json.dumps(block.json_data)

    monkeypatch.setenv("SOPFLOW_APPROVAL_REMIND_MINUTES", "30")
    reset_settings()
    assert ensure_prefect_objects()[REMINDER_AUTOMATION] == "updated"
    assert reminders()[0].trigger.within == dt.timedelta(hours=5, minutes=30)
    monkeypatch.delenv("SOPFLOW_APPROVAL_ROBOT")
    reset_settings()
    assert ensure_approval_reminder() == "removed"
    assert reminders() == [] and ensure_approval_reminder() is None
    assert REMINDER_AUTOMATION not in ensure_prefect_objects()


@pytest.mark.slow
def test_a_run_still_paused_near_its_timeout_gets_a_reminder_from_the_server(
    world, approval_over, background, ops_robot: str, emulator: WeComEmulator, monkeypatch
) -> None:
    """The session's Prefect server runs the trigger and action services: the automation fires."""
    monkeypatch.setenv("SOPFLOW_APPROVAL_TIMEOUT_HOURS", str(20 / 3600))  # reminded after 10 s
    reset_settings()
    ensure_approval_reminder()
    approval_over(1)
    background.append(run := Background())
    paused = paused_run(run.started)
    assert len(posts(emulator)) == 1  # the run's own notice

    deadline = time.monotonic() + 18
    while len(posts(emulator)) < 2 and time.monotonic() < deadline:
        time.sleep(0.5)

    notice, reminder = posts(emulator)
    assert reminder.startswith(f"**审批提醒 · {RUN_NAME}**")
    assert "仍在等待审批，约 10 秒后超时" in reminder
    resume(paused.id, {"approve": False})
    run.join()
