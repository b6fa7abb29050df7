"""Prefect task that collects what became of sent mass messages."""

from __future__ import annotations

import datetime as dt

from prefect import task
from prefect.cache_policies import NO_CACHE

from channels.wecom import WeComClient
from core.settings import get_settings
from engine.results import collect


@task(name="collect-results", cache_policy=NO_CACHE)
def collect_results_task(now: dt.datetime | None = None) -> dict[str, int]:
    """Poll WeCom for the results of every mass message still awaiting them."""
    settings = get_settings()
    with WeComClient.from_settings(settings) as client:
        return dict(collect(client, now=now, settings=settings))
