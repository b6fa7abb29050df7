"""Touches waiting for quiet hours to end: when they go, which run sends them, the text that waits."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from croniter import croniter
from sqlalchemy import func, select
from sqlmodel import Session, col

from channels.attachments import loads
from core.clock import local
from core.settings import get_settings
from models.deliveries import Occurrence, to_send
from models.delivery import Delivery, Message
from models.people import CustomerGroup
from soplang.attachment_render import with_cards
from soplang.spec import SopSpec

# How a manual run of one occurrence is started (the deployments sopflow generates).
_RUN_AGAIN = {
    "community": "prefect deployment run 'community-sop/{sop}' --param day={day}",
    "lifecycle": "prefect deployment run 'lifecycle-sop/{sop}-{step_dashed}' --param day={day}",
    "promotion": "prefect deployment run 'promotion-step/promotion-step' "
    "--param campaign_code={label} --param step={step}",
}


def run_name(spec: SopSpec, step: str, label: str) -> str:
    """The name the UI shows for a run of this occurrence (flows/*.run_name)."""
    if spec.kind == "promotion":
        return f"{label} {step}"
    who = spec.id if spec.kind == "community" or step == "main" else f"{spec.id} {step}"
    return f"{who} {label}"


def scheduled_run_at(
    spec: SopSpec, step: str, label: str, until: dt.datetime, tz: str
) -> dt.datetime | None:
    """The first scheduled run of the occurrence (the day `label`) at or after `until`, or None.

    Community SOPs run on their `schedule.cron`, lifecycle steps daily at `send_at`; a run's
    occurrence is the local day it was scheduled for, so only that day's runs count.
    """
    try:
        day = dt.date.fromisoformat(label)
    except ValueError:
        return None  # an occurrence named otherwise (a campaign) has no daily schedule
    schedule_tz = spec.schedule.timezone if spec.schedule else tz
    if spec.kind == "lifecycle":
        hour, minute = next(
            (s.send_time or (0, 0) for s in spec.step_list if s.name == step), (0, 0)
        )
        cron = f"{minute} {hour} * * *"
    elif spec.kind == "community" and spec.schedule is not None:
        cron = spec.schedule.cron
    else:
        return None
    start = local(until, schedule_tz) - dt.timedelta(seconds=1)
    fire = croniter(cron, start).get_next(dt.datetime)
    return fire if local(fire, tz).date() == day else None


def who_sends(
    spec: SopSpec,
    step: str,
    label: str,
    until: dt.datetime,
    *,
    tz: str,
    follow_up_scheduled: bool = False,
) -> str:
    """Which run sends the occurrence's touches waiting until `until`, in the operator's words.

    `follow_up_scheduled`: this run schedules a run of the step for when quiet hours end (a
    promotion step run by its deployment does, tasks/campaign.follow_up_deferred).
    """
    again = _RUN_AGAIN.get(spec.kind, "").format(
        sop=spec.id, step=step, step_dashed=step.replace("_", "-"), day=label, label=label
    )
    start_one = "start one from then on" + (f": `{again}`" if again else "")
    name = run_name(spec, step, label)
    if spec.kind == "promotion":
        if follow_up_scheduled:
            return f"a run of this step that this run schedules for then (`{name}`) sends them"
        return f"this run was started by hand, so no run is scheduled for them: {start_one}"
    fire = scheduled_run_at(spec, step, label, until, tz)
    if fire is not None:
        return (
            f"the scheduled run at {local(fire, tz):%H:%M} (`{name}`) sends them, as would any "
            "run of this occurrence started from then on"
        )
    return f"no scheduled run of this occurrence comes after that, so {start_one}"


def wait_sentence(
    spec: SopSpec,
    step: str,
    label: str,
    touches: int,
    until: dt.datetime,
    *,
    tz: str,
    follow_up_scheduled: bool = False,
) -> str:
    """`48 touches wait for quiet hours to end at 08:00 (2026-11-24); the scheduled run … sends them`."""
    when = local(until, tz)
    sends = who_sends(spec, step, label, until, tz=tz, follow_up_scheduled=follow_up_scheduled)
    return (
        f"{touches} {plural(touches, 'touch waits', 'touches wait')} for quiet hours to end at "
        f"{when:%H:%M} ({when:%Y-%m-%d}); {sends}"
    )


def plural(n: int, one: str, many: str) -> str:
    return one if n == 1 else many


@dataclass(frozen=True)
class Sample:
    """One text of the occurrence and whose it is, in the operator's words."""

    text: str
    target: str


def first_text_to_send(occurrence: Occurrence, *, session: Session) -> Sample | None:
    """The recorded text of the audience's first touch still to send, or None (touches waiting
    for quiet hours get their text from the run that sends them)."""
    first = session.execute(
        select(Delivery.target_kind, Delivery.target_id, Message.content, Message.attachments)
        .join(Message, col(Message.id) == col(Delivery.message_id))
        .where(*to_send(occurrence))
        .order_by(func.coalesce(Delivery.group_id, Delivery.customer_id))  # the audience's first
        .limit(1)
    ).first()
    if first is None:
        return None
    kind, target_id, text, attachments = first
    text = with_cards(text, loads(attachments), get_settings().sop_dir)
    return Sample(text, target_label(kind, target_id, session=session))


def target_label(kind: str, target_id: str, *, session: Session) -> str:
    """A group by its name, a customer by their external id."""
    if kind == "group":
        name = session.execute(
            select(CustomerGroup.name).where(col(CustomerGroup.chat_id) == target_id)
        ).scalar_one_or_none()
        return name or target_id
    return f"customer {target_id}"
