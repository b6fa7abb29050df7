"""Load the whole demo world into a fresh database: reference data first, then customer chunks."""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Callable
from typing import cast

from sqlalchemy import inspect

from core.clock import at_local, local_today
from demo import catalogue, community, offers, places
from demo.bulk import BulkWriter, bulk_session, timestamp_suffix
from demo.customers import (
    CUSTOMER_COLUMNS,
    CUSTOMER_TAG_COLUMNS,
    EVENT_COLUMNS,
    MEMBER_COLUMNS,
    OPT_OUT_COLUMNS,
    TRANSITION_COLUMNS,
    Chunk,
    build_chunk,
    chunk_count,
)
from demo.orders import LINE_COLUMNS, ORDER_COLUMNS, Ids
from demo.plan import (
    CLASSIFIED_AT,
    FAVOURITE_WEIGHTS,
    GROUP_JOIN_MAX,
    GROUP_MEMBERS_TARGET,
    STAGE_WEIGHTS,
    Plan,
    birthday_pool,
    cum,
    day_strings,
    line_pools,
    place_lookups,
    time_strings,
    userid_offset,
)
from models.db import make_engine

Progress = Callable[[str], None]

# Chunk tables in foreign-key order, with their columns.
CHUNK_TABLES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("customer", CUSTOMER_COLUMNS),
    ("orders", ORDER_COLUMNS),
    ("order_line", LINE_COLUMNS),
    ("customer_tag", CUSTOMER_TAG_COLUMNS),
    ("opt_out", OPT_OUT_COLUMNS),
    ("stage_transition", TRANSITION_COLUMNS),
    ("group_member", MEMBER_COLUMNS),
    ("event", EVENT_COLUMNS),
)
CAMPAIGN_START_HOUR = 10
CAMPAIGN_DAYS = 2


def load_demo_world(
    url: str,
    *,
    customers: int = 5000,
    seed: int = 42,
    today: dt.date | None = None,
    progress: Progress | None = None,
) -> dict[str, int]:
    """Fill the fresh database at `url` with a deterministic retail world; rows per table."""
    if customers < 1:
        raise ValueError(f"customers must be at least 1, got {customers}")
    report = progress or _silent
    _require_fresh(url)
    today = today or local_today()
    with bulk_session(url) as writer:
        plan = _load_reference(writer, today=today, seed=seed, customers=customers, report=report)
        members: dict[int, int] = {}
        ids = Ids()
        for index in range(chunk_count(customers)):
            _insert_chunk(writer, build_chunk(plan, index, ids), members)
            report(f"customers {writer.counts['customer']}")
        writer.executemany(
            "UPDATE customer_group SET member_count = ? WHERE id = ?",
            [(count, group) for group, count in sorted(members.items())],
        )
        report("indexes")
    return dict(writer.counts)


def _silent(_message: str) -> None:
    return None


def _require_fresh(url: str) -> None:
    engine = make_engine(url)
    try:
        if not inspect(engine).has_table("customer"):
            raise ValueError(
                f"{url} has no schema yet: run the migrations first (models.db.upgrade)"
            )
        with engine.connect() as conn:
            for table in ("customer", "product", "store"):
                if conn.exec_driver_sql(f"SELECT 1 FROM {table} LIMIT 1").first() is not None:
                    raise ValueError(
                        f"{url} already holds data (table {table!r}); "
                        "load the demo world into a fresh database"
                    )
    finally:
        engine.dispose()


def _load_reference(
    writer: BulkWriter, *, today: dt.date, seed: int, customers: int, report: Progress
) -> Plan:
    """Products, stores, staff, tags, deals, the campaign and groups; the plan for customers."""
    products = catalogue.products()
    writer.insert("product", catalogue.PRODUCT_COLUMNS, catalogue.product_rows(products))
    store_list = places.stores()
    staff_list = places.staff(store_list, random.Random(f"{seed}:staff"))
    writer.insert("store", places.STORE_COLUMNS, places.store_rows(store_list))
    writer.insert("staff", places.STAFF_COLUMNS, places.staff_rows(staff_list))
    writer.insert("tag", community.TAG_COLUMNS, community.tag_rows())
    deals = offers.deal_rows(
        products, [today, today + dt.timedelta(days=1)], random.Random(f"{seed}:deals")
    )
    writer.insert("deal", offers.DEAL_COLUMNS, deals)
    _load_campaign(writer, today, products, random.Random(f"{seed}:campaign"))
    report(f"products {len(products)}, stores {len(store_list)}, staff {len(staff_list)}")

    suffix = timestamp_suffix(writer.dialect)
    days, times = day_strings(today), time_strings(suffix)
    expected = _expected_fans(customers)
    group_list = community.groups(expected, staff_list, random.Random(f"{seed}:groups"))
    writer.insert(
        "customer_group", community.GROUP_COLUMNS, community.group_rows(group_list, days, times)
    )
    report(f"groups {len(group_list)}")

    stores_by_city, advisors = place_lookups(store_list, staff_list)
    birthdays, birthday_weights = birthday_pool(today)
    cities, city_weights = cum({city: share for city, _code, share, _malls in places.CITIES})
    categories, favourite_weights = cum(FAVOURITE_WEIGHTS)
    stages, stage_weights = cum(STAGE_WEIGHTS)
    by_key: dict[tuple[str, str], list[int]] = {}
    for group in group_list:
        by_key.setdefault((group.city, group.category), []).append(group.id)
    return Plan(
        seed=seed,
        customers=customers,
        days=days,
        times=times,
        classified_time=times[CLASSIFIED_AT],
        birthdays=birthdays,
        birthday_cum_weights=birthday_weights,
        cities=cities,
        city_cum_weights=city_weights,
        stores_by_city=stores_by_city,
        advisors_by_store=advisors,
        categories=categories,
        favourite_cum_weights=favourite_weights,
        stages=stages,
        stage_cum_weights=stage_weights,
        line_pools=line_pools(products),
        deal_product_ids=tuple(sorted({cast(int, row[5]) for row in deals})),
        groups={key: tuple(ids) for key, ids in by_key.items()},
        join_probability={
            key: min(GROUP_JOIN_MAX, len(ids) * GROUP_MEMBERS_TARGET / max(expected[key], 1.0))
            for key, ids in by_key.items()
        },
        tag_ids=community.tag_ids(),
        userid_offset=userid_offset(seed),
    )


def _load_campaign(
    writer: BulkWriter, today: dt.date, products: list[catalogue.ProductSpec], rng: random.Random
) -> None:
    starts = at_local(today + dt.timedelta(days=1), CAMPAIGN_START_HOUR)
    ends = starts + dt.timedelta(days=CAMPAIGN_DAYS)
    row = offers.campaign_row(today, writer.timestamp(starts), writer.timestamp(ends))
    writer.insert("campaign", offers.CAMPAIGN_COLUMNS, [row])
    writer.insert(
        "campaign_item", offers.CAMPAIGN_ITEM_COLUMNS, offers.campaign_item_rows(products, rng)
    )


def _expected_fans(customers: int) -> dict[tuple[str, str], float]:
    """Expected active customers per (city, favourite category)."""
    city_total = sum(share for _city, _code, share, _malls in places.CITIES)
    favourite_total = sum(FAVOURITE_WEIGHTS.values())
    active = customers * (1 - STAGE_WEIGHTS["deleted"] / sum(STAGE_WEIGHTS.values()))
    return {
        (city, category): active * share / city_total * weight / favourite_total
        for city, _code, share, _malls in places.CITIES
        for category, weight in FAVOURITE_WEIGHTS.items()
    }


def _insert_chunk(writer: BulkWriter, chunk: Chunk, members: dict[int, int]) -> None:
    for table, columns in CHUNK_TABLES:
        writer.insert(table, columns, chunk.rows[table])
    for group, count in chunk.group_members.items():
        members[group] = members.get(group, 0) + count
