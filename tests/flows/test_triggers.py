"""Trigger SOPs end to end: each event fires once, through the guards, drained in batches."""

from __future__ import annotations

import datetime as dt
import shutil
import time
from collections import Counter
from pathlib import Path

import pytest
from sqlmodel import col, func, select

from core.clock import at_local, local_today
from core.settings import PROJECT_ROOT, get_settings, reset_settings
from demo.world import load_demo_world
from engine.dispatch import dispatch
from engine.events import (
    CLAIM_LEASE,
    PendingEvent,
    claim,
    claimed_events,
    record_event,
    record_price_drop,
)
from engine.trigger_context import event_variables
from engine.triggers import plan_events
from flows.triggers import drain_events
from models.commerce import Event, Order, Product
from models.db import session_scope
from models.people import Customer
from soplang.context import sample_context
from soplang.selection import trigger_sops
from tasks.dispatch import open_channel
from tasks.triggers import send_trigger_batch
from tests.factories import add_customers, add_events, add_order, deliveries, make_world, opt_out

DAY = dt.date(2026, 11, 24)
TEN = at_local(DAY, 10, 0)
TRIGGERS = ("contact.added", "favourite.price_drop", "order.shipped")


@pytest.fixture
def world(database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    folder = tmp_path / "sop"
    shutil.copytree(PROJECT_ROOT / "sop" / "triggers", folder / "triggers")
    monkeypatch.setenv("SOPFLOW_SOP_DIR", str(folder))
    reset_settings()
    world = make_world(DAY, database_url)
    world.customers = add_customers(6) + add_customers(2, owner="lina.sh01", first=6)
    return world


def price_drop(sku: str, fen: int, now: dt.datetime = TEN) -> int:
    with session_scope() as session:
        return record_price_drop(sku, fen, now=now, session=session).events


def shipped(customer_id: int) -> int:
    """An order of the customer, and its order.shipped event; the order id."""
    add_order(customer_id, TEN - dt.timedelta(days=1), [("F001", 2, 399), ("B001", 1, 5990)])
    with session_scope() as session:
        order_id = session.exec(
            select(func.max(Order.id)).where(Order.customer_id == customer_id)
        ).one()
    add_events("order.shipped", [customer_id], payload={"order_id": order_id})
    return int(order_id)


def sent_texts(emulator) -> list[tuple[str, str]]:
    """(external_userid, text) of every 1:1 message the emulator received."""
    return [(target, m["content"]) for m in emulator.messages for target in m["targets"]]


def outcomes(sop_id: str) -> Counter[tuple[str, str | None]]:
    return Counter((r.status, r.reason) for r in deliveries() if r.sop_id == sop_id)


def pending_events() -> int:
    with session_scope() as session:
        return session.exec(
            select(func.count())
            .select_from(Event)
            .where(col(Event.kind).in_(TRIGGERS), col(Event.processed_at).is_(None))
        ).one()


def external(customer_id: int) -> str:
    with session_scope() as session:
        return session.get(Customer, customer_id).external_userid


def test_each_trigger_fires_once_per_event_and_a_second_drain_sends_nothing(
    world, emulator
) -> None:
    new_a, new_b, fan_a, fan_b, fan_c, buyer, *_ = world.customers
    add_events("contact.added", [new_a, new_b])
    add_events("favourite", [fan_a, fan_b, fan_c], sku="F001")
    assert price_drop("F001", 299) == 3
    order_id = shipped(buyer)

    summary = drain_events(now=TEN)

    assert {sop: s["this_run"] for sop, s in summary.items()} == {
        "welcome": {"sent": 2},
        "price-drop": {"sent": 3},
        "order-shipped": {"sent": 1},
    }
    texts = dict(sent_texts(emulator))
    assert len(sent_texts(emulator)) == len(texts) == 6
    assert texts[external(new_a)].startswith("客户0您好，我是您的专属顾问张伟，欢迎加入")
    assert "首单满39元减10元" in texts[external(new_a)]
    assert texts[external(fan_a)].startswith(
        "您收藏的鸡蛋降价啦！现价2.99元/斤，原价5.99元，立省3元"
    )
    assert texts[external(buyer)].startswith(f"您的商品已出库🚚 订单SO20261123{order_id:04d}共3件")
    assert "金额67.88元" in texts[external(buyer)]
    # The three favouriters share one text and one staff member: one WeCom task for all of them.
    assert sum(1 for m in emulator.messages if "鸡蛋降价" in m["content"]) == 1
    assert pending_events() == 0

    again = drain_events(now=TEN + dt.timedelta(minutes=1))

    assert again == {} and len(sent_texts(emulator)) == 6
    keys = [r.idempotency_key for r in deliveries()]
    assert len({key.split(":")[2] for key in keys}) == len(keys) == 6  # one event each


def test_triggers_respect_opt_outs_contacts_and_caps_and_service_bypasses_caps(
    world, emulator
) -> None:
    opted, deleted, welcomed, two_drops, *_ = world.customers
    opt_out([opted], "fresh")
    with session_scope() as session:
        session.get(Customer, deleted).contact_state = "deleted"
    add_events("contact.added", [welcomed])
    add_events("favourite", [opted, deleted, welcomed, two_drops], sku="F001")
    add_events("favourite", [two_drops], sku="F002")
    price_drop("F001", 299)
    price_drop("F002", 890)
    shipped(welcomed)
    shipped(deleted)
    # Dispatch stamps `sent_at` with the wall clock and caps count a sent row on that day:
    # drain on the real local day so the welcome counts against today's cap.
    now = at_local(local_today(), 10, 0)

    drain_events(now=now)

    assert outcomes("price-drop") == Counter(
        {
            ("skipped", "opted out of fresh"): 1,
            ("skipped", "not a contact"): 1,
            ("skipped", "capped (daily limit)"): 2,  # welcomed today; two_drops' second drop
            ("sent", None): 1,
        }
    )
    assert outcomes("welcome") == Counter({("sent", None): 1})
    # Order shipped is a service message: the customer's used-up daily cap does not hold it back.
    assert outcomes("order-shipped") == Counter(
        {("sent", None): 1, ("skipped", "not a contact"): 1}
    )
    assert {target for target, _ in sent_texts(emulator)} == {
        external(welcomed),
        external(two_drops),
    }


def test_a_baby_product_price_drop_respects_an_opt_out_of_baby_promotions(world, emulator) -> None:
    mother, other, *_ = world.customers
    opt_out([mother], "baby")
    add_events("favourite", [mother, other], sku="B001")
    price_drop("B001", 6990)

    drain_events(now=TEN)

    assert outcomes("price-drop") == Counter(
        {("skipped", "opted out of baby"): 1, ("sent", None): 1}
    )


def test_events_wait_through_quiet_hours_and_go_out_in_the_morning(world, emulator) -> None:
    add_events("contact.added", world.customers[:3])

    night = drain_events(now=at_local(DAY, 23, 0))

    assert night == {"waiting_until": at_local(DAY + dt.timedelta(days=1), 8, 0).isoformat()}
    assert emulator.messages == [] and pending_events() == 3
    morning = drain_events(now=at_local(DAY + dt.timedelta(days=1), 8, 1))
    assert morning["welcome"]["this_run"] == {"sent": 3}


def test_events_held_by_an_overlapping_drain_are_left_to_it(world, emulator) -> None:
    add_events("contact.added", world.customers[:5])
    with session_scope() as session:
        other = claim("contact.added", limit=2, now=TEN, session=session)

    summary = drain_events(now=TEN)

    assert summary["welcome"]["events"] == 3 and pending_events() == 2
    with session_scope() as session:
        held = claimed_events(other.token, session=session)
    assert {r.customer_id for r in deliveries()}.isdisjoint(e.customer_id for e in held)


def test_a_drain_that_died_after_sending_is_finished_by_the_next_without_resending(
    world, emulator
) -> None:
    add_events("contact.added", world.customers[:4])
    with session_scope() as session:
        dead = claim("contact.added", limit=10, now=TEN, session=session)
        events = claimed_events(dead.token, session=session)
    [spec] = trigger_sops(get_settings().sop_dir)["contact.added"]
    planned = plan_events(spec, "main", events[:3], now=TEN, day=DAY)
    with open_channel() as channel:
        dispatch(channel, "single", planned.ready)
    # ... and the drain dies here, before marking its events processed.

    later = TEN + CLAIM_LEASE + dt.timedelta(minutes=1)
    summary = drain_events(now=later)

    assert summary["welcome"]["already_done"] == {"sent": 3}
    assert summary["welcome"]["this_run"] == {"sent": 1}
    targets = [target for target, _ in sent_texts(emulator)]
    assert len(targets) == len(set(targets)) == 4 and pending_events() == 0


def test_a_burst_of_price_drop_events_is_drained_in_batches_once(world) -> None:
    fans = add_customers(20_000, first=1000)
    add_events("favourite", fans, sku="F001")
    assert price_drop("F001", 299) == 20_000

    started = time.perf_counter()
    summary = drain_events(now=TEN, batch_size=5_000)
    seconds = time.perf_counter() - started

    assert summary["price-drop"]["events"] == 20_000
    assert summary["price-drop"]["batches"] == 4
    assert summary["price-drop"]["this_run"] == {"sent": 20_000}
    rows = deliveries()
    assert len(rows) == len({r.idempotency_key for r in rows}) == 20_000
    assert len({r.occurrence for r in rows}) == 4  # one chunk per claimed batch
    assert pending_events() == 0
    assert drain_events(now=TEN + dt.timedelta(minutes=1)) == {}
    assert seconds < 120, f"20,000 events took {seconds:.1f} s"


def _shape(value: object) -> object:
    """The keys of nested dicts and the types of their leaves."""
    if isinstance(value, dict):
        return {key: _shape(inner) for key, inner in value.items()}
    return dt.datetime if isinstance(value, dt.datetime) else type(value)


@pytest.fixture
def demo(database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, int]:
    """The 500-customer demo world on DAY, a price drop on its most favourited product and a shipment."""
    folder = tmp_path / "sop"
    shutil.copytree(PROJECT_ROOT / "sop" / "triggers", folder / "triggers")
    monkeypatch.setenv("SOPFLOW_SOP_DIR", str(folder))
    reset_settings()
    load_demo_world(database_url, customers=500, seed=42, today=DAY)
    with session_scope() as session:
        product_id, _ = session.exec(
            select(Event.product_id, func.count())
            .where(Event.kind == "favourite")
            .group_by(Event.product_id)
            .order_by(func.count().desc(), Event.product_id)
        ).first()
        product = session.get(Product, product_id)
        order = session.exec(select(Order).order_by(col(Order.id).desc())).first()
        customer = session.get(Customer, order.customer_id)
        record_event(
            "order.shipped",
            customer=customer.external_userid,
            payload={"order_id": order.id},
            now=TEN,
            session=session,
        )
        sku, price = product.sku, product.list_price_fen
    price_drop(sku, price * 4 // 5)
    return {"order_id": order.id}


def test_real_trigger_variables_have_the_documented_shape(demo) -> None:
    with session_scope() as session:
        rows = session.exec(
            select(Event).where(col(Event.kind).in_(TRIGGERS), col(Event.processed_at).is_(None))
        ).all()
        for kind in TRIGGERS:
            events = [
                PendingEvent(e.id, e.kind, e.customer_id, e.product_id, e.payload, e.occurred_at)
                for e in rows
                if e.kind == kind
            ]
            found = event_variables(events, tz="Asia/Shanghai", session=session)[events[0].id]
            sample = sample_context("trigger", "customer", on=kind)
            assert _shape(found) == _shape({name: sample[name] for name in found}), kind
            # `coupon` comes from the step's `issue:` (engine/coupons.py), not from the event
            assert set(found) == set(sample) - {"sop", "today", "weekday", "customer", "coupon"}


def test_every_shipped_trigger_sop_sends_in_the_demo_world(demo, emulator) -> None:
    summary = drain_events(now=TEN)

    assert set(summary) == {"welcome", "price-drop", "order-shipped"}
    assert all(s["this_run"].get("sent") for s in summary.values()), summary
    assert any("降价啦" in text for _, text in sent_texts(emulator))
    assert any(f"{demo['order_id']:04d}" in text for _, text in sent_texts(emulator))


def test_a_drain_with_wecom_unreachable_fails_and_the_next_drain_sends_each_welcome_once(
    world, emulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Connection refused: nothing is left `sending`, the drain ends Failed and hands its events
    back, and the next drain (WeCom back) sends every welcome exactly once."""
    monkeypatch.setattr(send_trigger_batch, "retry_delay_seconds", [0.1, 0.1, 0.1])
    add_events("contact.added", world.customers[:4])
    monkeypatch.setenv("WECOM_API_BASE", "http://127.0.0.1:9")
    reset_settings()

    state = drain_events(now=TEN, return_state=True)

    assert state.is_failed() and "could not connect" in state.message
    assert {r.status for r in deliveries()} == {"failed"} and pending_events() == 4
    monkeypatch.setenv("WECOM_API_BASE", emulator.url)
    reset_settings()
    summary = drain_events(now=TEN + dt.timedelta(minutes=1))
    assert summary["welcome"]["this_run"] == {"sent": 4} and pending_events() == 0
    targets = [target for target, _ in sent_texts(emulator)]
    assert len(targets) == len(set(targets)) == 4


def test_a_welcome_whose_answer_was_lost_is_found_by_the_next_drain_not_resent(
    world, emulator
) -> None:
    add_events("contact.added", world.customers[:3])
    emulator.configure(lose_answer_next=1)  # welcomes are personal: one call per customer

    state = drain_events(now=TEN, return_state=True)

    assert state.is_failed() and "without an answer from WeCom" in state.message
    summary = drain_events(now=TEN + dt.timedelta(minutes=1))
    assert summary["welcome"]["reconciled"] == {"sent": 1}
    assert {r.status for r in deliveries()} == {"sent"}
    targets = [target for target, _ in sent_texts(emulator)]
    assert len(targets) == len(set(targets)) == 3
