"""What WeCom has of the automatic tags: one row per customer and tag a `mark_tag` call added."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Index, select
from sqlmodel import Field, Session, SQLModel, col

from models.people import Tag
from models.types import UTCDateTime


class TagPush(SQLModel, table=True):
    """An automatic tag WeCom confirmed on a customer (on the relation of `userid`); written only
    after an errcode-0 answer and deleted only after WeCom confirmed the removal."""

    __tablename__ = "tag_push"
    __table_args__ = (Index("ix_tag_push_tag", "tag_id", "customer_id"),)

    customer_id: int = Field(foreign_key="customer.id", primary_key=True)
    tag_id: int = Field(foreign_key="tag.id", primary_key=True)
    userid: str = Field(max_length=64)  # the follower whose relation carries the tag
    pushed_at: dt.datetime = Field(sa_type=UTCDateTime)


def without_auto_tags(tags: dict[str, int], *, session: Session) -> dict[str, int]:
    """WeCom tag id → Tag id without the automatic tags (source auto): sopflow pushes those to
    WeCom, so reading them back from WeCom's relations must not make them manual tags."""
    auto = set(session.execute(select(col(Tag.id)).where(col(Tag.source) == "auto")).scalars())
    return {wecom_id: tag_id for wecom_id, tag_id in tags.items() if tag_id not in auto}
