"""Customer audiences compile to one bound-parameter query, streamed in id ranges computed by the database."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import func, select

from core.clock import utcnow
from engine.audience import StageEntryAudience
from models.audience import count_customers, customer_id_ranges, customers_in_range
from models.db import session_scope
from models.holdout import held_out_clause, is_held_out
from models.people import Customer
from soplang.spec import CustomerAudience
from tests.factories import add_customers, make_world, tag_customers

DAY = dt.date(2026, 11, 24)


def ids(audience: CustomerAudience, batch_size: int = 1000, as_of=None) -> list[int]:
    with session_scope() as session:
        ranges = customer_id_ranges(audience, batch_size=batch_size, session=session, as_of=as_of)
        return [
            c.id
            for r in ranges
            for c in customers_in_range(audience, r, session=session, as_of=as_of)
        ]


@pytest.fixture
def world(database_url: str):
    return make_world(DAY, database_url)


def test_stage_tier_and_region_filters_select_matching_customers(world) -> None:
    dormant = add_customers(3)
    gold = add_customers(2, first=10, tier="gold")
    beijing = add_customers(2, first=20, region="北京", stage="new", owner="zhangwei.bj01")

    assert ids(CustomerAudience(stage=["dormant"])) == dormant + gold
    assert ids(CustomerAudience(stage=["dormant"], tier=["gold"])) == gold
    assert ids(CustomerAudience(region=["北京"])) == beijing
    assert ids(CustomerAudience(stage=["dormant"], region=["北京"])) == []


def test_tags_any_and_tags_none_match_tag_names(world) -> None:
    mums, complaining, others = (
        add_customers(2),
        add_customers(2, first=10),
        add_customers(2, first=20),
    )
    tag_customers("宝妈", mums + complaining[:1])
    tag_customers("投诉中", complaining)

    assert ids(CustomerAudience(tags_any=["宝妈"])) == mums + complaining[:1]
    assert ids(CustomerAudience(tags_any=["宝妈"], tags_none=["投诉中"])) == mums
    assert ids(CustomerAudience(tags_none=["投诉中", "宝妈"])) == others


def test_last_purchase_days_is_counted_back_from_as_of(world) -> None:
    as_of = utcnow()
    recent = add_customers(1, last_order_at=as_of - dt.timedelta(days=10))
    lapsed = add_customers(1, first=10, last_order_at=as_of - dt.timedelta(days=60))
    gone = add_customers(1, first=20, last_order_at=as_of - dt.timedelta(days=200))
    add_customers(1, first=30, last_order_at=None)  # never ordered: matches no recency rule

    window = CustomerAudience(last_purchase_days={"gte": 30, "lte": 90})
    assert ids(window, as_of=as_of) == lapsed
    assert ids(CustomerAudience(last_purchase_days={"lte": 30}), as_of=as_of) == recent
    assert ids(CustomerAudience(last_purchase_days={"gte": 90}), as_of=as_of) == gone
    later = as_of + dt.timedelta(days=50)
    assert ids(window, as_of=later) == recent


def test_a_stage_entry_audience_also_selects_by_when_the_customer_entered_the_stage(world) -> None:
    entered = dt.datetime(2026, 11, 20, 16, 0, tzinfo=dt.UTC)
    day_before = add_customers(1, stage_since=entered - dt.timedelta(hours=1))
    that_day = add_customers(2, first=10, stage_since=entered)
    add_customers(1, first=20, stage="new", stage_since=entered)  # another stage
    audience = StageEntryAudience(
        stage=["dormant"], entered_from=entered, entered_before=entered + dt.timedelta(days=1)
    )

    assert ids(audience) == that_day
    assert ids(CustomerAudience(stage=["dormant"])) == day_before + that_day


def test_a_hostile_tag_is_just_a_value_that_matches_nothing(world) -> None:
    everyone = add_customers(3)
    tag_customers("宝妈", everyone)
    hostile = "x'); DROP TABLE customer;--"

    assert ids(CustomerAudience(tags_any=[hostile])) == []
    assert ids(CustomerAudience(tags_none=[hostile], region=["上海' OR '1'='1"])) == []
    assert ids(CustomerAudience(tags_none=[hostile])) == everyone
    with session_scope() as session:
        assert session.execute(select(func.count()).select_from(Customer)).scalar_one() == 3


def test_deleted_contacts_stay_in_the_audience_for_the_guard_to_record(world) -> None:
    active = add_customers(1)
    deleted = add_customers(1, first=10, contact_state="deleted")

    with session_scope() as session:
        found = customers_in_range(CustomerAudience(), (active[0], deleted[0]), session=session)
    assert [(c.id, c.contact_state) for c in found] == [
        (active[0], "active"),
        (deleted[0], "deleted"),
    ]


def test_a_customer_target_carries_what_templates_need_and_no_phone(world) -> None:
    (only,) = add_customers(1, tier="gold")

    with session_scope() as session:
        (target,) = customers_in_range(CustomerAudience(), (only, only), session=session)
    assert (target.owner_userid, target.owner_name, target.tier) == (
        "zhangwei.bj01",
        "张伟",
        "gold",
    )
    assert target.external_userid == "wmTEST0000000" and target.name == "客户0"
    assert "1380000" not in repr(target)


def batch_sizes_cover_every_customer_once(audience: CustomerAudience, expected: list[int]) -> None:
    for batch_size in (1, 2, 3, 7, 1000):
        with session_scope() as session:
            ranges = customer_id_ranges(audience, batch_size=batch_size, session=session)
        assert len(ranges) == -(-len(expected) // batch_size)
        assert ids(audience, batch_size=batch_size) == expected
        assert all(len(ids_in(audience, r)) <= batch_size for r in ranges)


def ids_in(audience: CustomerAudience, id_range: tuple[int, int]) -> list[int]:
    with session_scope() as session:
        return [c.id for c in customers_in_range(audience, id_range, session=session)]


def test_id_ranges_split_the_audience_into_full_batches_covering_everyone_once(world) -> None:
    everyone = add_customers(20)
    gold = [i for n, i in enumerate(everyone) if n % 3 == 0]  # gaps between matching ids
    with session_scope() as session:
        session.execute(
            Customer.__table__.update().where(Customer.id.in_(gold)).values(tier="gold")
        )

    batch_sizes_cover_every_customer_once(CustomerAudience(tier=["gold"]), gold)
    batch_sizes_cover_every_customer_once(CustomerAudience(), everyone)
    with session_scope() as session:
        assert count_customers(CustomerAudience(tier=["gold"]), session=session) == len(gold)
        assert (
            customer_id_ranges(CustomerAudience(tier=["platinum"]), batch_size=5, session=session)
            == []
        )


def held_out_in_sql(sop_id: str, share: float) -> set[int]:
    with session_scope() as session:
        return set(
            session.execute(select(Customer.id).where(held_out_clause(sop_id, share))).scalars()
        )


def test_holdout_is_computed_alike_in_python_and_in_sql(world) -> None:
    everyone = add_customers(500)

    for sop_id, share in (("dormant-care", 0.1), ("birthday-care", 0.3)):
        python = {i for i in everyone if is_held_out(i, sop_id, share)}
        assert held_out_in_sql(sop_id, share) == python


@pytest.mark.postgres
def test_customer_audience_streams_and_holds_out_the_same_on_postgresql(postgres_url: str) -> None:
    make_world(DAY, postgres_url)
    everyone = add_customers(20)
    tag_customers("宝妈", everyone[:5])

    batch_sizes_cover_every_customer_once(CustomerAudience(), everyone)
    assert ids(CustomerAudience(tags_any=["宝妈"]), batch_size=2) == everyone[:5]
    assert ids(CustomerAudience(tags_any=["x'); DROP TABLE customer;--"])) == []
    assert held_out_in_sql("dormant-care", 0.3) == {
        i for i in everyone if is_held_out(i, "dormant-care", 0.3)
    }
