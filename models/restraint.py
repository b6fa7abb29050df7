"""Tables for restraint across SOPs: each SOP's priority, and day-ahead cap reservations."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import CheckConstraint, Index, UniqueConstraint
from sqlmodel import Field, SQLModel

from models.types import UTCDateTime


class SopPriority(SQLModel, table=True):
    """The priority an SOP last planned with, so caps know which Delivery rows are `service`."""

    __tablename__ = "sop_priority"

    sop_id: str = Field(max_length=64, primary_key=True)
    priority: str = Field(max_length=8)  # service | high | normal | low
    updated_at: dt.datetime = Field(sa_type=UTCDateTime)


class CapReservation(SQLModel, table=True):
    """A customer's or a group's place in the queue for one SOP step's slot on one local day
    (see engine/reservations.py); like Delivery, exactly one of customer_id and group_id is set."""

    __tablename__ = "cap_reservation"
    __table_args__ = (
        UniqueConstraint("day", "customer_id", "sop_id", "step", name="uq_cap_reservation"),
        UniqueConstraint("day", "group_id", "sop_id", "step", name="uq_cap_reservation_group"),
        CheckConstraint(
            "(customer_id IS NULL) <> (group_id IS NULL)", name="ck_cap_reservation_target"
        ),
        Index("ix_cap_reservation_sop", "day", "sop_id"),
    )

    id: int | None = Field(default=None, primary_key=True)
    day: dt.date
    customer_id: int | None = Field(default=None, foreign_key="customer.id")
    group_id: int | None = Field(default=None, foreign_key="customer_group.id")
    sop_id: str = Field(max_length=64)
    step: str = Field(max_length=64)
    priority_rank: int  # 1 high, 2 normal, 3 low (service never reserves)
    slot_at: dt.datetime = Field(sa_type=UTCDateTime)  # when the step is scheduled that day
    won: bool = False  # within the target's remaining cap when the day was planned
    created_at: dt.datetime = Field(sa_type=UTCDateTime)
