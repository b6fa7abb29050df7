"""The Delivery log: record planned touches once per idempotency key and move them through their states."""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Table, func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session, col

from models.delivery import Delivery, DeliveryStatus, Message
from sopflow.clock import utcnow

# Rows in these states may be (re)sent by a run of their occurrence.
SENDABLE = (DeliveryStatus.PLANNED, DeliveryStatus.FAILED)


@dataclass(frozen=True)
class Occurrence:
    """One run of one SOP step: what every idempotency key of the run starts with."""

    sop_id: str
    step: str
    occurrence: str  # e.g. 2026-11-24
    channel: str
    flow_run_id: str | None = None

    def key(self, target_kind: str, target_id: str) -> str:
        return f"{self.sop_id}:{self.step}:{self.occurrence}:{target_kind}:{target_id}"


@dataclass(frozen=True)
class PlannedTarget:
    """A target to record as planned."""

    target_kind: str  # group | customer
    target_id: str  # chat_id | external_userid
    sender: str | None
    group_id: int | None = None
    customer_id: int | None = None


@dataclass(frozen=True)
class RecordedTouch:
    """A Delivery row as recorded for a target, with its state before this run touched it."""

    delivery_id: int
    target_id: str
    status: str


def insert_ignoring_duplicates(
    session: Session, table: Table, rows: Sequence[dict[str, Any]]
) -> None:
    """INSERT rows, silently keeping the existing row when a unique key already exists."""
    if not rows:
        return
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    session.execute(insert(table).on_conflict_do_nothing(), list(rows))


def record_planned(
    occurrence: Occurrence,
    targets: Sequence[PlannedTarget],
    *,
    session: Session,
    now: dt.datetime | None = None,
) -> list[RecordedTouch]:
    """Record a `planned` row per target unless its key exists; return every target's row."""
    now = now or utcnow()
    rows = [
        {
            "idempotency_key": occurrence.key(t.target_kind, t.target_id),
            "sop_id": occurrence.sop_id,
            "step": occurrence.step,
            "occurrence": occurrence.occurrence,
            "target_kind": t.target_kind,
            "target_id": t.target_id,
            "group_id": t.group_id,
            "customer_id": t.customer_id,
            "channel": occurrence.channel,
            "sender": t.sender,
            "status": DeliveryStatus.PLANNED.value,
            "flow_run_id": occurrence.flow_run_id,
            "planned_at": now,
            "updated_at": now,
        }
        for t in targets
    ]
    insert_ignoring_duplicates(session, Delivery.__table__, rows)  # type: ignore[arg-type]
    keys = [row["idempotency_key"] for row in rows]
    found = session.execute(
        select(Delivery.id, Delivery.target_id, Delivery.status).where(
            col(Delivery.idempotency_key).in_(keys)
        )
    ).all()
    return [RecordedTouch(*row) for row in found]


def store_message(content: str, *, session: Session, now: dt.datetime | None = None) -> int:
    """The id of the Message row holding `content`, created on first use."""
    content_hash = hashlib.sha256(content.encode("utf-8")).hexdigest()
    insert_ignoring_duplicates(
        session,
        Message.__table__,  # type: ignore[arg-type]
        [{"content_hash": content_hash, "content": content, "created_at": now or utcnow()}],
    )
    return int(
        session.execute(
            select(Message.id).where(col(Message.content_hash) == content_hash)
        ).scalar_one()
    )


def attach_messages(delivery_ids_by_message: dict[int, list[int]], *, session: Session) -> None:
    """Point each Delivery row at the Message it will send."""
    for message_id, ids in delivery_ids_by_message.items():
        session.execute(
            update(Delivery).where(col(Delivery.id).in_(ids)).values(message_id=message_id)
        )


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
    if not ids:
        return 0
    statement = (
        update(Delivery)
        .where(col(Delivery.id).in_(ids))
        .values(status=status.value, updated_at=utcnow(), **values)
    )
    if only_from:
        statement = statement.where(col(Delivery.status).in_([s.value for s in only_from]))
    return int(session.execute(statement).rowcount or 0)  # type: ignore[attr-defined]


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
    statement = (
        update(Delivery)
        .where(col(Delivery.id).in_(ids), col(Delivery.status).in_([s.value for s in SENDABLE]))
        .values(
            status=DeliveryStatus.SENDING.value,
            updated_at=utcnow(),
            reason=None,
            **({"flow_run_id": flow_run_id} if flow_run_id else {}),
        )
        .returning(Delivery.id)
    )
    return {row[0] for row in session.execute(statement).all()}


def sendable_ids(delivery_ids: Iterable[int], *, session: Session) -> set[int]:
    """Those of `delivery_ids` still waiting to be sent (planned, or failed before)."""
    ids = list(delivery_ids)
    if not ids:
        return set()
    rows = session.execute(
        select(Delivery.id).where(
            col(Delivery.id).in_(ids), col(Delivery.status).in_([s.value for s in SENDABLE])
        )
    ).all()
    return {row[0] for row in rows}


def outcome_counts(
    sop_id: str, step: str, occurrence: str, *, session: Session
) -> list[tuple[str, str, int]]:
    """(status, reason, rows) for one occurrence of one step, most common first."""
    statement = (
        select(Delivery.status, func.coalesce(Delivery.reason, ""), func.count())
        .where(
            col(Delivery.sop_id) == sop_id,
            col(Delivery.step) == step,
            col(Delivery.occurrence) == occurrence,
        )
        .group_by(Delivery.status, func.coalesce(Delivery.reason, ""))
        .order_by(func.count().desc())
    )
    return [
        (status, reason, int(rows)) for status, reason, rows in session.execute(statement).all()
    ]
