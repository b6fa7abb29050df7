"""Template context of lifecycle steps: each customer's `stage` and monthly member `report`, per batch."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from functools import lru_cache
from typing import Any

from jinja2 import nodes
from sqlalchemy import func, select
from sqlmodel import Session, col

from core.clock import at_local, local
from core.errors import SopDefinitionError
from core.settings import get_settings
from engine.audience import StageEntryAudience
from models.audience import CustomerTarget
from models.commerce import Order, OrderLine, Product
from models.db import session_scope
from models.vocab import CATEGORIES, STAGES
from soplang.environment import environment
from soplang.spec import SopSpec

Context = dict[int, dict[str, Any]]  # customer id -> extra template variables


def sop_timezone(spec: SopSpec) -> str:
    """The timezone of a lifecycle SOP's days: its schedule's, else the configured one (as caps)."""
    return spec.schedule.timezone if spec.schedule else get_settings().timezone


def stage_entry_audience(spec: SopSpec, step: str, day: dt.date) -> StageEntryAudience:
    """The step's audience on `day`: the SOP's customers who entered its stage `after` days before.

    The stage filter is the customer's current stage, so one who left it meanwhile (bought again,
    was reclassified) no longer matches: the early exit.
    """
    after_days = spec.step(step).after_days
    if spec.kind != "lifecycle" or after_days is None:
        raise SopDefinitionError(f"step `{step}` is not a lifecycle step", sop_id=spec.id)
    tz = sop_timezone(spec)
    entered = day - dt.timedelta(days=after_days)
    return StageEntryAudience(
        **spec.audience.customers.model_dump(),
        entered_from=at_local(entered, 0, 0, tz),
        entered_before=at_local(entered + dt.timedelta(days=1), 0, 0, tz),
    )


@lru_cache(maxsize=256)
def variables_read(source: str) -> frozenset[str]:
    """The top-level variable names a template reads."""
    tree = environment().parse(source)
    return frozenset(node.name for node in tree.find_all(nodes.Name) if node.ctx == "load")


def stage_view(customer: CustomerTarget, *, day: dt.date, tz: str) -> dict[str, Any]:
    """The `stage` variable: the customer's stage, the local day they entered it and days since."""
    since = local(customer.stage_since, tz).date()
    return {
        "key": customer.stage,
        "label": STAGES.get(customer.stage, customer.stage),
        "since": since,
        "days": (day - since).days,
    }


def month_window(day: dt.date, tz: str) -> tuple[dt.datetime, dt.datetime]:
    """[first day of `day`'s month, end of `day`) as UTC instants: the report's month so far."""
    return at_local(day.replace(day=1), 0, 0, tz), at_local(day + dt.timedelta(days=1), 0, 0, tz)


def _month_orders(ids: Sequence[int], window: tuple[dt.datetime, dt.datetime]) -> list[Any]:
    return [
        col(Order.customer_id).in_(list(ids)),
        col(Order.placed_at) >= window[0],
        col(Order.placed_at) < window[1],
        col(Order.status) != "refunded",
    ]


def _top_categories(rows: Sequence[Any]) -> dict[int, str]:
    """Customer id -> the category bought in the most units; ties go to the first category key."""
    top: dict[int, tuple[int, str]] = {}
    for customer_id, category, quantity in sorted(rows, key=lambda r: (r[0], r[1])):
        if customer_id not in top or quantity > top[customer_id][0]:
            top[customer_id] = (int(quantity), category)
    return {customer_id: CATEGORIES.get(key, key) for customer_id, (_, key) in top.items()}


def monthly_reports(
    customer_ids: Sequence[int], *, day: dt.date, tz: str, session: Session
) -> Context:
    """The `report` of each customer: orders, savings and top category (by quantity) this month.

    Two grouped queries for the whole batch; a customer without orders this month gets zeros
    and an empty top category, so a template can say `{% if report.orders %}`.
    """
    where = _month_orders(customer_ids, month_window(day, tz))
    customer, category = col(Order.customer_id), col(Product.category)
    totals = session.execute(
        select(customer, func.count(), func.coalesce(func.sum(Order.saved_fen), 0))
        .where(*where)
        .group_by(customer)
    ).all()
    top = _top_categories(
        session.execute(
            select(customer, category, func.sum(OrderLine.quantity))
            .join(OrderLine, col(OrderLine.order_id) == col(Order.id))
            .join(Product, col(Product.id) == col(OrderLine.product_id))
            .where(*where)
            .group_by(customer, category)
        ).all()
    )
    month = f"{day.month}月"
    reports = {
        cid: {"month": month, "saved": 0, "orders": 0, "top_category": ""} for cid in customer_ids
    }
    for customer_id, orders, saved in totals:
        reports[customer_id].update(
            orders=int(orders), saved=int(saved), top_category=top.get(customer_id, "")
        )
    return reports


def lifecycle_context(
    spec: SopSpec, step: str, customers: Sequence[CustomerTarget], *, day: dt.date
) -> Context:
    """Per customer, the lifecycle variables the step's text reads (none for other kinds)."""
    if spec.kind != "lifecycle" or not customers:
        return {}
    read = variables_read(spec.section(step).text)
    tz = sop_timezone(spec)
    extra: Context = {c.id: {} for c in customers}
    if "stage" in read:
        for customer in customers:
            extra[customer.id]["stage"] = stage_view(customer, day=day, tz=tz)
    if "report" in read:
        with session_scope() as session:
            reports = monthly_reports([c.id for c in customers], day=day, tz=tz, session=session)
        for customer_id, report in reports.items():
            extra[customer_id]["report"] = report
    return extra
