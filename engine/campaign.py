"""Promotion steps: when each step of a campaign is due, its template context, and the burst's real sales."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from sqlalchemy import distinct, func, select
from sqlmodel import Session, col

from core.clock import at_local, local
from core.errors import SopError
from core.settings import get_settings
from engine.community_context import group_view
from models.audience import GroupTarget
from models.commerce import Campaign, CampaignItem, Order, OrderLine, Product
from soplang.context import RECAP_STEP, step_basics
from soplang.spec import SopSpec

BURST_STEP = "burst"
EARLY = dt.timedelta(minutes=15)  # a step run this much before it is due is refused
NOT_COUNTED = ("refunded",)  # order statuses that are not sales


@dataclass(frozen=True)
class CampaignInfo:
    """A campaign as a promotion run needs it (times are aware UTC)."""

    id: int
    code: str
    name: str
    sop_id: str | None
    starts_at: dt.datetime
    ends_at: dt.datetime
    status: str


def step_due_times(spec: SopSpec, starts_at: dt.datetime, tz: str) -> dict[str, dt.datetime]:
    """Step name -> the UTC instant it is due: `at: "-1d 20:00"` from the local start date in `tz`."""
    start_day = local(starts_at, tz).date()
    due = {}
    for step in spec.step_list:
        if step.at_offset is None:
            raise SopError(f"promotion step `{step.name}` has no `at`", sop_id=spec.id)
        days, hour, minute = step.at_offset
        due[step.name] = at_local(start_day + dt.timedelta(days=days), hour, minute, tz)
    return due


def find_campaign(code: str, *, session: Session) -> CampaignInfo:
    """The campaign with this code, or SopError naming the codes there are."""
    campaign = _campaign_row(code, session=session)
    return CampaignInfo(
        campaign.id,
        campaign.code,
        campaign.name,
        campaign.sop_id,
        campaign.starts_at,
        campaign.ends_at,
        campaign.status,
    )


def _campaign_row(code: str, *, session: Session) -> Campaign:
    campaign = session.execute(select(Campaign).where(col(Campaign.code) == code)).scalar()
    if campaign is None:
        codes = session.execute(select(Campaign.code).order_by(Campaign.code)).scalars().all()
        raise SopError(f"no campaign `{code}`; campaigns: {', '.join(codes) or 'none'}")
    return campaign


def upcoming_codes(now: dt.datetime, *, session: Session) -> list[str]:
    """Codes of campaigns with an SOP, not cancelled or done, that have not ended at `now`."""
    statement = (
        select(Campaign.code)
        .where(
            col(Campaign.sop_id).is_not(None),
            col(Campaign.status).in_(("draft", "scheduled")),
            col(Campaign.ends_at) > now,
        )
        .order_by(Campaign.starts_at)
    )
    return list(session.execute(statement).scalars())


def set_campaign(code: str, *, session: Session, **values: Any) -> None:
    """Change fields of the campaign with this code (status, starts_at, ends_at)."""
    campaign = _campaign_row(code, session=session)
    for name, value in values.items():
        setattr(campaign, name, value)


def skip_reason(
    campaign: CampaignInfo, spec: SopSpec, step: str, now: dt.datetime, tz: str
) -> str | None:
    """Why this step must send nothing now (cancelled, unknown step, not due, overtaken), else None."""
    if campaign.status == "cancelled":
        return f"campaign {campaign.code} is cancelled"
    if step not in spec.step_names:
        return f"SOP {spec.id} has no step `{step}`; steps: {', '.join(spec.step_names)}"
    due = step_due_times(spec, campaign.starts_at, tz)
    if now < due[step] - EARLY:
        return f"not due yet: `{step}` is due at {local(due[step], tz):%Y-%m-%d %H:%M} ({tz})"
    later = [name for name, at in due.items() if due[step] < at <= now]
    if later:
        return f"too late: the later step `{later[0]}` is already due, so `{step}` would mislead"
    return None


def item_views(campaign_id: int, *, session: Session) -> list[dict[str, Any]]:
    """The `items` variable: each campaign item with its product, prices and stock, in list order."""
    statement = (
        select(CampaignItem, Product)
        .join(Product, col(Product.id) == col(CampaignItem.product_id))
        .where(col(CampaignItem.campaign_id) == campaign_id)
        .order_by(CampaignItem.id)
    )
    return [_item_view(item, product) for item, product in session.exec(statement).all()]


def _item_view(item: CampaignItem, product: Product) -> dict[str, Any]:
    list_price = max(product.list_price_fen, item.price_fen)
    return {
        "product": {
            "name": product.name,
            "unit": product.unit,
            "category": product.category,
            "sku": product.sku,
            "picture": product.picture or "",
        },
        "name": product.name,
        "sku": product.sku,
        "picture": product.picture or "",  # "": no photo (an image attachment of it is left out)
        "unit": product.unit,
        "price": item.price_fen,
        "list_price": list_price,
        "discount": round(item.price_fen / list_price, 2) if list_price else 1.0,
        "competitor_name": item.competitor_name,
        "competitor_price": item.competitor_price_fen,
        "saving": item.competitor_price_fen - item.price_fen,
        "stock": item.stock,
        "product_id": item.product_id,
    }


def burst_stats(
    campaign_id: int,
    items: list[dict[str, Any]],
    since: dt.datetime,
    until: dt.datetime,
    *,
    session: Session,
) -> dict[str, Any]:
    """The `stats` variable: campaign items sold in orders placed in [since, until), set-based.

    Units and revenue come from the order lines of campaign products; buyers are distinct
    customers with such a line; an item is sold out when its units reach its stock, and the
    items left show the stock that remains. Refunded orders do not count.
    """
    campaign_products = select(CampaignItem.product_id).where(
        col(CampaignItem.campaign_id) == campaign_id
    )
    where = (
        col(Order.placed_at) >= since,
        col(Order.placed_at) < until,
        col(Order.status).not_in(NOT_COUNTED),
        col(OrderLine.product_id).in_(campaign_products),
    )
    joined = select().select_from(OrderLine).join(Order, col(Order.id) == col(OrderLine.order_id))
    sold = dict(
        session.execute(
            joined.add_columns(OrderLine.product_id, func.sum(OrderLine.quantity))
            .where(*where)
            .group_by(OrderLine.product_id)
        ).all()
    )
    buyers, revenue = session.execute(
        joined.add_columns(
            func.count(distinct(Order.customer_id)),
            func.coalesce(func.sum(OrderLine.quantity * OrderLine.price_fen), 0),
        ).where(*where)
    ).one()
    sold_out: list[dict[str, Any]] = []
    items_left: list[dict[str, Any]] = []
    for item in items:
        units = int(sold.get(item["product_id"], 0))
        left = {**item, "stock": max(item["stock"] - units, 0)}
        (sold_out if units >= item["stock"] else items_left).append(left)
    return {
        "units_sold": int(sum(sold.values())),
        "buyers": int(buyers),
        "revenue": int(revenue),
        "sold_out": sold_out,
        "items_left": items_left,
    }


def campaign_view(campaign: CampaignInfo, tz: str) -> dict[str, Any]:
    """The `campaign` variable, times on the local wall clock."""
    return {
        "code": campaign.code,
        "name": campaign.name,
        "starts_at": local(campaign.starts_at, tz),
        "ends_at": local(campaign.ends_at, tz),
    }


def step_context(
    campaign: CampaignInfo, spec: SopSpec, step: str, now: dt.datetime, *, session: Session
) -> dict[str, Any]:
    """`campaign`, `items` and (recap only) `stats` from the burst's due time to the recap's."""
    tz = get_settings().timezone
    items = item_views(campaign.id, session=session)
    context: dict[str, Any] = {"campaign": campaign_view(campaign, tz), "items": items}
    if step == RECAP_STEP:
        due = step_due_times(spec, campaign.starts_at, tz)
        since = due.get(BURST_STEP, campaign.starts_at)
        context["stats"] = burst_stats(
            campaign.id, items, since, min(now, due[step]), session=session
        )
    return context


def group_step_context(
    group: GroupTarget, shared: dict[str, Any], *, spec: SopSpec, day: dt.date
) -> dict[str, Any]:
    """Everything a promotion step's template may use for one group."""
    return {
        **shared,
        "group": group_view(group),
        **step_basics(day, spec.id, spec.title),
    }
