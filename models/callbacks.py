"""WeCom callbacks as received: one row per delivered event, recorded before it is processed."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Index, Text, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Field, Session, SQLModel, col

from models.types import UTCDateTime

MAX_ERROR = 500  # characters of a processing error kept on the row


class WecomCallback(SQLModel, table=True):
    """A decrypted WeCom event (the XML as it came), and how far processing got with it.

    `delivery_key` identifies the event, not the HTTP request: WeCom re-posts an event it got no
    answer for with the same plaintext (only the encryption's random prefix differs), so a retry
    hashes to the same key and is recorded once.
    """

    __tablename__ = "wecom_callback"
    __table_args__ = (Index("ix_wecom_callback_pending", "processed_at", "id"),)

    id: int | None = Field(default=None, primary_key=True)
    delivery_key: str = Field(max_length=64, unique=True)
    event: str = Field(max_length=48)
    change_type: str | None = Field(default=None, max_length=48)
    xml: str = Field(sa_type=Text)
    received_at: dt.datetime = Field(sa_type=UTCDateTime)
    processed_at: dt.datetime | None = Field(default=None, sa_type=UTCDateTime)
    attempts: int = 0
    last_error: str | None = Field(default=None, max_length=MAX_ERROR)


def record_callback(
    *,
    delivery_key: str,
    event: str,
    change_type: str | None,
    xml: str,
    now: dt.datetime,
    session: Session,
) -> bool:
    """Record a received event unless its delivery is already recorded; True when it is new."""
    values = {
        "delivery_key": delivery_key,
        "event": event[:48],
        "change_type": change_type[:48] if change_type else None,
        "xml": xml,
        "received_at": now,
        "attempts": 0,
    }
    dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
    statement = (
        dialect.insert(WecomCallback)
        .values(**values)
        .on_conflict_do_nothing(index_elements=["delivery_key"])
    )
    result = session.execute(statement)
    return bool(result.rowcount)  # type: ignore[attr-defined]


def pending_callbacks(*, limit: int, max_attempts: int, session: Session) -> list[WecomCallback]:
    """Recorded events not yet processed (and not given up on), oldest first."""
    return list(
        session.execute(
            select(WecomCallback)
            .where(
                col(WecomCallback.processed_at).is_(None),
                col(WecomCallback.attempts) < max_attempts,
            )
            .order_by(col(WecomCallback.id))
            .limit(limit)
        ).scalars()
    )


def mark_processed(callback_id: int, *, now: dt.datetime, session: Session) -> bool:
    """Mark the event processed, first thing in the transaction that applies it (so its row is
    locked until the effects commit); False when another worker processed it already."""
    result = session.execute(
        update(WecomCallback)
        .where(col(WecomCallback.id) == callback_id, col(WecomCallback.processed_at).is_(None))
        .values(processed_at=now, attempts=WecomCallback.attempts + 1, last_error=None)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


def mark_failed(callback_id: int, error: str, *, session: Session) -> None:
    """Processing failed; the raw event stays for the next attempt."""
    session.execute(
        update(WecomCallback)
        .where(col(WecomCallback.id) == callback_id)
        .values(attempts=WecomCallback.attempts + 1, last_error=error[:MAX_ERROR])
    )
