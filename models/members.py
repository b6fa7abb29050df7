"""Members of the chain's loyalty system (会员), kept until linked to a WeCom contact."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import and_, exists, func, select, update
from sqlmodel import Field, Session, SQLModel, col

from models.commerce import Order
from models.people import Customer
from models.types import UTCDateTime


class Member(SQLModel, table=True):
    """A member by the chain's member number; `customer_id` once the WeCom contact is known."""

    id: int | None = Field(default=None, primary_key=True)
    member_no: str = Field(max_length=32, unique=True)
    name: str = Field(default="", max_length=64)
    mobile: str | None = Field(default=None, max_length=20, index=True)  # never logged or rendered
    unionid: str | None = Field(default=None, max_length=64, index=True)
    store_id: int | None = Field(default=None, foreign_key="store.id")
    gender: str | None = Field(default=None, max_length=8)
    birthday: dt.date | None = None
    joined_at: dt.datetime | None = Field(default=None, sa_type=UTCDateTime)
    customer_id: int | None = Field(default=None, foreign_key="customer.id", index=True)
    linked_at: dt.datetime | None = Field(default=None, sa_type=UTCDateTime)


@dataclass(frozen=True)
class Linked:
    """What one linking pass did: members given a customer, orders handed to their customer."""

    members: int
    orders: int


def _single_customer(match: object) -> object:
    """The id of the one customer matching `match`; NULL when none or several (never guess)."""
    return (
        select(func.min(Customer.id))
        .where(match)  # type: ignore[arg-type]
        .having(func.count() == 1)
        .scalar_subquery()
    )


def link_members(*, now: dt.datetime, session: Session) -> Linked:
    """Link unlinked members to the WeCom contact with the same unionid, else the same mobile
    number (only when exactly one contact matches), and give their orders to that customer.

    Set-based and idempotent: the members import calls it at its end, and so should whatever
    records new contacts (sync, callback) after it commits them. Order summaries of the customers
    it touched are refreshed by the next stage classification (engine.stages.classify_stages).
    """
    linked = 0
    unlinked = col(Member.customer_id).is_(None)
    for key, contact_key in (
        (col(Member.unionid), col(Customer.unionid)),
        (col(Member.mobile), col(Customer.phone)),
    ):
        match = _single_customer(contact_key == key)
        result = session.execute(
            update(Member)
            .where(unlinked, key.is_not(None), match.is_not(None))  # type: ignore[attr-defined]
            .values(customer_id=match, linked_at=now)
        )
        linked += int(result.rowcount or 0)  # type: ignore[attr-defined]
    owner = (
        select(col(Member.customer_id))
        .where(col(Member.id) == col(Order.member_id))
        .scalar_subquery()
    )
    moved = session.execute(
        update(Order)
        .where(
            col(Order.customer_id).is_(None),
            exists().where(
                and_(col(Member.id) == col(Order.member_id), col(Member.customer_id).is_not(None))
            ),
        )
        .values(customer_id=owner)
    )
    return Linked(linked, int(moved.rowcount or 0))  # type: ignore[attr-defined]
