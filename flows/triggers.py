"""Event triggers: a drain run (per burst of events, or the safety poll) works through pending events in batches."""

from __future__ import annotations

import datetime as dt
from dataclasses import replace
from typing import Any

from prefect import flow, get_run_logger
from prefect.client.schemas.objects import State
from prefect.runtime import flow_run

from core.clock import local, local_today, utcnow
from core.settings import get_settings
from engine.outcomes import RunTally
from engine.trigger_due import DueBatch
from engine.triggers import Drained, add_tally
from engine.welcome_now import answering_sop
from flows.pipeline import unsettled_failure
from soplang.spec import SopSpec
from tasks.events import claim_events, complete_events, release_events
from tasks.reconcile import reconcile_sops
from tasks.triggers import (
    claim_due_steps,
    load_trigger_sops,
    publish_trigger_outcomes,
    quiet_hours_wait,
    release_due_steps,
    schedule_waiting_steps,
    send_due_steps,
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
    answering = answering_sop(specs)  # the one SOP whose first step answers a WelcomeCode
    while (batch := claim_events(kind, batch_size, now)).count:
        drained.add(batch)
        sent = [
            (
                spec,
                send_trigger_batch(
                    spec, step.name, batch, now, day, spec is answering, return_state=True
                ),
            )
            for spec in specs
            for step in spec.step_list
            if not step.waits
        ]
        # Waiting steps become rows due later; they are written before the events complete.
        waiting = [spec for spec in specs if any(step.waits for step in spec.step_list)]
        if waiting:
            sent.append((waiting[0], schedule_waiting_steps(waiting, batch, return_state=True)))
        errors = [f"{spec.id}: {state.message}" for spec, state in sent if not state.is_completed()]
        for spec, state in sent:
            if state.is_completed() and isinstance(result := state.result(), RunTally):
                add_tally(tallies[spec.id], result)
        if errors:
            release_events(batch)
            return drained, tallies, errors
        complete_events(batch, now)
    return drained, tallies, []


def due_pass(
    specs: dict[str, SopSpec], now: dt.datetime, batch_size: int
) -> tuple[DueBatch, list[str]]:
    """Claim due waiting steps batch after batch and send them; a batch whose sending failed is
    handed back for the next drain and the pass stops there."""
    total = DueBatch()
    while (claim := claim_due_steps(now, batch_size)).count:
        state = send_due_steps(specs, claim, now, return_state=True)
        if not state.is_completed():
            release_due_steps(claim)
            return total, [f"waiting steps: {state.message}"]
        batch: DueBatch = state.result()
        for sop_id, outcomes in batch.outcomes.items():
            total.outcomes[sop_id].update(outcomes)
        for sop_id, tally in batch.tallies.items():
            add_tally(total.tallies.setdefault(sop_id, RunTally()), tally)
    return total, []


@flow(name="drain-events", flow_run_name=run_name)
def drain_events(
    now: dt.datetime | None = None, batch_size: int = BATCH
) -> dict[str, Any] | State[Any]:
    """Turn pending events into messages, and send the waiting trigger steps that are due.

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
    # Waiting steps that are due go first; steps of the events drained below wait for a later run.
    due, errors = due_pass({s.id: s for specs in triggers.values() for s in specs}, now, batch_size)
    for kind, specs in triggers.items():
        # Touches an interrupted drain left `sending` are settled with WeCom before any resend.
        settled = reconcile_sops([spec.id for spec in specs])
        reconciled = {sop_id: result.counts() for sop_id, result in settled.items()}
        drained, tallies, failed = drain_kind(kind, specs, now=now, batch_size=batch_size)
        errors += failed
        for spec in specs:
            tallies[spec.id].reconciled = reconciled[spec.id]
            add_tally(tallies[spec.id], due.tallies.get(spec.id, RunTally()))
            came_due = due.outcomes.get(spec.id)
            if drained.events or reconciled[spec.id] or came_due:
                of_spec = replace(drained, due=dict(came_due or {}))
                summary[spec.id] = publish_trigger_outcomes(spec, of_spec, tallies[spec.id], now)
        if drained.events:
            logger.info("%s: %d event(s) in %d batch(es)", kind, drained.events, drained.batches)
    return unsettled_failure(list(summary.values()), errors) or summary
