"""The Delivery log: record planned touches once per idempotency key and move them through their states."""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

from sqlalchemy import ColumnElement, select
from sqlmodel import Session, col

from core.clock import utcnow
from models.bulk import (
    DELIVERY,
    chunked,
    ids_in,
    insert_ignoring_duplicates,
    insert_returning,
    update_rows,
)
from models.delivery import (
    SENDABLE,
    Delivery,
    DeliveryStatus,
    Message,
    status_values,
)

_SENDABLE_STATES = status_values(SENDABLE)


@dataclass(frozen=True)
class Occurrence:
    """One run of one SOP step: what every idempotency key of the run starts with."""

    sop_id: str
    step: str
    occurrence: str  # e.g. 2026-11-24
    channel: str
    flow_run_id: str | None = None
    # No run had recorded a row of the occurrence when this one began: its batches (disjoint)
    # have no rows to look up before writing, and a concurrent run's rows still surface on insert.
    fresh: bool = False

    def key(self, target_kind: str, target_id: str) -> str:
        return f"{self.sop_id}:{self.step}:{self.occurrence}:{target_kind}:{target_id}"


class PlannedTarget(NamedTuple):
    """A target to record, with the state its row starts in (planned unless a guard decided).

    A named tuple: a batch builds one per target, and rows are written from it as they are.
    """

    target_kind: str  # group | customer
    target_id: str  # chat_id | external_userid
    sender: str | None
    group_id: int | None = None
    customer_id: int | None = None
    status: str = DeliveryStatus.PLANNED.value
    reason: str | None = None
    not_before: dt.datetime | None = None
    message_id: int | None = None


class RecordedTouch(NamedTuple):
    """A Delivery row as recorded for a target, with its state before this run touched it."""

    delivery_id: int
    target_id: str
    status: str
    not_before: dt.datetime | None = None
    new: bool = False  # written by this call


def existing_rows(
    occurrence: Occurrence, targets: Iterable[PlannedTarget], *, session: Session
) -> dict[str, RecordedTouch]:
    """target_id -> the row this occurrence already has for each of `targets` that has one
    (none before a fresh occurrence's batch is written)."""
    return {} if occurrence.fresh else rows_of(occurrence, targets, session=session)


def rows_of(
    occurrence: Occurrence, targets: Iterable[PlannedTarget], *, session: Session
) -> dict[str, RecordedTouch]:
    """target_id -> the row recorded under each target's key, looked up in the database."""
    keys = [occurrence.key(t.target_kind, t.target_id) for t in targets]
    found: dict[str, RecordedTouch] = {}
    for part in chunked(keys):
        rows = session.execute(
            select(Delivery.id, Delivery.target_id, Delivery.status, Delivery.not_before).where(
                col(Delivery.idempotency_key).in_(part)
            )
        )
        found.update((row[1], RecordedTouch(*row)) for row in rows)
    return found


DELIVERY_COLUMNS = (
    "idempotency_key",
    "sop_id",
    "step",
    "occurrence",
    "channel",
    "flow_run_id",
    "planned_at",
    "updated_at",
    *PlannedTarget._fields,
)


def record_planned(
    occurrence: Occurrence,
    targets: Sequence[PlannedTarget],
    *,
    session: Session,
    now: dt.datetime | None = None,
) -> list[RecordedTouch]:
    """Record a row per target, in the state it carries, unless its key exists; return every target's
    row (rows that existed with the state they have, new rows with the state they were given)."""
    now = now or utcnow()
    o = occurrence
    shared = (o.sop_id, o.step, o.occurrence, o.channel, o.flow_run_id, now, now)
    rows = [(o.key(t.target_kind, t.target_id), *shared, *t) for t in targets]
    inserted = insert_returning(
        session, DELIVERY, DELIVERY_COLUMNS, rows, ("id", "target_id", "status")
    )
    recorded = [RecordedTouch(id_, target, status, None, True) for id_, target, status in inserted]
    if len(recorded) < len(targets):  # some keys existed already
        new = {row.target_id for row in recorded}
        recorded += rows_of(
            occurrence, [t for t in targets if t.target_id not in new], session=session
        ).values()
    return recorded


def to_send(occurrence: Occurrence) -> list[ColumnElement[bool]]:
    """WHERE clauses for the occurrence's rows still to send: due now or waiting for quiet hours."""
    return [
        col(Delivery.sop_id) == occurrence.sop_id,
        col(Delivery.step) == occurrence.step,
        col(Delivery.occurrence) == occurrence.occurrence,
        col(Delivery.status).in_(_SENDABLE_STATES),
    ]


def has_rows(occurrence: Occurrence, *, session: Session) -> bool:
    """Whether any run of the occurrence recorded a row yet."""
    statement = select(Delivery.id).where(
        col(Delivery.sop_id) == occurrence.sop_id,
        col(Delivery.occurrence) == occurrence.occurrence,
        col(Delivery.step) == occurrence.step,
    )
    return session.execute(statement.limit(1)).first() is not None


def message_hash(content: str, attachments: str | None = None) -> str:
    """What identifies a Message: its text, and its attachments (as `channels.attachments.dumps`
    wrote them) when it has any, so a text alone keeps the hash it always had."""
    identity = content if attachments is None else f"{content}\0{attachments}"
    return hashlib.sha256(identity.encode("utf-8")).hexdigest()


def store_message(
    content: str,
    *,
    session: Session,
    now: dt.datetime | None = None,
    attachments: str | None = None,
) -> int:
    """The id of the Message row holding `content` (and `attachments`), created on first use."""
    content_hash = message_hash(content, attachments)
    row = {"content_hash": content_hash, "content": content, "created_at": now or utcnow()}
    table, rows = Message.__table__, [{**row, "attachments": attachments}]  # type: ignore[attr-defined]
    bind = session.get_bind()
    if bind.dialect.name == "postgresql":
        # Committed at once, on a connection of its own: batches recorded at the same time (threads,
        # runners of one occurrence) meet the same texts in different orders, and inserting them
        # inside their long transactions deadlocks on the unique hash. A Message is immutable and
        # shared, so one kept after its batch failed is harmless. (SQLite's one writer: not there.)
        with Session(bind.engine) as own:
            insert_ignoring_duplicates(own, table, rows)
            own.commit()
    else:
        insert_ignoring_duplicates(session, table, rows)
    return int(
        session.execute(
            select(Message.id).where(col(Message.content_hash) == content_hash)
        ).scalar_one()
    )


def attach_messages(delivery_ids_by_message: dict[int, list[int]], *, session: Session) -> None:
    """Point each Delivery row at the Message it will send."""
    for message_id, ids in delivery_ids_by_message.items():
        for part in chunked(ids):
            update_rows(session, part, {"message_id": message_id})


def set_status(
    delivery_ids: Iterable[int],
    status: DeliveryStatus,
    *,
    session: Session,
    only_from: Sequence[DeliveryStatus] | None = None,
    **values: Any,
) -> int:
    """Move rows to `status` (optionally only rows now in `only_from`); returns rows changed."""
    ids = list(delivery_ids)
    values = {"status": status.value, "updated_at": utcnow(), **values}
    states = [s.value for s in only_from or ()]
    changed = 0
    for part in chunked(ids):
        changed += int(update_rows(session, part, values, only_from=states).rowcount or 0)
    return changed


def settle_claimed(
    delivery_ids: Iterable[int],
    status: DeliveryStatus,
    *,
    session: Session,
    flow_run_id: str | None,
    **values: Any,
) -> int:
    """Write a call's outcome to the rows it sent: only rows still `sending` and claimed by
    `flow_run_id` (when given). A row another runner reconciled or claimed again since (this
    runner's lease lapsed mid-call) is left as that runner wrote it. Returns rows changed."""
    ids = list(delivery_ids)
    values = {"status": status.value, "updated_at": utcnow(), **values}
    sending = [DeliveryStatus.SENDING.value]
    changed = 0
    for part in chunked(ids):
        result = update_rows(session, part, values, only_from=sending, claimed_by=flow_run_id)
        changed += int(result.rowcount or 0)
    return changed


def claim_for_sending(
    delivery_ids: Iterable[int], *, session: Session, flow_run_id: str | None = None
) -> set[int]:
    """Move sendable rows to `sending` (by this flow run) and return the ids this caller claimed.

    Two runs of one occurrence racing for the same rows cannot both claim a row, so
    nothing is sent twice.
    """
    ids = list(delivery_ids)
    if not ids:
        return set()
    values = {"status": DeliveryStatus.SENDING.value, "updated_at": utcnow(), "reason": None}
    if flow_run_id:
        values["flow_run_id"] = flow_run_id
    claimed: set[int] = set()
    for part in chunked(ids):
        result = update_rows(session, part, values, only_from=_SENDABLE_STATES, returning_ids=True)
        claimed.update(id_ for (id_,) in result.fetchall())
    return claimed


def sendable_ids(delivery_ids: Iterable[int], *, session: Session) -> set[int]:
    """Those of `delivery_ids` still waiting to be sent (planned, or failed before)."""
    ids = list(delivery_ids)
    found: set[int] = set()
    for part in chunked(ids):
        found.update(
            session.execute(
                select(Delivery.id).where(
                    ids_in(part, session), col(Delivery.status).in_(_SENDABLE_STATES)
                )
            ).scalars()
        )
    return found
