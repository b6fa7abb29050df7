"""Trigger steps that wait (`after`, `send_at`): one row per event, SOP and step, claimed when due."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Index, UniqueConstraint
from sqlmodel import Field, SQLModel

from models.types import UTCDateTime

# waiting → sent through the 1:1 pipeline (`done`; its Delivery row says what became of it),
# posted to a robot (`sending` → `sent`), or `skipped` / `failed` with a reason.
DUE_STATUSES = ("waiting", "sending", "done", "sent", "skipped", "failed")


class DueStep(SQLModel, table=True):
    """A trigger step an event made due later; claimed by one drain at a time, settled once."""

    __tablename__ = "due_step"
    __table_args__ = (
        UniqueConstraint("event_id", "sop_id", "step", name="uq_due_step"),
        Index("ix_due_step_due", "status", "due_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    event_id: int = Field(foreign_key="event.id")
    sop_id: str = Field(max_length=64)
    step: str = Field(max_length=64)
    due_at: dt.datetime = Field(sa_type=UTCDateTime)
    status: str = Field(default="waiting", max_length=16)
    reason: str | None = Field(default=None, max_length=200)
    # The drain holding the row until it is settled; a claim older than the lease may be retaken.
    claimed_by: str | None = Field(default=None, max_length=64)
    claimed_at: dt.datetime | None = Field(default=None, sa_type=UTCDateTime)
    settled_at: dt.datetime | None = Field(default=None, sa_type=UTCDateTime)
