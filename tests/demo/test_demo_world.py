"""The demo retail world: deterministic, realistic, and consistent with its own orders."""

from __future__ import annotations

import datetime as dt
import re
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine
from sqlmodel import Session

from core.clock import at_local, local
from demo import load_demo_world
from models import db
from models.people import Customer
from models.vocab import CATEGORIES, STAGES, TIERS

TODAY = dt.date(2026, 11, 24)
CUSTOMERS = 5000


@pytest.fixture
def world(database_url: str) -> tuple[str, dict[str, int]]:
    """A fresh database holding the 5,000-customer demo world of seed 42."""
    return database_url, load_demo_world(database_url, customers=CUSTOMERS, seed=42, today=TODAY)


def _rows(engine: Engine, sql: str) -> list[Any]:
    with engine.connect() as conn:
        return list(conn.exec_driver_sql(sql).all())


def _engine(url: str) -> Engine:
    return db.get_engine(url)


def _days_ago(value: dt.datetime) -> int:
    return (TODAY - local(value).date()).days


def _expected_stage(customer: Customer) -> str:
    """The classification rules the demo world documents, applied to a customer's summary."""
    if customer.contact_state == "deleted":
        return "churned"
    if _days_ago(customer.added_at) <= 14 and customer.order_count <= 1:
        return "new"
    idle = _days_ago(customer.last_order_at or customer.added_at)
    if idle > 90:
        return "churned"
    if idle > 30:
        return "dormant"
    return "mature" if customer.order_count >= 6 else "growing"


def _expected_tier(total_fen: int) -> str:
    if total_fen >= 300_000:
        return "platinum"
    if total_fen >= 100_000:
        return "gold"
    return "silver" if total_fen >= 30_000 else "bronze"


def test_same_seed_gives_identical_rows(world: tuple[str, dict[str, int]], tmp_path: Path) -> None:
    """Two loads with one seed and one day write the same customers, groups, deals and orders."""
    url, counts = world
    other = f"sqlite:///{tmp_path / 'other.db'}"
    db.upgrade(other)
    assert load_demo_world(other, customers=CUSTOMERS, seed=42, today=TODAY) == counts
    for sql in (
        "SELECT * FROM customer ORDER BY id",
        "SELECT * FROM customer_group ORDER BY id",
        "SELECT * FROM deal ORDER BY id",
        "SELECT * FROM orders ORDER BY id",
        "SELECT * FROM order_line ORDER BY id",
        "SELECT * FROM customer_tag ORDER BY customer_id, tag_id",
        "SELECT * FROM campaign_item ORDER BY id",
    ):
        assert _rows(_engine(url), sql) == _rows(_engine(other), sql), sql
    different = f"sqlite:///{tmp_path / 'different.db'}"
    db.upgrade(different)
    load_demo_world(different, customers=50, seed=7, today=TODAY)
    names = "SELECT name FROM customer ORDER BY id LIMIT 50"
    assert _rows(_engine(url), names) != _rows(_engine(different), names)


def test_every_stage_and_tier_is_well_populated(world: tuple[str, dict[str, int]]) -> None:
    """At 5,000 customers each lifecycle stage and member tier holds at least 5%."""
    url, _counts = world
    stages = dict(_rows(_engine(url), "SELECT stage, COUNT(*) FROM customer GROUP BY stage"))
    tiers = dict(_rows(_engine(url), "SELECT tier, COUNT(*) FROM customer GROUP BY tier"))
    assert set(stages) == set(STAGES) and min(stages.values()) >= CUSTOMERS * 0.05
    assert set(tiers) == set(TIERS) and min(tiers.values()) >= CUSTOMERS * 0.05
    paid = _rows(_engine(url), "SELECT COUNT(*) FROM customer WHERE is_paid_member")[0][0]
    assert 0 < paid < CUSTOMERS * 0.2


def test_stage_tier_and_summaries_agree_with_orders(world: tuple[str, dict[str, int]]) -> None:
    """Every customer's summary columns, stage and tier follow from their orders."""
    url, _counts = world
    totals = {
        cid: (count, total)
        for cid, count, total in _rows(
            _engine(url), "SELECT customer_id, COUNT(*), SUM(total_fen) FROM orders GROUP BY 1"
        )
    }
    with Session(_engine(url)) as session:
        customers = session.query(Customer).all()
    for customer in customers:
        assert (customer.order_count, customer.total_spent_fen) == totals.get(customer.id, (0, 0))
        assert customer.stage == _expected_stage(customer), customer
        assert customer.tier == _expected_tier(customer.total_spent_fen), customer
        if customer.stage == "dormant":
            assert customer.last_order_at and 30 < _days_ago(customer.last_order_at) <= 90
    last = dict(_rows(_engine(url), "SELECT customer_id, MAX(placed_at) FROM orders GROUP BY 1"))
    sample = _rows(
        _engine(url), "SELECT id, last_order_at FROM customer WHERE order_count > 0 LIMIT 500"
    )
    assert all(last[cid] == at for cid, at in sample)


def test_stage_entry_is_recorded_and_in_the_past(world: tuple[str, dict[str, int]]) -> None:
    """One transition per customer into its current stage, at stage_since, never in the future."""
    url, _counts = world
    mismatched = _rows(
        _engine(url),
        "SELECT COUNT(*) FROM customer c JOIN stage_transition t ON t.customer_id = c.id "
        "WHERE t.to_stage != c.stage OR t.at != c.stage_since OR c.stage_since < c.added_at",
    )
    assert mismatched == [(0,)]
    start_of_today = db_text(at_local(TODAY, 0))
    for sql in (
        "SELECT MAX(placed_at) FROM orders",
        "SELECT MAX(stage_since) FROM customer",
        "SELECT MAX(added_at) FROM customer",
    ):
        assert _rows(_engine(url), sql)[0][0] < start_of_today, sql


def db_text(value: dt.datetime) -> str:
    """How SQLite stores an aware UTC datetime."""
    return value.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%S.%f")


def test_order_totals_match_their_lines(world: tuple[str, dict[str, int]]) -> None:
    """total_fen is the sum of the lines and saved_fen the discount against list prices."""
    url, counts = world
    wrong = _rows(
        _engine(url),
        "SELECT o.id FROM orders o JOIN ("
        "  SELECT l.order_id, SUM(l.quantity * l.price_fen) AS paid,"
        "         SUM(l.quantity * p.list_price_fen) AS listed"
        "  FROM order_line l JOIN product p ON p.id = l.product_id GROUP BY l.order_id"
        ") s ON s.order_id = o.id WHERE o.total_fen != s.paid OR o.saved_fen != s.listed - s.paid",
    )
    assert wrong == []
    assert 2 <= counts["orders"] / CUSTOMERS <= 4
    assert counts["product"] >= 150


def test_todays_deals_cover_every_category_and_slot(world: tuple[str, dict[str, int]]) -> None:
    """Each category has 3-5 morning and 2-3 evening chain-wide deals today, below list price."""
    url, _counts = world
    rows = _rows(
        _engine(url),
        f"SELECT category, slot, position, price_fen, list_price_fen, limit_per_order, stock "
        f"FROM deal WHERE day = '{TODAY.isoformat()}' AND region IS NULL ORDER BY category, slot, position",
    )
    by_slot: dict[tuple[str, str], list[int]] = {}
    for category, slot, position, price, list_price, limit, stock in rows:
        assert 0 < price < list_price and limit > 0 and stock > 0
        by_slot.setdefault((category, slot), []).append(position)
    assert set(by_slot) == {(c, s) for c in CATEGORIES for s in ("morning", "evening")}
    for (_category, slot), positions in by_slot.items():
        assert positions == list(range(1, len(positions) + 1))
        assert 3 <= len(positions) <= 5 if slot == "morning" else 2 <= len(positions) <= 3
    eggs = _rows(
        _engine(url),
        "SELECT d.price_fen, d.limit_per_order, p.unit FROM deal d JOIN product p ON p.id = d.product_id "
        f"WHERE p.name = '鸡蛋' AND d.day = '{TODAY.isoformat()}' AND d.slot = 'morning'",
    )
    assert eggs == [(399, eggs[0][1], "斤")]
    regional = _rows(_engine(url), "SELECT COUNT(*) FROM deal WHERE region IS NOT NULL")[0][0]
    assert regional > 0


def test_campaign_starts_tomorrow_at_ten_and_beats_competitors(
    world: tuple[str, dict[str, int]],
) -> None:
    """The draft 双12 campaign starts at 10:00 Shanghai tomorrow; every item undercuts a rival."""
    url, _counts = world
    (code, name, sop_id, status, starts_at, ends_at) = _rows(
        _engine(url), "SELECT code, name, sop_id, status, starts_at, ends_at FROM campaign"
    )[0]
    assert (code, name, sop_id, status) == ("double12-2026", "双12年终大促", "double12", "draft")
    starts = at_local(TODAY + dt.timedelta(days=1), 10)
    assert (starts_at, ends_at) == (db_text(starts), db_text(starts + dt.timedelta(days=2)))
    items = _rows(
        _engine(url),
        "SELECT price_fen, competitor_name, competitor_price_fen, stock FROM campaign_item",
    )
    assert len(items) >= 30
    assert all(rival > price and stock > 0 for price, _name, rival, stock in items)
    assert {rival_name for _price, rival_name, _rival, _stock in items} <= {
        "某东",
        "某猫",
        "某多多",
    }


def test_opt_outs_and_deleted_contacts_have_their_share(
    world: tuple[str, dict[str, int]],
) -> None:
    """About 5% of customers opt out of a category and about 3% deleted the contact."""
    url, _counts = world
    opted = _rows(_engine(url), "SELECT COUNT(DISTINCT customer_id) FROM opt_out")[0][0]
    assert 0.04 * CUSTOMERS <= opted <= 0.06 * CUSTOMERS
    categories = {row[0] for row in _rows(_engine(url), "SELECT DISTINCT category FROM opt_out")}
    assert categories <= set(CATEGORIES)
    deleted = _rows(
        _engine(url),
        "SELECT COUNT(*), SUM(deleted_at IS NOT NULL), SUM(stage = 'churned') "
        "FROM customer WHERE contact_state = 'deleted'",
    )[0]
    assert 0.02 * CUSTOMERS <= deleted[0] <= 0.04 * CUSTOMERS
    assert deleted[0] == deleted[1] == deleted[2]


def test_groups_cover_every_city_and_theme_with_local_members(
    world: tuple[str, dict[str, int]],
) -> None:
    """Each city×theme has a group owned by a local advisor, whose members live in that city."""
    url, _counts = world
    groups = _rows(
        _engine(url),
        "SELECT g.id, g.name, g.region, g.theme, g.chat_id, g.member_count, s.city "
        "FROM customer_group g JOIN staff m ON m.id = g.owner_staff_id JOIN store s ON s.id = m.store_id",
    )
    cities = {row[0] for row in _rows(_engine(url), "SELECT DISTINCT city FROM store")}
    assert len(cities) >= 6
    assert {(g[2], g[3]) for g in groups} == {(c, t) for c in cities for t in CATEGORIES.values()}
    members = Counter(
        group_id for (group_id,) in _rows(_engine(url), "SELECT group_id FROM group_member")
    )
    for group_id, name, region, theme, chat_id, member_count, owner_city in groups:
        assert name.startswith(region + theme) and name.endswith("群")
        assert re.fullmatch(r"wr[0-9a-f]{28}", chat_id) and owner_city == region
        assert member_count == members[group_id] > 0
    strangers = _rows(
        _engine(url),
        "SELECT COUNT(*) FROM group_member gm JOIN customer c ON c.id = gm.customer_id "
        "JOIN customer_group g ON g.id = gm.group_id "
        "WHERE c.region != g.region OR c.contact_state != 'active' OR gm.joined_at < c.added_at",
    )
    assert strangers == [(0,)]


def test_customers_look_like_wecom_contacts(world: tuple[str, dict[str, int]]) -> None:
    """Chinese names, wm… external userids, advisors of the customer's own store."""
    url, _counts = world
    rows = _rows(
        _engine(url),
        "SELECT c.external_userid, c.name, c.phone, c.region, s.city, m.store_id, c.store_id, m.role "
        "FROM customer c JOIN store s ON s.id = c.store_id JOIN staff m ON m.id = c.owner_staff_id",
    )
    assert len(rows) == CUSTOMERS
    for userid, name, phone, region, city, owner_store, store, role in rows:
        assert re.fullmatch(r"wm[0-9a-f]{28}", userid)
        assert re.fullmatch(r"[\u4e00-\u9fff]{2,4}", name)
        assert re.fullmatch(r"1[3-9]\d{9}", phone)
        assert region == city and owner_store == store and role == "advisor"
    staff = [row[0] for row in _rows(_engine(url), "SELECT userid FROM staff")]
    assert all(re.fullmatch(r"[a-z]+\.[a-z]{2}\d{2}", userid) for userid in staff)


def test_datetimes_read_back_aware_utc(world: tuple[str, dict[str, int]]) -> None:
    """Rows written in bulk read back through SQLModel as aware UTC datetimes."""
    url, _counts = world
    with Session(_engine(url)) as session:
        customer = session.get(Customer, 1)
    assert customer is not None
    assert customer.added_at.tzinfo == dt.UTC and customer.stage_since.tzinfo == dt.UTC


def test_tags_and_events_are_present(world: tuple[str, dict[str, int]]) -> None:
    """Auto and manual tags are used; new contacts and favourites are recorded as events."""
    url, _counts = world
    used = dict(
        _rows(
            _engine(url),
            "SELECT t.name, COUNT(*) FROM customer_tag ct JOIN tag t ON t.id = ct.tag_id GROUP BY 1",
        )
    )
    for name in ("高频购买", "生鲜偏好", "价格敏感", "新客", "宝妈", "门店扫码"):
        assert used.get(name, 0) > 0, name
    new = _rows(_engine(url), "SELECT COUNT(*) FROM customer WHERE stage = 'new'")[0][0]
    events = dict(_rows(_engine(url), "SELECT kind, COUNT(*) FROM event GROUP BY kind"))
    assert events["contact.added"] == new and events["favourite"] > 0


def test_refuses_a_database_that_already_has_customers(database_url: str) -> None:
    """A second load into the same database is refused with a clear message."""
    load_demo_world(database_url, customers=20, today=TODAY)
    with pytest.raises(ValueError, match="fresh database"):
        load_demo_world(database_url, customers=20, today=TODAY)


def test_refuses_a_database_without_schema(tmp_path: Path) -> None:
    """A database that was never migrated is refused, pointing at the migrations."""
    with pytest.raises(ValueError, match="migrations"):
        load_demo_world(f"sqlite:///{tmp_path / 'empty.db'}", customers=20, today=TODAY)


def test_progress_reports_customers(database_url: str) -> None:
    """The progress callback hears short messages, ending with the customer count."""
    messages: list[str] = []
    load_demo_world(database_url, customers=30, today=TODAY, progress=messages.append)
    assert "customers 30" in messages


@pytest.mark.postgres
def test_postgres_gets_the_same_world(postgres_url: str, database_url: str) -> None:
    """PostgreSQL holds the same customers as SQLite, and new rows get fresh ids after the load."""
    for url in (postgres_url, database_url):
        load_demo_world(url, customers=300, seed=3, today=TODAY)
    loaded = []
    for url in (postgres_url, database_url):
        with Session(_engine(url)) as session:
            loaded.append([c.model_dump() for c in session.query(Customer).order_by(Customer.id)])
    assert loaded[0] == loaded[1]
    assert loaded[0][0]["added_at"].tzinfo is not None
    with Session(_engine(postgres_url)) as session:
        extra = Customer(**{**loaded[0][0], "id": None, "external_userid": "wm-new"})
        session.add(extra)
        session.commit()
        assert extra.id == 301
    counts = [
        _rows(_engine(url), "SELECT COUNT(*), SUM(total_fen) FROM orders")
        for url in (postgres_url, database_url)
    ]
    assert counts[0] == counts[1]
