"""Resolve an SOP's audience (groups or customers): id ranges to batch over, then one batch."""

from __future__ import annotations

import datetime as dt

from prefect import task
from prefect.cache_policies import NO_CACHE

from engine.audience import ResolvedBatch, resolve_batch
from engine.timing import gc_paused, timed
from models.audience import (
    CustomerFilter,
    GroupFilter,
    IdRange,
    customer_id_ranges,
    group_id_ranges,
    groups_in_range,
)
from models.db import session_scope
from models.deliveries import Occurrence


@task(name="plan-group-batches")
def plan_group_batches(groups: GroupFilter | None, batch_size: int) -> list[IdRange]:
    """Split the SOP's group audience into id ranges, one task run each."""
    with session_scope() as session:
        return group_id_ranges(groups, batch_size=batch_size, session=session)


@task(name="resolve-groups")
def resolve_groups(groups: GroupFilter | None, id_range: IdRange) -> ResolvedBatch:
    """The groups of one batch."""
    with session_scope() as session:
        return ResolvedBatch("groups", groups_in_range(groups, id_range, session=session))


@task(name="plan-customer-batches", cache_policy=NO_CACHE)
def plan_customer_batches(
    customers: CustomerFilter | None, batch_size: int, as_of: dt.datetime | None = None
) -> list[IdRange]:
    """Split the SOP's customer audience into id ranges, one task run each."""
    with timed("audience"), session_scope(readonly=True) as session:
        return customer_id_ranges(customers, batch_size=batch_size, session=session, as_of=as_of)


@task(name="resolve-customers", cache_policy=NO_CACHE)
def resolve_customers(
    customers: CustomerFilter | None,
    id_range: IdRange,
    now: dt.datetime,
    occurrence: Occurrence,
) -> ResolvedBatch:
    """The customers of one batch, or only counts when the occurrence has settled them all."""
    with timed("audience"), gc_paused(), session_scope(readonly=True) as session:
        return resolve_batch(customers, id_range, occurrence, now=now, session=session)
