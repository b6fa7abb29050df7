"""Tables for the review (复盘): which touch each order is attributed to, stored so reports repeat."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Index
from sqlmodel import Field, SQLModel

from models.types import UTCDateTime


class Attribution(SQLModel, table=True):
    """An order and the last delivered touch before it within its SOP's window (last-touch)."""

    __table_args__ = (
        Index("ix_attribution_placed", "placed_at"),
        Index("ix_attribution_delivery", "delivery_id"),
    )

    order_id: int = Field(foreign_key="orders.id", primary_key=True)
    delivery_id: int = Field(foreign_key="delivery.id")
    sop_id: str = Field(max_length=64)
    step: str = Field(max_length=64)
    channel: str = Field(max_length=16)
    customer_id: int = Field(foreign_key="customer.id")
    touched_at: dt.datetime = Field(sa_type=UTCDateTime)  # the touch's sent_at
    placed_at: dt.datetime = Field(sa_type=UTCDateTime)  # the order's placed_at
    revenue_fen: int
    window_hours: int  # the SOP's attribution window when this was computed
    attributed_at: dt.datetime = Field(sa_type=UTCDateTime)
