"""Audience queries: the groups or customers an SOP's audience selects, in id ranges to batch over.

The audience descriptions are the SOP language's (`soplang.spec.GroupAudience`,
`CustomerAudience`); models stand below it, so the queries take them by the shape declared here.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple, Protocol, runtime_checkable

from sqlalchemy import ColumnElement, Select, func, literal, select, type_coerce
from sqlalchemy.orm import aliased
from sqlmodel import Session, col

from core.clock import utcnow
from models.audience_keys import (
    born_in,
    customer_of_store,
    group_owned_by,
    has_tag,
    last_order_days_ago,
)
from models.delivery import SENDABLE_VALUES, Delivery
from models.people import Customer, CustomerGroup, OptOut, Staff
from models.types import UTCDateTime

IdRange = tuple[int, int]


class GroupFilter(Protocol):
    """A `groups:` audience (soplang.spec.GroupAudience): empty lists select every live group."""

    @property
    def theme(self) -> Sequence[str]: ...
    @property
    def region(self) -> Sequence[str]: ...
    @property
    def owner(self) -> Sequence[str]: ...


class DaysFilter(Protocol):
    """`last_purchase_days:` (soplang.spec.DayRange): `gte`..`lte` local calendar days ago."""

    @property
    def gte(self) -> int | None: ...
    @property
    def lte(self) -> int | None: ...


class CustomerFilter(Protocol):
    """A `customers:` audience (soplang.spec.CustomerAudience): empty lists select everyone."""

    @property
    def stage(self) -> Sequence[str]: ...
    @property
    def tier(self) -> Sequence[str]: ...
    @property
    def region(self) -> Sequence[str]: ...
    @property
    def tags_any(self) -> Sequence[str]: ...
    @property
    def tags_none(self) -> Sequence[str]: ...
    @property
    def last_purchase_days(self) -> DaysFilter | None: ...
    @property
    def store(self) -> Sequence[str]: ...
    @property
    def gender(self) -> Sequence[str]: ...
    @property
    def paid_member(self) -> bool | None: ...
    @property
    def birthday_month(self) -> Sequence[int | str]: ...
    @property
    def source_state(self) -> Sequence[str]: ...
    @property
    def holdout(self) -> float: ...


@runtime_checkable
class StageEntryFilter(CustomerFilter, Protocol):
    """A lifecycle step's audience (engine.audience.StageEntryAudience): the customers who also
    entered their stage in [entered_from, entered_before)."""

    @property
    def entered_from(self) -> dt.datetime: ...
    @property
    def entered_before(self) -> dt.datetime: ...


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
    birthday: dt.date | None = None  # month and day reach templates, never the year
    source_state: str | None = None  # the contact way's `state` (store-bj01) they were added by


def id_ranges(
    id_column: Any, where: Sequence[ColumnElement[bool]], *, batch_size: int, session: Session
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


# --- Groups -------------------------------------------------------------------------------


def group_filters(groups: GroupFilter | None) -> list[ColumnElement[bool]]:
    """WHERE clauses for a `groups:` audience; every value is a bound parameter."""
    clauses: list[ColumnElement[bool]] = [col(CustomerGroup.dismissed_at).is_(None)]
    if groups is None:
        return clauses
    if groups.theme:
        clauses.append(col(CustomerGroup.theme).in_(list(groups.theme)))
    if groups.region:
        clauses.append(col(CustomerGroup.region).in_(list(groups.region)))
    if groups.owner:
        clauses.append(group_owned_by(groups.owner))
    return clauses


def group_id_ranges(
    groups: GroupFilter | None, *, batch_size: int, session: Session
) -> list[IdRange]:
    """Inclusive id ranges that split the matching groups into batches of `batch_size`."""
    return id_ranges(
        col(CustomerGroup.id), group_filters(groups), batch_size=batch_size, session=session
    )


def count_groups(groups: GroupFilter | None, *, session: Session) -> int:
    """How many groups match a `groups:` audience."""
    statement = select(func.count()).select_from(CustomerGroup).where(*group_filters(groups))
    return int(session.exec(statement).one()[0])


def groups_in_range(
    groups: GroupFilter | None, id_range: IdRange, *, session: Session
) -> list[GroupTarget]:
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
        .where(*group_filters(groups), col(CustomerGroup.id).between(low, high))
        .order_by(CustomerGroup.id)
    )
    return [GroupTarget(*row) for row in session.exec(statement).all()]


def first_group(
    groups: GroupFilter | None, *, session: Session, chat_id: str | None = None
) -> GroupTarget | None:
    """The first matching group (or the one with `chat_id`), for previews."""
    clauses = group_filters(groups)
    if chat_id:
        clauses.append(col(CustomerGroup.chat_id) == chat_id)
    first = session.exec(select(func.min(CustomerGroup.id)).where(*clauses)).one()[0]
    if first is None:
        return None
    found = groups_in_range(None, (first, first), session=session)
    return found[0] if found else None


# --- Customers ----------------------------------------------------------------------------


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
        Customer.birthday,
        Customer.source_state,
    ).outerjoin(Staff, col(Staff.id) == col(Customer.owner_staff_id))


def customer_filters(
    customers: CustomerFilter | None, *, as_of: dt.datetime | None = None
) -> list[ColumnElement[bool]]:
    """WHERE clauses for a `customers:` audience; every value is a bound parameter.

    `last_purchase_days: {gte: 30, lte: 90}`: the last order was placed 30 to 90 calendar days
    before `as_of`'s local date; customers who never ordered match no `last_purchase_days`.
    """
    clauses: list[ColumnElement[bool]] = []
    if customers is None:
        return clauses
    for values, column in (
        (customers.stage, Customer.stage),
        (customers.tier, Customer.tier),
        (customers.region, Customer.region),
        (customers.gender, Customer.gender),
        (customers.source_state, Customer.source_state),
    ):
        if values:
            # `|| ''` keeps SQLite's planner (which has no statistics) off these columns' indexes:
            # it would scan the whole audience in the index for every id-range batch.
            clauses.append((col(column) + "").in_(list(values)))
    if customers.tags_any:
        clauses.append(has_tag(customers.tags_any))
    if customers.tags_none:
        clauses.append(~has_tag(customers.tags_none))
    days = customers.last_purchase_days
    if days is not None:
        clauses.extend(last_order_days_ago(days.gte, days.lte, as_of or utcnow()))
    if customers.store:
        clauses.append(customer_of_store(customers.store))
    if customers.paid_member is not None:
        clauses.append(col(Customer.is_paid_member) == customers.paid_member)
    if customers.birthday_month:
        clauses.append(born_in(customers.birthday_month, as_of or utcnow()))
    if isinstance(customers, StageEntryFilter):
        clauses.append(col(Customer.stage_since) >= customers.entered_from)
        clauses.append(col(Customer.stage_since) < customers.entered_before)
    return clauses


def reachable_filters(category: str | None) -> list[ColumnElement[bool]]:
    """Still a contact and not opted out of `category`: the guards before caps, as SQL."""
    clauses: list[ColumnElement[bool]] = [col(Customer.contact_state) == "active"]
    if category:
        opted_out = select(OptOut.customer_id).where(
            col(OptOut.customer_id) == col(Customer.id), col(OptOut.category) == category
        )
        clauses.append(~opted_out.exists())
    return clauses


def customer_id_ranges(
    customers: CustomerFilter | None,
    *,
    batch_size: int,
    session: Session,
    as_of: dt.datetime | None = None,
) -> list[IdRange]:
    """Inclusive id ranges that split the matching customers into batches of `batch_size`."""
    where = customer_filters(customers, as_of=as_of)
    return id_ranges(col(Customer.id), where, batch_size=batch_size, session=session)


def count_customers(
    customers: CustomerFilter | None, *, session: Session, as_of: dt.datetime | None = None
) -> int:
    """How many customers match a `customers:` audience (deleted contacts included)."""
    where = customer_filters(customers, as_of=as_of)
    return int(session.exec(select(func.count()).select_from(Customer).where(*where)).one()[0])


def customers_in_range(
    customers: CustomerFilter | None,
    id_range: IdRange,
    *,
    session: Session,
    as_of: dt.datetime | None = None,
) -> list[CustomerTarget]:
    """The matching customers whose ids fall in `id_range`, in id order."""
    low, high = id_range
    statement = (
        customer_select()
        .where(*customer_filters(customers, as_of=as_of), col(Customer.id).between(low, high))
        .order_by(Customer.id)
    )
    return [CustomerTarget(*row) for row in session.connection().execute(statement).all()]


@dataclass
class Settled:
    """How an occurrence left a batch of customers: customers per final status, and deferred."""

    already_done: dict[str, int]  # status -> customers
    deferred: int = 0  # customers whose touch waits for quiet hours to end


def settled_in_range(
    customers: CustomerFilter | None,
    id_range: IdRange,
    key_prefix: str,
    *,
    now: dt.datetime,
    session: Session,
) -> Settled | None:
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
    settled = Settled({})
    for status, is_waiting, rows in session.execute(statement):
        if status is None or (status in SENDABLE_VALUES and not is_waiting):
            return None
        if status in SENDABLE_VALUES:
            settled.deferred += rows
        else:
            settled.already_done[status] = settled.already_done.get(status, 0) + rows
    return settled
