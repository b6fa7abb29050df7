"""Tables for what we sent: rendered messages by content hash, and the Delivery outcome log."""

from __future__ import annotations

import datetime as dt
from enum import StrEnum

from sqlalchemy import Index, Text
from sqlmodel import Field, SQLModel

from models.types import UTCDateTime

# The reason a skipped row records for a customer held out of an SOP (engine/guard.py); the
# review (review/kpis.py) reads it back to compare the held-out with the treated.
HOLDOUT = "holdout"


class DeliveryStatus(StrEnum):
    PLANNED = "planned"
    SENDING = "sending"
    SENT = "sent"  # WeCom accepted the task; the staff member still has to confirm it
    FAILED = "failed"
    SKIPPED = "skipped"
    DELIVERED = "delivered"
    NOT_A_FRIEND = "not_a_friend"
    OVER_WECOM_LIMIT = "over_wecom_limit"
    UNCONFIRMED = "unconfirmed"
    UNKNOWN = "unknown"  # caught mid-send and not reconcilable; never resent


# The status sets, each defined here once. A row that is neither sendable nor `sending` is done
# for its idempotency key: a re-run of its occurrence never sends it again.
_S = DeliveryStatus
# A run of the row's occurrence may (re)send it: `failed` means WeCom accepted nothing.
SENDABLE: tuple[DeliveryStatus, ...] = (_S.PLANNED, _S.FAILED)
SENDABLE_VALUES = frozenset(s.value for s in SENDABLE)
# What keeps a run from being complete (`unknown` only while WeCom never gave it a msgid).
NOT_FINAL: tuple[DeliveryStatus, ...] = (*SENDABLE, _S.SENDING, _S.UNKNOWN)
# May have reached, or will reach, the target: counts against the frequency caps (skipped,
# failed, not_a_friend, over_wecom_limit and unconfirmed never did).
COUNTED: tuple[DeliveryStatus, ...] = (_S.PLANNED, _S.SENDING, _S.SENT, _S.DELIVERED, _S.UNKNOWN)


def status_values(statuses: tuple[DeliveryStatus, ...]) -> tuple[str, ...]:
    """The statuses as stored in `delivery.status`, for SQL."""
    return tuple(s.value for s in statuses)


class Message(SQLModel, table=True):
    """A rendered text and its attachments; identical ones share one row."""

    id: int | None = Field(default=None, primary_key=True)
    content_hash: str = Field(max_length=64, unique=True)
    content: str = Field(sa_type=Text)
    attachments: str | None = Field(default=None, sa_type=Text)  # channels.attachments.dumps
    created_at: dt.datetime = Field(sa_type=UTCDateTime)


class Delivery(SQLModel, table=True):
    """One planned touch of one target (a customer or a group) and what became of it."""

    __table_args__ = (
        Index("ix_delivery_occurrence", "sop_id", "occurrence", "step"),
        Index("ix_delivery_customer_time", "customer_id", "planned_at"),
        Index("ix_delivery_group_time", "group_id", "planned_at"),
        Index("ix_delivery_status", "status"),
        Index("ix_delivery_msgid", "msgid"),
        # The review reads a period's rows by planned_at; an occurrence's rows share one value,
        # so writes append to this index's end.
        Index("ix_delivery_planned", "planned_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    idempotency_key: str = Field(max_length=255, unique=True)
    sop_id: str = Field(max_length=64)
    step: str = Field(max_length=64)
    occurrence: str = Field(max_length=64)  # e.g. 2026-11-24, or a campaign code + step
    target_kind: str = Field(max_length=8)  # group | customer
    target_id: str = Field(max_length=64)  # chat_id or external_userid
    customer_id: int | None = Field(default=None, foreign_key="customer.id")
    group_id: int | None = Field(default=None, foreign_key="customer_group.id")
    channel: str = Field(max_length=16)
    sender: str | None = Field(default=None, max_length=64)
    message_id: int | None = Field(default=None, foreign_key="message.id")
    status: str = Field(default=DeliveryStatus.PLANNED, max_length=16)
    reason: str | None = Field(default=None, max_length=255)
    errcode: int | None = None
    msgid: str | None = Field(default=None, max_length=128)
    flow_run_id: str | None = Field(default=None, max_length=64)
    planned_at: dt.datetime = Field(sa_type=UTCDateTime)
    not_before: dt.datetime | None = Field(default=None, sa_type=UTCDateTime)
    sent_at: dt.datetime | None = Field(default=None, sa_type=UTCDateTime)
    updated_at: dt.datetime = Field(sa_type=UTCDateTime)


class MassTask(SQLModel, table=True):
    """A mass message a staff member has to confirm, with the reminders sent about it."""

    __tablename__ = "mass_task"

    msgid: str = Field(primary_key=True, max_length=128)
    sender: str = Field(max_length=64)
    reminders_total: int = 0
    reminders_in_window: int = 0
    window_started_at: dt.datetime | None = Field(default=None, sa_type=UTCDateTime)
    last_reminded_at: dt.datetime | None = Field(default=None, sa_type=UTCDateTime)
    # When WeCom reports the staff member confirmed it (get_groupmsg_task send_time), for the review.
    confirmed_at: dt.datetime | None = Field(default=None, sa_type=UTCDateTime)
