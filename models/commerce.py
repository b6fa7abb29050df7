"""Tables for what we sell: products, daily deals, orders, campaigns, and behaviour events."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import JSON, Column, Index
from sqlmodel import Field, SQLModel

from models.types import UTCDateTime

# Money is stored in fen (分) as integers; templates show it with the `yuan` filter.


class Product(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    sku: str = Field(max_length=32, unique=True)
    name: str = Field(max_length=128)
    category: str = Field(max_length=16, index=True)  # a key of models.vocab.CATEGORIES
    unit: str = Field(max_length=8)  # 斤, 盒, 瓶 …
    list_price_fen: int
    # The product photo: a URL, or a file under the SOP folder (media/eggs.jpg); `deal.picture`.
    picture: str | None = Field(default=None, max_length=512)


class Deal(SQLModel, table=True):
    """One product on offer in a daily slot (早报价 morning, 晚安心选 evening) for a category."""

    __table_args__ = (Index("ix_deal_day_slot", "day", "slot", "category"),)

    id: int | None = Field(default=None, primary_key=True)
    day: dt.date
    slot: str = Field(max_length=16)  # morning | evening
    category: str = Field(max_length=16)
    region: str | None = Field(default=None, max_length=32)  # None: every region
    product_id: int = Field(foreign_key="product.id")
    price_fen: int
    list_price_fen: int
    limit_per_order: int
    stock: int
    position: int = 0


class Order(SQLModel, table=True):
    __tablename__ = "orders"
    __table_args__ = (Index("ix_orders_customer", "customer_id", "placed_at"),)

    id: int | None = Field(default=None, primary_key=True)
    # None while the order's member is not yet linked to a WeCom contact (models.members).
    customer_id: int | None = Field(default=None, foreign_key="customer.id")
    store_id: int | None = Field(default=None, foreign_key="store.id")
    placed_at: dt.datetime = Field(sa_type=UTCDateTime, index=True)
    total_fen: int
    saved_fen: int = 0  # discount against list price, for member reports
    status: str = Field(default="paid", max_length=16)  # paid | shipped | received | refunded
    # The chain's own order number and member, for orders that came in by `sopflow import`.
    order_no: str | None = Field(default=None, max_length=64, unique=True)
    member_id: int | None = Field(default=None, foreign_key="member.id", index=True)


class OrderLine(SQLModel, table=True):
    __tablename__ = "order_line"

    id: int | None = Field(default=None, primary_key=True)
    order_id: int = Field(foreign_key="orders.id", index=True)
    product_id: int = Field(foreign_key="product.id", index=True)
    quantity: int
    price_fen: int


class Campaign(SQLModel, table=True):
    """A promotion (大促) whose SOP steps run relative to `starts_at`."""

    id: int | None = Field(default=None, primary_key=True)
    code: str = Field(max_length=64, unique=True)
    name: str = Field(max_length=128)
    sop_id: str | None = Field(default=None, max_length=64)
    starts_at: dt.datetime = Field(sa_type=UTCDateTime)
    ends_at: dt.datetime = Field(sa_type=UTCDateTime)
    status: str = Field(default="draft", max_length=16)  # draft | scheduled | cancelled | done


class CampaignItem(SQLModel, table=True):
    __tablename__ = "campaign_item"

    id: int | None = Field(default=None, primary_key=True)
    campaign_id: int = Field(foreign_key="campaign.id", index=True)
    product_id: int = Field(foreign_key="product.id")
    price_fen: int
    competitor_name: str = Field(default="某东", max_length=32)
    competitor_price_fen: int
    stock: int


class Event(SQLModel, table=True):
    """Something a customer did or that happened to them; triggers drain these in batches."""

    __table_args__ = (Index("ix_event_pending", "kind", "processed_at", "id"),)

    id: int | None = Field(default=None, primary_key=True)
    kind: str = Field(
        max_length=32
    )  # contact.added | contact.deleted | favourite | browse | favourite.price_drop | order.shipped | checkin
    customer_id: int | None = Field(default=None, foreign_key="customer.id", index=True)
    product_id: int | None = Field(default=None, foreign_key="product.id")
    payload: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    occurred_at: dt.datetime = Field(sa_type=UTCDateTime)
    processed_at: dt.datetime | None = Field(default=None, sa_type=UTCDateTime)
    # The drain holding the event until it is processed; a claim older than the lease may be retaken.
    claimed_by: str | None = Field(default=None, max_length=64)
    claimed_at: dt.datetime | None = Field(default=None, sa_type=UTCDateTime)
