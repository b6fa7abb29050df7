"""WHERE clauses for the audience keys that take more than a column compared with a list: owner, store, tags,
recency, birthday month."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from sqlalchemy import ColumnElement, func, or_, select
from sqlmodel import col

from core.clock import day_window, local, local_today
from core.settings import get_settings
from models.people import Customer, CustomerGroup, CustomerTag, Staff, Store, Tag

THIS_MONTH = "this"


def group_owned_by(userids: Sequence[str]) -> ColumnElement[bool]:
    """The group's owner (群主) is one of the staff members with these WeCom userids."""
    staff = select(col(Staff.id)).where(col(Staff.userid).in_(list(userids)))
    return col(CustomerGroup.owner_staff_id).in_(staff.scalar_subquery())


def customer_of_store(stores: Sequence[str]) -> ColumnElement[bool]:
    """The customer's store has one of these codes or names (bj01, 北京朝阳大悦城店)."""
    values = list(stores)
    found = select(col(Store.id)).where(
        or_(col(Store.code).in_(values), col(Store.name).in_(values))
    )
    return col(Customer.store_id).in_(found.scalar_subquery())


def born_in(months: Sequence[int | str], as_of: dt.datetime) -> ColumnElement[bool]:
    """The customer's birthday falls in one of `months`; `this` is the month of `as_of` in the
    chain's time zone. Customers without a birthday match no month."""
    this = local(as_of, get_settings().timezone).month
    numbers = sorted({this if m == THIS_MONTH else int(m) for m in months})
    return func.extract("month", col(Customer.birthday)).in_(numbers)


def has_tag(names: Sequence[str]) -> ColumnElement[bool]:
    """EXISTS a tag of the customer named one of `names`."""
    return (
        select(CustomerTag.customer_id)
        .join(Tag, col(Tag.id) == col(CustomerTag.tag_id))
        .where(col(CustomerTag.customer_id) == col(Customer.id), col(Tag.name).in_(list(names)))
        .exists()
    )


def last_order_days_ago(
    gte: int | None, lte: int | None, as_of: dt.datetime
) -> list[ColumnElement[bool]]:
    """Last order `gte`..`lte` days before `as_of`'s date in the chain's time zone (0 = that day),
    compared with UTC instants of local midnights: no per-row date function, same on every DB."""
    tz = get_settings().timezone
    today = local_today(as_of, tz)
    clauses = []
    if gte is not None:
        _, end = day_window(today - dt.timedelta(days=gte), tz)
        clauses.append(col(Customer.last_order_at) < end)
    if lte is not None:
        start, _ = day_window(today - dt.timedelta(days=lte), tz)
        clauses.append(col(Customer.last_order_at) >= start)
    return clauses
