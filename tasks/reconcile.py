"""Prefect tasks that settle touches left `sending` with WeCom before anything is resent."""

from __future__ import annotations

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from channels import get_channel
from core.settings import get_settings
from engine.reconcile import ReconcileSummary, reconcile_occurrence, settle, stuck_rows
from models.db import session_scope
from models.deliveries import Occurrence


def _report(summary: ReconcileSummary) -> ReconcileSummary:
    if summary.counts():
        run_logger = get_run_logger()
        run_logger.info("touches caught mid-send, settled with WeCom: %s", summary.counts())
        for reason, rows in summary.unknown.items():
            run_logger.warning("%d touch(es) %s", rows, reason)
    return summary


@task(name="reconcile-sending", cache_policy=NO_CACHE)
def reconcile_sending(occurrence: Occurrence) -> ReconcileSummary:
    """Settle the occurrence's rows caught in `sending` by a crash or a lost answer."""
    channel = get_channel(get_settings())
    try:
        return _report(reconcile_occurrence(occurrence, channel=channel))
    finally:
        channel.close()


@task(name="reconcile-sops", cache_policy=NO_CACHE)
def reconcile_sops(sop_ids: list[str]) -> dict[str, ReconcileSummary]:
    """Settle every row of these SOPs caught in `sending`, whatever its occurrence (trigger SOPs:
    one occurrence per batch of events); what became of each SOP's rows."""
    channel = get_channel(get_settings())
    try:
        summaries = {}
        for sop_id in sop_ids:
            with session_scope() as session:
                rows = stuck_rows(sop_id, session=session)
            summaries[sop_id] = _report(settle(rows, channel=channel))
        return summaries
    finally:
        channel.close()
