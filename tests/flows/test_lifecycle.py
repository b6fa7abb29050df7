"""Lifecycle SOPs over a moving clock: stage entry days, early exit, the member report, the demo world."""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlmodel import col

from core.clock import at_local
from core.settings import PROJECT_ROOT, reset_settings
from demo.world import load_demo_world
from engine.customer_context import segment_renderer
from engine.lifecycle_context import lifecycle_context, stage_entry_audience
from flows.lifecycle import classify_stages, lifecycle_sop
from models.audience import customers_in_range
from models.commerce import Order, OrderLine, Product
from models.db import session_scope
from models.people import Customer
from models.vocab import CATEGORIES
from soplang.filters import yuan
from soplang.loader import load_sops
from soplang.template import compile_step
from tests.factories import add_customers, add_order, make_world

DAY = dt.date(2026, 9, 14)  # far from the real clock, which stamps `sent_at` (caps count it)
LIFECYCLE_SOPS = PROJECT_ROOT / "sop" / "lifecycle"


def _on(day: int, hour: int, minute: int = 0) -> dt.datetime:
    return at_local(DAY + dt.timedelta(days=day), hour, minute)


@pytest.fixture
def shipped_sops(database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "sop"
    shutil.copytree(LIFECYCLE_SOPS, folder)
    monkeypatch.setenv("SOPFLOW_SOP_DIR", str(folder))
    reset_settings()
    return folder


def _run(step: str, day: int) -> None:
    """The `dormant-recall` step's daily run on DAY + `day`, at its send time."""
    lifecycle_sop(
        sop_id="dormant-recall", step=step, day=DAY + dt.timedelta(days=day), now=_on(day, 10)
    )


def _sent_to(emulator, text: str) -> set[str]:
    """External userids of every customer sent a text containing `text`."""
    return {t for m in emulator.messages if text in m["content"] for t in m["targets"]}


def _userids(ids: list[int]) -> dict[int, str]:
    with session_scope() as session:
        rows = session.execute(
            select(Customer.id, Customer.external_userid).where(col(Customer.id).in_(ids))
        )
        return dict(rows.tuples().all())


def test_dormant_care_on_entry_day_and_coupon_three_days_later_unless_they_bought(
    shipped_sops, emulator
) -> None:
    make_world(DAY)
    # Twenty customers whose last order was 31 local days before DAY: dormant from DAY on.
    lapsing = add_customers(
        20, stage="growing", added_at=_on(-300, 9), last_order_at=None, stage_since=_on(-200, 9)
    )
    for customer in lapsing:
        add_order(customer, _on(-31, 15), [("F001", 2, 399)])
    [long_dormant] = add_customers(
        1, first=50, last_order_at=None, added_at=_on(-300, 9), stage_since=_on(-14, 0, 5)
    )
    add_order(long_dormant, _on(-45, 15), [("F001", 1, 399)])
    userids = _userids([*lapsing, long_dormant])

    classify_stages(now=_on(0, 0, 5))
    lifecycle_sop(sop_id="dormant-recall", step="care", day=DAY, now=_on(0, 10))

    cared = _sent_to(emulator, "好久不见")
    assert userids[long_dormant] not in cared  # entered the stage long before DAY
    assert 10 <= len(cared) <= 20  # the 10% holdout keeps a few back
    returning, *staying = [c for c in lapsing if userids[c] in cared]
    returning_later, staying = staying[0], staying[1:]
    add_order(returning, _on(1, 12), [("F001", 1, 399)])  # bought in between
    add_order(returning_later, _on(2, 21, 30), [("F001", 1, 399)])
    for day in (1, 2, 3):
        classify_stages(now=_on(day, 0, 5))
        _run("care", day)
    _run("coupon", 3)

    couponed = _sent_to(emulator, "回归券")
    assert couponed == {userids[c] for c in staying}
    assert _sent_to(emulator, "好久不见") == cared  # nobody entered dormant on days 1-3


def test_a_step_reaches_only_the_customers_who_entered_the_stage_that_day(shipped_sops) -> None:
    make_world(DAY)
    entered = {
        days: add_customers(1, first=days, stage="dormant", stage_since=_on(-days, 0, 5))[0]
        for days in (2, 3, 4)
    }
    spec = next(s for s in load_sops([shipped_sops]) if s.id == "dormant-recall")

    audience = stage_entry_audience(spec, "coupon", DAY)

    with session_scope() as session:
        found = customers_in_range(audience, (1, 10**9), session=session)
    assert [c.id for c in found] == [entered[3]]


def test_every_shipped_lifecycle_sop_renders_for_the_demo_world(database_url) -> None:
    load_demo_world(database_url, customers=2000, today=DAY)
    specs = load_sops([LIFECYCLE_SOPS])
    assert {s.audience.customers.stage[0] for s in specs} == {
        "new",
        "growing",
        "mature",
        "dormant",
        "churned",
    }

    for spec in specs:
        customers = _customers_of(spec)
        assert customers, spec.id
        for step in spec.step_names:
            extra = lifecycle_context(spec, step, customers, day=DAY)
            render_for = segment_renderer(
                compile_step(spec, step), day=DAY, sop_id=spec.id, sop_title=spec.title
            )
            texts = {render_for(c, extra.get(c.id)) for c in customers}
            assert all(texts) and "None" not in "".join(texts), (spec.id, step)


def test_the_member_report_adds_up_this_months_real_orders(database_url) -> None:
    load_demo_world(database_url, customers=2000, today=DAY)
    spec = next(s for s in load_sops([LIFECYCLE_SOPS]) if s.id == "mature-member")
    customers = _customers_of(spec)

    extra = lifecycle_context(spec, "report", customers, day=DAY)

    busiest = max(customers, key=lambda c: extra[c.id]["report"]["orders"])
    report = extra[busiest.id]["report"]
    assert report == {"month": "9月", **_hand_computed_report(busiest.id)}
    assert report["orders"] > 0
    render_for = segment_renderer(
        compile_step(spec, "report"), day=DAY, sop_id=spec.id, sop_title=spec.title
    )
    text = render_for(busiest, extra[busiest.id])
    assert f"您本月节省了{yuan(report['saved'])}，常购品类为{report['top_category']}" in text


def _customers_of(spec):
    with session_scope() as session:
        return customers_in_range(spec.audience.customers, (1, 10**9), session=session)


def _hand_computed_report(customer_id: int) -> dict:
    """Orders, savings and top category by quantity, from the rows, in Python."""
    start, end = at_local(DAY.replace(day=1), 0), at_local(DAY + dt.timedelta(days=1), 0)
    with session_scope() as session:
        orders = session.execute(
            select(Order.id, Order.saved_fen).where(
                Order.customer_id == customer_id, Order.placed_at >= start, Order.placed_at < end
            )
        ).all()
        quantities = dict(
            session.execute(
                select(Product.category, func.sum(OrderLine.quantity))
                .join(Product, Product.id == OrderLine.product_id)
                .where(col(OrderLine.order_id).in_([o.id for o in orders]))
                .group_by(Product.category)
            ).all()
        )
    top = sorted(quantities.items(), key=lambda kv: (-kv[1], kv[0]))[0][0]
    return {
        "orders": len(orders),
        "saved": sum(o.saved_fen for o in orders),
        "top_category": CATEGORIES[top],
    }
