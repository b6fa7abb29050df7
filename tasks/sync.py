"""Prefect task that runs (or resumes) one WeCom directory sync pass."""

from __future__ import annotations

from typing import Any

from prefect import task
from prefect.cache_policies import NO_CACHE

from channels.wecom import WeComClient
from core.settings import get_settings
from engine.sync import sync_directory


@task(name="sync-directory", cache_policy=NO_CACHE)
def sync_directory_task(full: bool = False) -> dict[str, Any]:
    """Read WeCom's tags, staff, contacts and groups into the database; only changes are written."""
    with WeComClient.from_settings(get_settings()) as client:
        report = sync_directory(client, full=full)
    return {
        "run": report.run_id,
        "resumed": report.resumed,
        "pages": report.pages,
        "calls": report.calls,
        "groups read": report.groups_read,
        "seconds": round(report.seconds, 1),
        "writes": dict(report.writes),
    }
