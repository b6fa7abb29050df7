"""Collect what became of sent mass messages: staff confirmation, per-target results, reminders."""

from __future__ import annotations

import datetime as dt
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from sqlalchemy import func, select, update
from sqlmodel import Session, col

from channels.errcodes import meaning
from channels.wecom import WeComClient
from core.clock import as_utc, utcnow
from core.errors import ChannelError, ChannelTransient
from core.settings import Settings, get_settings
from models.db import session_scope
from models.delivery import Delivery, DeliveryStatus, MassTask

# get_groupmsg_send_result status → the Delivery outcome (0 = not sent yet: stays `sent`).
RESULT_STATUS = {
    1: DeliveryStatus.DELIVERED,
    2: DeliveryStatus.NOT_A_FRIEND,
    3: DeliveryStatus.OVER_WECOM_LIMIT,
}
TASK_SENT = 2  # get_groupmsg_task: the staff member confirmed and WeCom sent it
MAX_REMINDERS_PER_DAY = 3  # remind_groupmsg_send: 3 per message in 24 h (WeCom, doc 97610)
# Answers for a msgid we recorded that mean WeCom no longer knows it (41047 invalid msgid; 41046
# "missing msgid" is our own bug and stays an error): its rows become `unknown`, never resent.
MSGID_UNKNOWN_ERRCODES = frozenset({41047})
OPS_GUIDE = "sop/README.md §10, unknown after collect-results"


@dataclass(frozen=True)
class PendingMessage:
    """A mass message WeCom accepted whose per-target results are not all in yet."""

    msgid: str
    sender: str
    target_kind: str
    sent_at: dt.datetime


def pending_messages(*, session: Session, since: dt.datetime) -> list[PendingMessage]:
    """Messages with rows still `sent` (awaiting results) sent through WeCom after `since`."""
    statement = (
        select(
            col(Delivery.msgid),
            col(Delivery.sender),
            col(Delivery.target_kind),
            func.min(Delivery.sent_at),
        )
        .where(
            col(Delivery.status) == DeliveryStatus.SENT.value,
            col(Delivery.channel) == "wecom",
            col(Delivery.msgid).is_not(None),
            col(Delivery.sent_at) >= since,
        )
        .group_by(col(Delivery.msgid), col(Delivery.sender), col(Delivery.target_kind))
        .order_by(func.min(Delivery.sent_at))
    )
    return [
        PendingMessage(msgid, sender or "", kind, as_utc(sent_at))
        for msgid, sender, kind, sent_at in session.execute(statement).all()
    ]


def apply_results(
    msgid: str, results: Iterable[tuple[str, int]], *, session: Session
) -> Counter[str]:
    """Move `sent` rows of `msgid` to the outcome WeCom reports for each target."""
    by_status: dict[DeliveryStatus, list[str]] = defaultdict(list)
    for target_id, code in results:
        if code in RESULT_STATUS:
            by_status[RESULT_STATUS[code]].append(target_id)
    moved: Counter[str] = Counter()
    for status, targets in by_status.items():
        for start in range(0, len(targets), 1000):
            statement = (
                update(Delivery)
                .where(
                    col(Delivery.msgid) == msgid,
                    col(Delivery.target_id).in_(targets[start : start + 1000]),
                    col(Delivery.status) == DeliveryStatus.SENT.value,
                )
                .values(status=status.value, updated_at=utcnow())
            )
            moved[status.value] += int(session.execute(statement).rowcount or 0)  # type: ignore[attr-defined]
    return moved


def mark_unconfirmed(msgid: str, *, session: Session) -> int:
    """The staff member never confirmed: the message's remaining rows are `unconfirmed`."""
    return _close_sent_rows(
        msgid,
        DeliveryStatus.UNCONFIRMED,
        reason="the staff member did not confirm the mass message",
        session=session,
    )


def mark_unknown(msgid: str, errcode: int, *, session: Session) -> int:
    """WeCom no longer knows `msgid`: its remaining `sent` rows are `unknown` (final, never resent)."""
    return _close_sent_rows(
        msgid,
        DeliveryStatus.UNKNOWN,
        errcode=errcode,
        reason=f"WeCom no longer knows this mass message (errcode {errcode}, "
        f"{meaning(errcode)}): its results cannot be collected; never resent",
        session=session,
    )


def _close_sent_rows(
    msgid: str, status: DeliveryStatus, *, session: Session, **values: object
) -> int:
    """Move the rows of `msgid` still `sent` to a final `status`; how many moved."""
    statement = (
        update(Delivery)
        .where(col(Delivery.msgid) == msgid, col(Delivery.status) == DeliveryStatus.SENT.value)
        .values(status=status.value, updated_at=utcnow(), **values)
    )
    return int(session.execute(statement).rowcount or 0)  # type: ignore[attr-defined]


def unknown_message(totals: Mapping[str, int]) -> str | None:
    """What the operator reads when WeCom no longer knew some msgids this poll, or None."""
    msgids = totals.get("unknown msgids", 0)
    if not msgids:
        return None
    return (
        f"WeCom no longer knows {msgids} mass message(s) sopflow sent "
        f"({totals.get('unknown', 0)} touch row(s) marked `unknown`, errcode 41047 invalid msgid): "
        "their results can never be collected and they are never resent. Check in the WeCom admin "
        "console whether they went out and whether the corp or app changed; see the ops guide "
        f"({OPS_GUIDE})."
    )


def may_remind(task_row: MassTask | None, now: dt.datetime) -> bool:
    """At most three reminders per message in any 24 hours."""
    if task_row is None or task_row.window_started_at is None:
        return True
    if now - as_utc(task_row.window_started_at) >= dt.timedelta(hours=24):
        return True
    return task_row.reminders_in_window < MAX_REMINDERS_PER_DAY


def record_reminder(msgid: str, sender: str, *, session: Session, now: dt.datetime) -> None:
    row = session.get(MassTask, msgid)
    if row is None:
        row = MassTask(msgid=msgid, sender=sender)
        session.add(row)
    if row.window_started_at is None or now - as_utc(row.window_started_at) >= dt.timedelta(
        hours=24
    ):
        row.window_started_at = now
        row.reminders_in_window = 0
    row.reminders_in_window += 1
    row.reminders_total += 1
    row.last_reminded_at = now


def record_confirmation(
    message: PendingMessage, send_time: object, *, session: Session, now: dt.datetime
) -> None:
    """Remember when the staff member confirmed (WeCom's send_time, else when we first saw it)."""
    row = session.get(MassTask, message.msgid)
    if row is None:
        row = MassTask(msgid=message.msgid, sender=message.sender)
        session.add(row)
    if row.confirmed_at is None:
        try:
            seconds = int(send_time)  # type: ignore[call-overload]
        except (TypeError, ValueError):
            seconds = 0
        row.confirmed_at = dt.datetime.fromtimestamp(seconds, dt.UTC) if seconds else now


def collect_message(
    client: WeComClient, message: PendingMessage, *, now: dt.datetime, settings: Settings
) -> Counter[str]:
    """Poll one message: results when the sender confirmed, else remind or give up."""
    tasks = {t.get("userid"): t for t in client.iter_groupmsg_task(message.msgid)}
    outcome: Counter[str] = Counter()
    waited = now - message.sent_at
    sender_task = tasks.get(message.sender) or {}
    if sender_task.get("status") == TASK_SENT:
        key = "chat_id" if message.target_kind == "group" else "external_userid"
        results = (
            (row.get(key, ""), int(row.get("status", 0)))
            for row in client.iter_groupmsg_send_result(message.msgid, message.sender)
        )
        with session_scope() as session:
            outcome.update(apply_results(message.msgid, results, session=session))
            record_confirmation(message, sender_task.get("send_time"), session=session, now=now)
        return outcome
    if waited >= dt.timedelta(hours=settings.unconfirmed_after_hours):
        with session_scope() as session:
            outcome["unconfirmed"] += mark_unconfirmed(message.msgid, session=session)
        return outcome
    if waited >= dt.timedelta(minutes=settings.remind_after_minutes):
        with session_scope() as session:
            if may_remind(session.get(MassTask, message.msgid), now):
                client.remind_groupmsg_send(message.msgid)
                record_reminder(message.msgid, message.sender, session=session, now=now)
                outcome["reminded"] += 1
    return outcome


def collect(
    client: WeComClient, *, now: dt.datetime | None = None, settings: Settings | None = None
) -> Counter[str]:
    """Collect every pending message's results; one WeCom no longer knows (41047) becomes `unknown`."""
    settings = settings or get_settings()
    now = now or utcnow()
    since = now - dt.timedelta(days=settings.results_lookback_days)
    with session_scope() as session:
        pending = pending_messages(session=session, since=since)
    totals: Counter[str] = Counter(messages=len(pending))
    for message in pending:
        try:
            totals.update(collect_message(client, message, now=now, settings=settings))
        except ChannelTransient:
            totals["retry later"] += 1  # e.g. 41063 still dispatching; the next poll picks it up
        except ChannelError as error:
            if error.errcode not in MSGID_UNKNOWN_ERRCODES:
                totals[f"error {error.errcode}"] += 1
                continue
            with session_scope() as session:
                totals["unknown"] += mark_unknown(message.msgid, error.errcode, session=session)
            totals["unknown msgids"] += 1
    return totals
