"""Resolve an SOP's audience (groups or customers) from the tables: id ranges to batch over, then one batch."""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any, NamedTuple

from prefect import task
from prefect.cache_policies import NO_CACHE
from sqlalchemy import BigInteger, Select, cast, func, literal, select, type_coerce
from sqlalchemy.orm import aliased
from sqlmodel import Session, col

from core.clock import utcnow
from engine.timing import gc_paused, timed
from models.db import session_scope
from models.deliveries import SENDABLE_VALUES, Occurrence
from models.delivery import Delivery
from models.people import Customer, CustomerGroup, CustomerTag, OptOut, Staff, Tag
from models.types import UTCDateTime
from soplang.spec import CustomerAudience

IdRange = tuple[int, int]


@dataclass(frozen=True)
class GroupTarget:
    """A customer group as the templates and the dispatcher need it."""

    id: int
    chat_id: str
    name: str
    region: str
    theme: str
    member_count: int
    owner_userid: str
    owner_name: str


def _group_filters(groups: Any) -> list[Any]:
    """WHERE clauses for a `groups:` audience; every value is a bound parameter."""
    clauses: list[Any] = [col(CustomerGroup.dismissed_at).is_(None)]
    if groups is None:
        return clauses
    for field, column in (
        ("theme", CustomerGroup.theme),
        ("region", CustomerGroup.region),
        ("chat_id", CustomerGroup.chat_id),
    ):
        values = getattr(groups, field, None)
        if values:
            clauses.append(col(column).in_(list(values)))
    return clauses


def id_ranges(
    id_column: Any, where: Sequence[Any], *, batch_size: int, session: Session
) -> list[IdRange]:
    """Inclusive id ranges of `batch_size` matching rows each, computed in the database.

    Each range ends just before the id `batch_size` matching rows after its start, found by
    OFFSET from that start: the database reads every matching id once, Python sees one id per
    range (a million-row audience costs a few rows in Python, and no window over all of it).
    """
    matching = select(id_column).where(*where)
    start = session.execute(matching.order_by(id_column).limit(1)).scalar()
    ranges: list[IdRange] = []
    while start is not None:
        following = matching.where(id_column >= start).order_by(id_column).offset(batch_size)
        next_start = session.execute(following.limit(1)).scalar()
        if next_start is None:
            last = session.execute(matching.order_by(id_column.desc()).limit(1)).scalar_one()
            ranges.append((start, last))
        else:
            ranges.append((start, next_start - 1))
        start = next_start
    return ranges


def group_id_ranges(groups: Any, *, batch_size: int, session: Session) -> list[IdRange]:
    """Inclusive id ranges that split the matching groups into batches of `batch_size`."""
    return id_ranges(
        col(CustomerGroup.id), _group_filters(groups), batch_size=batch_size, session=session
    )


def count_groups(groups: Any, *, session: Session) -> int:
    """How many groups match a `groups:` audience."""
    statement = select(func.count()).select_from(CustomerGroup).where(*_group_filters(groups))
    return int(session.exec(statement).one()[0])


def groups_in_range(groups: Any, id_range: IdRange, *, session: Session) -> list[GroupTarget]:
    """The matching groups whose ids fall in `id_range`, with their owner's WeCom userid."""
    low, high = id_range
    statement = (
        select(
            CustomerGroup.id,
            CustomerGroup.chat_id,
            CustomerGroup.name,
            CustomerGroup.region,
            CustomerGroup.theme,
            CustomerGroup.member_count,
            Staff.userid,
            Staff.name,
        )
        .join(Staff, col(Staff.id) == col(CustomerGroup.owner_staff_id))
        .where(*_group_filters(groups), col(CustomerGroup.id).between(low, high))
        .order_by(CustomerGroup.id)
    )
    return [GroupTarget(*row) for row in session.exec(statement).all()]


@task(name="plan-group-batches")
def plan_group_batches(groups: Any, batch_size: int) -> list[IdRange]:
    """Split the SOP's group audience into id ranges, one task run each."""
    with session_scope() as session:
        return group_id_ranges(groups, batch_size=batch_size, session=session)


@task(name="resolve-groups")
def resolve_groups(groups: Any, id_range: IdRange) -> list[GroupTarget]:
    """The groups of one batch."""
    with session_scope() as session:
        return groups_in_range(groups, id_range, session=session)


def first_group(groups: Any, *, session: Session, chat_id: str | None = None) -> GroupTarget | None:
    """The first matching group (or the one with `chat_id`), for previews."""
    clauses = _group_filters(groups)
    if chat_id:
        clauses.append(col(CustomerGroup.chat_id) == chat_id)
    first = session.exec(select(func.min(CustomerGroup.id)).where(*clauses)).one()[0]
    if first is None:
        return None
    found: Sequence[GroupTarget] = groups_in_range(None, (first, first), session=session)
    return found[0] if found else None


class CustomerTarget(NamedTuple):
    """A customer as the guards, the templates and the dispatcher need them (no phone, ever)."""

    id: int
    external_userid: str
    name: str
    region: str
    tier: str
    stage: str
    stage_since: dt.datetime
    contact_state: str  # active | deleted: not filtered here, the guard records the skip
    last_order_at: dt.datetime | None
    owner_userid: str | None
    owner_name: str | None


class _Instant(UTCDateTime):
    """UTCDateTime read in one step: SQLite's text (always UTC) parsed with its offset by one C
    call, where the generic path takes two Python calls per value (a third of a batch's read)."""

    cache_ok = True

    def result_processor(self, dialect: Any, coltype: Any) -> Any:
        if dialect.name != "sqlite":
            return super().result_processor(dialect, coltype)
        parse = dt.datetime.fromisoformat
        return lambda value: None if value is None else parse(value + "+00:00")


def customer_select() -> Select[Any]:
    """SELECT the CustomerTarget columns, with the owner staff member's userid and name."""
    return select(
        Customer.id,
        Customer.external_userid,
        Customer.name,
        Customer.region,
        Customer.tier,
        Customer.stage,
        type_coerce(Customer.stage_since, _Instant),
        Customer.contact_state,
        type_coerce(Customer.last_order_at, _Instant),
        Staff.userid,
        Staff.name,
    ).outerjoin(Staff, col(Staff.id) == col(Customer.owner_staff_id))


class StageEntryAudience(CustomerAudience):
    """A lifecycle step's audience: the SOP's customers who entered their stage in [from, before)."""

    entered_from: dt.datetime
    entered_before: dt.datetime


def customer_filters(customers: Any, *, as_of: dt.datetime | None = None) -> list[Any]:
    """WHERE clauses for a `customers:` audience; every value is a bound parameter.

    `last_purchase_days: {gte: 30, lte: 90}` means the last order was between 90 and 30 days
    (of 24 h) before `as_of`; customers who never ordered match no `last_purchase_days`.
    """
    clauses: list[Any] = []
    if customers is None:
        return clauses
    for field, column in (
        ("stage", Customer.stage),
        ("tier", Customer.tier),
        ("region", Customer.region),
    ):
        values = getattr(customers, field, None)
        if values:
            # `|| ''` keeps SQLite's planner (which has no statistics) off these columns' indexes:
            # it would scan the whole audience in the index for every id-range batch.
            clauses.append((col(column) + "").in_(list(values)))
    if customers.tags_any:
        clauses.append(_has_tag(customers.tags_any))
    if customers.tags_none:
        clauses.append(~_has_tag(customers.tags_none))
    clauses.extend(_recency_filters(customers.last_purchase_days, as_of or utcnow()))
    if isinstance(customers, StageEntryAudience):
        clauses.append(col(Customer.stage_since) >= customers.entered_from)
        clauses.append(col(Customer.stage_since) < customers.entered_before)
    return clauses


def _has_tag(names: Sequence[str]) -> Any:
    """EXISTS a tag of the customer named one of `names`."""
    return (
        select(CustomerTag.customer_id)
        .join(Tag, col(Tag.id) == col(CustomerTag.tag_id))
        .where(col(CustomerTag.customer_id) == col(Customer.id), col(Tag.name).in_(list(names)))
        .exists()
    )


def _recency_filters(days: Any, as_of: dt.datetime) -> list[Any]:
    if days is None:
        return []
    clauses = []
    if days.gte is not None:
        clauses.append(col(Customer.last_order_at) <= as_of - dt.timedelta(days=days.gte))
    if days.lte is not None:
        clauses.append(col(Customer.last_order_at) >= as_of - dt.timedelta(days=days.lte))
    return clauses


def reachable_filters(category: str | None) -> list[Any]:
    """Still a contact and not opted out of `category`: the guards before caps, as SQL."""
    clauses: list[Any] = [col(Customer.contact_state) == "active"]
    if category:
        opted_out = select(OptOut.customer_id).where(
            col(OptOut.customer_id) == col(Customer.id), col(OptOut.category) == category
        )
        clauses.append(~opted_out.exists())
    return clauses


def customer_id_ranges(
    customers: Any, *, batch_size: int, session: Session, as_of: dt.datetime | None = None
) -> list[IdRange]:
    """Inclusive id ranges that split the matching customers into batches of `batch_size`."""
    where = customer_filters(customers, as_of=as_of)
    return id_ranges(col(Customer.id), where, batch_size=batch_size, session=session)


def count_customers(customers: Any, *, session: Session, as_of: dt.datetime | None = None) -> int:
    """How many customers match a `customers:` audience (deleted contacts included)."""
    where = customer_filters(customers, as_of=as_of)
    return int(session.exec(select(func.count()).select_from(Customer).where(*where)).one()[0])


def customers_in_range(
    customers: Any, id_range: IdRange, *, session: Session, as_of: dt.datetime | None = None
) -> list[CustomerTarget]:
    """The matching customers whose ids fall in `id_range`, in id order."""
    low, high = id_range
    statement = (
        customer_select()
        .where(*customer_filters(customers, as_of=as_of), col(Customer.id).between(low, high))
        .order_by(Customer.id)
    )
    return [CustomerTarget(*row) for row in session.connection().execute(statement).all()]


@task(name="plan-customer-batches", cache_policy=NO_CACHE)
def plan_customer_batches(
    customers: Any, batch_size: int, as_of: dt.datetime | None = None
) -> list[IdRange]:
    """Split the SOP's customer audience into id ranges, one task run each."""
    with timed("audience"), session_scope(readonly=True) as session:
        return customer_id_ranges(customers, batch_size=batch_size, session=session, as_of=as_of)


@dataclass
class ResolvedBatch:
    """The customers of a batch still to plan for an occurrence, and how many it has settled."""

    customers: list[CustomerTarget] = dataclasses.field(default_factory=list)
    already_done: dict[str, int] = dataclasses.field(default_factory=dict)  # status -> customers
    deferred: int = 0  # customers whose touch waits for quiet hours to end


def settled_in_range(
    customers: Any, id_range: IdRange, key_prefix: str, *, now: dt.datetime, session: Session
) -> ResolvedBatch | None:
    """How an occurrence left the matching customers of `id_range`, counted in SQL; None when some
    still need planning (no row under `key_prefix` + external_userid, or a sendable row now due).

    One aggregate joins each customer to its row through the idempotency key, so a re-run of a
    finished occurrence reads a few counts per batch instead of every customer.
    """
    low, high = id_range
    row = aliased(Delivery)
    waiting = col(row.not_before) > now
    statement = (
        select(row.status, waiting, func.count())
        .select_from(Customer)
        .outerjoin(
            row, col(row.idempotency_key) == literal(key_prefix) + col(Customer.external_userid)
        )
        .where(*customer_filters(customers, as_of=now), col(Customer.id).between(low, high))
        .group_by(row.status, waiting)
    )
    batch = ResolvedBatch()
    for status, is_waiting, rows in session.execute(statement):
        if status is None or (status in SENDABLE_VALUES and not is_waiting):
            return None
        if status in SENDABLE_VALUES:
            batch.deferred += rows
        else:
            batch.already_done[status] = batch.already_done.get(status, 0) + rows
    return batch


@task(name="resolve-customers", cache_policy=NO_CACHE)
def resolve_customers(
    customers: Any,
    id_range: IdRange,
    now: dt.datetime,
    occurrence: Occurrence,
) -> ResolvedBatch:
    """The customers of one batch, unless the occurrence has settled them all (then only counts;
    a fresh occurrence has nothing to count)."""
    with timed("audience"), gc_paused(), session_scope(readonly=True) as session:
        if not occurrence.fresh:
            settled = settled_in_range(
                customers, id_range, occurrence.key("customer", ""), now=now, session=session
            )
            if settled is not None:
                return settled
        return ResolvedBatch(customers_in_range(customers, id_range, session=session, as_of=now))


# Holdout: a keyed integer hash of (customer id, SOP id) that Python and SQL compute alike, so
# the guard (Python) and the day planner (INSERT ... SELECT) agree on who is held out. Every
# intermediate stays below 2**63 in SQLite and PostgreSQL bigint arithmetic.
HOLDOUT_PRIME = 2_147_483_647  # 2**31 - 1


@cache
def _holdout_keys(sop_id: str) -> tuple[int, int, int, int]:
    digest = hashlib.sha256(sop_id.encode("utf-8")).digest()
    a, b, c, d = (int.from_bytes(digest[i : i + 8], "big") % HOLDOUT_PRIME for i in (0, 8, 16, 24))
    return a or 1, b, c, d


def holdout_bucket(customer_id: Any, sop_id: str) -> Any:
    """A stable pseudo-random bucket in [0, 2**31 - 1) for an int, or the same as a SQL expression.

    An affine step keyed by the SOP, then two quadratic steps mixing it; stable across days and runs.
    """
    a, b, c, d = _holdout_keys(sop_id)
    bucket = (customer_id % HOLDOUT_PRIME * a + b) % HOLDOUT_PRIME
    bucket = (bucket * bucket + c) % HOLDOUT_PRIME
    return (bucket * bucket + d) % HOLDOUT_PRIME


def holdout_threshold(share: float) -> int:
    return int(share * HOLDOUT_PRIME)


def is_held_out(customer_id: int, sop_id: str, share: float) -> bool:
    """Whether the customer is in the SOP's control group of about `share` of its audience."""
    return share > 0 and holdout_bucket(customer_id, sop_id) < holdout_threshold(share)


def held_out_clause(sop_id: str, share: float) -> Any:
    """SQL twin of `is_held_out` for `customer.id`."""
    return holdout_bucket(cast(col(Customer.id), BigInteger), sop_id) < holdout_threshold(share)
