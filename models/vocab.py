"""The business vocabulary: lifecycle stages, member tiers, categories and group themes."""

from __future__ import annotations

# Lifecycle stages (客户生命周期), in order.
STAGES: dict[str, str] = {
    "new": "引入期",
    "growing": "成长期",
    "mature": "成熟期",
    "dormant": "休眠期",
    "churned": "流失期",
}

# Member tiers by spend.
TIERS: dict[str, str] = {"bronze": "青铜", "silver": "白银", "gold": "黄金", "platinum": "铂金"}

# Product categories; an SOP's `category` and a customer's opt-outs use these keys.
CATEGORIES: dict[str, str] = {
    "fresh": "生鲜",
    "baby": "母婴",
    "snacks": "零食",
    "drinks": "酒水",
    "appliances": "家电",
    "daily": "日用",
}

# A customer group's theme is the Chinese label of its category, e.g. "生鲜".
THEMES: dict[str, str] = {label: key for key, label in CATEGORIES.items()}

# A customer's gender as the CRM records it.
GENDERS: dict[str, str] = {"female": "女", "male": "男"}

DEAL_SLOTS = ("morning", "evening")
CONTACT_STATES = ("active", "deleted")
