"""Today's deals (早报价 / 晚安心选) and the upcoming campaign (双12) with competitor prices."""

from __future__ import annotations

import datetime as dt
import random

from demo.catalogue import ProductSpec
from models.vocab import CATEGORIES

DEAL_COLUMNS = (
    "id",
    "day",
    "slot",
    "category",
    "region",
    "product_id",
    "price_fen",
    "list_price_fen",
    "limit_per_order",
    "stock",
    "position",
)
CAMPAIGN_COLUMNS = ("id", "code", "name", "sop_id", "starts_at", "ends_at", "status")
CAMPAIGN_ITEM_COLUMNS = (
    "id",
    "campaign_id",
    "product_id",
    "price_fen",
    "competitor_name",
    "competitor_price_fen",
    "stock",
)

# Products every morning / evening list starts with: (category, slot) -> (name, price in fen).
HEROES: dict[tuple[str, str], tuple[str, int]] = {
    ("fresh", "morning"): ("鸡蛋", 399),  # 今日鸡蛋3.99元/斤,限前200单
    ("snacks", "evening"): ("进口零食大礼包", 4950),  # 睡前秒杀,进口零食5折
    ("daily", "morning"): ("蓝月亮深层洁净洗衣液", 3990),
}
# A few regional specials on top of the chain-wide list: city -> (category, product name).
REGIONAL: dict[str, tuple[str, str]] = {
    "上海": ("fresh", "阳澄湖大闸蟹"),
    "杭州": ("fresh", "舟山带鱼"),
    "成都": ("snacks", "自热小火锅"),
    "武汉": ("snacks", "内蒙古风干牛肉干"),
}
MORNING_LIMITS = (100, 200, 200, 300, 500)  # 限前N单
COMPETITORS = ("某东", "某猫", "某多多")
CAMPAIGN_ITEMS_PER_CATEGORY = 5


def charm_price(fen: float, list_fen: int) -> int:
    """A shelf-style price below `list_fen`: x.x9 under 10元, xx.9 under 100元, xx9元 above."""
    step = 10 if fen < 1000 else 100 if fen < 10000 else 1000
    tail = step - 1 if step == 10 else step - 10 if step == 100 else step - 100
    price = int(fen // step) * step + tail
    while price >= list_fen and price > step:
        price -= step
    return max(price, 1) if price < list_fen else max(list_fen - 1, 1)


def deal_rows(
    catalogue: list[ProductSpec], days: list[dt.date], rng: random.Random
) -> list[tuple[object, ...]]:
    """Morning and evening deals per category for each of `days`, chain-wide plus regional."""
    by_category = _by_category(catalogue)
    by_name = {p.name: p for p in catalogue}
    rows: list[tuple[object, ...]] = []
    regional_names = {name for _category, name in REGIONAL.values()}
    for day in days:
        for category in CATEGORIES:
            pool = [p for p in by_category[category] if p.name not in regional_names]
            for slot in ("morning", "evening"):
                picks = _pick(pool, category, slot, by_name, rng)
                for position, (product, price) in enumerate(picks, start=1):
                    rows.append(
                        _deal(len(rows) + 1, day, slot, None, product, price, position, rng)
                    )
                for city, (regional_category, name) in REGIONAL.items():
                    if regional_category == category and slot == "morning":
                        product = by_name[name]
                        price = charm_price(product.list_price_fen * 0.7, product.list_price_fen)
                        position = len(picks) + 1
                        rows.append(
                            _deal(len(rows) + 1, day, slot, city, product, price, position, rng)
                        )
    return rows


def _by_category(catalogue: list[ProductSpec]) -> dict[str, list[ProductSpec]]:
    grouped: dict[str, list[ProductSpec]] = {key: [] for key in CATEGORIES}
    for product in catalogue:
        grouped[product.category].append(product)
    return grouped


def _pick(
    pool: list[ProductSpec],
    category: str,
    slot: str,
    by_name: dict[str, ProductSpec],
    rng: random.Random,
) -> list[tuple[ProductSpec, int]]:
    count = rng.randint(3, 5) if slot == "morning" else rng.randint(2, 3)
    picks: list[tuple[ProductSpec, int]] = []
    hero = HEROES.get((category, slot))
    if hero:
        picks.append((by_name[hero[0]], hero[1]))
    others = [p for p in pool if not hero or p.name != hero[0]]
    for product in rng.sample(others, count - len(picks)):
        ratio = rng.uniform(0.6, 0.85) if slot == "morning" else 0.5
        picks.append((product, charm_price(product.list_price_fen * ratio, product.list_price_fen)))
    return picks


def _deal(
    deal_id: int,
    day: dt.date,
    slot: str,
    region: str | None,
    product: ProductSpec,
    price: int,
    position: int,
    rng: random.Random,
) -> tuple[object, ...]:
    if slot == "morning":
        limit = rng.choice(MORNING_LIMITS)
        stock = limit * rng.choice((2, 3, 5))
    else:  # bedtime flash sale: small stock, first come first served
        stock = rng.choice((30, 50, 50, 80, 100))
        limit = stock
    return (
        deal_id,
        day.isoformat(),
        slot,
        product.category,
        region,
        product.id,
        price,
        product.list_price_fen,
        limit,
        stock,
        position,
    )


def campaign_row(today: dt.date, starts_at: str, ends_at: str) -> tuple[object, ...]:
    """The 双12 campaign, a draft that starts tomorrow at 10:00 local time."""
    return (1, f"double12-{today.year}", "双12年终大促", "double12", starts_at, ends_at, "draft")


def campaign_item_rows(
    catalogue: list[ProductSpec], rng: random.Random
) -> list[tuple[object, ...]]:
    """About 30 items, 1折起, each cheaper than a named competitor (比某东低20元)."""
    by_category = _by_category(catalogue)
    rows: list[tuple[object, ...]] = []
    for category in CATEGORIES:
        for product in rng.sample(by_category[category], CAMPAIGN_ITEMS_PER_CATEGORY):
            ratio = 0.1 if not rows else rng.choice((0.3, 0.4, 0.5, 0.5, 0.6, 0.7))
            price = charm_price(product.list_price_fen * ratio, product.list_price_fen)
            rival = charm_price(
                product.list_price_fen * rng.uniform(0.8, 0.95), product.list_price_fen
            )
            rival = max(rival, price + max(100, price // 10))
            stock = rng.choice((50, 100, 100, 100, 200, 300))
            rows.append(
                (len(rows) + 1, 1, product.id, price, rng.choice(COMPETITORS), rival, stock)
            )
    return rows
