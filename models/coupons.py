"""Coupons issued through the chain's system: one row per touch, keyed by its idempotency key."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable

from sqlalchemy import update
from sqlmodel import Field, Session, SQLModel, col, select

from models.bulk import insert_ignoring_duplicates
from models.types import UTCDateTime

# issuing: the request may have reached the chain (a crash leaves it so; the next attempt asks
# again with the same key and gets the same coupon) → issued | failed (reason; never retried).
COUPON_STATES = ("issuing", "issued", "failed")


class Coupon(SQLModel, table=True):
    """The coupon of one touch: asked for once per idempotency key, whatever crashes in between."""

    __tablename__ = "coupon"

    idempotency_key: str = Field(primary_key=True, max_length=255)  # the touch's Delivery key
    sop_id: str = Field(max_length=64)
    step: str = Field(max_length=64)
    coupon: str = Field(max_length=64)  # the chain's coupon (template) code from `issue:`
    external_userid: str = Field(max_length=64)
    state: str = Field(default="issuing", max_length=16)
    coupon_id: str | None = Field(default=None, max_length=64)  # the chain's id of this coupon
    code: str | None = Field(default=None, max_length=64)  # what the customer uses
    expires_at: dt.datetime | None = Field(default=None, sa_type=UTCDateTime)
    reason: str | None = Field(default=None, max_length=200)
    created_at: dt.datetime = Field(sa_type=UTCDateTime)
    updated_at: dt.datetime = Field(sa_type=UTCDateTime)


def begin_issuing(rows: Iterable[Coupon], *, session: Session) -> dict[str, Coupon]:
    """Record `issuing` for keys without a row (before any request leaves), and return every
    key's row as it now stands: a key already issued or failed is never asked for again."""
    rows = list(rows)
    if rows:
        insert_ignoring_duplicates(
            session,
            Coupon.__table__,  # type: ignore[attr-defined]
            [row.model_dump() for row in rows],
        )
    return coupons_by_key([row.idempotency_key for row in rows], session=session)


def coupons_by_key(keys: list[str], *, session: Session) -> dict[str, Coupon]:
    """The coupon rows of these touches, by idempotency key."""
    found: dict[str, Coupon] = {}
    for start in range(0, len(keys), 500):
        part = keys[start : start + 500]
        statement = select(Coupon).where(col(Coupon.idempotency_key).in_(part))
        found.update((row.idempotency_key, row) for row in session.exec(statement))
    return found


def settle_coupon(
    key: str,
    *,
    session: Session,
    now: dt.datetime,
    coupon_id: str | None = None,
    code: str | None = None,
    expires_at: dt.datetime | None = None,
    reason: str | None = None,
) -> None:
    """`issued` with the chain's coupon, or `failed` with the reason; only from `issuing`."""
    values = (
        {"state": "failed", "reason": (reason or "")[:200]}
        if code is None
        else {"state": "issued", "coupon_id": coupon_id, "code": code, "expires_at": expires_at}
    )
    session.execute(
        update(Coupon)
        .where(col(Coupon.idempotency_key) == key, col(Coupon.state) == "issuing")
        .values(**values, updated_at=now)
    )
