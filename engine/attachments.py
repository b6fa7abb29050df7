"""A 1:1 batch's attachments: rendered once per segment of customers alike, like their texts."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from typing import Any

from channels.attachments import Attachment
from engine.customer_context import _segment_of, customer_context, customer_fields_read
from models.audience import CustomerTarget
from soplang.attachment_render import StepAttachments


def segment_attachments(
    attachments: StepAttachments,
    customers: Sequence[CustomerTarget],
    *,
    day: dt.date,
    sop_id: str,
    sop_title: str,
    shared: Mapping[str, Any] | None = None,
    extra: Mapping[int, Mapping[str, Any] | None] | None = None,
) -> dict[int, tuple[Attachment, ...]]:
    """Each customer's attachments (customer id -> tuple; empty when the step has none).

    Literal attachments are one tuple for the whole batch; templated ones render once per
    segment (the customer fields the templates read, and the customer's `extra` variables).
    """
    if not attachments or not customers:
        return {}
    if not attachments.templated:
        return dict.fromkeys((c.id for c in customers), attachments.render())
    segment = _segment_of(customer_fields_read(attachments.sources))
    cache: dict[Any, tuple[Attachment, ...]] = {}
    found: dict[int, tuple[Attachment, ...]] = {}
    for customer in customers:
        more = extra.get(customer.id) if extra else None
        key = None if segment is None else (segment(customer), repr(more) if more else None)
        rendered = cache.get(key) if key is not None else None
        if rendered is None:
            context = customer_context(customer, day=day, sop_id=sop_id, sop_title=sop_title)
            context.update(shared or {})
            context.update(more or {})
            rendered = attachments.render(context)
            if key is not None:
                cache[key] = rendered
        found[customer.id] = rendered
    return found
