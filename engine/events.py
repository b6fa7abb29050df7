"""The Event table as a queue: record events, claim pending ones in batches, mark them processed."""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from sqlalchemy import JSON, String, func, insert, literal, or_, select, update
from sqlmodel import Session, col

from core.errors import EventError
from engine.complaints import check_complaint
from engine.seed_events import check_seed_event
from models.commerce import Event, Order, Product
from models.people import Customer
from models.types import UTCDateTime
from soplang.filters import yuan
from soplang.spec import did_you_mean

# Every kind the Event table holds; the trigger kinds (soplang.spec.TRIGGER_EVENTS) are drained by
# flows/triggers.py, the others are behaviour the SOPs read (favourites, browsing); check-ins are
# both (the review counts them as activity).
EVENT_KINDS = (
    "contact.added",
    "contact.deleted",
    "favourite",
    "browse",
    "checkin",
    "price.changed",
    "favourite.price_drop",
    "order.shipped",
    "order.received",
    "customer.birthday",
    "group.member_joined",
    "complaint.opened",
    "complaint.updated",
    "complaint.closed",
)
NEEDS_PRODUCT = ("favourite", "browse", "favourite.price_drop")
PRICE_DROP = "favourite.price_drop"
CLAIM_LEASE = dt.timedelta(minutes=15)  # a drain that died holds its events this long


@dataclass(frozen=True)
class PendingEvent:
    """A claimed event, as the trigger tasks read it."""

    id: int
    kind: str
    customer_id: int | None
    product_id: int | None
    payload: dict[str, Any]
    occurred_at: dt.datetime


@dataclass(frozen=True)
class Claim:
    """A batch of events taken by one drain: its token, kind, size and id range."""

    token: str
    kind: str
    count: int = 0
    first_id: int | None = None
    last_id: int | None = None


@dataclass(frozen=True)
class PriceDrop:
    """A recorded price change and how many favourite.price_drop events it fanned out to."""

    sku: str
    name: str
    old_price: int
    new_price: int
    events: int


# ---------------------------------------------------------------- recording


def _customer_id(external_userid: str, *, session: Session) -> int:
    found = session.execute(
        select(col(Customer.id)).where(col(Customer.external_userid) == external_userid)
    ).scalar()
    if found is None:
        raise EventError(f"no customer with external_userid {external_userid!r}")
    return int(found)


def _product(sku: str, *, session: Session) -> Product:
    found = session.execute(select(Product).where(col(Product.sku) == sku)).scalar()
    if found is None:
        raise EventError(f"no product with SKU {sku!r}")
    return found


def _check_payload(
    kind: str, customer_id: int, product: Product | None, payload: dict[str, Any], session: Session
) -> None:
    """Refuse trigger events the drain could not turn into a message."""
    if kind in NEEDS_PRODUCT and product is None:
        raise EventError(f"a {kind} event needs a product: add --product SKU")
    if kind == PRICE_DROP:
        old, new = payload.get("old_price"), payload.get("new_price")
        if not (isinstance(old, int) and isinstance(new, int) and 0 <= new < old):
            raise EventError(
                f"a {kind} event needs a payload with prices in fen, new below old, e.g. "
                '{"old_price": 25800, "new_price": 22800}'
            )
    if kind.startswith("complaint."):
        check_complaint(kind, customer_id, payload, session=session)
    check_seed_event(kind, customer_id, payload, session=session)
    if kind in ("order.shipped", "order.received"):
        order = session.get(Order, payload.get("order_id") or 0)
        if order is None or order.customer_id != customer_id:
            latest = session.execute(
                select(func.max(Order.id)).where(col(Order.customer_id) == customer_id)
            ).scalar()
            hint = f' (the customer\'s latest order: {{"order_id": {latest}}})' if latest else ""
            raise EventError(
                f"an {kind} event needs a payload naming an order of this customer{hint}"
            )


def record_event(
    kind: str,
    *,
    customer: str,
    sku: str | None = None,
    payload: dict[str, Any] | None = None,
    now: dt.datetime,
    session: Session,
) -> int:
    """Record one pending event for the customer with `customer` as external_userid; its id."""
    if kind not in EVENT_KINDS:
        raise EventError(
            f"unknown event kind {kind!r}{did_you_mean(kind, EVENT_KINDS)}; "
            f"use one of: {', '.join(EVENT_KINDS)}"
        )
    payload = payload or {}
    customer_id = _customer_id(customer, session=session)
    product = _product(sku, session=session) if sku else None
    _check_payload(kind, customer_id, product, payload, session)
    event = Event(
        kind=kind,
        customer_id=customer_id,
        product_id=product.id if product else None,
        payload=payload,
        occurred_at=now,
    )
    session.add(event)
    session.flush()
    assert event.id is not None
    return event.id


def yuan_to_fen(text: str) -> int:
    """'228' or '228.5' yuan as fen; anything else is refused."""
    try:
        amount = Decimal(text)
    except InvalidOperation:
        raise EventError(f"price {text!r} is not a number of yuan such as 228 or 19.9") from None
    if amount <= 0 or amount != amount.quantize(Decimal("0.01")):
        raise EventError(f"price {text!r} must be above 0 with at most two decimals")
    return int(amount * 100)


def record_price_drop(sku: str, new_price: int, *, now: dt.datetime, session: Session) -> PriceDrop:
    """Lower a product's price and fan out one favourite.price_drop event per customer who favourited it.

    The fan-out is one INSERT ... SELECT, so a product favourited by 100,000 customers costs one
    statement; the drain then works through the events in batches.
    """
    product = _product(sku, session=session)
    old_price = product.list_price_fen
    if new_price >= old_price:
        raise EventError(
            f"{sku} costs {yuan(old_price)} now; {yuan(new_price)} is not a price drop"
        )
    payload = {"old_price": old_price, "new_price": new_price}
    product.list_price_fen = new_price
    session.add(
        Event(
            kind="price.changed",
            product_id=product.id,
            payload=payload,
            occurred_at=now,
            processed_at=now,  # a record of the change; its fan-out below is what triggers
        )
    )
    favourited = (
        select(
            literal(PRICE_DROP, String),
            col(Event.customer_id),
            literal(product.id),
            literal(payload, JSON),
            literal(now, UTCDateTime()),
        )
        .where(
            col(Event.kind) == "favourite",
            col(Event.product_id) == product.id,
            col(Event.customer_id).is_not(None),
        )
        .distinct()
    )
    columns = ["kind", "customer_id", "product_id", "payload", "occurred_at"]
    result = session.execute(insert(Event).from_select(columns, favourited))
    events = int(result.rowcount or 0)  # type: ignore[attr-defined]
    return PriceDrop(sku, product.name, old_price, new_price, events)


# ---------------------------------------------------------------- the queue


def _free(now: dt.datetime, lease: dt.timedelta) -> list[Any]:
    """Not processed, and not claimed or claimed by a drain whose lease ran out."""
    return [
        col(Event.processed_at).is_(None),
        or_(col(Event.claimed_at).is_(None), col(Event.claimed_at) < now - lease),
    ]


def claim(
    kind: str,
    *,
    limit: int,
    now: dt.datetime,
    session: Session,
    lease: dt.timedelta = CLAIM_LEASE,
) -> Claim:
    """Take up to `limit` pending events of `kind`, oldest first, under a new claim token.

    The ids are chosen first, then taken by an UPDATE that re-checks they are free: two drains
    running at once never take the same event (SQLite serialises the writers; PostgreSQL skips
    rows another drain has locked). Not one UPDATE ... WHERE id IN (SELECT ... LIMIT): PostgreSQL
    may run that subquery more than once and take more than `limit`.
    """
    token = uuid.uuid4().hex
    oldest = (
        select(col(Event.id))
        .where(col(Event.kind) == kind, *_free(now, lease))
        .order_by(col(Event.id))
    ).limit(limit)
    if session.get_bind().dialect.name == "postgresql":
        oldest = oldest.with_for_update(skip_locked=True)
    chosen = list(session.execute(oldest).scalars())
    if not chosen:
        return Claim(token, kind)
    taken = session.execute(
        update(Event)
        .where(col(Event.id).in_(chosen), *_free(now, lease))
        .values(claimed_by=token, claimed_at=now)
        .returning(col(Event.id))
    ).scalars()
    ids = sorted(taken)
    if not ids:
        return Claim(token, kind)
    return Claim(token, kind, len(ids), ids[0], ids[-1])


def claim_event(
    event_id: int, *, now: dt.datetime, session: Session, lease: dt.timedelta = CLAIM_LEASE
) -> Claim | None:
    """Take one event by id under a new claim token (the receiver answering a welcome code);
    None when it is processed or another claim holds it.

    One conditional UPDATE: on PostgreSQL it waits for a drain holding the row and re-checks the
    condition after it, so a drain and this never both take the event.
    """
    token = uuid.uuid4().hex
    taken = session.execute(
        update(Event)
        .where(col(Event.id) == event_id, *_free(now, lease))
        .values(claimed_by=token, claimed_at=now)
        .returning(col(Event.kind))
    ).scalar()
    return None if taken is None else Claim(token, taken, 1, event_id, event_id)


# The columns of an Event that make a PendingEvent, in its field order.
EVENT_COLUMNS = (
    col(Event.id),
    col(Event.kind),
    col(Event.customer_id),
    col(Event.product_id),
    col(Event.payload),
    col(Event.occurred_at),
)


def claimed_events(token: str, *, session: Session) -> list[PendingEvent]:
    """The events a claim holds and has not finished, in id order."""
    rows = session.execute(
        select(*EVENT_COLUMNS)
        .where(col(Event.claimed_by) == token, col(Event.processed_at).is_(None))
        .order_by(col(Event.id))
    )
    return [PendingEvent(*row) for row in rows]


def complete(token: str, *, now: dt.datetime, session: Session) -> int:
    """Mark the claim's events processed (those another drain re-took after the lease are not ours)."""
    result = session.execute(
        update(Event)
        .where(col(Event.claimed_by) == token, col(Event.processed_at).is_(None))
        .values(processed_at=now)
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


def release(token: str, *, session: Session) -> int:
    """Give back the claim's unprocessed events, so the next drain takes them at once."""
    result = session.execute(
        update(Event)
        .where(col(Event.claimed_by) == token, col(Event.processed_at).is_(None))
        .values(claimed_by=None, claimed_at=None)
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]
