"""Record the day's customer.birthday events: birthdays today, and on the 1st the month's birthdays."""

from __future__ import annotations

import calendar
import datetime as dt

from sqlalchemy import JSON, String, and_, exists, extract, insert, literal, or_, select
from sqlmodel import Session, col

from core.clock import at_local
from models.commerce import Event
from models.people import Customer
from models.types import UTCDateTime
from soplang.event_payloads import BIRTHDAY_KINDS

BIRTHDAY = "customer.birthday"


def birthday_instant(day: dt.date, tz: str) -> dt.datetime:
    """When the day's birthday events happen: local midnight, the same for every re-run."""
    return dt.datetime.fromtimestamp(at_local(day, 0, 0, tz).timestamp(), dt.UTC)


def _born(day: dt.date, kind: str) -> list[object]:
    """WHERE clauses for customers whose birthday is `day` (kind day) or in its month (kind month).

    Feb 29 birthdays fall on Feb 28 in a year without Feb 29."""
    month = extract("month", col(Customer.birthday))
    if kind == "month":
        return [month == day.month]
    on_day = extract("day", col(Customer.birthday)) == day.day
    if (day.month, day.day) == (2, 28) and not calendar.isleap(day.year):
        on_day = or_(on_day, extract("day", col(Customer.birthday)) == 29)
    return [month == day.month, on_day]


def record_birthdays(day: dt.date, *, tz: str, session: Session) -> dict[str, int]:
    """Record one customer.birthday event per customer born on `day` ({"kind": "day"}) and, on
    the 1st, per customer born in its month ({"kind": "month"}); the counts recorded by kind.

    Idempotent: a customer who already has the day's event of that kind gets none again, so a
    re-run (or a retried plan-day) records nothing new. Each kind is one INSERT ... SELECT.
    Deleted or opted-out contacts are recorded too; the send guards skip them with the reason.
    """
    instant = birthday_instant(day, tz)
    kinds = [k for k in BIRTHDAY_KINDS if k == "day" or day.day == 1]
    recorded: dict[str, int] = {}
    for kind in kinds:
        payload = {"kind": kind}
        already = exists().where(
            col(Event.kind) == BIRTHDAY,
            col(Event.customer_id) == col(Customer.id),
            col(Event.occurred_at) == instant,
            col(Event.payload)["kind"].as_string() == kind,
        )
        born = (
            select(
                literal(BIRTHDAY, String),
                col(Customer.id),
                literal(payload, JSON),
                literal(instant, UTCDateTime()),
            )
            .where(col(Customer.birthday).is_not(None), and_(*_born(day, kind)), ~already)
            .order_by(col(Customer.id))
        )
        columns = ["kind", "customer_id", "payload", "occurred_at"]
        result = session.execute(insert(Event).from_select(columns, born))
        recorded[kind] = int(result.rowcount or 0)  # type: ignore[attr-defined]
    return recorded
