"""Event triggers: a drain run (per burst of events, or the safety poll) works through pending events in batches."""

from __future__ import annotations

import datetime as dt
from typing import Any

from prefect import flow, get_run_logger
from prefect.client.schemas.objects import State
from prefect.runtime import flow_run

from core.clock import local, local_today, utcnow
from core.settings import get_settings
from engine.outcomes import RunTally
from engine.triggers import Drained, add_tally
from flows.pipeline import unsettled_failure
from soplang.spec import SopSpec
from tasks.events import claim_events, complete_events, release_events
from tasks.reconcile import reconcile_sops
from tasks.triggers import (
    load_trigger_sops,
    publish_trigger_outcomes,
    quiet_hours_wait,
    send_trigger_batch,
)

BATCH = 10_000  # events claimed at a time; Prefect would drop a burst of one run per event


def run_name() -> str:
    """`drain 2026-11-24 10:42`: the drain's minute on the local clock."""
    now = flow_run.parameters.get("now")
    moment = dt.datetime.fromisoformat(now) if isinstance(now, str) else now or utcnow()
    return f"drain {local(moment, get_settings().timezone):%Y-%m-%d %H:%M}"


def drain_kind(
    kind: str, specs: list[SopSpec], *, now: dt.datetime, batch_size: int
) -> tuple[Drained, dict[str, RunTally], list[str]]:
    """Claim `kind` events batch after batch until none are left; every trigger SOP on it handles
    each batch. A batch whose sending failed (after its retries) is handed back for the next
    drain and this kind stops here; the errors are returned."""
    day = local_today(now, get_settings().timezone)
    tallies = {spec.id: RunTally() for spec in specs}
    drained = Drained()
    while (batch := claim_events(kind, batch_size, now)).count:
        drained.add(batch)
        sent = [
            (spec, send_trigger_batch(spec, step, batch, now, day, return_state=True))
            for spec in specs
            for step in spec.step_names
        ]
        errors = [f"{spec.id}: {state.message}" for spec, state in sent if not state.is_completed()]
        for spec, state in sent:
            if state.is_completed():
                add_tally(tallies[spec.id], state.result())
        if errors:
            release_events(batch)
            return drained, tallies, errors
        complete_events(batch, now)
    return drained, tallies, []


@flow(name="drain-events", flow_run_name=run_name)
def drain_events(
    now: dt.datetime | None = None, batch_size: int = BATCH
) -> dict[str, Any] | State[Any]:
    """Turn pending contact.added, favourite.price_drop and order.shipped events into messages.

    Each event is claimed by one drain only and sends at most once per trigger SOP step (its
    idempotency key names the event), through the same guards as every 1:1 touch. In quiet
    hours the events wait in the table; `now` lets tests move the clock.
    """
    now = now or utcnow()
    logger = get_run_logger()
    triggers = load_trigger_sops()
    until = quiet_hours_wait(now)
    if until is not None:
        logger.info("quiet hours: events wait until %s", until.isoformat())
        return {"waiting_until": until.isoformat()}
    summary: dict[str, Any] = {}
    errors: list[str] = []
    for kind, specs in triggers.items():
        # Touches an interrupted drain left `sending` are settled with WeCom before any resend.
        settled = reconcile_sops([spec.id for spec in specs])
        reconciled = {sop_id: result.counts() for sop_id, result in settled.items()}
        drained, tallies, failed = drain_kind(kind, specs, now=now, batch_size=batch_size)
        errors += failed
        for spec in specs:
            tallies[spec.id].reconciled = reconciled[spec.id]
            if drained.events or reconciled[spec.id]:
                summary[spec.id] = publish_trigger_outcomes(spec, drained, tallies[spec.id], now)
        if drained.events:
            logger.info("%s: %d event(s) in %d batch(es)", kind, drained.events, drained.batches)
    return unsettled_failure(list(summary.values()), errors) or summary
