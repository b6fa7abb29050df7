"""WHERE clauses for the audience keys that reach beyond a column of their own table: owner, store, birthday month."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from sqlalchemy import ColumnElement, func, or_, select
from sqlmodel import col

from core.clock import local
from core.settings import get_settings
from models.people import Customer, CustomerGroup, Staff, Store

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
