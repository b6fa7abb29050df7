"""When a waiting trigger step (`after`, `send_at`) is due, and how a preview says so."""

from __future__ import annotations

import datetime as dt

from core.clock import as_utc, at_local, local, local_today
from soplang.spec import Step


def due_time(step: Step, occurred_at: dt.datetime, tz: str) -> dt.datetime:
    """When a waiting step of an event is due (UTC).

    `after: Nh` / `after: Nd`: N hours / N×24 h after the event; `after: Nd` with `send_at`: that
    local time N calendar days after the event's day; `send_at` alone: the next such local time.
    """
    occurred = _plain(occurred_at)
    if step.after_hours is not None:
        return occurred + dt.timedelta(hours=step.after_hours)
    clock = step.send_time
    days = step.after_days
    if clock is None:
        return occurred + dt.timedelta(days=days or 0)
    day = local_today(occurred, tz)
    if days is not None:
        return _plain(at_local(day + dt.timedelta(days=days), *clock, tz=tz))
    moment = _plain(at_local(day, *clock, tz=tz))
    return (
        moment if moment > occurred else _plain(at_local(day + dt.timedelta(days=1), *clock, tz=tz))
    )


def _plain(moment: dt.datetime) -> dt.datetime:
    """A standard-library UTC datetime (pendulum's compare unequal across tzinfo types)."""
    return dt.datetime.fromtimestamp(as_utc(moment).timestamp(), dt.UTC)


def waiting_lines(step: Step, occurred_at: dt.datetime, tz: str) -> list[str]:
    """What a preview says about when a waiting step is sent (nothing for a step sent at once)."""
    if not step.waits:
        return []
    wait = ", ".join(
        part
        for part in (
            f"after: {step.after}" if step.after else "",
            f'send_at: "{step.send_at}"' if step.send_at else "",
        )
        if part
    )
    due = local(due_time(step, occurred_at, tz), tz)
    lines = [
        f"waits ({wait}): for this event it is due {due:%Y-%m-%d %H:%M}; the drain after that "
        "sends it (within the 15-minute safety poll; in quiet hours it waits for their end)"
    ]
    if step.unless:
        lines.append(
            "not sent if by then the customer has a later "
            + " or ".join(f"`{kind}`" for kind in step.unless)
            + " event (same complaint / order), or has left the SOP's audience"
        )
    if step.robot:
        lines.append(
            f"posted to robot `{step.robot}` (@ the customer's owner staff), not to the customer"
        )
    return lines
