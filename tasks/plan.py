"""Prefect tasks that guard and record touches: each target once per occurrence, with its text."""

from __future__ import annotations

import datetime as dt

from prefect import task
from prefect.cache_policies import NO_CACHE

from engine.audience import ResolvedBatch
from engine.compose import Rendered
from engine.plan import PlannedBatch, plan_resolved
from models.db import session_scope
from models.deliveries import Occurrence, has_rows
from soplang.spec import SopSpec


@task(name="occurrence-started", cache_policy=NO_CACHE)
def occurrence_started(occurrence: Occurrence) -> bool:
    """Whether an earlier run of the occurrence recorded rows (a first run has nothing to re-check)."""
    with session_scope(readonly=True) as session:
        return has_rows(occurrence, session=session)


@task(name="record-planned", cache_policy=NO_CACHE)
def record_planned(
    spec: SopSpec,
    occurrence: Occurrence,
    resolved: ResolvedBatch,
    rendered: Rendered,
    now: dt.datetime,
) -> PlannedBatch:
    """Guard the batch, record every target once with its outcome and text, keep those to send."""
    return plan_resolved(spec, occurrence, resolved, rendered, now=now)
