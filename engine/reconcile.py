"""Reconcile rows a crash or a lost answer left in `sending`: ask the channel, before any resend."""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any, Protocol, runtime_checkable

from sqlalchemy import select
from sqlmodel import Session, col

from channels.attachments import loads
from core.clock import utcnow
from core.errors import ChannelError, ChannelTransient
from core.settings import Settings, get_settings
from engine.dispatch import UNANSWERED
from models.db import session_scope
from models.deliveries import Occurrence, set_status
from models.delivery import Delivery, DeliveryStatus, Message

logger = logging.getLogger(__name__)

# What a reconciled row's reason says.
FOUND = "reconciled: the channel had created it before the send was interrupted"
NEVER_SENT = "reconciled: never reached the channel; sent again"
# A row whose send is over (answer lost) may still be in WeCom's pipeline this long after.
SETTLE_MARGIN = dt.timedelta(seconds=3)
LOOKBACK = dt.timedelta(minutes=5)  # search this much before and after, for clock skew
MAX_WINDOW = dt.timedelta(days=31)  # get_groupmsg_list_v2 refuses longer windows
ASK_BACKOFF = (0.5, 1.0)  # seconds between attempts when the channel is busy

_CHAT_TYPES = {"group": "group", "customer": "single"}


@runtime_checkable
class SentFinder(Protocol):
    """A channel that can say which mass messages it created (WeCom, the outbox)."""

    name: str

    def find_sent(
        self, sender: str, content: str, start: dt.datetime, end: dt.datetime, *, chat_type: str
    ) -> list[dict[str, Any]]:
        """Messages of `sender` with exactly `content` created in [start, end]."""
        ...


@dataclass(frozen=True)
class StuckRow:
    """A Delivery row left in `sending`, with the text it was being sent with."""

    delivery_id: int
    target_kind: str
    target_id: str
    sender: str
    channel: str
    content: str | None
    reason: str | None
    updated_at: dt.datetime
    attachments: str | None = None  # as the Message stores them (channels.attachments.dumps)


@dataclass
class ReconcileSummary:
    """What reconciling one occurrence did to its rows caught in `sending`."""

    sent: int = 0  # the channel had created them: now `sent` with its msgid
    replanned: int = 0  # the channel never saw them: back to `planned`, this run sends them
    unknown: Counter[str] = field(default_factory=Counter)  # reason -> rows, never resent

    def counts(self) -> dict[str, int]:
        """Rows by what became of them (only the outcomes that happened)."""
        counts = {"sent": self.sent, "planned": self.replanned, "unknown": self.total_unknown}
        return {status: rows for status, rows in counts.items() if rows}

    @property
    def total_unknown(self) -> int:
        return sum(self.unknown.values())


def stuck_rows(
    sop_id: str, *, session: Session, occurrence: Occurrence | None = None
) -> list[StuckRow]:
    """The rows in `sending` of one occurrence (or of every occurrence of the SOP), oldest first."""
    clauses = [
        # `|| ''`: read through the status index (rows in `sending` are few), not the
        # occurrence index, which holds every row of a large occurrence.
        (col(Delivery.sop_id) + "") == sop_id,
        col(Delivery.status) == DeliveryStatus.SENDING.value,
    ]
    if occurrence is not None:
        clauses += [
            col(Delivery.step) == occurrence.step,
            col(Delivery.occurrence) == occurrence.occurrence,
        ]
    statement = (
        select(
            col(Delivery.id),
            col(Delivery.target_kind),
            col(Delivery.target_id),
            col(Delivery.sender),
            col(Delivery.channel),
            col(Message.content),
            col(Delivery.reason),
            col(Delivery.updated_at),
            col(Message.attachments),
        )
        .outerjoin(Message, col(Message.id) == col(Delivery.message_id))
        .where(*clauses)
        .order_by(col(Delivery.updated_at), col(Delivery.id))
    )
    return [
        StuckRow(id_, kind, target, sender or "", channel, content, reason, updated, attached)
        for id_, kind, target, sender, channel, content, reason, updated, attached in (
            session.execute(statement)
        )
    ]


def in_flight_time(settings: Settings, channel: str = "wecom") -> dt.timedelta:
    """How long after its claim a live dispatch may still be sending a chunk (token + call)."""
    if channel != "wecom":
        return SETTLE_MARGIN  # the outbox writes at once
    call = settings.wecom_connect_timeout + settings.wecom_read_timeout
    return dt.timedelta(seconds=2 * call) + SETTLE_MARGIN


def settled_at(row: StuckRow, in_flight: dt.timedelta) -> dt.datetime:
    """When the channel has surely finished with the row's call.

    A row left `sending` by a call that got no answer was updated when the caller gave up;
    any other was updated when it was claimed, before its call.
    """
    return row.updated_at + (SETTLE_MARGIN if row.reason == UNANSWERED else in_flight)


def wait_until_settled(
    rows: Sequence[StuckRow],
    *,
    now: dt.datetime,
    in_flight: dt.timedelta,
    sleep: Callable[[float], None],
) -> dt.datetime:
    """Sleep until every row's call is over (its message, if any, is listed); the new `now`."""
    latest = max(settled_at(row, in_flight) for row in rows)
    wait = (latest - now).total_seconds()
    if wait <= 0:
        return now
    logger.info("waiting %.1f s for interrupted sends to settle before reconciling", wait)
    sleep(wait)
    return now + dt.timedelta(seconds=wait)


def search_window(rows: Sequence[StuckRow], now: dt.datetime) -> tuple[dt.datetime, dt.datetime]:
    """From a little before the rows' first update to a little after `now` (clocks differ)."""
    return min(r.updated_at for r in rows) - LOOKBACK, now + LOOKBACK


def ask(
    channel: SentFinder,
    rows: Sequence[StuckRow],
    now: dt.datetime,
    sleep: Callable[[float], None],
) -> list[dict[str, Any]]:
    """The channel's messages matching the rows' sender and text; busy answers are retried."""
    first = rows[0]
    start, end = search_window(rows, now)
    find = partial(
        channel.find_sent,
        first.sender,
        first.content or "",
        start,
        end,
        chat_type=_CHAT_TYPES[first.target_kind],
    )
    for delay in ASK_BACKOFF:
        try:
            return find()
        except ChannelTransient:
            sleep(delay)
    return find()


def _create_time(message: dict[str, Any]) -> float:
    return float(message.get("create_time") or 0)


def match_chunks(
    rows: Sequence[StuckRow], candidates: list[dict[str, Any]]
) -> tuple[dict[str, tuple[list[StuckRow], float]], list[StuckRow]]:
    """Pair each interrupted chunk with the message created closest to it.

    Rows claimed by one statement share their `updated_at`: they were one chunk, one call,
    one msgid. A candidate that lists its `targets` (the outbox) covers only those. Returns
    msgid -> (rows, create time) and the rows no message covers.
    """
    chunks: dict[dt.datetime, list[StuckRow]] = defaultdict(list)
    for row in rows:
        chunks[row.updated_at].append(row)
    pool = list(candidates)
    found: dict[str, tuple[list[StuckRow], float]] = {}
    missing: list[StuckRow] = []
    for at, chunk in sorted(chunks.items()):
        best = _closest(chunk, at, pool)
        covered = _covered(chunk, best) if best is not None else []
        if best is not None:
            pool.remove(best)
            found[str(best["msgid"])] = (covered, _create_time(best))
        missing += [row for row in chunk if row not in covered]
    return found, missing


def _covered(chunk: list[StuckRow], message: dict[str, Any]) -> list[StuckRow]:
    targets = message.get("targets")
    return chunk if targets is None else [r for r in chunk if r.target_id in set(targets)]


def _closest(
    chunk: list[StuckRow], at: dt.datetime, pool: list[dict[str, Any]]
) -> dict[str, Any] | None:
    fitting = [m for m in pool if _covered(chunk, m)]
    if not fitting:
        return None
    return min(fitting, key=lambda m: abs(_create_time(m) - at.timestamp()))


def known_msgids(msgids: Sequence[str], *, session: Session) -> set[str]:
    """Those of `msgids` already recorded on a Delivery row (they belong to other sends)."""
    if not msgids:
        return set()
    rows = session.execute(select(col(Delivery.msgid)).where(col(Delivery.msgid).in_(list(msgids))))
    return {row[0] for row in rows}


def _cannot_ask(row: StuckRow, channel: Any) -> str | None:
    """Why the row's fate cannot be asked of `channel`, or None when it can."""
    if row.content is None:
        return "unknown: caught mid-send without a recorded text; not resent"
    if row.channel != getattr(channel, "name", None) or not isinstance(channel, SentFinder):
        return f"unknown: caught mid-send via {row.channel}, which cannot be asked; not resent"
    return None


def reconcile_group(
    rows: Sequence[StuckRow],
    *,
    channel: Any,
    now: dt.datetime,
    summary: ReconcileSummary,
    sleep: Callable[[float], None] = time.sleep,
) -> None:
    """Settle rows of one (sender, text, target kind): `sent`, back to `planned`, or `unknown`."""
    reason = _cannot_ask(rows[0], channel)
    start, end = search_window(rows, now)
    if reason is None and end - start > MAX_WINDOW:
        reason = "unknown: caught mid-send over a month ago, beyond WeCom's list; not resent"
    candidates: list[dict[str, Any]] = []
    if reason is None:
        try:
            candidates = ask(channel, rows, now, sleep)
        except ChannelError as error:
            reason = f"unknown: caught mid-send and {channel.name} could not be asked ({error})"
    if reason is not None:
        _mark(rows, DeliveryStatus.UNKNOWN, reason=reason[:255])
        summary.unknown[reason[:255]] += len(rows)
        return
    with session_scope() as session:
        used = known_msgids([str(m.get("msgid")) for m in candidates], session=session)
        fresh = [
            m
            for m in candidates
            if m.get("msgid") and str(m["msgid"]) not in used and _same_kinds(m, rows[0])
        ]
        found, missing = match_chunks(rows, fresh)
        for msgid, (covered, created) in found.items():
            summary.sent += set_status(
                [r.delivery_id for r in covered],
                DeliveryStatus.SENT,
                session=session,
                only_from=(DeliveryStatus.SENDING,),
                msgid=msgid,
                sent_at=dt.datetime.fromtimestamp(created, dt.UTC),
                errcode=0,
                reason=FOUND,
            )
        summary.replanned += set_status(
            [r.delivery_id for r in missing],
            DeliveryStatus.PLANNED,
            session=session,
            only_from=(DeliveryStatus.SENDING,),
            reason=NEVER_SENT,
        )


def _same_kinds(message: dict[str, Any], row: StuckRow) -> bool:
    """Whether a listed message carries the kinds of attachments the row was sent with (WeCom
    lists them by `msgtype` with its media ids, not our files); a message that lists none fits."""
    listed = message.get("attachments")
    if listed is None:
        return True
    ours = [a.kind for a in loads(row.attachments)]
    return [str(a.get("msgtype")) for a in listed if isinstance(a, dict)] == ours


def _mark(rows: Sequence[StuckRow], status: DeliveryStatus, *, reason: str) -> None:
    with session_scope() as session:
        set_status(
            [r.delivery_id for r in rows],
            status,
            session=session,
            only_from=(DeliveryStatus.SENDING,),
            reason=reason,
        )


def reconcile_occurrence(
    occurrence: Occurrence,
    *,
    channel: Any,
    now: dt.datetime | None = None,
    in_flight: dt.timedelta | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> ReconcileSummary:
    """Settle every row of `occurrence` left in `sending`, before the run sends anything."""
    with session_scope() as session:
        rows = stuck_rows(occurrence.sop_id, occurrence=occurrence, session=session)
    return settle(rows, channel=channel, now=now, in_flight=in_flight, sleep=sleep)


def settle(
    rows: Sequence[StuckRow],
    *,
    channel: Any,
    now: dt.datetime | None = None,
    in_flight: dt.timedelta | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> ReconcileSummary:
    """Settle rows left in `sending`: `sent`, back to `planned`, or `unknown`.

    Rows are grouped by (sender, text, target kind) and the channel is asked which such
    messages it created since they were claimed: a chunk with a match is `sent` (its
    msgid recorded); rows the channel answered about but never created go back to
    `planned` so this run sends them; rows nobody can answer for become `unknown` and
    are never resent. `now` is the real current instant (the channel's clock, not the
    run's business clock); rows younger than `in_flight` are waited for first.
    """
    summary = ReconcileSummary()
    if not rows:
        return summary
    now = wait_until_settled(
        rows,
        now=now or utcnow(),
        in_flight=in_flight or in_flight_time(get_settings(), getattr(channel, "name", "")),
        sleep=sleep,
    )
    groups: dict[tuple[str, str, str | None, str, str | None], list[StuckRow]] = defaultdict(list)
    for row in rows:
        groups[(row.channel, row.sender, row.content, row.target_kind, row.attachments)].append(row)
    for members in groups.values():
        reconcile_group(members, channel=channel, now=now, summary=summary, sleep=sleep)
    return summary
