"""Prefect tasks of a partitioned occurrence: its partitions created, a taken-over bucket reconciled."""

from __future__ import annotations

import datetime as dt

from prefect import task
from prefect.cache_policies import NO_CACHE

from channels import get_channel
from core.settings import get_settings
from engine.partitions import plan_dispatch_partitions, reconcile_senders, start_work
from engine.reconcile import ReconcileSummary
from models.audience import IdRange
from models.deliveries import Occurrence


@task(name="partition-occurrence", cache_policy=NO_CACHE)
def partition_occurrence(
    occurrence: Occurrence, ranges: list[IdRange], plan: bytes
) -> tuple[int, bool]:
    """The occurrence's work with one prepare partition per id range (an unfinished one resumed)."""
    return start_work(occurrence, ranges, plan)


@task(name="partition-dispatch", cache_policy=NO_CACHE)
def partition_dispatch(work_id: int, occurrence: Occurrence, now: dt.datetime, runners: int) -> int:
    """Dispatch partitions for the rows waiting to be sent: buckets of whole senders."""
    return plan_dispatch_partitions(work_id, occurrence, now=now, runners=runners)


@task(name="reconcile-partition", cache_policy=NO_CACHE)
def reconcile_partition(occurrence: Occurrence, senders: list[str]) -> ReconcileSummary:
    """Settle the rows of a taken-over bucket that its lapsed runner left `sending`."""
    channel = get_channel(get_settings())
    try:
        return reconcile_senders(occurrence, senders, channel=channel)
    finally:
        channel.close()
