"""Prefect tasks of the nightly derivation: member tiers and automatic tags, and their push to WeCom."""

from __future__ import annotations

import datetime as dt
from typing import Any

from prefect import get_run_logger, task
from prefect.artifacts import create_table_artifact
from prefect.cache_policies import NO_CACHE

from channels.wecom import WeComClient
from core.settings import get_settings
from engine.derive import Derived, derive_customers
from engine.tag_push import push_tags
from models.db import session_scope
from soplang.derive_files import load_tiers
from soplang.tag_rules import load_tag_rules


@task(name="derive-customers", cache_policy=NO_CACHE)
def derive_customers_task(as_of: dt.datetime) -> Derived:
    """Recompute every customer's tier (sop/tiers.yaml) and automatic tags (sop/tags.yaml) at `as_of`."""
    sop_dir = get_settings().sop_dir
    tiers, rules = load_tiers(sop_dir), load_tag_rules(sop_dir)
    with session_scope() as session:
        derived = derive_customers(as_of, session=session, tiers=tiers, rules=rules)
    rows: list[dict[str, Any]] = [
        {"what": f"tier {move}", "added": n, "removed": 0, "customers now": ""}
        for move, n in derived.tiers.items()
    ]
    rows += [
        {
            "what": f"tag {name}",
            "added": derived.added[name],
            "removed": derived.removed[name],
            "customers now": derived.tagged[name],
        }
        for name in derived.added
    ]
    create_table_artifact(
        key="derive-customers",
        table=rows or [{"what": "nothing changed"}],
        description=f"Tiers and automatic tags at {as_of:%Y-%m-%d %H:%M} UTC: "
        f"{derived.tier_moves} tier changes, "
        f"{sum(derived.added.values())} tags added, {sum(derived.removed.values())} removed"
        + ("" if tiers is not None else " (no sop/tiers.yaml: tiers left as they are)"),
    )
    return derived


@task(name="push-tags", cache_policy=NO_CACHE)
def push_tags_task() -> dict[str, Any]:
    """Send WeCom the automatic tags that changed since its last confirmation (mark_tag)."""
    settings = get_settings()
    logger = get_run_logger()
    if settings.channel != "wecom":
        logger.info("tags not pushed: SOPFLOW_CHANNEL is %s, not wecom", settings.channel)
        return {"skipped": f"channel {settings.channel}"}
    rules = load_tag_rules(settings.sop_dir)
    with WeComClient.from_settings(settings) as client:
        report = push_tags(client, rules)
    names = sorted(set(report.added) | set(report.removed))
    create_table_artifact(
        key="push-tags",
        table=[{"tag": n, "added": report.added[n], "removed": report.removed[n]} for n in names]
        or [{"tag": "nothing to push"}],
        description=f"mark_tag: {report.calls} calls, failed {dict(report.failed) or 'none'} "
        f"(retried next run), {report.pending} customers left for the next run",
    )
    if report.failed:
        logger.warning("tag push: %s calls failed, retried next run", dict(report.failed))
    return {
        "calls": report.calls,
        "added": sum(report.added.values()),
        "removed": sum(report.removed.values()),
        "failed": dict(report.failed),
        "pending": report.pending,
        "created tags": report.created_tags,
    }
