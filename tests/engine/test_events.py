"""The Event table as a queue: recording, price-drop fan-out, atomic claims, leases, rounds and keys."""

from __future__ import annotations

import datetime as dt
import threading
import time

import pytest
from sqlmodel import col, select

from core.clock import at_local
from core.errors import EventError
from engine.events import (
    CLAIM_LEASE,
    EVENT_KINDS,
    claim,
    claimed_events,
    complete,
    record_event,
    record_price_drop,
    yuan_to_fen,
)
from engine.triggers import EventOccurrence, EventTouch, rounds
from models.audience import CustomerTarget
from models.commerce import Event, Order, Product
from models.db import session_scope
from soplang.spec import TRIGGER_EVENTS
from tests.factories import add_customers, add_events, add_order, make_world

DAY = dt.date(2026, 11, 24)
TEN = at_local(DAY, 10, 0)


@pytest.fixture
def customers(database_url: str) -> list[int]:
    make_world(DAY, database_url)
    return add_customers(4)


def _external(customer_id: int) -> str:
    return f"wmTEST{customer_id - 1:07d}"


def test_every_trigger_event_is_a_known_kind() -> None:
    assert set(TRIGGER_EVENTS) <= set(EVENT_KINDS)


def test_an_event_is_recorded_pending_for_the_customer(customers) -> None:
    with session_scope() as session:
        event_id = record_event(
            "contact.added", customer=_external(customers[0]), now=TEN, session=session
        )
        event = session.get(Event, event_id)
        assert (event.customer_id, event.processed_at, event.claimed_by) == (
            customers[0],
            None,
            None,
        )


@pytest.mark.parametrize(
    ("kind", "customer", "sku", "payload", "message"),
    [
        ("order.shipd", "wmTEST0000000", None, {}, "did you mean `order.shipped`"),
        ("contact.added", "wmNOBODY", None, {}, "no customer with external_userid"),
        ("favourite", "wmTEST0000000", "NOPE", {}, "no product with SKU 'NOPE'"),
        ("favourite.price_drop", "wmTEST0000000", None, {}, "needs a product"),
        ("favourite.price_drop", "wmTEST0000000", "F001", {"old_price": 1}, "new below old"),
        ("order.shipped", "wmTEST0000000", None, {"order_id": 999}, "an order of this customer"),
    ],
)
def test_an_event_the_drain_could_not_use_is_refused_with_a_clear_message(
    customers, kind, customer, sku, payload, message
) -> None:
    with session_scope() as session, pytest.raises(EventError, match=message):
        record_event(kind, customer=customer, sku=sku, payload=payload, now=TEN, session=session)


def test_an_order_shipped_event_must_name_an_order_of_that_customer(customers) -> None:
    add_order(customers[1], TEN, [("F001", 2, 399)])
    with session_scope() as session:
        order_id = session.exec(select(Order.id)).one()
        with pytest.raises(EventError, match=f'latest order: {{"order_id": {order_id}}}'):
            record_event(
                "order.shipped",
                customer=_external(customers[1]),
                payload={"order_id": order_id + 1},
                now=TEN,
                session=session,
            )
        with pytest.raises(EventError):
            record_event(
                "order.shipped",
                customer=_external(customers[0]),
                payload={"order_id": order_id},
                now=TEN,
                session=session,
            )
        assert record_event(
            "order.shipped",
            customer=_external(customers[1]),
            payload={"order_id": order_id},
            now=TEN,
            session=session,
        )


def test_a_price_drop_lowers_the_price_and_fans_out_once_per_favouriter(customers) -> None:
    first, second, third, _ = customers
    add_events("favourite", [first, second, first], sku="F001")
    add_events("favourite", [third], sku="F002")

    with session_scope() as session:
        drop = record_price_drop("F001", 299, now=TEN, session=session)

    assert (drop.old_price, drop.new_price, drop.events) == (599, 299, 2)
    with session_scope() as session:
        assert (
            session.exec(select(Product.list_price_fen).where(Product.sku == "F001")).one() == 299
        )
        fanned = session.exec(select(Event).where(Event.kind == "favourite.price_drop")).all()
        change = session.exec(select(Event).where(Event.kind == "price.changed")).one()
    assert sorted(e.customer_id for e in fanned) == [first, second]
    assert {tuple(sorted(e.payload.items())) for e in fanned} == {
        (("new_price", 299), ("old_price", 599))
    }
    assert all(e.processed_at is None for e in fanned) and change.processed_at == TEN


@pytest.mark.parametrize(
    ("price", "message"), [(599, "not a price drop"), (700, "costs 5.99元 now; 7元 is not")]
)
def test_a_price_drop_must_lower_the_price(customers, price, message) -> None:
    with session_scope() as session, pytest.raises(EventError, match=message):
        record_price_drop("F001", price, now=TEN, session=session)


@pytest.mark.parametrize(
    ("text", "fen"), [("228", 22800), ("19.9", 1990), ("0.05", 5), ("3.99", 399)]
)
def test_prices_are_written_in_yuan(text, fen) -> None:
    assert yuan_to_fen(text) == fen


@pytest.mark.parametrize("text", ["abc", "0", "-3", "1.999"])
def test_a_price_that_is_not_yuan_is_refused(text) -> None:
    with pytest.raises(EventError):
        yuan_to_fen(text)


def test_claims_take_the_oldest_pending_events_of_one_kind(customers) -> None:
    ids = add_events("contact.added", customers)
    add_events("favourite", customers[:2], sku="F001")

    with session_scope() as session:
        first = claim("contact.added", limit=3, now=TEN, session=session)
        second = claim("contact.added", limit=3, now=TEN, session=session)
        third = claim("contact.added", limit=3, now=TEN, session=session)

    assert (first.count, first.first_id, first.last_id) == (3, ids[0], ids[2])
    assert (second.count, second.first_id) == (1, ids[3])
    assert third.count == 0
    with session_scope() as session:
        assert [e.id for e in claimed_events(first.token, session=session)] == ids[:3]


def test_a_claim_on_postgresql_takes_no_more_than_its_limit(postgres_url: str) -> None:
    make_world(DAY, postgres_url)
    ids = add_events("contact.added", add_customers(5))

    with session_scope() as session:
        taken = [claim("contact.added", limit=2, now=TEN, session=session) for _ in range(4)]

    assert [batch.count for batch in taken] == [2, 2, 1, 0]
    assert [(batch.first_id, batch.last_id) for batch in taken[:3]] == [
        (ids[0], ids[1]),
        (ids[2], ids[3]),
        (ids[4], ids[4]),
    ]


def test_two_overlapping_drains_never_claim_the_same_event(database_url: str) -> None:
    make_world(DAY, database_url)
    ids = add_events("contact.added", add_customers(1200))
    taken: dict[str, list[int]] = {"a": [], "b": []}
    start = threading.Barrier(2)

    def drain(name: str) -> None:
        start.wait()
        while True:
            with session_scope() as session:
                batch = claim("contact.added", limit=50, now=TEN, session=session)
                events = claimed_events(batch.token, session=session)
            if not batch.count:
                return
            time.sleep(0.005)  # the other drain claims while this one works on its batch
            taken[name].extend(e.id for e in events)
            with session_scope() as session:
                complete(batch.token, now=TEN, session=session)

    threads = [threading.Thread(target=drain, args=(name,)) for name in taken]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(taken["a"] + taken["b"]) == ids  # each event exactly once
    assert taken["a"] and taken["b"]
    with session_scope() as session:
        assert not session.exec(select(Event).where(col(Event.processed_at).is_(None))).all()


def test_a_claim_whose_drain_died_is_retaken_after_its_lease_and_only_once(customers) -> None:
    ids = add_events("contact.added", customers[:2])
    with session_scope() as session:
        dead = claim("contact.added", limit=10, now=TEN, session=session)
        within = claim("contact.added", limit=10, now=TEN + CLAIM_LEASE / 2, session=session)
        later = TEN + CLAIM_LEASE + dt.timedelta(seconds=1)
        retaken = claim("contact.added", limit=10, now=later, session=session)
        # The dead drain wakes up: it no longer holds the events and marks none of them.
        assert complete(dead.token, now=later, session=session) == 0
        assert complete(retaken.token, now=later, session=session) == 2
        assert claim("contact.added", limit=10, now=later, session=session).count == 0

    assert within.count == 0
    assert (retaken.count, retaken.first_id, retaken.last_id) == (2, ids[0], ids[1])


def _touch(event_id: int, customer_id: int) -> EventTouch:
    customer = CustomerTarget(
        customer_id,
        f"wm{customer_id}",
        "客户",
        "上海",
        "bronze",
        "new",
        TEN,
        "active",
        None,
        None,
        None,
    )
    return EventTouch(event_id, customer, "fresh", {})


def test_rounds_hold_each_customer_once_and_keep_their_events_in_order() -> None:
    touches = [_touch(1, 7), _touch(2, 8), _touch(3, 7), _touch(4, 7), _touch(5, 9)]

    found = [[t.event_id for t in same_round] for same_round in rounds(touches)]

    assert found == [[1, 2, 5], [3], [4]]


def test_each_event_has_its_own_idempotency_key() -> None:
    occurrence = EventOccurrence(
        "price-drop", "main", "events-1-2", "outbox", event_of=(("wmA", 1), ("wmB", 2))
    )

    assert occurrence.key("customer", "wmA") == "price-drop:main:event-1:customer:wmA"
    assert occurrence.key("customer", "wmB") == "price-drop:main:event-2:customer:wmB"
