"""Record a batch's touches as `planned` under their idempotency keys and keep those still to send."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from prefect import task
from prefect.cache_policies import NO_CACHE

from models.db import session_scope
from tasks.audience import GroupTarget
from tasks.deliveries import SENDABLE, Occurrence, PlannedTarget, record_planned


@dataclass(frozen=True)
class Touch:
    """A target with its Delivery row, still to be rendered and sent."""

    delivery_id: int
    target: Any  # GroupTarget (customers come with the delivery engine)
    sender: str | None


@dataclass
class PlannedBatch:
    """What planning a batch found: touches to send and rows an earlier run already settled."""

    touches: list[Touch] = field(default_factory=list)
    already_done: dict[str, int] = field(default_factory=dict)  # status -> rows


def group_target(group: GroupTarget) -> PlannedTarget:
    """A group as a Delivery target; the group's owner sends to it."""
    return PlannedTarget("group", group.chat_id, group.owner_userid, group_id=group.id)


def plan_groups(occurrence: Occurrence, groups: Sequence[GroupTarget]) -> PlannedBatch:
    """Record each group once for this occurrence; return those not yet sent."""
    by_chat_id = {g.chat_id: g for g in groups}
    with session_scope() as session:
        recorded = record_planned(occurrence, [group_target(g) for g in groups], session=session)
    batch = PlannedBatch()
    sendable = {s.value for s in SENDABLE}
    for row in recorded:
        if row.status in sendable:
            group = by_chat_id[row.target_id]
            batch.touches.append(Touch(row.delivery_id, group, group.owner_userid))
        else:
            batch.already_done[row.status] = batch.already_done.get(row.status, 0) + 1
    return batch


@task(name="record-planned", cache_policy=NO_CACHE)
def plan_group_touches(occurrence: Occurrence, groups: list[GroupTarget]) -> PlannedBatch:
    """Record the batch's groups as planned (once per occurrence) and keep those still to send."""
    return plan_groups(occurrence, groups)
