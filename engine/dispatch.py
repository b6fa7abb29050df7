"""Send recorded touches through a channel, one mass-message call per sender and text, and record each outcome."""

from __future__ import annotations

import datetime as dt
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import func, or_, select
from sqlmodel import Session, col

from channels.base import Channel, MassMessage, chunk_targets
from core.clock import utcnow
from core.errors import ChannelError, ChannelTransient, ChannelUnreached
from engine.compose import Composed
from engine.timing import gc_paused
from models.db import session_scope
from models.deliveries import Occurrence, claim_for_sending, sendable_ids, set_status
from models.delivery import SENDABLE, Delivery, DeliveryStatus, Message

UNANSWERED = "no answer from WeCom; reconcile before any resend"


@dataclass
class DispatchResult:
    outcomes: Counter[tuple[str, str]] = field(default_factory=Counter)  # (status, reason) -> rows
    calls: int = 0


def dispatch(
    channel: Channel, chat_type: str, batch: Sequence[Composed], *, flow_run_id: str | None = None
) -> DispatchResult:
    """Send the batch's touches that are still sendable (see `send_grouped`)."""
    with session_scope(readonly=True) as session:
        still_sendable = sendable_ids([c.delivery_id for c in batch], session=session)
    return send_grouped(
        channel,
        chat_type,
        [c for c in batch if c.delivery_id in still_sendable],
        flow_run_id=flow_run_id,
    )


def send_grouped(
    channel: Channel, chat_type: str, batch: Sequence[Composed], *, flow_run_id: str | None = None
) -> DispatchResult:
    """Group touches by (sender, text) into mass-message calls within the channel's limits.

    Rows move planned → sending → sent | failed, one claim per call (each call's outcome is
    written with the next one's claim); a transient failure is re-raised after the batch so the
    task retries only the rows that are still sendable.
    """
    result = DispatchResult()
    outcomes = Outcomes(result, flow_run_id)
    transient: ChannelTransient | None = None
    groups: dict[tuple[str, str], list[Composed]] = defaultdict(list)
    for composed in batch:
        groups[(composed.sender or "", composed.content)].append(composed)
    try:
        for (sender, content), members in groups.items():
            for chunk in chunk_targets(members, channel.max_targets(chat_type)):
                error = _send_chunk(channel, chat_type, sender, content, chunk, outcomes)
                if isinstance(error, ChannelTransient):
                    transient = error
    finally:
        outcomes.settle()
    if transient is not None:
        raise transient
    return result


class Outcomes:
    """What the calls made answered, recorded in `result` at once and written to the rows with
    the next call's claim: one transaction per call. A crash in between leaves them `sending`,
    as a crash during the call would, for reconciliation to settle."""

    def __init__(self, result: DispatchResult, flow_run_id: str | None = None) -> None:
        self.result = result
        self.flow_run_id = flow_run_id  # rows claimed are marked with the run that sent them
        self.updates: list[tuple[list[int], DeliveryStatus, dict[str, Any]]] = []

    def add(self, ids: list[int], status: DeliveryStatus, reason: str = "", **values: Any) -> None:
        if ids:
            self.updates.append((ids, status, {"reason": reason or None, **values}))
            self.result.outcomes[(status.value, reason)] += len(ids)

    def write(self, session: Session) -> None:
        for ids, status, values in self.updates:
            set_status(ids, status, session=session, **values)

    def clear(self) -> None:
        """Forget the outcomes once their transaction committed."""
        self.updates.clear()

    def settle(self) -> None:
        """Write what the last calls answered, in a transaction of its own."""
        if self.updates:
            with session_scope() as session:
                self.write(session)
            self.clear()


def _send_chunk(
    channel: Channel,
    chat_type: str,
    sender: str,
    content: str,
    chunk: Sequence[Composed],
    outcomes: Outcomes,
) -> ChannelError | None:
    with session_scope() as session:
        outcomes.write(session)
        claimed = claim_for_sending(
            [c.delivery_id for c in chunk], session=session, flow_run_id=outcomes.flow_run_id
        )
    outcomes.clear()
    chunk = [c for c in chunk if c.delivery_id in claimed]
    if not chunk:
        return None
    ids = [c.delivery_id for c in chunk]
    message = MassMessage(chat_type, sender, tuple(c.target_id for c in chunk), content)  # type: ignore[arg-type]
    outcomes.result.calls += 1
    try:
        receipt = channel.send_mass(message)
    except ChannelError as error:
        _record_failure(ids, error, outcomes)
        return error
    refused = set(receipt.fail_list)
    outcomes.add(
        [c.delivery_id for c in chunk if c.target_id not in refused],
        DeliveryStatus.SENT,
        msgid=receipt.msgid,
        sent_at=utcnow(),
        errcode=0,
    )
    outcomes.add(
        [c.delivery_id for c in chunk if c.target_id in refused],
        DeliveryStatus.FAILED,
        "refused by WeCom (fail_list)",
        msgid=receipt.msgid,
    )
    return None


def _record_failure(ids: list[int], error: ChannelError, outcomes: Outcomes) -> None:
    """A refused call fails its rows, and so does one that provably never reached WeCom (a retry or
    re-run sends them); a call that got no answer stays `sending` for reconciliation."""
    if is_unanswered(error):
        outcomes.add(ids, DeliveryStatus.SENDING, UNANSWERED)
    else:
        outcomes.add(ids, DeliveryStatus.FAILED, str(error)[:255], errcode=error.errcode)


def is_unanswered(error: ChannelError) -> bool:
    """Whether WeCom may have carried out the call: it was sent, but no answer came back."""
    return (
        isinstance(error, ChannelTransient)
        and not isinstance(error, ChannelUnreached)
        and error.errcode is None
        and error.http_status is None
    )


def pending_senders(
    occurrence: Occurrence, *, now: dt.datetime, session: Session
) -> dict[str, int]:
    """Rendered rows of the occurrence waiting to be sent now, counted per sender."""
    statement = (
        select(Delivery.sender, func.count())
        .where(*_pending_clauses(occurrence, now))
        .group_by(Delivery.sender)
    )
    return {sender or "": int(rows) for sender, rows in session.execute(statement).all()}


def _pending_clauses(occurrence: Occurrence, now: dt.datetime) -> list[Any]:
    # `|| ''` reads through ix_delivery_status, the rows waiting to be sent, rather than every row
    # of the occurrence: a re-run of a finished occurrence finds none at once.
    return [
        (col(Delivery.sop_id) + "") == occurrence.sop_id,
        col(Delivery.occurrence) == occurrence.occurrence,
        col(Delivery.step) == occurrence.step,
        col(Delivery.status).in_([s.value for s in SENDABLE]),
        col(Delivery.message_id).is_not(None),
        or_(col(Delivery.not_before).is_(None), col(Delivery.not_before) <= now),
    ]


def sender_buckets(rows_per_sender: dict[str, int], rows_per_bucket: int) -> list[list[str]]:
    """Senders split into buckets of about `rows_per_bucket` rows; a sender is never split."""
    buckets: list[list[str]] = [[]]
    filled = 0
    for sender, rows in sorted(rows_per_sender.items()):
        if buckets[-1] and filled + rows > rows_per_bucket:
            buckets.append([])
            filled = 0
        buckets[-1].append(sender)
        filled += rows
    return [bucket for bucket in buckets if bucket]


def pending_touches(
    occurrence: Occurrence, senders: Sequence[str], *, now: dt.datetime, session: Session
) -> list[Composed]:
    """The occurrence's rendered rows waiting to be sent by `senders`, with their texts, in the
    order the status index holds them (no sort); `send_grouped` groups them per call.

    Texts are read once per Message and shared by its rows.
    """
    connection = session.connection()  # Core rows: no ORM bookkeeping for 10^5 of them
    rows = connection.execute(
        select(Delivery.id, Delivery.target_id, Delivery.sender, Delivery.message_id).where(
            *_pending_clauses(occurrence, now), col(Delivery.sender).in_(list(senders))
        )
    ).all()
    used = list({message_id for *_, message_id in rows})
    statement = select(Message.id, Message.content).where(col(Message.id).in_(used))
    texts = dict(connection.execute(statement).tuples().all())
    return [Composed(id_, target, sender, texts[message]) for id_, target, sender, message in rows]


def send_pending(
    channel: Channel,
    occurrence: Occurrence,
    chat_type: str,
    senders: Sequence[str],
    *,
    now: dt.datetime,
) -> DispatchResult:
    """Send every recorded, rendered and due row of these senders for the occurrence."""
    with gc_paused(), session_scope(readonly=True) as session:
        touches = pending_touches(occurrence, senders, now=now, session=session)
    if not touches:
        return DispatchResult()
    return send_grouped(channel, chat_type, touches, flow_run_id=occurrence.flow_run_id)


def dispatch_plan(
    occurrence: Occurrence, *, now: dt.datetime, rows_per_bucket: int
) -> list[list[str]]:
    """The occurrence's senders split into dispatch batches of about `rows_per_bucket` rows."""
    with session_scope(readonly=True) as session:
        return sender_buckets(
            pending_senders(occurrence, now=now, session=session), rows_per_bucket
        )
