"""Template context for 1:1 customer touches, and a render cache keyed by the fields a template reads."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from functools import lru_cache
from operator import attrgetter
from typing import Any

from jinja2 import nodes

from models.audience import CustomerTarget
from models.vocab import STAGES, TIERS
from soplang.context import step_basics
from soplang.environment import environment
from soplang.template import CompiledStep, render


def customer_view(customer: CustomerTarget) -> dict[str, Any]:
    """The `customer` variable (documented in sop/README.md); never the phone number."""
    return {
        "name": customer.name,
        "external_userid": customer.external_userid,
        "region": customer.region,
        "tier": customer.tier,
        "tier_label": TIERS.get(customer.tier, customer.tier),
        "stage": customer.stage,
        "stage_label": STAGES.get(customer.stage, customer.stage),
        "owner": {"name": customer.owner_name or ""},
        "birthday": (
            {"month": customer.birthday.month, "day": customer.birthday.day}
            if customer.birthday
            else None
        ),
        "source_state": customer.source_state or "",
    }


# The CustomerTarget field each field of `customer` is made from: texts are shared by customers
# alike in these, so a batch renders once per segment and never builds a context per customer.
VIEW_SOURCES: dict[str, str] = {
    "name": "name",
    "external_userid": "external_userid",
    "region": "region",
    "tier": "tier",
    "tier_label": "tier",
    "stage": "stage",
    "stage_label": "stage",
    "owner": "owner_name",
    "birthday": "birthday",
    "source_state": "source_state",
}


def customer_context(
    customer: CustomerTarget, *, day: dt.date, sop_id: str, sop_title: str
) -> dict[str, Any]:
    """Everything a 1:1 step's template may use for one customer."""
    return {
        "customer": customer_view(customer),
        **step_basics(day, sop_id, sop_title),
    }


@lru_cache(maxsize=256)
def customer_fields_read(source: str) -> tuple[str, ...] | None:
    """The `customer.<field>` names a template reads, or None when it uses `customer` as a whole.

    Texts that read only segment-level fields (region, tier …) render once per segment instead
    of once per customer, and identical texts batch into one WeCom call per staff member.
    """
    tree = environment().parse(source)
    fields = {
        node.attr
        for node in tree.find_all(nodes.Getattr)
        if isinstance(node.node, nodes.Name) and node.node.name == "customer"
    }
    uses = sum(1 for node in tree.find_all(nodes.Name) if node.name == "customer")
    reads_via_attribute = sum(
        1
        for node in tree.find_all(nodes.Getattr)
        if isinstance(node.node, nodes.Name) and node.node.name == "customer"
    )
    return tuple(sorted(fields)) if uses == reads_via_attribute else None


def segment_renderer(
    compiled: CompiledStep,
    *,
    day: dt.date,
    sop_id: str,
    sop_title: str,
    shared: Mapping[str, Any] | None = None,
) -> Callable[..., str]:
    """Render a customer's text, reusing the text of any customer with the same fields read.

    `shared` adds variables every customer's text gets (a promotion's `campaign`, `items`);
    `extra` adds variables for one customer's text (a trigger's `event`, `product`, `order`).
    """
    segment = _segment_of(customer_fields_read(compiled.source))
    cache: dict[tuple[Any, str | None], str] = {}

    def render_for(customer: CustomerTarget, extra: Mapping[str, Any] | None = None) -> str:
        key = None if segment is None else (segment(customer), repr(extra) if extra else None)
        text = cache.get(key) if key is not None else None
        if text is None:
            context = customer_context(customer, day=day, sop_id=sop_id, sop_title=sop_title)
            context.update(shared or {})
            context.update(extra or {})
            text = render(compiled, context)
            if key is not None:
                cache[key] = text
        return text

    return render_for


def _segment_of(fields: tuple[str, ...] | None) -> Callable[[CustomerTarget], Any] | None:
    """The CustomerTarget values that decide the text, or None when every customer's may differ
    (the template uses `customer` as a whole, or a field it does not have: rendering says so)."""
    if fields is None or not set(fields) <= VIEW_SOURCES.keys():
        return None
    sources = sorted({VIEW_SOURCES[field] for field in fields})
    return attrgetter(*sources) if sources else lambda _customer: ()
