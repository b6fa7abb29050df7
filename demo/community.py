"""Customer tags and the customer groups (社群) per city and theme."""

from __future__ import annotations

import random
from dataclasses import dataclass

from demo.places import CITIES, StaffSpec
from models.vocab import CATEGORIES

TAG_COLUMNS = ("id", "name", "group_name", "source")
GROUP_COLUMNS = (
    "id",
    "chat_id",
    "name",
    "region",
    "theme",
    "owner_staff_id",
    "store_id",
    "member_count",
    "created_at",
)

# Channel tags (渠道) and the share of customers who came through each.
CHANNELS = {"门店扫码": 50, "社群裂变": 20, "小程序": 15, "公众号": 10, "导购推荐": 5}
# (name, group_name, source); preference tags (生鲜偏好 …) are added per category.
TAGS: tuple[tuple[str, str, str], ...] = (
    ("新客", "行为", "auto"),
    ("高频购买", "行为", "auto"),
    ("价格敏感", "行为", "auto"),
    *((f"{label}偏好", "偏好", "auto") for label in CATEGORIES.values()),
    *((name, "渠道", "auto") for name in CHANNELS),
    ("宝妈", "属性", "manual"),
    ("企业采购", "属性", "manual"),
    ("团长", "角色", "manual"),
    ("投诉中", "服务", "manual"),
)
# What each theme's groups are called: 北京生鲜爱好者群, 上海母婴用品群 …
GROUP_SUFFIX = {
    "生鲜": "爱好者",
    "母婴": "用品",
    "零食": "分享",
    "酒水": "畅饮",
    "家电": "焕新",
    "日用": "好物",
}
MAX_GROUPS_PER_THEME = 3
CUSTOMERS_PER_EXTRA_GROUP = 1500
GROUP_AGE_DAYS = (740, 800)  # groups predate every customer


@dataclass(frozen=True)
class GroupSpec:
    id: int
    chat_id: str
    name: str
    city: str
    category: str
    owner_staff_id: int
    store_id: int | None
    created_days_ago: int


def tag_rows() -> list[tuple[object, ...]]:
    """Rows for the `tag` table, ids 1..n."""
    return [(i, name, group, source) for i, (name, group, source) in enumerate(TAGS, start=1)]


def tag_ids() -> dict[str, int]:
    """Tag id by name."""
    return {name: i for i, (name, _group, _source) in enumerate(TAGS, start=1)}


def groups(
    expected: dict[tuple[str, str], float], staff_list: list[StaffSpec], rng: random.Random
) -> list[GroupSpec]:
    """1-3 groups per city and theme (more where more customers are expected)."""
    result: list[GroupSpec] = []
    chat_ids: set[str] = set()
    for city, *_ in CITIES:
        advisors = [m for m in staff_list if m.city == city and m.role == "advisor"]
        for category, label in CATEGORIES.items():
            count = min(
                MAX_GROUPS_PER_THEME, 1 + int(expected[city, category]) // CUSTOMERS_PER_EXTRA_GROUP
            )
            for number in range(1, count + 1):
                owner = rng.choice(advisors)
                chat_id = _chat_id(rng, chat_ids)
                suffix = f"{number}群" if count > 1 else "群"
                name = f"{city}{label}{GROUP_SUFFIX[label]}{suffix}"
                age = rng.randint(*GROUP_AGE_DAYS)
                result.append(
                    GroupSpec(
                        len(result) + 1,
                        chat_id,
                        name,
                        city,
                        category,
                        owner.id,
                        owner.store_id,
                        age,
                    )
                )
    return result


def _chat_id(rng: random.Random, taken: set[str]) -> str:
    while True:
        chat_id = f"wr{rng.getrandbits(112):028x}"
        if chat_id not in taken:
            taken.add(chat_id)
            return chat_id


def group_rows(
    group_list: list[GroupSpec], days: tuple[str, ...], times: tuple[str, ...]
) -> list[tuple[object, ...]]:
    """Rows for `customer_group`; member_count is filled in once members are known."""
    return [
        (
            g.id,
            g.chat_id,
            g.name,
            g.city,
            CATEGORIES[g.category],
            g.owner_staff_id,
            g.store_id,
            0,
            days[g.created_days_ago] + times[3600],
        )
        for g in group_list
    ]
