"""The one pass over the orders: an order with lines of two categories counts (whole) for both,
category windows and a category's last order, with and without the all-lines path."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlmodel import select

from core.clock import at_local
from engine.derive import derive_customers
from models.db import session_scope
from models.people import CustomerTag, Tag
from soplang.tag_rules import TagRule
from tests.factories import add_customers, add_order, make_world

DAY = dt.date(2026, 11, 24)
AS_OF = at_local(DAY, 0, 5)
BABY, FRESH = ("B001", 1, 5990), ("F001", 1, 399)
RULES = [
    TagRule(name="生鲜两单", line=1, category="fresh", days=60, min_orders=2),
    TagRule(name="生鲜大额", line=2, category="fresh", days=60, min_spend_fen=6000),
    TagRule(name="母婴均价", line=3, category="baby", days=30, min_average_fen=5000),
]
SLEEPING_BABY = TagRule(name="母婴沉睡", line=4, category="baby", no_order_days=30)


def _ago(days: int) -> dt.datetime:
    return at_local(DAY - dt.timedelta(days=days), 15)


def _tagged(rules: list[TagRule]) -> dict[str, set[str]]:
    names = {}
    for name, orders in {
        "P": [(10, [BABY, FRESH]), (50, [FRESH])],
        "Q": [(40, [BABY]), (2, [FRESH])],
        "R": [(5, [BABY])],
    }.items():
        [names[name]] = add_customers(1, first=len(names))
        for days, lines in orders:
            add_order(names[name], _ago(days), lines)
    with session_scope() as session:
        derive_customers(AS_OF, session=session, tiers=None, rules=rules)
    by_id = {v: k for k, v in names.items()}
    with session_scope() as session:
        rows = session.exec(
            select(Tag.name, CustomerTag.customer_id).join(
                CustomerTag, CustomerTag.tag_id == Tag.id
            )
        ).all()
    tagged: dict[str, set[str]] = {rule.name: set() for rule in rules}
    for tag, customer in rows:
        tagged[tag].add(by_id[customer])
    return tagged


EXPECTED = {"生鲜两单": {"P"}, "生鲜大额": {"P"}, "母婴均价": {"P", "R"}}


def test_category_windows_count_whole_orders_of_either_category(database_url) -> None:
    """P's order with a baby and a fresh line counts, at its whole total, for both categories."""
    make_world(DAY, database_url)
    assert _tagged(RULES) == EXPECTED


def test_a_category_last_order_reads_every_line(database_url) -> None:
    """With a category `no_order_days` rule the lines of all orders are read; the windows agree."""
    make_world(DAY, database_url)
    assert _tagged([*RULES, SLEEPING_BABY]) == {**EXPECTED, "母婴沉睡": {"Q"}}


@pytest.mark.postgres
def test_the_same_on_postgresql(postgres_url) -> None:
    """The bit masks and windows give the same answers on PostgreSQL."""
    make_world(DAY, postgres_url)
    assert _tagged([*RULES, SLEEPING_BABY]) == {**EXPECTED, "母婴沉睡": {"Q"}}


def test_the_connection_gets_its_temporary_cache_size_back(database_url) -> None:
    """The larger page cache for the temporary tables lasts only for the derivation."""
    make_world(DAY, database_url)
    with session_scope() as session:
        pragma = "PRAGMA temp.cache_size"
        before = session.connection().exec_driver_sql(pragma).scalar()
        derive_customers(AS_OF, session=session, tiers=None, rules=[*RULES, SLEEPING_BABY])
        assert session.connection().exec_driver_sql(pragma).scalar() == before
