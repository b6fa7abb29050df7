"""Telling the ops group a run waits for approval: the robot, the notice at the pause, and the reminder automation."""

from __future__ import annotations

import datetime as dt
import logging
from typing import TYPE_CHECKING, Literal

from pydantic import SecretStr

from channels.robot import WEBHOOK_PATH, RobotChannel, parse_robot_keys
from core.clock import local
from core.settings import Settings, get_settings

if TYPE_CHECKING:
    from prefect.blocks.notifications import CustomWebhookNotificationBlock
    from prefect.client.orchestration import SyncPrefectClient
    from prefect.events.schemas.automations import Automation, AutomationCore

# Prefect is imported inside the functions, as in orchestration/prefect_objects.py.

Outcome = Literal["created", "updated", "unchanged", "removed"]
log = logging.getLogger(__name__)

REMINDER_AUTOMATION = "Remind the ops group of runs waiting for approval"
NOTICE_BLOCK = "sopflow-approval-robot"  # the custom-webhook block the reminder posts with
PAUSED = "prefect.flow-run.Paused"  # every pause in sopflow is an approval (flows/approval.py)
# After the pause, any of these means the operator answered or the run is over.
ANSWERED = ("Running", "Completed", "Failed", "Cancelled", "Cancelling", "Crashed")
PROACTIVE_MIN = dt.timedelta(seconds=10)  # Prefect refuses a shorter `within` for Proactive


def approval_robot(settings: Settings) -> tuple[str, SecretStr] | None:
    """The robot (name, webhook key) that tells the ops group about approvals, or None when
    `SOPFLOW_APPROVAL_ROBOT` is unset; a name missing from `SOPFLOW_ROBOT_KEYS` is an error."""
    name = (settings.approval_robot or "").strip()
    if not name:
        return None
    keys = parse_robot_keys(settings.robot_keys)
    if name not in keys:
        known = ", ".join(sorted(keys)) or "none"
        raise ValueError(
            f"SOPFLOW_APPROVAL_ROBOT is {name!r}, but SOPFLOW_ROBOT_KEYS has no robot of that "
            f"name (it has: {known}); add the ops group robot's webhook key there under that "
            "name, or unset SOPFLOW_APPROVAL_ROBOT"
        )
    return name, keys[name]


def reminder_lead(settings: Settings) -> dt.timedelta:
    """How long before the approval timeout the reminder goes: `approval_remind_minutes`, or
    half the timeout when that is shorter."""
    timeout = dt.timedelta(hours=settings.approval_timeout_hours)
    return min(dt.timedelta(minutes=settings.approval_remind_minutes), timeout / 2)


def reminder_after(settings: Settings) -> dt.timedelta:
    """How long a run may stay paused before the reminder: the timeout less the lead."""
    timeout = dt.timedelta(hours=settings.approval_timeout_hours)
    return max(PROACTIVE_MIN, timeout - reminder_lead(settings))


def notice_markdown(
    *,
    title: str,
    sop_id: str,
    step: str,
    occurrence: str,
    audience: str,
    to_send: int,
    run_name: str,
    link: str | None,
    deadline: dt.datetime,
    tz: str,
) -> str:
    """The robot's markdown when a run pauses: what waits, for how many, until when, and where."""
    lines = [
        f"**待审批 · {title}**",
        f"> SOP `{sop_id}` · 步骤 `{step}` · {occurrence}",
        f"> 受众：{audience} · 待发送 **{to_send}** 条",
        f"> 运行 `{run_name}` 已暂停，审批通过后才会发送",
        f"> 请在 {local(deadline, tz):%m-%d %H:%M} 前处理，超时未审批则不发送",
    ]
    lines.append(
        f"[在 Prefect 中查看并审批]({link})" if link else f"在 Prefect 中找运行 `{run_name}`"
    )
    return "\n".join(lines)


def post_notice(settings: Settings, markdown: str) -> bool:
    """Post `markdown` to the ops group's robot; False when no robot is configured."""
    robot = approval_robot(settings)
    if robot is None:
        return False
    name, _key = robot
    with RobotChannel.from_settings(settings) as channel:
        channel.post_markdown(name, markdown)
    return True


def reminder_body(settings: Settings) -> str:
    """The reminder's markdown, a Jinja template the Prefect server fills in for the paused run."""
    lead = reminder_lead(settings).total_seconds()
    left = f"{round(lead / 60)} 分钟" if lead >= 60 else f"{round(lead)} 秒"
    return (
        "**审批提醒 · {{ flow_run.name }}**\n"
        f"> 仍在等待审批，约 {left}后超时；超时未审批则不发送\n"
        "{% set url = flow_run|ui_url %}"
        "{% if url %}[在 Prefect 中查看并审批]({{ url }}){% else %}在 Prefect 中找这个运行{% endif %}"
    )


def reminder_block(settings: Settings, key: SecretStr) -> CustomWebhookNotificationBlock:
    """A Prefect notification block posting a notification's body as the robot's markdown."""
    from prefect.blocks.notifications import CustomWebhookNotificationBlock

    return CustomWebhookNotificationBlock(
        name="sopflow approval robot",
        url=settings.wecom_api_base.rstrip("/") + WEBHOOK_PATH,
        params={"key": "{{robot_key}}"},
        json_data={"msgtype": "markdown", "markdown": {"content": "{{body}}"}},
        secrets={"robot_key": key.get_secret_value()},  # type: ignore[arg-type]
        timeout=settings.wecom_read_timeout,
        headers=None,
        cookies=None,
    )


def reminder_automation(block_document_id: object, settings: Settings) -> AutomationCore:
    """Proactive: a run still Paused `reminder_after` after it paused gets one reminder."""
    from prefect.events.actions import SendNotification
    from prefect.events.schemas.automations import AutomationCore, EventTrigger, Posture
    from prefect.events.schemas.events import ResourceSpecification

    return AutomationCore(
        name=REMINDER_AUTOMATION,
        description="Posts to the ops group's robot when a run has waited for approval until "
        "shortly before its timeout; managed by sopflow (orchestration/approval_notices.py)",
        enabled=True,
        tags=[],
        trigger=EventTrigger(
            after={PAUSED},
            expect={f"prefect.flow-run.{state}" for state in ANSWERED},
            match=ResourceSpecification({"prefect.resource.id": ["prefect.flow-run.*"]}),
            match_related=[],
            for_each={"prefect.resource.id"},
            posture=Posture.Proactive,
            threshold=1,
            within=reminder_after(settings),
        ),
        actions=[
            SendNotification(
                block_document_id=block_document_id,  # type: ignore[arg-type]
                subject="审批提醒",
                body=reminder_body(settings),
            )
        ],
        actions_on_trigger=[],
        actions_on_resolve=[],
    )


def ensure_approval_reminder(settings: Settings | None = None) -> Outcome | None:
    """Create or update the reminder automation and its robot block when
    `SOPFLOW_APPROVAL_ROBOT` is set; remove them when it is not (None: there was nothing)."""
    from prefect import get_client

    settings = settings or get_settings()
    robot = approval_robot(settings)
    with get_client(sync_client=True) as client:
        found = client.read_automations_by_name(REMINDER_AUTOMATION)
        if robot is None:
            for automation in found:
                client.delete_automation(automation.id)
            removed = _delete_block(client)
            return "removed" if found or removed else None
        block_id, block_outcome = _ensure_block(reminder_block(settings, robot[1]))
        return _ensure_automation(
            client, found, reminder_automation(block_id, settings), block_outcome
        )


def _ensure_block(wanted: CustomWebhookNotificationBlock) -> tuple[object, Outcome]:
    from prefect.blocks.notifications import CustomWebhookNotificationBlock

    try:
        current: CustomWebhookNotificationBlock = CustomWebhookNotificationBlock.load(NOTICE_BLOCK)  # type: ignore[assignment]
    except ValueError:
        return wanted.save(NOTICE_BLOCK), "created"
    fields = ("url", "params", "json_data", "timeout")
    same = all(getattr(current, f) == getattr(wanted, f) for f in fields) and (
        current.secrets.get_secret_value() == wanted.secrets.get_secret_value()
    )
    if same:
        return current._block_document_id, "unchanged"
    return wanted.save(NOTICE_BLOCK, overwrite=True), "updated"


def _delete_block(client: SyncPrefectClient) -> bool:
    from prefect.exceptions import ObjectNotFound

    try:
        block = client.read_block_document_by_name(
            NOTICE_BLOCK, block_type_slug="custom-webhook", include_secrets=False
        )
    except ObjectNotFound:
        return False
    client.delete_block_document(block.id)
    return True


def _ensure_automation(
    client: SyncPrefectClient, found: list[Automation], wanted: AutomationCore, block: Outcome
) -> Outcome:
    """Create the automation, or put it back as wanted; unchanged unless its block changed."""
    from prefect.events.schemas.automations import AutomationCore

    if not found:
        client.create_automation(wanted)
        log.debug("created automation %r", REMINDER_AUTOMATION)
        return "created"
    first, *duplicates = found
    for duplicate in duplicates:
        client.delete_automation(duplicate.id)
    fields = set(AutomationCore.model_fields)
    if not duplicates and first.model_dump(include=fields) == wanted.model_dump():
        return block
    client.update_automation(first.id, wanted)
    log.debug("updated automation %r", REMINDER_AUTOMATION)
    return "updated"
