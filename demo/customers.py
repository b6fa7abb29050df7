"""One chunk of customers with their orders, tags, opt-outs, stage history, groups and events."""

from __future__ import annotations

import random
from collections.abc import Iterable
from dataclasses import dataclass, field
from itertools import accumulate

from demo.community import CHANNELS
from demo.orders import History, Ids, OrderWriter, Summary, draw_history
from demo.places import stores
from demo.plan import BUSINESS_SECONDS, CHUNK_SIZE, Plan, between, pick
from models.vocab import CATEGORIES

CUSTOMER_COLUMNS = (
    "id",
    "external_userid",
    "name",
    "phone",
    "gender",
    "birthday",
    "region",
    "store_id",
    "owner_staff_id",
    "tier",
    "is_paid_member",
    "stage",
    "stage_since",
    "added_at",
    "contact_state",
    "deleted_at",
    "order_count",
    "total_spent_fen",
    "last_order_at",
    "source_state",
)
CUSTOMER_TAG_COLUMNS = ("customer_id", "tag_id", "source", "created_at")
OPT_OUT_COLUMNS = ("customer_id", "category", "created_at")
TRANSITION_COLUMNS = ("id", "customer_id", "from_stage", "to_stage", "at")
MEMBER_COLUMNS = ("group_id", "customer_id", "joined_at")
EVENT_COLUMNS = (
    "id",
    "kind",
    "customer_id",
    "product_id",
    "payload",
    "occurred_at",
    "processed_at",
)

# Member tiers by spend over the order history (fen): silver, gold and platinum thresholds.
TIER_THRESHOLDS = ((300_000, "platinum"), (100_000, "gold"), (30_000, "silver"), (0, "bronze"))
PAID_MEMBER_SHARE = {"platinum": 0.35, "gold": 0.15, "silver": 0.05, "bronze": 0.01}
FEMALE_SHARE = 0.62
NO_BIRTHDAY_SHARE = 0.15
OPT_OUT_SHARE = 0.05
OPT_OUT_WEIGHTS = {
    "appliances": 40,
    "drinks": 20,
    "baby": 15,
    "snacks": 10,
    "daily": 10,
    "fresh": 5,
}
FAVOURITE_EVENT_SHARE = 0.03
MANUAL_TAGS = (("企业采购", 0.005), ("团长", 0.004), ("投诉中", 0.003))
MOTHER_SHARE = 0.5  # of women whose favourite category is 母婴, tagged 宝妈
# One customer in three was added through their store's QR code (渠道活码, state store-bj01);
# chosen by id, not drawn, so the random stream (and every other number) stays as it was.
STORE_CODES = {store.id: store.code for store in stores()}
QR_EVERY = 3
FREQUENT_ORDERS = 6


@dataclass
class Chunk:
    """The rows of one chunk per table, and members per group."""

    rows: dict[str, list[tuple[object, ...]]] = field(default_factory=dict)
    group_members: dict[int, int] = field(default_factory=dict)


def chunk_count(customers: int) -> int:
    """How many chunks `customers` customers take."""
    return -(-customers // CHUNK_SIZE)


def build_chunk(plan: Plan, index: int, ids: Ids) -> Chunk:
    """Customers `index * CHUNK_SIZE + 1 …` and everything that hangs off them; advances `ids`."""
    first = index * CHUNK_SIZE + 1
    n = min(CHUNK_SIZE, plan.customers - first + 1)
    rng = random.Random(f"{plan.seed}:customers:{index}")
    return _ChunkBuilder(plan, rng, ids).build(first, n)


class _ChunkBuilder:
    """Generates one chunk; per-row work is kept to list look-ups and a few random draws."""

    def __init__(self, plan: Plan, rng: random.Random, ids: Ids) -> None:
        self.plan, self.rng, self.ids = plan, rng, ids
        self.orders = OrderWriter(plan, rng, ids)
        self.chunk = Chunk()
        self.customers: list[tuple[object, ...]] = []
        self.tags: list[tuple[object, ...]] = []
        self.opt_outs: list[tuple[object, ...]] = []
        self.transitions: list[tuple[object, ...]] = []
        self.members: list[tuple[object, ...]] = []
        self.events: list[tuple[object, ...]] = []
        self.tag = plan.tag_ids

    def build(self, first: int, n: int) -> Chunk:
        from demo.names import draw_names, draw_phones

        plan, rng = self.plan, self.rng
        genders = rng.choices(("female", "male"), cum_weights=(FEMALE_SHARE, 1.0), k=n)
        columns = {
            "stage": rng.choices(plan.stages, cum_weights=plan.stage_cum_weights, k=n),
            "favourite": rng.choices(plan.categories, cum_weights=plan.favourite_cum_weights, k=n),
            "city": rng.choices(plan.cities, cum_weights=plan.city_cum_weights, k=n),
            "birthday": rng.choices(plan.birthdays, cum_weights=plan.birthday_cum_weights, k=n),
            "channel": rng.choices(tuple(CHANNELS), cum_weights=_cum(CHANNELS.values()), k=n),
            "name": draw_names(rng, genders),
            "phone": draw_phones(rng, n),
        }
        for i in range(n):
            self._customer(
                first + i, genders[i], {key: values[i] for key, values in columns.items()}
            )
        self.chunk.rows = {
            "customer": self.customers,
            "orders": self.orders.orders,
            "order_line": self.orders.lines,
            "customer_tag": self.tags,
            "opt_out": self.opt_outs,
            "stage_transition": self.transitions,
            "group_member": self.members,
            "event": self.events,
        }
        return self.chunk

    def _customer(self, cid: int, gender: str, row: dict[str, str]) -> None:
        plan, rng = self.plan, self.rng
        stage, city, favourite = row["stage"], row["city"], row["favourite"]
        rand = rng.random
        store = pick(rand, plan.stores_by_city[city])
        owner = pick(rand, plan.advisors_by_store[store])
        history = draw_history(stage, rand)
        added = plan.days[history.added] + plan.times[history.added_second]
        sensitive = rng.random() < 0.2
        summary = self.orders.write(cid, store, favourite, history, sensitive)
        tier = next(name for floor, name in TIER_THRESHOLDS if summary.total >= floor)
        deleted = plan.days[history.deleted] + plan.times[3600] if history.deleted else None
        to_stage = "churned" if stage == "deleted" else stage
        since, from_stage = self.orders.stage_entry(stage, history, summary)
        birthday = None if rng.random() < NO_BIRTHDAY_SHARE else row["birthday"]
        self.customers.append(
            (
                cid,
                plan.external_userid(cid),
                row["name"],
                row["phone"],
                gender,
                birthday,
                city,
                store,
                owner,
                tier,
                rng.random() < PAID_MEMBER_SHARE[tier],
                to_stage,
                since,
                added,
                "deleted" if deleted else "active",
                deleted,
                summary.count,
                summary.total,
                summary.last,
                f"store-{STORE_CODES[store]}" if cid % QR_EVERY == 0 else None,
            )
        )
        self.transitions.append((self.ids.transition, cid, from_stage, to_stage, since))
        self.ids.transition += 1
        self._tags(cid, gender, row, history, summary, sensitive, since, added)
        self._opt_outs(cid, favourite, history)
        if not deleted:
            self._group(cid, city, favourite, history)
            self._events(cid, stage, favourite, history, added)

    def _after(self, history: History) -> str:
        """A timestamp after the customer was added and before today."""
        plan, rand = self.plan, self.rng.random
        if history.added <= 1:
            second = between(rand, history.added_second, BUSINESS_SECONDS - 1)
            return plan.days[history.added] + plan.times[second]
        return plan.days[between(rand, 1, history.added - 1)] + pick(rand, plan.times)

    def _tags(
        self,
        cid: int,
        gender: str,
        row: dict[str, str],
        history: History,
        summary: Summary,
        sensitive: bool,
        since: str,
        added: str,
    ) -> None:
        tag, add = self.tag, self.tags.append
        add((cid, tag[row["channel"]], "auto", added))
        count, last = summary.count, summary.last
        if count >= 2:
            add((cid, tag[f"{CATEGORIES[row['favourite']]}偏好"], "auto", last))
        if row["stage"] == "new":
            add((cid, tag["新客"], "auto", since))
        if count >= FREQUENT_ORDERS:
            add((cid, tag["高频购买"], "auto", last))
        if sensitive and count >= 2:
            add((cid, tag["价格敏感"], "auto", last))
        rng = self.rng
        if gender == "female" and row["favourite"] == "baby" and rng.random() < MOTHER_SHARE:
            add((cid, tag["宝妈"], "manual", self._after(history)))
        for name, share in MANUAL_TAGS:
            if rng.random() < share:
                add((cid, tag[name], "manual", self._after(history)))

    def _opt_outs(self, cid: int, favourite: str, history: History) -> None:
        rng = self.rng
        if rng.random() >= OPT_OUT_SHARE:
            return
        choices = [key for key in OPT_OUT_WEIGHTS if key != favourite]
        weights = [OPT_OUT_WEIGHTS[key] for key in choices]
        picked = rng.choices(choices, weights=weights, k=1)
        if rng.random() < 0.2:
            picked.append(rng.choice([key for key in choices if key not in picked]))
        at = self._after(history)
        self.opt_outs.extend((cid, category, at) for category in picked)

    def _group(self, cid: int, city: str, favourite: str, history: History) -> None:
        key = (city, favourite)
        rng = self.rng
        if rng.random() >= self.plan.join_probability[key]:
            return
        group = pick(rng.random, self.plan.groups[key])
        self.members.append((group, cid, self._after(history)))
        counts = self.chunk.group_members
        counts[group] = counts.get(group, 0) + 1

    def _events(self, cid: int, stage: str, favourite: str, history: History, added: str) -> None:
        plan, rng = self.plan, self.rng
        if stage == "new":
            processed = None
            if history.added > 1:  # yesterday's new contacts still wait for their welcome
                processed = plan.days[history.added] + plan.times[history.added_second + 60]
            self._event("contact.added", cid, None, '{"source": "qr_code"}', added, processed)
        if rng.random() < FAVOURITE_EVENT_SHARE:
            if rng.random() < 0.5:
                product = rng.choice(plan.deal_product_ids)
            else:
                product = rng.choice(plan.line_pools[favourite])[0]
            payload = '{"source": "mini_program"}'
            self._event("favourite", cid, product, payload, self._after(history), None)

    def _event(
        self,
        kind: str,
        cid: int,
        product: int | None,
        payload: str,
        at: str,
        processed: str | None,
    ) -> None:
        self.events.append((self.ids.event, kind, cid, product, payload, at, processed))
        self.ids.event += 1


def _cum(weights: Iterable[int]) -> tuple[float, ...]:
    return tuple(accumulate(float(w) for w in weights))
