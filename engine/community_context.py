"""Template context for community SOPs: the group and today's deals for its theme and region."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from typing import Any

from sqlalchemy import select
from sqlmodel import Session, col

from models.audience import GroupTarget
from models.commerce import Deal, Product
from models.vocab import THEMES
from soplang.context import step_basics
from soplang.spec import SopSpec
from soplang.template import render


def deal_slot(spec: SopSpec) -> str:
    """Which daily deals a community SOP announces: its `slot`, else by the hour it runs."""
    slot = getattr(spec, "slot", None)
    if slot:
        return str(slot)
    hour = spec.schedule.cron.split()[1]
    return "morning" if hour.isdigit() and int(hour) < 15 else "evening"


def deals_of_day(
    day: dt.date, slot: str, *, session: Session
) -> dict[tuple[str, str | None], list[dict[str, Any]]]:
    """Deals of one slot on `day`, keyed by (category, region or None for chain-wide)."""
    statement = (
        select(Deal, Product)
        .join(Product, col(Product.id) == col(Deal.product_id))
        .where(col(Deal.day) == day, col(Deal.slot) == slot)
        .order_by(Deal.category, Deal.position, Deal.id)
    )
    deals: dict[tuple[str, str | None], list[dict[str, Any]]] = defaultdict(list)
    for deal, product in session.exec(statement).all():
        deals[(deal.category, deal.region)].append(_deal_view(deal, product))
    return dict(deals)


def _deal_view(deal: Deal, product: Product) -> dict[str, Any]:
    product_view = {
        "name": product.name,
        "unit": product.unit,
        "category": product.category,
        "sku": product.sku,
        "picture": product.picture or "",
    }
    return {
        "product": product_view,
        "name": product.name,
        "sku": product.sku,
        "picture": product.picture or "",  # "": no photo (an image attachment of it is left out)
        "unit": product.unit,
        "category": deal.category,
        "price": deal.price_fen,
        "list_price": deal.list_price_fen,
        "discount": round(deal.price_fen / deal.list_price_fen, 2) if deal.list_price_fen else 1.0,
        "limit": deal.limit_per_order,
        "stock": deal.stock,
    }


def deals_for_group(
    deals: dict[tuple[str, str | None], list[dict[str, Any]]], group: GroupTarget
) -> list[dict[str, Any]]:
    """The group's theme deals: its region's own deals first, then the chain-wide ones."""
    category = THEMES.get(group.theme, group.theme)
    return deals.get((category, group.region), []) + deals.get((category, None), [])


def group_view(group: GroupTarget) -> dict[str, Any]:
    """The `group` variable of any group step."""
    return {
        "name": group.name,
        "chat_id": group.chat_id,
        "region": group.region,
        "theme": group.theme,
        "member_count": group.member_count,
        "owner": {"name": group.owner_name, "userid": group.owner_userid},
    }


def group_context(
    group: GroupTarget,
    deals: list[dict[str, Any]],
    *,
    day: dt.date,
    slot: str,
    sop_id: str,
    sop_title: str,
) -> dict[str, Any]:
    """Everything a community step's template may use (documented in sop/README.md)."""
    return {
        "group": group_view(group),
        "deals": deals,
        "slot": slot,
        **step_basics(day, sop_id, sop_title),
    }


def render_for_group(
    compiled: Any,
    spec: SopSpec,
    group: GroupTarget,
    deals: list[dict[str, Any]],
    *,
    day: dt.date,
    slot: str,
) -> str:
    """The step's text for one group (the caller skips groups a deals step has none for)."""
    context = group_context(group, deals, day=day, slot=slot, sop_id=spec.id, sop_title=spec.title)
    return str(render(compiled, context))
