"""Lifecycle stages from orders and contact state: one set-based pass over every customer."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import (
    BigInteger,
    Column,
    Integer,
    MetaData,
    String,
    Table,
    and_,
    case,
    func,
    insert,
    literal,
    or_,
    select,
    update,
)
from sqlmodel import Session, col

from core.clock import at_local, local_today
from core.settings import Settings, get_settings
from models.commerce import Order
from models.people import Customer, StageTransition
from models.types import UTCDateTime


@dataclass(frozen=True)
class StageRules:
    """The thresholds of the classification; their one home is the settings (documented there)."""

    new_days: int
    dormant_days: int
    churned_days: int
    mature_orders: int
    mature_spent_fen: int  # 0: spend alone never makes a customer mature
    mature_paid_member: bool

    @classmethod
    def from_settings(cls, settings: Settings) -> StageRules:
        return cls(
            new_days=settings.stage_new_days,
            dormant_days=settings.stage_dormant_days,
            churned_days=settings.stage_churned_days,
            mature_orders=settings.stage_mature_orders,
            mature_spent_fen=settings.stage_mature_spent_fen,
            mature_paid_member=settings.stage_mature_paid_member,
        )


@dataclass(frozen=True)
class Cutoffs:
    """The rules as UTC instants: `N days ago or less` is `at or after the start of that local day`."""

    added_new: dt.datetime  # added at or after this: recent enough to be new
    active: dt.datetime  # last activity before this: dormant
    churned: dt.datetime  # last activity before this: churned

    @classmethod
    def at(cls, as_of: dt.datetime, rules: StageRules, tz: str) -> Cutoffs:
        today = local_today(as_of, tz)

        def start_of(days_ago: int) -> dt.datetime:
            return at_local(today - dt.timedelta(days=days_ago), 0, 0, tz)

        return cls(
            start_of(rules.new_days), start_of(rules.dormant_days), start_of(rules.churned_days)
        )


@dataclass
class Classified:
    """What one pass changed: customers whose stage or order summary moved, and transitions."""

    updated: int = 0
    transitions: dict[str, int] = field(default_factory=dict)  # "growing→dormant" -> customers

    @property
    def moved(self) -> int:
        return sum(self.transitions.values())


# Customers whose stage or order summary changes, computed once per pass (per connection).
_refresh = Table(
    "stage_refresh",
    MetaData(),
    Column("id", Integer, primary_key=True),
    Column("old_stage", String(16)),
    Column("stage", String(16)),
    Column("order_count", Integer),
    Column("total_spent_fen", BigInteger),
    Column("last_order_at", UTCDateTime()),
    prefixes=["TEMPORARY"],
)


def stage_case(rules: StageRules, cutoffs: Cutoffs, orders: Any, spent: Any, last: Any) -> Any:
    """The stage as a SQL CASE over the customer row and its order aggregates, rules in order."""
    activity = func.coalesce(last, col(Customer.added_at))
    mature = [orders >= rules.mature_orders]
    if rules.mature_spent_fen > 0:
        mature.append(spent >= rules.mature_spent_fen)
    if rules.mature_paid_member:
        mature.append(col(Customer.is_paid_member).is_(True))
    return case(
        (col(Customer.contact_state) == "deleted", "churned"),
        (and_(col(Customer.added_at) >= cutoffs.added_new, orders <= 1), "new"),
        (activity < cutoffs.churned, "churned"),
        (activity < cutoffs.active, "dormant"),
        (or_(*mature), "mature"),
        else_="growing",
    )


def _changes(as_of: dt.datetime, rules: StageRules, cutoffs: Cutoffs) -> Any:
    """SELECT the customers whose stage or order summary differs from what the orders say."""
    totals = (
        select(
            col(Order.customer_id).label("customer_id"),
            func.count().label("orders"),
            func.sum(Order.total_fen).label("spent"),
            func.max(Order.placed_at).label("last"),
        )
        .where(col(Order.placed_at) <= as_of, col(Order.status) != "refunded")
        .group_by(col(Order.customer_id))
        .subquery()
    )
    orders = func.coalesce(totals.c.orders, 0)
    spent = func.coalesce(totals.c.spent, 0)
    fresh = (
        select(
            col(Customer.id).label("id"),
            col(Customer.stage).label("old_stage"),
            stage_case(rules, cutoffs, orders, spent, totals.c["last"]).label("stage"),
            orders.label("order_count"),
            spent.label("total_spent_fen"),
            totals.c["last"].label("last_order_at"),
            col(Customer.order_count).label("old_count"),
            col(Customer.total_spent_fen).label("old_spent"),
            col(Customer.last_order_at).label("old_last"),
        )
        .select_from(Customer)
        .outerjoin(totals, totals.c.customer_id == col(Customer.id))
        .subquery()
    )
    c = fresh.c
    return select(
        c.id, c.old_stage, c.stage, c.order_count, c.total_spent_fen, c.last_order_at
    ).where(
        or_(
            c.stage != c.old_stage,
            c.order_count != c.old_count,
            c.total_spent_fen != c.old_spent,
            c.last_order_at.is_distinct_from(c.old_last),
        )
    )


def _apply(as_of: dt.datetime, *, session: Session) -> None:
    """Log each stage change as a StageTransition, then update the customers in one statement."""
    moved = _refresh.c.stage != _refresh.c.old_stage
    session.execute(
        insert(StageTransition).from_select(
            ["customer_id", "from_stage", "to_stage", "at"],
            select(
                _refresh.c.id, _refresh.c.old_stage, _refresh.c.stage, literal(as_of, UTCDateTime())
            )
            .where(moved)
            .order_by(_refresh.c.id),
        )
    )
    session.execute(
        update(Customer)
        .where(col(Customer.id) == _refresh.c.id)
        .values(
            stage=_refresh.c.stage,
            stage_since=case(
                (col(Customer.stage) != _refresh.c.stage, literal(as_of, UTCDateTime())),
                else_=col(Customer.stage_since),
            ),
            order_count=_refresh.c.order_count,
            total_spent_fen=_refresh.c.total_spent_fen,
            last_order_at=_refresh.c.last_order_at,
        )
    )


def _counts(*, session: Session) -> Classified:
    updated = session.execute(select(func.count()).select_from(_refresh)).scalar_one()
    rows = session.execute(
        select(_refresh.c.old_stage, _refresh.c.stage, func.count())
        .where(_refresh.c.stage != _refresh.c.old_stage)
        .group_by(_refresh.c.old_stage, _refresh.c.stage)
        .order_by(_refresh.c.old_stage, _refresh.c.stage)
    ).all()
    return Classified(int(updated), {f"{old}→{new}": int(n) for old, new, n in rows})


def classify_stages(
    as_of: dt.datetime,
    *,
    session: Session,
    rules: StageRules | None = None,
    tz: str | None = None,
) -> Classified:
    """Give every customer the stage its orders and contact state say at `as_of`, in one pass.

    Order summaries (order_count, total_spent_fen, last_order_at) are refreshed from the orders
    placed up to `as_of` (refunds excluded); a customer whose stage changes gets a StageTransition
    at `as_of` and `stage_since = as_of`, others keep theirs, so a re-run changes nothing.
    """
    settings = get_settings()
    rules = rules or StageRules.from_settings(settings)
    cutoffs = Cutoffs.at(as_of, rules, tz or settings.timezone)
    connection = session.connection()
    _refresh.drop(connection, checkfirst=True)
    _refresh.create(connection)
    # On an error the rollback drops the table too (DDL is transactional in SQLite and PostgreSQL).
    session.execute(
        insert(_refresh).from_select(
            [c.name for c in _refresh.columns], _changes(as_of, rules, cutoffs)
        )
    )
    counts = _counts(session=session)
    if counts.updated:
        _apply(as_of, session=session)
    _refresh.drop(connection)
    return counts


def stage_totals(*, session: Session) -> dict[str, int]:
    """Customers per stage now."""
    stage = col(Customer.stage)
    rows = session.execute(select(stage, func.count()).group_by(stage).order_by(stage))
    return {stage: int(n) for stage, n in rows}
