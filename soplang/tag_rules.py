"""The automatic tag rules of sop/tags.yaml: each tag's conditions on a customer's orders and fields."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import yaml

from models.vocab import CATEGORIES, GENDERS, TIERS
from soplang.derive_files import (
    TAGS_FILE,
    TIERS_FILE,
    NodeReader,
    raise_problems,
    read_tiers,
)
from soplang.problems import Problem
from soplang.spec import did_you_mean

DEFAULT_GROUP = "智能标签"  # the WeCom tag group automatic tags go in unless a rule names one
DEFAULT_DAYS = 365
MAX_DAYS = 730
MAX_RULES = 100
MAX_NAME = 30  # WeCom's limit on a corp tag's (and a tag group's) name
ORDER_KEYS = ("min_orders", "max_orders", "min_spend", "max_spend", "min_average")
KEYS = (
    "group", "days", "category", *ORDER_KEYS, "no_order_days", "gender", "tiers",
)  # fmt: skip


@dataclass(frozen=True)
class TagRule:
    """One automatic tag: every condition set must hold (money in fen, days local calendar days)."""

    name: str
    line: int
    group: str = DEFAULT_GROUP
    days: int = DEFAULT_DAYS  # the window the order conditions count in
    category: str | None = None  # a key of CATEGORIES: only orders with such a product count
    min_orders: int | None = None
    max_orders: int | None = None
    min_spend_fen: int | None = None
    max_spend_fen: int | None = None
    min_average_fen: int | None = None
    no_order_days: int | None = None  # ordered before, but not in the last N days
    gender: str | None = None  # a key of GENDERS
    tiers: tuple[str, ...] = ()

    @property
    def counts_orders(self) -> bool:
        return any(
            v is not None
            for v in (
                self.min_orders, self.max_orders, self.min_spend_fen, self.max_spend_fen,
                self.min_average_fen,
            )
        )  # fmt: skip


def _keyed(text: str, vocab: dict[str, str]) -> str | None:
    """The key of `text` written as a key (`baby`) or its label (`母婴`)."""
    if text in vocab:
        return text
    return next((key for key, label in vocab.items() if label == text), None)


class _Rules(NodeReader):
    def rule(self, key: yaml.Node, body: yaml.Node) -> TagRule | None:
        name = str(key.value).strip()
        before = len(self.problems)
        if len(name) > MAX_NAME or "," in name:
            self.add(key, f"tag `{name}` must be at most {MAX_NAME} characters, without commas")
        if not isinstance(body, yaml.MappingNode) or not body.value:
            self.add(key, f"give `{name}` its conditions, e.g. `min_orders: 2` and `days: 90`")
            return None
        values: dict[str, object] = {}
        nodes: dict[str, yaml.Node] = {}
        unknown = False
        for field_node, value in self.pairs(body, "condition"):
            field = str(field_node.value)
            nodes[field] = field_node
            if field not in KEYS:
                unknown = True
                self.add(
                    field_node,
                    f"unknown condition `{field}`{did_you_mean(field, KEYS)}; "
                    f"use {', '.join(KEYS)}",
                )
                continue
            found = self._value(field, value)
            if found is not None:
                values[field] = found
        if not unknown:  # an unknown key may be the condition meant: no guesses about the rest
            self._consistent(name, key, values, nodes)
        if len(self.problems) > before:
            return None
        return TagRule(name=name, line=key.start_mark.line + 1, **values)  # type: ignore[arg-type]

    def _value(self, field: str, node: yaml.Node) -> object | None:
        if field in ("min_spend", "max_spend", "min_average"):
            return self.yuan(node, field)
        if field in ("min_orders", "max_orders"):
            return self.integer(node, field, 1 if field == "min_orders" else 0, 100_000)
        if field in ("days", "no_order_days"):
            return self.integer(node, field, 1, MAX_DAYS)
        if field == "tiers":
            items = node.value if isinstance(node, yaml.SequenceNode) else [node]
            tiers = [self.scalar(item, "tiers") for item in items]
            bad = [t for t in tiers if t is not None and _keyed(t, TIERS) is None]
            if bad or None in tiers:
                self.add(node, f"tiers lists {', '.join(TIERS)} (or 青铜, 白银 …), not {bad}")
                return None
            return tuple(_keyed(t, TIERS) for t in tiers if t)
        text = self.scalar(node, field)
        if text is None:
            return None
        if field == "group":
            if len(text) > MAX_NAME:
                self.add(node, f"group must be at most {MAX_NAME} characters")
                return None
            return text
        vocab = CATEGORIES if field == "category" else GENDERS
        key = _keyed(text, vocab)
        if key is None:
            choices = ", ".join(f"{k} ({v})" for k, v in vocab.items())
            self.add(node, f"{field} `{text}` is not one of {choices}")
        return key

    def _consistent(
        self, name: str, key: yaml.Node, values: dict[str, object], nodes: dict[str, yaml.Node]
    ) -> None:
        counts = any(k in values or k in nodes for k in ORDER_KEYS)
        for field in ("days", "category"):
            if (
                field in nodes
                and not counts
                and not (field == "category" and "no_order_days" in nodes)
            ):
                self.add(
                    nodes[field],
                    f"`{field}` narrows the orders min_orders/min_spend/… count; "
                    "add one of those or remove it",
                )
        narrowing = ("group", "days", "category")
        if not any(k in nodes for k in KEYS if k not in narrowing) and not (
            {"days", "category"} & set(nodes)
        ):
            self.add(key, f"`{name}` has no condition; add e.g. `min_orders: 2`")
        for low, high in (("min_orders", "max_orders"), ("min_spend", "max_spend")):
            if low in values and high in values and values[low] > values[high]:  # type: ignore[operator]
                self.add(nodes[high], f"{high} is below {low}: no customer could match")
        if "min_spend" in values:
            values["min_spend_fen"] = values.pop("min_spend")
        if "max_spend" in values:
            values["max_spend_fen"] = values.pop("max_spend")
        if "min_average" in values:
            values["min_average_fen"] = values.pop("min_average")


def read_tag_rules(path: Path) -> tuple[list[TagRule], list[Problem]]:
    """The rules `path` holds (none when absent) and every problem found in it, by line."""
    if not path.is_file():
        return [], []
    reader = _Rules(path)
    root = reader.root("the tags file", "a tag rule list", "宝妈: {category: 母婴, min_orders: 2}")
    if root is None:
        return [], reader.problems
    pairs = reader.pairs(root, "tag")
    if len(pairs) > MAX_RULES:
        reader.add(pairs[MAX_RULES][0], f"at most {MAX_RULES} automatic tags; this is one more")
        return [], reader.problems
    rules = [r for key, body in pairs if (r := reader.rule(key, body)) is not None]
    return rules, reader.problems


def load_tag_rules(sop_dir: Path) -> list[TagRule]:
    """The rules of the SOP folder's tags.yaml (none when absent); errors raise, by line."""
    rules, problems = read_tag_rules(sop_dir / TAGS_FILE)
    raise_problems(problems, TAGS_FILE)
    return rules


def derive_file_problems(sop_dir: Path) -> list[Problem]:
    """Every problem of the folder's tiers.yaml and tags.yaml (for `sopflow lint`)."""
    return read_tiers(sop_dir / TIERS_FILE)[1] + read_tag_rules(sop_dir / TAGS_FILE)[1]
