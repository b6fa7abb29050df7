"""Order histories shaped by lifecycle stage, their order lines, and when the stage began."""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass

from demo.plan import BUSINESS_SECONDS, CLASSIFIED_AT, MAX_DAYS, Plan, Rand, between

ORDER_COLUMNS = ("id", "customer_id", "store_id", "placed_at", "total_fen", "saved_fen", "status")
LINE_COLUMNS = ("id", "order_id", "product_id", "quantity", "price_fen")

# How the demo classifies (days are local calendar days before today):
NEW_DAYS = 14  # new: added at most this many days ago, with at most one order
ACTIVE_DAYS = 30  # dormant: last activity (order, else added) more than this many days ago
CHURN_DAYS = 90  # churned: more than this many days ago, or the contact was deleted
HISTORY_DAYS = 180  # orders reach this far back
MATURE_ORDERS = 6  # mature: at least this many orders in the history

QUANTITIES = (1, 1, 1, 1, 1, 1, 2, 2, 2, 3)
PRICE_INDEX = (0, 0, 0, 0, 1, 1, 1, 2, 2, 3)  # list price, 95折, 9折, 8折 (see plan._prices)
SENSITIVE_PRICE_INDEX = (1, 2, 2, 2, 3, 3, 3, 3, 3, 3)  # price-sensitive customers buy on offer
PAID_DAYS = 2  # orders of the last two days are paid but not yet shipped
_NEVER = 1 << 62
ADDED_SECONDS = 50_000  # contacts are added early enough for a same-day order to follow
MATURE_COUNTS = (6, 6, 7, 7, 8, 8, 9, 10, 11, 12)


@dataclass(slots=True)
class Ids:
    """The next free id of each table whose ids run on across chunks."""

    order: int = 1
    line: int = 1
    transition: int = 1
    event: int = 1


@dataclass(slots=True)
class History:
    """When a customer was added (days ago, second of the business day), ordered and left."""

    added: int
    added_second: int
    order_days: list[int]
    deleted: int = 0  # days ago the contact was deleted; 0: still a contact


@dataclass(slots=True)
class Summary:
    """What the orders add up to; `keys` encode each order's time, oldest first."""

    count: int
    total: int
    last: str | None
    keys: list[int]


def _second(rand: Rand) -> int:
    return int(rand() * ADDED_SECONDS)


def _new(rand: Rand) -> History:
    added = between(rand, 1, NEW_DAYS)
    days = [between(rand, 1, added)] if rand() < 0.5 else []
    return History(added, _second(rand), days)


def _recent(rand: Rand, added: int, last: int, count: int) -> list[int]:
    oldest = min(added, HISTORY_DAYS)
    return [last] + [between(rand, last, oldest) for _ in range(count - 1)]


def _growing(rand: Rand) -> History:
    added = between(rand, NEW_DAYS + 2, 400)
    last = between(rand, 1, min(ACTIVE_DAYS, added))
    return History(added, _second(rand), _recent(rand, added, last, between(rand, 2, 4)))


def _mature(rand: Rand) -> History:
    added, last = between(rand, 60, 730), between(rand, 1, 20)
    count = MATURE_COUNTS[int(rand() * len(MATURE_COUNTS))]
    return History(added, _second(rand), _recent(rand, added, last, count))


def _dormant(rand: Rand) -> History:
    last = between(rand, ACTIVE_DAYS + 2, CHURN_DAYS)
    added = between(rand, max(last, 60), 730)
    return History(added, _second(rand), _recent(rand, added, last, between(rand, 1, 4)))


def _churned(rand: Rand) -> History:
    if rand() < 0.3:  # added long ago and never ordered
        return History(between(rand, CHURN_DAYS + 2, 730), _second(rand), [])
    last = between(rand, CHURN_DAYS + 2, HISTORY_DAYS)
    added = between(rand, last, 730)
    return History(added, _second(rand), _recent(rand, added, last, between(rand, 1, 3)))


def _deleted(rand: Rand) -> History:
    deleted = between(rand, 1, 120)
    added = between(rand, deleted + 1, 730)
    oldest = min(added, HISTORY_DAYS)
    count = between(rand, 0, 3) if deleted <= oldest else 0
    days = [between(rand, deleted, oldest) for _ in range(count)]
    return History(added, _second(rand), days, deleted)


_HISTORIES: dict[str, Callable[[Rand], History]] = {
    "new": _new,
    "growing": _growing,
    "mature": _mature,
    "dormant": _dormant,
    "churned": _churned,
    "deleted": _deleted,
}


def draw_history(stage: str, rand: Rand) -> History:
    """A history that the classification rules above put in `stage`."""
    return _HISTORIES[stage](rand)


class OrderWriter:
    """Appends orders and lines for one customer at a time, with running ids."""

    def __init__(self, plan: Plan, rng: random.Random, ids: Ids) -> None:
        self.plan, self.rng, self.ids = plan, rng, ids
        self.orders: list[tuple[object, ...]] = []
        self.lines: list[tuple[object, ...]] = []

    def at(self, key: int) -> str:
        """The stored timestamp of an order key."""
        return (
            self.plan.days[MAX_DAYS - key // BUSINESS_SECONDS]
            + self.plan.times[key % BUSINESS_SECONDS]
        )

    def write(
        self, cid: int, store: int, favourite: str, history: History, sensitive: bool
    ) -> Summary:
        """Orders on `history.order_days`, lines drawn mostly from the favourite category."""
        rand = self.rng.random
        keys = []
        for day in history.order_days:
            low = history.added_second if day == history.added else 0
            second = between(rand, low, BUSINESS_SECONDS - 1)
            keys.append((MAX_DAYS - day) * BUSINESS_SECONDS + second)
        keys.sort()
        pool = self.plan.line_pools[favourite]
        size = len(pool)
        price_index = SENSITIVE_PRICE_INDEX if sensitive else PRICE_INDEX
        ids, orders, lines = self.ids, self.orders, self.lines
        order_id, line_id = ids.order, ids.line
        spent = 0
        for key in keys:
            r = rand()
            count = 1 if r < 0.55 else 2 if r < 0.85 else 3
            total = listed = 0
            for _ in range(count):
                pid, list_fen, prices, bulky = pool[int(rand() * size)]
                quantity = 1 if bulky else QUANTITIES[int(rand() * 10)]
                price = prices[price_index[int(rand() * 10)]]
                lines.append((line_id, order_id, pid, quantity, price))
                line_id += 1
                total += quantity * price
                listed += quantity * list_fen
            day = MAX_DAYS - key // BUSINESS_SECONDS
            status = "paid" if day <= PAID_DAYS else "shipped"
            orders.append((order_id, cid, store, self.at(key), total, listed - total, status))
            order_id += 1
            spent += total
        ids.order, ids.line = order_id, line_id
        return Summary(len(keys), spent, self.at(keys[-1]) if keys else None, keys)

    def stage_entry(self, stage: str, history: History, summary: Summary) -> tuple[str, str | None]:
        """When the customer entered `stage`, and the stage before it."""
        plan = self.plan
        keys = summary.keys
        if stage == "new":
            return plan.days[history.added] + plan.times[history.added_second], None
        if stage == "deleted":
            recent = bool(keys) and self._days_ago(keys[-1]) - history.deleted <= ACTIVE_DAYS
            return plan.days[history.deleted] + plan.times[3600], "growing" if recent else "dormant"
        last = self._days_ago(keys[-1]) if keys else history.added
        if stage == "dormant":
            before = "mature" if summary.count >= MATURE_ORDERS else "growing"
            return self._classified(last - ACTIVE_DAYS - 1), before
        if stage == "churned":
            return self._classified(last - CHURN_DAYS - 1), "dormant"
        growing_key, growing_from = self._growing_entry(history, keys)
        if stage == "mature" and keys[MATURE_ORDERS - 1] > growing_key:
            return self.at(keys[MATURE_ORDERS - 1]), "growing"
        return self.at(growing_key), growing_from

    def _growing_entry(self, history: History, keys: list[int]) -> tuple[int, str]:
        """The key at which the current run of activity (no gap over 30 days) began."""
        days = [self._days_ago(key) for key in keys]
        start = len(days) - 1
        while start > 0 and days[start - 1] - days[start] <= ACTIVE_DAYS:
            start -= 1
        if start == 0 and history.added - days[0] <= ACTIVE_DAYS:
            new_ends = self._key(history.added - NEW_DAYS - 1, CLASSIFIED_AT)
            second_order = keys[1] if len(keys) > 1 else _NEVER
            return min(new_ends, second_order), "new"
        gap = (days[start - 1] if start > 0 else history.added) - days[start]
        return keys[start], "churned" if gap > CHURN_DAYS else "dormant"

    def _classified(self, days_ago: int) -> str:
        return self.plan.days[days_ago] + self.plan.classified_time

    @staticmethod
    def _key(days_ago: int, second: int) -> int:
        return (MAX_DAYS - days_ago) * BUSINESS_SECONDS + second

    @staticmethod
    def _days_ago(key: int) -> int:
        return MAX_DAYS - key // BUSINESS_SECONDS
