"""One batch of an audience: the targets still to plan for an occurrence, or what it already made
of them; and a lifecycle step's audience of the day."""

from __future__ import annotations

import dataclasses
import datetime as dt
from dataclasses import dataclass
from typing import Literal

from sqlmodel import Session

from models.audience import (
    CustomerFilter,
    CustomerTarget,
    GroupTarget,
    IdRange,
    customers_in_range,
    settled_in_range,
)
from models.deliveries import Occurrence
from soplang.spec import CustomerAudience


class StageEntryAudience(CustomerAudience):
    """A lifecycle step's audience: the SOP's customers who entered their stage in [from, before)."""

    entered_from: dt.datetime
    entered_before: dt.datetime


@dataclass
class ResolvedBatch:
    """The targets of a batch still to plan for an occurrence, and how many it has settled."""

    shape: Literal["groups", "customers"]
    targets: list[GroupTarget] | list[CustomerTarget] = dataclasses.field(default_factory=list)
    already_done: dict[str, int] = dataclasses.field(default_factory=dict)  # status -> targets
    deferred: int = 0  # targets whose touch waits for quiet hours to end


def resolve_batch(
    customers: CustomerFilter | None,
    id_range: IdRange,
    occurrence: Occurrence,
    *,
    now: dt.datetime,
    session: Session,
) -> ResolvedBatch:
    """The customers of one batch, unless the occurrence has settled them all (then only counts;
    a fresh occurrence has nothing to count)."""
    if not occurrence.fresh:
        settled = settled_in_range(
            customers, id_range, occurrence.key("customer", ""), now=now, session=session
        )
        if settled is not None:
            return ResolvedBatch(
                "customers", already_done=settled.already_done, deferred=settled.deferred
            )
    return ResolvedBatch(
        "customers", customers_in_range(customers, id_range, session=session, as_of=now)
    )
