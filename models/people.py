"""Tables for who we talk to: stores, staff, customers, tags, opt-outs, groups, stage history."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Index
from sqlmodel import Field, SQLModel

from models.types import UTCDateTime


class Store(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    code: str = Field(max_length=32, unique=True)
    name: str = Field(max_length=128)
    city: str = Field(max_length=32, index=True)


class Staff(SQLModel, table=True):
    """A WeCom member (导购 / 专属顾问) who owns customers and groups and confirms mass messages."""

    id: int | None = Field(default=None, primary_key=True)
    userid: str = Field(max_length=64, unique=True)
    name: str = Field(max_length=64)
    store_id: int | None = Field(default=None, foreign_key="store.id", index=True)
    role: str = Field(default="advisor", max_length=16)


class Customer(SQLModel, table=True):
    """An external contact (客户) of one staff member."""

    __table_args__ = (
        Index("ix_customer_stage", "stage", "stage_since"),
        Index("ix_customer_owner", "owner_staff_id"),
    )

    id: int | None = Field(default=None, primary_key=True)
    external_userid: str = Field(max_length=64, unique=True)
    name: str = Field(max_length=64)
    phone: str | None = Field(default=None, max_length=20)  # never logged or sent anywhere
    gender: str | None = Field(default=None, max_length=8)
    birthday: dt.date | None = None
    region: str = Field(max_length=32, index=True)
    store_id: int | None = Field(default=None, foreign_key="store.id")
    owner_staff_id: int | None = Field(default=None, foreign_key="staff.id")
    tier: str = Field(default="bronze", max_length=16, index=True)
    is_paid_member: bool = False
    stage: str = Field(default="new", max_length=16)
    stage_since: dt.datetime = Field(sa_type=UTCDateTime)
    added_at: dt.datetime = Field(sa_type=UTCDateTime)
    contact_state: str = Field(default="active", max_length=16)
    # The `state` of the contact way (渠道活码) the customer was added through, e.g. store-bj01.
    source_state: str | None = Field(default=None, max_length=30)
    # The WeChat unionid, when the contact sync knows it: links the chain's members (models.members).
    unionid: str | None = Field(default=None, max_length=64, index=True)
    deleted_at: dt.datetime | None = Field(default=None, sa_type=UTCDateTime)
    # Summaries of the order history, refreshed with the stage classification.
    order_count: int = 0
    total_spent_fen: int = 0
    last_order_at: dt.datetime | None = Field(default=None, sa_type=UTCDateTime, index=True)


class Tag(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=64, unique=True)
    group_name: str = Field(max_length=32)  # 属性 / 行为 / 渠道 …
    source: str = Field(default="manual", max_length=8)  # auto | manual


class CustomerTag(SQLModel, table=True):
    __tablename__ = "customer_tag"
    __table_args__ = (Index("ix_customer_tag_tag", "tag_id", "customer_id"),)

    customer_id: int = Field(foreign_key="customer.id", primary_key=True)
    tag_id: int = Field(foreign_key="tag.id", primary_key=True)
    source: str = Field(default="manual", max_length=8)
    created_at: dt.datetime = Field(sa_type=UTCDateTime)


class OptOut(SQLModel, table=True):
    """A customer's wish not to receive one category of promotions (屏蔽家电促销)."""

    __tablename__ = "opt_out"

    customer_id: int = Field(foreign_key="customer.id", primary_key=True)
    category: str = Field(max_length=16, primary_key=True)
    created_at: dt.datetime = Field(sa_type=UTCDateTime)


class CustomerGroup(SQLModel, table=True):
    """A customer group chat (社群) run by one staff member, by region and theme."""

    __tablename__ = "customer_group"
    __table_args__ = (Index("ix_customer_group_theme_region", "theme", "region"),)

    id: int | None = Field(default=None, primary_key=True)
    chat_id: str = Field(max_length=64, unique=True)
    name: str = Field(max_length=128)
    region: str = Field(max_length=32)
    theme: str = Field(max_length=16)
    owner_staff_id: int = Field(foreign_key="staff.id", index=True)
    store_id: int | None = Field(default=None, foreign_key="store.id")
    member_count: int = 0
    created_at: dt.datetime = Field(sa_type=UTCDateTime)
    dismissed_at: dt.datetime | None = Field(default=None, sa_type=UTCDateTime)


class GroupMember(SQLModel, table=True):
    __tablename__ = "group_member"
    __table_args__ = (Index("ix_group_member_customer", "customer_id"),)

    group_id: int = Field(foreign_key="customer_group.id", primary_key=True)
    customer_id: int = Field(foreign_key="customer.id", primary_key=True)
    joined_at: dt.datetime = Field(sa_type=UTCDateTime)


class StageTransition(SQLModel, table=True):
    __tablename__ = "stage_transition"
    __table_args__ = (Index("ix_stage_transition_customer", "customer_id", "at"),)

    id: int | None = Field(default=None, primary_key=True)
    customer_id: int = Field(foreign_key="customer.id")
    from_stage: str | None = Field(default=None, max_length=16)
    to_stage: str = Field(max_length=16)
    at: dt.datetime = Field(sa_type=UTCDateTime)
