"""Stage classification: hand-computed stages on a small world, transitions once, both databases."""

from __future__ import annotations

import datetime as dt
from dataclasses import replace

import pytest
from sqlmodel import select

from core.clock import at_local
from core.settings import get_settings
from demo.world import load_demo_world
from engine.stages import StageRules, classify_stages
from models.db import session_scope
from models.people import Customer, StageTransition
from tests.factories import add_customers, add_order, make_world

DAY = dt.date(2026, 11, 24)
AS_OF = at_local(DAY, 0, 5)  # the daily run, just after midnight


def _ago(days: int, hour: int = 15, minute: int = 0) -> dt.datetime:
    """Local `hour:minute` on the day `days` local days before DAY."""
    return at_local(DAY - dt.timedelta(days=days), hour, minute)


# name: (added days ago, order days ago, contact state, stage stored now, stage expected)
CASES: dict[str, tuple[int, list[int], str, str, str]] = {
    "new at 14 days with one order": (14, [3], "active", "new", "new"),
    "new at 15 days turns growing": (15, [], "active", "new", "growing"),
    "two orders in the first week": (3, [2, 1], "active", "new", "growing"),
    "last order 30 days ago": (200, [30], "active", "growing", "growing"),
    "last order 31 days ago": (200, [31], "active", "growing", "dormant"),
    "last order 90 days ago": (200, [90], "active", "dormant", "dormant"),
    "last order 91 days ago": (200, [91], "active", "dormant", "churned"),
    "added 40 days ago, never ordered": (40, [], "active", "new", "dormant"),
    "added 200 days ago, never ordered": (200, [], "active", "dormant", "churned"),
    "six orders": (300, [20, 15, 12, 9, 5, 2], "active", "growing", "mature"),
    "five orders": (300, [20, 15, 12, 9, 5], "active", "growing", "growing"),
    "mature who stopped buying": (300, [60, 50, 45, 40, 35, 33], "active", "mature", "dormant"),
    "deleted contact": (100, [3], "deleted", "growing", "churned"),
    "deleted new contact": (2, [], "deleted", "new", "churned"),
}
OLD_SINCE = at_local(DAY - dt.timedelta(days=500), 10)


@pytest.fixture
def world(database_url: str) -> dict[str, int]:
    make_world(DAY, database_url)
    return _cases(CASES)


def _cases(cases: dict[str, tuple[int, list[int], str, str, str]]) -> dict[str, int]:
    """One customer per case with its orders (one 鸡蛋 line at 3.99元 each); name -> id."""
    ids = {}
    for n, (name, (added, orders, state, stored, _)) in enumerate(cases.items()):
        [ids[name]] = add_customers(
            1,
            first=n,
            stage=stored,
            stage_since=OLD_SINCE,
            added_at=_ago(added, 9),
            contact_state=state,
            last_order_at=None,
        )
        for days in orders:
            add_order(ids[name], _ago(days), [("F001", 1, 399)])
    return ids


def _customers() -> dict[int, Customer]:
    with session_scope() as session:
        return {c.id: c for c in session.exec(select(Customer)).all()}


def _transitions() -> list[StageTransition]:
    with session_scope() as session:
        return list(session.exec(select(StageTransition).order_by(StageTransition.id)).all())


def _classify(as_of: dt.datetime = AS_OF, rules: StageRules | None = None):
    with session_scope() as session:
        return classify_stages(as_of, session=session, rules=rules)


def test_each_customer_gets_the_hand_computed_stage_and_one_transition_when_it_changed(
    world,
) -> None:
    classified = _classify()

    customers = _customers()
    assert {name: customers[i].stage for name, i in world.items()} == {
        name: case[4] for name, case in CASES.items()
    }
    changed = {name for name, case in CASES.items() if case[3] != case[4]}
    assert [(t.customer_id, t.from_stage, t.to_stage, t.at) for t in _transitions()] == [
        (world[name], CASES[name][3], CASES[name][4], AS_OF) for name in CASES if name in changed
    ]
    assert classified.moved == len(changed)
    for name, i in world.items():
        expected_since = AS_OF if name in changed else OLD_SINCE
        assert customers[i].stage_since == expected_since, name


def test_order_summaries_are_refreshed_from_the_orders(world) -> None:
    _classify()

    six = _customers()[world["six orders"]]
    assert (six.order_count, six.total_spent_fen, six.last_order_at) == (6, 6 * 399, _ago(2))
    never = _customers()[world["added 200 days ago, never ordered"]]
    assert (never.order_count, never.total_spent_fen, never.last_order_at) == (0, 0, None)


def test_a_rerun_changes_nothing(world) -> None:
    _classify()
    before = _customers()

    again = _classify(AS_OF + dt.timedelta(hours=3))

    assert (again.updated, again.transitions) == (0, {})
    assert _customers() == before
    assert len(_transitions()) == sum(1 for case in CASES.values() if case[3] != case[4])


def test_a_day_later_only_the_customers_crossing_a_threshold_move(world) -> None:
    _classify()
    tomorrow = AS_OF + dt.timedelta(days=1)

    classified = _classify(tomorrow)

    assert classified.transitions == {"new→growing": 1, "growing→dormant": 1, "dormant→churned": 1}
    moved = {t.customer_id for t in _transitions() if t.at == tomorrow}
    crossing = ("new at 14 days with one order", "last order 30 days ago", "last order 90 days ago")
    assert moved == {world[name] for name in crossing}
    assert _customers()[world["last order 30 days ago"]].stage_since == tomorrow


def test_days_are_local_calendar_days(world) -> None:
    """00:30 in Shanghai 30 days ago is still the previous UTC day; it counts as 30 days."""
    [early] = add_customers(1, first=90, stage="growing", stage_since=OLD_SINCE, added_at=_ago(200))
    add_order(early, _ago(30, hour=0, minute=30), [("F001", 1, 399)])

    _classify()

    assert _customers()[early].stage == "growing"


def test_refunds_and_orders_after_as_of_do_not_count(world) -> None:
    customer = world["last order 31 days ago"]
    add_order(customer, _ago(2), [("F001", 1, 399)], status="refunded")
    add_order(customer, AS_OF + dt.timedelta(hours=10), [("F001", 1, 399)])

    _classify()

    found = _customers()[customer]
    assert (found.stage, found.order_count, found.last_order_at) == ("dormant", 1, _ago(31))


def test_spend_and_paid_membership_make_mature_when_switched_on(world) -> None:
    big_spender, member = world["five orders"], world["last order 30 days ago"]
    with session_scope() as session:
        session.get(Customer, member).is_paid_member = True

    defaults = StageRules.from_settings(get_settings())
    _classify(rules=replace(defaults, mature_spent_fen=5 * 399, mature_paid_member=True))

    customers = _customers()
    assert (customers[big_spender].stage, customers[member].stage) == ("mature", "mature")
    assert customers[world["mature who stopped buying"]].stage == "dormant"


def test_the_demo_world_classifies_to_the_stages_it_was_generated_with(database_url) -> None:
    load_demo_world(database_url, customers=2000, today=DAY)
    before = _customers()

    classified = _classify(at_local(DAY, 9, 0))

    assert (classified.updated, classified.transitions) == (0, {})
    assert _customers() == before


@pytest.mark.postgres
def test_classification_on_postgresql(postgres_url) -> None:
    make_world(DAY, postgres_url)
    ids = _cases(CASES)

    classified = _classify()
    again = _classify(AS_OF + dt.timedelta(hours=1))

    customers = _customers()
    assert {name: customers[i].stage for name, i in ids.items()} == {
        name: case[4] for name, case in CASES.items()
    }
    assert classified.moved == len(_transitions()) > 0
    assert (again.updated, again.transitions) == (0, {})
    assert customers[ids["six orders"]].last_order_at == _ago(2)
