"""Who posted the moments sopflow asked for (get_moment_task): posted staff are `delivered`, the
others are reminded through the step's robot (at most 3 times in 24 h, as mass-task reminders) and
`unconfirmed` once the wait is over."""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlmodel import col

from channels.wecom import WeComClient
from channels.wecom_moments import iter_moment_task
from core.clock import as_utc, utcnow
from core.errors import ChannelError
from core.settings import Settings, get_settings
from engine.moments import running_jobs, settle_job
from engine.results import may_remind, record_reminder
from models.db import session_scope
from models.deliveries import set_status
from models.delivery import Delivery, DeliveryStatus, MassTask
from soplang.staff_audience import MOMENTS

POSTED = 1  # get_moment_task publish_status
NOT_POSTED = "the staff member did not post the moment"
# Reminds staff by robot: (robot name, text, userids to @).
Remind = Callable[[str, str, list[str]], None]


@dataclass(frozen=True)
class PendingMoment:
    """A moment WeCom made for some staff, with posts still to check."""

    moment_id: str
    sop_id: str
    step: str
    sent_at: dt.datetime


def pending_moments(*, since: dt.datetime) -> list[PendingMoment]:
    """Moments with staff rows still `sent` (not known to have posted), made after `since`."""
    statement = (
        select(Delivery.msgid, Delivery.sop_id, Delivery.step, func.min(Delivery.sent_at))
        .where(
            col(Delivery.channel) == MOMENTS,
            col(Delivery.status) == DeliveryStatus.SENT.value,
            col(Delivery.msgid).is_not(None),
            col(Delivery.sent_at) >= since,
        )
        .group_by(col(Delivery.msgid), col(Delivery.sop_id), col(Delivery.step))
        .order_by(func.min(Delivery.sent_at))
    )
    with session_scope(readonly=True) as session:
        rows = session.execute(statement).all()
    return [PendingMoment(str(m), s, st, as_utc(t)) for m, s, st, t in rows]


def reminder_key(moment_id: str, userid: str) -> str:
    """The mass_task row counting one staff member's reminders about one moment."""
    return f"moment:{moment_id}:{userid}"[:128]


def collect_moment(
    client: WeComClient,
    moment: PendingMoment,
    *,
    now: dt.datetime,
    settings: Settings,
    robots: Mapping[tuple[str, str], str],
    remind: Remind | None,
) -> Counter[str]:
    """Read who posted one moment; move their rows; remind or give up on the rest."""
    posted = {
        str(task.get("userid"))
        for task in iter_moment_task(client, moment.moment_id)
        if task.get("publish_status") == POSTED
    }
    moved: Counter[str] = Counter()
    with session_scope() as session:
        rows = dict(
            session.execute(
                select(Delivery.id, Delivery.target_id).where(
                    col(Delivery.msgid) == moment.moment_id,
                    col(Delivery.status) == DeliveryStatus.SENT.value,
                )
            ).all()
        )
        done = [i for i, u in rows.items() if u in posted]
        moved["posted"] += set_status(done, DeliveryStatus.DELIVERED, session=session)
        waiting = {i: u for i, u in rows.items() if u not in posted}
        waited = now - moment.sent_at
        if waited >= dt.timedelta(hours=settings.unconfirmed_after_hours):
            moved["not posted"] += set_status(
                waiting, DeliveryStatus.UNCONFIRMED, session=session, reason=NOT_POSTED
            )
            return moved
        if waited < dt.timedelta(minutes=settings.remind_after_minutes) or not waiting:
            return moved
        robot = robots.get((moment.sop_id, moment.step))
        if robot is None or remind is None:
            moved["not posted, no robot to remind"] += len(waiting)
            return moved
        due = [
            u
            for u in sorted(waiting.values())
            if may_remind(session.get(MassTask, reminder_key(moment.moment_id, u)), now)
        ]
        if due:
            text = f"【朋友圈】{moment.sop_id}: 请发表企业朋友圈任务 · please post today's moment"
            try:
                remind(robot, text, due)
            except ChannelError as error:  # the posted rows above are kept
                moved[f"reminder failed ({robot}: {error.errcode or error})"[:80]] += len(due)
                return moved
            for userid in due:
                record_reminder(
                    reminder_key(moment.moment_id, userid), userid, session=session, now=now
                )
            moved["reminded"] += len(due)
    return moved


def collect_moments(
    client: WeComClient,
    *,
    robots: Callable[[], Mapping[tuple[str, str], str]],
    remind: Remind | None,
    now: dt.datetime | None = None,
    settings: Settings | None = None,
) -> Counter[str]:
    """Collect every pending moment's posts; a moment WeCom fails to answer for waits for next time.
    `robots()` (read only when a moment is pending) names each moments step's reminder robot."""
    settings = settings or get_settings()
    now = now or utcnow()
    since = now - dt.timedelta(days=settings.results_lookback_days)
    totals: Counter[str] = Counter()
    for jobid in running_jobs():  # a job still running when its run ended
        totals.update(settle_job(jobid, client, waits=()))
    pending = pending_moments(since=since)
    robot_of = robots() if pending else {}
    for moment in pending:
        try:
            totals.update(
                collect_moment(
                    client, moment, now=now, settings=settings, robots=robot_of, remind=remind
                )
            )
        except ChannelError as error:  # e.g. an answer sopflow cannot read: asked again next time
            totals[f"moments error {error.errcode or type(error).__name__}"] += 1
    if pending:
        totals["moments"] = len({m.moment_id for m in pending})
    return totals
