"""The frozen plan every customer chunk is generated from: lookups, weights and time strings."""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from itertools import accumulate
from typing import TypeVar

from demo.catalogue import ProductSpec
from demo.places import CITIES, StaffSpec, StoreSpec
from models.vocab import CATEGORIES

MAX_DAYS = 800  # the oldest timestamp is this many days before today
BUSINESS_SECONDS = 14 * 3600  # 08:00-22:00 Asia/Shanghai is 00:00-14:00 UTC, the same date
CLASSIFIED_AT = 2 * 3600  # stage changes are stamped 10:00 local, when the classifier runs
CHUNK_SIZE = 20_000  # customers per chunk; fixed, so the rows never depend on memory

# Share of customers whose favourite category is each one.
FAVOURITE_WEIGHTS = {
    "fresh": 30,
    "baby": 15,
    "snacks": 18,
    "drinks": 12,
    "appliances": 8,
    "daily": 17,
}
# Lifecycle stage drawn first; orders are then generated to match it. `deleted` is churned too.
STAGE_WEIGHTS = {
    "new": 10,
    "growing": 27,
    "mature": 15,
    "dormant": 22,
    "churned": 23,
    "deleted": 3,
}
GROUP_MEMBERS_TARGET = 400  # expected members per group (WeCom caps customer groups at 500)
GROUP_JOIN_MAX = 0.4  # at most this share of a region's fans of a category join its groups

# Unique, stable-looking external userids: an affine bijection of the customer id.
_USERID_BITS = 112
_USERID_MULT = 0x9E3779B97F4A7C15F39CC0605CEDC835 & ((1 << _USERID_BITS) - 1) | 1


# A product as order lines see it: (id, list price, prices it sells at, bulky: one per line).
ProductPick = tuple[int, int, tuple[int, ...], bool]
FAVOURITE_REPEAT = 6  # a line picks from the customer's favourite category about 60% of the time


Rand = Callable[[], float]  # the `random` method of a chunk's random.Random
T = TypeVar("T")


def between(rand: Rand, low: int, high: int) -> int:
    """A uniform integer in [low, high] from one draw (several times cheaper than randint)."""
    return low + int(rand() * (high - low + 1))


def pick(rand: Rand, items: Sequence[T]) -> T:
    """A uniform element of `items` from one draw (cheaper than random.choice)."""
    return items[int(rand() * len(items))]


@dataclass(frozen=True)
class Plan:
    """Everything a chunk needs; picklable so a worker process can build chunks."""

    seed: int
    customers: int
    days: tuple[str, ...]  # "YYYY-MM-DD " for each number of days ago, 0..MAX_DAYS
    times: tuple[str, ...]  # "HH:MM:SS.ffffff" (+ zone suffix) per UTC second of business hours
    classified_time: str
    birthdays: tuple[str, ...]
    birthday_cum_weights: tuple[float, ...]
    cities: tuple[str, ...]
    city_cum_weights: tuple[float, ...]
    stores_by_city: dict[str, tuple[int, ...]]
    advisors_by_store: dict[int, tuple[int, ...]]
    categories: tuple[str, ...]
    favourite_cum_weights: tuple[float, ...]
    stages: tuple[str, ...]
    stage_cum_weights: tuple[float, ...]
    line_pools: dict[str, tuple[ProductPick, ...]]  # per favourite category
    deal_product_ids: tuple[int, ...]
    groups: dict[tuple[str, str], tuple[int, ...]]  # (city, category) -> group ids
    join_probability: dict[tuple[str, str], float]
    tag_ids: dict[str, int]
    userid_offset: int

    def external_userid(self, customer_id: int) -> str:
        """`wm` + 28 hex characters, unique per customer id and stable per seed."""
        mask = (1 << _USERID_BITS) - 1
        return f"wm{(customer_id * _USERID_MULT + self.userid_offset) & mask:028x}"


def time_strings(suffix: str) -> tuple[str, ...]:
    """The stored time of day for each second of business hours (UTC 00:00-14:00)."""
    return tuple(
        f"{s // 3600:02d}:{s // 60 % 60:02d}:{s % 60:02d}.000000{suffix}"
        for s in range(BUSINESS_SECONDS)
    )


def day_strings(today: dt.date) -> tuple[str, ...]:
    """'YYYY-MM-DD ' for today, yesterday, … MAX_DAYS ago."""
    return tuple(f"{(today - dt.timedelta(days=d)).isoformat()} " for d in range(MAX_DAYS + 1))


def birthday_pool(today: dt.date) -> tuple[tuple[str, ...], tuple[float, ...]]:
    """Birthdays of customers aged 18-65, weighted towards 28-40."""
    days: list[str] = []
    weights: list[float] = []
    start = dt.date(today.year - 65, 1, 1)
    for offset in range((dt.date(today.year - 18, 12, 31) - start).days + 1):
        day = start + dt.timedelta(days=offset)
        age = today.year - day.year
        days.append(day.isoformat())
        weights.append(3.0 if 28 <= age <= 40 else 1.5 if 22 <= age <= 50 else 0.6)
    return tuple(days), tuple(accumulate(weights))


def line_pools(catalogue: list[ProductSpec]) -> dict[str, tuple[ProductPick, ...]]:
    """Per favourite category, the products an order line draws from (the favourite repeated)."""
    picks = {
        p.id: (p.id, p.list_price_fen, _prices(p.list_price_fen), p.category == "appliances")
        for p in catalogue
    }
    everything = tuple(picks.values())
    return {
        key: tuple(picks[p.id] for p in catalogue if p.category == key) * FAVOURITE_REPEAT
        + everything
        for key in CATEGORIES
    }


def _prices(list_fen: int) -> tuple[int, ...]:
    """What a unit sold at: list price, 95折, 9折, 8折."""
    return tuple(round(list_fen * r) for r in (1.0, 0.95, 0.9, 0.8))


def place_lookups(
    store_list: list[StoreSpec], staff_list: list[StaffSpec]
) -> tuple[dict[str, tuple[int, ...]], dict[int, tuple[int, ...]]]:
    """Store ids per city, and advisor ids per store."""
    stores_by_city = {
        city: tuple(s.id for s in store_list if s.city == city) for city, *_ in CITIES
    }
    advisors = {
        store.id: tuple(m.id for m in staff_list if m.store_id == store.id and m.role == "advisor")
        for store in store_list
    }
    return stores_by_city, advisors


def userid_offset(seed: int) -> int:
    """The seed's offset for external userids."""
    return random.Random(f"{seed}:external_userid").getrandbits(_USERID_BITS)


def cum(weights: dict[str, int]) -> tuple[tuple[str, ...], tuple[float, ...]]:
    """Keys and cumulative weights for `random.choices`."""
    return tuple(weights), tuple(accumulate(float(w) for w in weights.values()))
