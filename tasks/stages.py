"""Prefect tasks of the daily lifecycle classification."""

from __future__ import annotations

import datetime as dt

from prefect import task
from prefect.cache_policies import NO_CACHE

from engine.stages import Classified, classify_stages, stage_totals
from models.db import session_scope


@task(name="classify-stages", cache_policy=NO_CACHE)
def classify_stages_task(as_of: dt.datetime) -> Classified:
    """Classify every customer's lifecycle stage at `as_of` and log the transitions."""
    with session_scope() as session:
        return classify_stages(as_of, session=session)


@task(name="stage-totals", cache_policy=NO_CACHE)
def stage_totals_task() -> dict[str, int]:
    """Customers per lifecycle stage."""
    with session_scope() as session:
        return stage_totals(session=session)
