"""Tiers and automatic tags: a hand-built world where the shipped thresholds and rules give known
answers, manual tags kept, a re-run that changes nothing, on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from sqlmodel import select

from core.clock import at_local
from core.settings import PROJECT_ROOT
from engine.derive import derive_customers
from models.db import session_scope
from models.people import Customer, CustomerTag, Tag
from soplang.derive_files import load_tiers
from soplang.tag_rules import TagRule, load_tag_rules, read_tag_rules
from tests.factories import add_customers, add_order, make_world, tag_customers

DAY = dt.date(2026, 11, 24)
AS_OF = at_local(DAY, 0, 5)  # the nightly run
BABY, BABY2, FRESH = ("B001", 1, 5990), ("B002", 1, 2450), ("F001", 1, 399)
EXTRA_RULE = "女性白银以上:\n  gender: 女\n  tiers: [silver, gold, platinum]\n"


def _ago(days: int) -> dt.datetime:
    return at_local(DAY - dt.timedelta(days=days), 15)


# name: (gender, stored tier, contact state, [(days ago, line, status)])
CUSTOMERS: dict[str, tuple[str, str, str, list[tuple[int, tuple[str, int, int], str]]]] = {
    "A baby twice in 90 days": ("female", "bronze", "active", [(10, BABY, "paid"), (80, BABY2, "paid")]),
    "B baby once inside 90 days": ("female", "bronze", "active", [(10, BABY, "paid"), (91, BABY, "paid")]),
    "C baby twice, one refunded": ("female", "bronze", "active", [(10, BABY, "paid"), (20, BABY, "refunded")]),
    "D fresh 4 times in 30 days": ("male", "bronze", "active", [(1, FRESH, "paid"), (5, FRESH, "paid"), (10, FRESH, "paid"), (30, FRESH, "paid")]),
    "D2 fourth fresh 31 days ago": ("male", "bronze", "active", [(1, FRESH, "paid"), (5, FRESH, "paid"), (10, FRESH, "paid"), (31, FRESH, "paid")]),
    "E average 205": ("female", "bronze", "active", [(20, ("F003", 1, 20000), "paid"), (40, ("F003", 1, 21000), "paid")]),
    "F average 175": ("male", "bronze", "active", [(20, ("F003", 1, 30000), "paid"), (40, ("F003", 1, 5000), "paid")]),
    "G last order 31 days ago": ("male", "bronze", "active", [(31, ("F003", 1, 2000), "paid")]),
    "H never ordered": ("male", "bronze", "active", []),
    "I 3500 in 12 months": ("male", "bronze", "active", [(200, ("F003", 1, 350000), "paid"), (400, ("F003", 1, 500000), "paid")]),
    "J gold, refund excluded": ("female", "bronze", "active", [(100, ("F003", 1, 120000), "paid"), (101, ("F003", 1, 200000), "refunded")]),
    "K platinum a year ago": ("male", "platinum", "active", [(400, ("F003", 1, 400000), "paid")]),
    "L deleted contact": ("female", "bronze", "deleted", [(10, BABY, "paid"), (11, BABY, "paid")]),
    "M manual 宝妈 who matches": ("female", "bronze", "active", [(5, BABY, "paid"), (6, BABY, "paid")]),
    "N manual 宝妈 who does not": ("female", "bronze", "active", []),
    "O stale auto 宝妈": ("female", "bronze", "active", []),
}  # fmt: skip


def _build() -> dict[str, int]:
    ids = {}
    for n, (name, (gender, tier, state, orders)) in enumerate(CUSTOMERS.items()):
        [ids[name]] = add_customers(1, first=n, gender=gender, tier=tier, contact_state=state)
        for days, line, status in orders:
            add_order(ids[name], _ago(days), [line], status=status)
    tag_customers("宝妈", [ids["M manual 宝妈 who matches"], ids["N manual 宝妈 who does not"]])
    with session_scope() as session:
        tag = session.exec(select(Tag).where(Tag.name == "宝妈")).one()
        customer = ids["O stale auto 宝妈"]
        session.add(
            CustomerTag(customer_id=customer, tag_id=tag.id, source="auto", created_at=AS_OF)
        )
    return ids


def _rules(tmp_path: Path) -> list[TagRule]:
    """The shipped rules plus one on gender and the tier this run gives."""
    (tmp_path / "tags.yaml").write_text(
        (PROJECT_ROOT / "sop" / "tags.yaml").read_text(encoding="utf-8") + EXTRA_RULE,
        encoding="utf-8",
    )
    return load_tag_rules(tmp_path)


def _derive(rules: list[TagRule]):
    with session_scope() as session:
        return derive_customers(
            AS_OF, session=session, tiers=load_tiers(PROJECT_ROOT / "sop"), rules=rules
        )


def _state(ids: dict[str, int]) -> tuple[dict[str, str], dict[str, set[tuple[str, str]]]]:
    names = {v: k for k, v in ids.items()}
    with session_scope() as session:
        tiers = {names[c.id]: c.tier for c in session.exec(select(Customer)).all()}
        rows = session.exec(
            select(Tag.name, CustomerTag.customer_id, CustomerTag.source).join(
                CustomerTag, CustomerTag.tag_id == Tag.id
            )
        ).all()
    tags: dict[str, set[tuple[str, str]]] = {}
    for tag, customer, source in rows:
        tags.setdefault(tag, set()).add((names[customer].split()[0], source))
    return tiers, tags


EXPECTED_TAGS = {
    "宝妈": {("A", "auto"), ("M", "manual"), ("N", "manual")},
    "生鲜常客": {("D", "auto")},
    "高客单": {("E", "auto"), ("J", "auto")},
    "沉睡30天": {("G", "auto"), ("I", "auto"), ("J", "auto"), ("K", "auto")},
    "女性白银以上": {("E", "auto"), ("J", "auto")},
}
EXPECTED_TIERS = {"E": "silver", "F": "silver", "I": "platinum", "J": "gold"}


def _check(ids: dict[str, int], rules: list[TagRule]) -> None:
    derived = _derive(rules)

    tiers, tags = _state(ids)
    assert {n.split()[0]: t for n, t in tiers.items() if t != "bronze"} == EXPECTED_TIERS
    assert derived.tiers == {
        "bronze→silver": 2, "bronze→platinum": 1, "bronze→gold": 1, "platinum→bronze": 1
    }  # fmt: skip
    assert tags == EXPECTED_TAGS
    assert derived.added == {
        "宝妈": 1,
        "生鲜常客": 1,
        "高客单": 2,
        "沉睡30天": 4,
        "女性白银以上": 2,
    }
    assert derived.removed == {
        "宝妈": 1,
        "生鲜常客": 0,
        "高客单": 0,
        "沉睡30天": 0,
        "女性白银以上": 0,
    }
    assert derived.tagged["宝妈"] == 3

    again = _derive(rules)

    assert (again.tiers, sum(again.added.values()), sum(again.removed.values())) == ({}, 0, 0)
    assert _state(ids) == (tiers, tags)


def test_shipped_tiers_and_rules_give_the_hand_computed_answers(database_url, tmp_path) -> None:
    """Each customer gets exactly the tier and tags worked out by hand; manual 宝妈 rows stay,
    a stale automatic one goes, and a second run changes nothing."""
    make_world(DAY, database_url)
    _check(_build(), _rules(tmp_path))


@pytest.mark.postgres
def test_the_same_answers_on_postgresql(postgres_url, tmp_path) -> None:
    """The same SQL gives the same answers on PostgreSQL."""
    make_world(DAY, postgres_url)
    _check(_build(), _rules(tmp_path))


def test_tags_no_rule_names_are_left_alone(database_url, tmp_path) -> None:
    """An automatic tag no rule names (a channel tag) and manual tags survive the derivation."""
    make_world(DAY, database_url)
    [customer] = add_customers(1)
    tag_customers("企业采购", [customer])
    with session_scope() as session:
        session.add(Tag(name="门店扫码", group_name="渠道", source="auto"))
        session.flush()
        tag = session.exec(select(Tag).where(Tag.name == "门店扫码")).one()
        session.add(
            CustomerTag(customer_id=customer, tag_id=tag.id, source="auto", created_at=AS_OF)
        )
    (tmp_path / "tags.yaml").write_text("沉睡30天:\n  no_order_days: 30\n", encoding="utf-8")
    rules, problems = read_tag_rules(tmp_path / "tags.yaml")
    assert problems == []

    _derive(rules)

    with session_scope() as session:
        kept = session.exec(select(CustomerTag.tag_id).where(CustomerTag.customer_id == customer))
        assert len(kept.all()) == 2
