"""Tables the WeCom directory sync keeps: follow relations, WeCom's ids of tags and groups, members
who left, and the sync's checkpoint."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Index, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from models.types import UTCDateTime


class FollowRelation(SQLModel, table=True):
    """A staff member's relation with an external contact (WeCom's follow_info); a customer may
    be followed by several staff. Never deleted: `deleted_at` is when a sync found it gone."""

    __tablename__ = "follow_relation"
    __table_args__ = (
        UniqueConstraint("customer_id", "staff_id", name="uq_follow_relation"),
        Index("ix_follow_relation_staff", "staff_id"),
    )

    id: int | None = Field(default=None, primary_key=True)
    customer_id: int = Field(foreign_key="customer.id")
    staff_id: int = Field(foreign_key="staff.id")
    added_at: dt.datetime = Field(sa_type=UTCDateTime)  # follow_info.createtime
    remark: str = Field(default="", max_length=128)
    add_way: int | None = None  # 1 扫码, 2 搜索手机号, 3 名片分享 … (WeCom's add_way codes)
    state: str | None = Field(default=None, max_length=30)  # the contact way's `state`
    tag_ids: str = Field(default="", sa_type=Text)  # WeCom tag ids on the relation, sorted, ","
    deleted_at: dt.datetime | None = Field(default=None, sa_type=UTCDateTime)


class WecomTag(SQLModel, table=True):
    """A WeCom corp tag (`get_corp_tag_list`) and the Tag row (source manual) it is."""

    __tablename__ = "wecom_tag"

    wecom_id: str = Field(max_length=64, primary_key=True)
    tag_id: int = Field(foreign_key="tag.id", unique=True)
    group_id: str = Field(max_length=64)
    group_name: str = Field(max_length=64)


class WecomGroup(SQLModel, table=True):
    """What the sync last read of a customer group: its status and WeCom's member_version."""

    __tablename__ = "wecom_group"

    group_id: int = Field(foreign_key="customer_group.id", primary_key=True)
    status: int = 0  # 0 normal, 1 离职待继承, 2 离职继承中, 3 离职继承完成
    member_version: str = Field(default="", max_length=64)


class GroupMemberLeft(SQLModel, table=True):
    """A customer who was in a group and no longer is: the membership, kept, with when a sync saw
    it gone (group_member holds the current members only)."""

    __tablename__ = "group_member_left"
    __table_args__ = (Index("ix_group_member_left_customer", "customer_id"),)

    id: int | None = Field(default=None, primary_key=True)
    group_id: int = Field(foreign_key="customer_group.id", index=True)
    customer_id: int = Field(foreign_key="customer.id")
    joined_at: dt.datetime = Field(sa_type=UTCDateTime)
    left_at: dt.datetime = Field(sa_type=UTCDateTime)


class SyncRun(SQLModel, table=True):
    """One directory sync pass and its checkpoint: the phase, the staff chunk and the cursor of
    the next page, committed with each page's rows, so a killed sync continues where it was."""

    __tablename__ = "sync_run"

    id: int | None = Field(default=None, primary_key=True)
    full: bool = False
    started_at: dt.datetime = Field(sa_type=UTCDateTime)
    finished_at: dt.datetime | None = Field(default=None, sa_type=UTCDateTime, index=True)
    phase: str = Field(default="tags", max_length=16)  # tags, customers, sweep, groups, done
    staff_userids: str = Field(default="", sa_type=Text)  # the follow users, "\n"-joined
    chunk: int = 0  # the staff chunk (of 100) being read
    cursor: str = Field(default="", max_length=256)  # the next page's cursor in that chunk
    pages: int = 0  # pages read and written so far
    writes: int = 0  # rows inserted or changed so far
    counts: str = Field(default="{}", sa_type=Text)  # writes by kind, JSON


class SyncSeen(SQLModel, table=True):
    """The relations a pass has listed so far (emptied when the pass sweeps): what it did not
    list is gone from WeCom."""

    __tablename__ = "sync_seen"

    run_id: int = Field(foreign_key="sync_run.id", primary_key=True)
    staff_id: int = Field(primary_key=True)
    customer_id: int = Field(primary_key=True)
