"""Derived customer data, set-based: member tiers from 12-month spend, automatic tags from rules."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import (
    Column,
    Integer,
    MetaData,
    String,
    Table,
    and_,
    case,
    delete,
    exists,
    func,
    insert,
    literal,
    select,
    update,
)
from sqlmodel import Session, col

from core.clock import at_local, local_today
from core.settings import get_settings
from engine.customer_facts import Facts
from models.people import Customer, CustomerTag, Tag
from models.types import UTCDateTime
from soplang.derive_files import TierFloors
from soplang.tag_rules import TagRule

AUTO = "auto"


@dataclass
class Derived:
    """What one derivation changed: tier moves ("bronze→silver" → customers), tags added/removed."""

    tiers: dict[str, int] = field(default_factory=dict)
    added: dict[str, int] = field(default_factory=dict)  # tag name → auto rows inserted
    removed: dict[str, int] = field(default_factory=dict)  # tag name → auto rows deleted
    tagged: dict[str, int] = field(default_factory=dict)  # tag name → customers with the tag now

    @property
    def tier_moves(self) -> int:
        return sum(self.tiers.values())


_matches = Table(
    "tag_match", MetaData(), Column("id", Integer, primary_key=True), prefixes=["TEMPORARY"]
)
_tier_changes = Table(
    "tier_refresh",
    MetaData(),
    Column("id", Integer, primary_key=True),
    Column("old_tier", String(16)),
    Column("tier", String(16)),
    prefixes=["TEMPORARY"],
)


class _Window:
    """Local-day cutoffs at `as_of`: `N days` means from the start of the local day N days ago."""

    def __init__(self, as_of: dt.datetime, tz: str) -> None:
        self.as_of = as_of
        self.today = local_today(as_of, tz)
        self.tz = tz

    def start(self, days: int) -> dt.datetime:
        return at_local(self.today - dt.timedelta(days=days), 0, 0, self.tz)

    def year_ago(self) -> dt.datetime:
        """The start of the local day 12 months ago (29 Feb → 28 Feb)."""
        day = self.today
        try:
            then = day.replace(year=day.year - 1)
        except ValueError:
            then = day.replace(year=day.year - 1, day=28)
        return at_local(then, 0, 0, self.tz)


def _windows(window: _Window, tiers: TierFloors | None, rules: list[TagRule]) -> Facts:
    """The facts the tiers and rules need, each (start, category) once: order counts for the
    order-count and average conditions, spend for the tiers and the spend and average ones."""
    counts: list[tuple[dt.datetime, str | None]] = []
    spends: list[tuple[dt.datetime, str | None]] = []
    if tiers is not None:
        spends.append((window.year_ago(), None))
    for r in rules:
        key = (window.start(r.days), r.category)
        if r.min_orders is not None or r.max_orders is not None or r.min_average_fen is not None:
            counts.append(key)
        if (
            r.min_spend_fen is not None
            or r.max_spend_fen is not None
            or r.min_average_fen is not None
        ):
            spends.append(key)
    lasts = [r.category for r in rules if r.no_order_days is not None]
    return Facts(counts, spends, lasts)


def derive_tiers(
    floors: TierFloors, window: _Window, facts: Facts, *, session: Session
) -> dict[str, int]:
    """Give every customer the tier their last 12 months of spend reach; moves by "from→to"."""
    spent = facts.spent((window.year_ago(), None))
    tier = case(
        *[(spent >= fen, literal(name)) for name, fen in reversed(floors.floors[1:])],
        else_=literal(floors.floors[0][0]),
    )
    fresh = (
        select(col(Customer.id).label("id"), col(Customer.tier).label("old"), tier.label("tier"))
        .select_from(Customer)
        .outerjoin(facts.table, facts.table.c.id == col(Customer.id))
        .subquery()
    )
    connection = session.connection()
    _tier_changes.drop(connection, checkfirst=True)
    _tier_changes.create(connection)
    session.execute(
        insert(_tier_changes).from_select(
            ["id", "old_tier", "tier"],
            select(fresh.c.id, fresh.c.old, fresh.c.tier).where(fresh.c.tier != fresh.c.old),
        )
    )
    t = _tier_changes.c
    moves = session.execute(
        select(t.old_tier, t.tier, func.count()).group_by(t.old_tier, t.tier).order_by(t.tier)
    ).all()
    if moves:
        session.execute(update(Customer).where(col(Customer.id) == t.id).values(tier=t.tier))
    _tier_changes.drop(connection)
    return {f"{old}→{new}": int(n) for old, new, n in moves}


def matching(rule: TagRule, window: _Window, facts: Facts) -> Any:
    """SELECT the ids of the customers `rule` tags at the window's instant (deleted contacts never)."""
    query = (
        select(col(Customer.id))
        .outerjoin(facts.table, facts.table.c.id == col(Customer.id))
        .where(col(Customer.contact_state) != "deleted")
    )
    if rule.gender is not None:
        query = query.where(col(Customer.gender) == rule.gender)
    if rule.tiers:
        query = query.where(col(Customer.tier).in_(rule.tiers))
    if rule.counts_orders:
        key = (window.start(rule.days), rule.category)
        orders, spent = (lambda: facts.count(key)), (lambda: facts.spent(key))  # noqa: E731
        for value, clause in (
            (rule.min_orders, lambda v: orders() >= v),
            (rule.max_orders, lambda v: orders() <= v),
            (rule.min_spend_fen, lambda v: spent() >= v),
            (rule.max_spend_fen, lambda v: spent() <= v),
            (rule.min_average_fen, lambda v: and_(orders() > 0, spent() >= orders() * v)),
        ):
            if value is not None:
                query = query.where(clause(value))
    if rule.no_order_days is not None:
        recent = literal(window.start(rule.no_order_days), UTCDateTime())
        query = query.where(facts.last(rule.category) < recent)
    return query


def tag_for(rule: TagRule, *, session: Session) -> int:
    """The Tag row of the rule's name (a manual tag of that name is shared), created as auto."""
    found = session.execute(select(col(Tag.id)).where(col(Tag.name) == rule.name)).scalar()
    if found is not None:
        return int(found)
    tag = Tag(name=rule.name, group_name=rule.group[:32], source=AUTO)
    session.add(tag)
    session.flush()
    assert tag.id is not None
    return tag.id


def apply_rule(
    rule: TagRule, window: _Window, facts: Facts, *, session: Session
) -> tuple[int, int]:
    """The rule's matches into a temporary table, then one INSERT … SELECT and one DELETE: its auto
    rows become exactly the matches; a customer's manual row of the tag is neither duplicated nor
    removed. (added, removed)."""
    tag_id = tag_for(rule, session=session)
    connection = session.connection()
    _matches.drop(connection, checkfirst=True)
    _matches.create(connection)
    session.execute(insert(_matches).from_select(["id"], matching(rule, window, facts)))
    m = _matches.c
    ct = CustomerTag.__table__  # type: ignore[attr-defined]
    have = exists().where(ct.c.customer_id == m.id, ct.c.tag_id == tag_id)
    added = session.execute(
        insert(ct).from_select(
            ["customer_id", "tag_id", "source", "created_at"],
            select(
                m.id, literal(tag_id), literal(AUTO), literal(window.as_of, UTCDateTime())
            ).where(~have),
        )
    ).rowcount
    removed = session.execute(
        delete(ct).where(
            and_(ct.c.tag_id == tag_id, ct.c.source == AUTO, ct.c.customer_id.not_in(select(m.id)))
        )
    ).rowcount
    _matches.drop(connection)
    return int(added or 0), int(removed or 0)


def derive_customers(
    as_of: dt.datetime,
    *,
    session: Session,
    tiers: TierFloors | None,
    rules: list[TagRule],
    tz: str | None = None,
) -> Derived:
    """Tiers first (rules may name tiers), then each rule's tag; a re-run at `as_of` changes nothing.

    Tags no rule names are left alone, whatever their source.
    """
    window = _Window(as_of, tz or get_settings().timezone)
    derived = Derived()
    facts = _windows(window, tiers, rules)
    facts.build(as_of, session=session)
    if tiers is not None:
        derived.tiers = derive_tiers(tiers, window, facts, session=session)
    ct = CustomerTag.__table__  # type: ignore[attr-defined]
    for rule in rules:
        added, removed = apply_rule(rule, window, facts, session=session)
        derived.added[rule.name] = added
        derived.removed[rule.name] = removed
        tag_id = tag_for(rule, session=session)
        derived.tagged[rule.name] = int(
            session.execute(
                select(func.count()).select_from(ct).where(ct.c.tag_id == tag_id)
            ).scalar_one()
        )
    facts.drop(session=session)
    return derived
