"""Operator approval: above `approval.over` recipients a step pauses its run for an approve/reject form."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from prefect import get_run_logger, task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE
from prefect.exceptions import FlowPauseTimeout
from prefect.flow_runs import pause_flow_run
from prefect.input import RunInput
from pydantic import Field
from sqlmodel import Session

from core.settings import get_settings
from engine.preview import StepTally, tally_group_step
from models.db import session_scope
from models.deliveries import SENDABLE, Occurrence, PlannedTarget, occurrence_outcomes
from tasks.audience import (
    count_customers,
    count_groups,
    customer_id_ranges,
    customers_in_range,
    group_id_ranges,
    groups_in_range,
)
from tasks.guard import Decision
from tasks.outcomes import RunTally, artifact_key
from tasks.plan import customer_target, group_target, plan_batch

REJECTED = "rejected by operator"
TIMED_OUT = "not approved in time"
REASON_MAX = 255  # Delivery.reason's column length


class Approval(RunInput):
    """The operator's answer to a paused step (a form in the Prefect UI)."""

    approve: bool = Field(
        description="Tick to send this step to the whole audience shown above; "
        "leave unticked to reject it (every recipient is recorded as skipped)."
    )
    note: str = Field(
        default="",
        description="Optional: why. Logged on approval, kept with the skip reason on rejection.",
    )


@dataclass(frozen=True)
class ApprovalCheck:
    """Whether a step needs approval: its audience size, rows already settled, the threshold."""

    audience: int
    settled: int
    over: int | None

    @property
    def needed(self) -> bool:
        return self.over is not None and self.audience > self.over and self.settled < self.audience


@dataclass(frozen=True)
class ApprovalDecision:
    """What the gate decided: go on with the step, or stop it (its rows are already recorded)."""

    proceed: bool
    reason: str | None = None
    note: str = ""
    tally: RunTally = field(default_factory=RunTally)  # recorded skips, for the outcomes artifact


def rejection_reason(note: str = "") -> str:
    """`rejected by operator: <note>`, whitespace collapsed and cut to fit the reason column."""
    note = " ".join(note.split())
    return (f"{REJECTED}: {note}" if note else REJECTED)[:REASON_MAX]


def _targets(spec: Any) -> tuple[str, Any]:
    """("group" | "customer", the audience block) of an SOP."""
    audience = spec.audience
    if audience is not None and audience.customers is not None and audience.groups is None:
        return "customer", audience.customers
    return "group", audience.groups if audience is not None else None


def audience_size(spec: Any, *, now: dt.datetime, session: Session) -> int:
    """How many groups or customers the SOP's audience holds now."""
    kind, audience = _targets(spec)
    if kind == "customer":
        return count_customers(audience, session=session, as_of=now)
    return count_groups(audience, session=session)


def settled_rows(occurrence: Occurrence, *, session: Session) -> int:
    """Rows of this occurrence already final (sent, skipped …): an earlier run dealt with them."""
    sendable = {s.value for s in SENDABLE}
    return sum(
        outcome.rows
        for outcome in occurrence_outcomes(occurrence, session=session)
        if outcome.status not in sendable
    )


@task(name="check-approval", cache_policy=NO_CACHE)
def check_approval(spec: Any, occurrence: Occurrence, now: dt.datetime) -> ApprovalCheck:
    """Count the step's audience and its settled rows against the SOP's `approval.over`."""
    over = spec.approval.over if spec.approval else None
    if over is None:
        return ApprovalCheck(0, 0, None)
    with session_scope() as session:
        return ApprovalCheck(
            audience_size(spec, now=now, session=session),
            settled_rows(occurrence, session=session),
            over,
        )


def _tasks_lines(tally: StepTally) -> list[str]:
    total = sum(tally.tasks_per_sender.values())
    lines = [
        f"**{total}** mass-message task(s) across **{len(tally.tasks_per_sender)}** staff member(s), "
        "each confirmed by hand in WeCom:",
        "",
        "| staff member | tasks to confirm |",
        "| --- | ---: |",
    ]
    lines += [f"| {sender} | {n} |" for sender, n in tally.tasks_per_sender.most_common()]
    return lines


def summary_markdown(
    spec: Any,
    occurrence: Occurrence,
    check: ApprovalCheck,
    tally: StepTally | None,
    *,
    timeout_hours: float,
) -> str:
    """The approval summary: audience size, tasks per staff member, a rendered sample, the choice."""
    kind, _ = _targets(spec)
    lines = [
        f"# Approval needed · {spec.title} · {occurrence.step} · {occurrence.occurrence}",
        "",
        f"- audience: **{check.audience} {kind}(s)** (this SOP asks for approval over {check.over})",
        f"- already settled by an earlier run (not sent again): {check.settled}",
    ]
    if tally is not None and tally.without_deals:
        lines.append(f"- skipped for lack of deals today: {tally.without_deals}")
    lines += ["", "## Tasks per staff member", ""]
    if tally is not None:
        lines += _tasks_lines(tally)
    else:
        lines.append("_Per-staff task counts for 1:1 SOPs come with their preview._")
    lines += ["", "## Rendered sample", ""]
    if tally is not None and tally.sample:
        lines += [f"for {tally.sample_for}:", "", "```text", tally.sample, "```"]
    else:
        lines.append("_No sample: nothing in the audience renders today._")
    lines += [
        "",
        "## Your choice",
        "",
        "Resume the run: **approve** sends the step; **reject** records every recipient as "
        f"`skipped: {REJECTED}`. No answer within {timeout_hours:g} h: `skipped: {TIMED_OUT}` "
        "and the run fails.",
    ]
    return "\n".join(lines)


@task(name="publish-approval-summary", cache_policy=NO_CACHE)
def publish_approval_summary(
    spec: Any, occurrence: Occurrence, day: dt.date, check: ApprovalCheck
) -> str:
    """Build the approval summary (preview's per-group render) and publish it as a markdown artifact."""
    tally = None
    if _targets(spec)[0] == "group":
        with session_scope() as session:
            tally = tally_group_step(spec, occurrence.step, day, session=session)
    markdown = summary_markdown(
        spec, occurrence, check, tally, timeout_hours=get_settings().approval_timeout_hours
    )
    create_markdown_artifact(
        key=artifact_key(occurrence.sop_id, occurrence.step, "approval"),
        markdown=markdown,
        description=f"{spec.title} · {occurrence.step} · {occurrence.occurrence}: awaiting approval",
    )
    return markdown


def _batches(spec: Any, now: dt.datetime, session: Session) -> Iterator[list[Any]]:
    """The step's whole audience, one id range at a time."""
    kind, audience = _targets(spec)
    size = get_settings().batch_size
    if kind == "customer":
        for id_range in customer_id_ranges(audience, batch_size=size, session=session, as_of=now):
            yield customers_in_range(audience, id_range, session=session, as_of=now)
    else:
        for id_range in group_id_ranges(audience, batch_size=size, session=session):
            yield groups_in_range(audience, id_range, session=session)


def record_not_approved(
    spec: Any, occurrence: Occurrence, *, now: dt.datetime, reason: str
) -> RunTally:
    """Record every target of the step as skipped with `reason` (rows already final are kept)."""
    as_planned: Callable[[Any], PlannedTarget] = (
        customer_target if _targets(spec)[0] == "customer" else group_target
    )
    tally = RunTally()
    with session_scope() as session:
        for targets in _batches(spec, now, session):
            batch = plan_batch(
                occurrence,
                targets,
                as_planned,
                lambda candidates: {t.id: Decision(reason) for t in candidates},
                now=now,
                session=session,
            )
            tally.recipients += len(targets)
            tally.already_done.update(batch.already_done)
            for skip, rows in batch.skipped.items():
                tally.this_run[("skipped", skip)] += rows
    return tally


@task(name="record-rejection", cache_policy=NO_CACHE)
def record_rejection(spec: Any, occurrence: Occurrence, now: dt.datetime, reason: str) -> RunTally:
    """Record every target of a rejected step as skipped with the operator's reason."""
    return record_not_approved(spec, occurrence, now=now, reason=reason)


def approval_gate(
    spec: Any, occurrence: Occurrence, *, day: dt.date, now: dt.datetime
) -> ApprovalDecision:
    """Let a step go on, or pause the run for the operator when its audience exceeds `approval.over`.

    Approve: the step proceeds (the note is logged). Reject: every target is recorded as
    `skipped: rejected by operator[: note]` under its idempotency key and the step stops; a
    rejected occurrence stays rejected on re-runs. No answer within `approval_timeout_hours`:
    the targets are recorded as `skipped: not approved in time` and the run fails, since
    Prefect refuses to resume a run whose pause has expired (tasks can no longer run in it).
    """
    check = check_approval(spec, occurrence, now)
    if not check.needed:
        return ApprovalDecision(proceed=True)
    logger = get_run_logger()
    markdown = publish_approval_summary(spec, occurrence, day, check)
    settings = get_settings()
    timeout = max(1, round(settings.approval_timeout_hours * 3600))
    try:
        answer = pause_flow_run(
            wait_for_input=Approval.with_initial_data(description=markdown),
            timeout=timeout,
            poll_interval=settings.approval_poll_seconds,
            key=f"approval-{occurrence.step}",
        )
    except FlowPauseTimeout:
        tally = record_not_approved(spec, occurrence, now=now, reason=TIMED_OUT)
        raise FlowPauseTimeout(
            f"{spec.id}/{occurrence.step} {occurrence.occurrence}: not approved within "
            f"{settings.approval_timeout_hours:g} h; {sum(tally.this_run.values())} target(s) "
            f"recorded as skipped: {TIMED_OUT}"
        ) from None
    if answer.approve:
        logger.info("%s %s approved by the operator: %s", spec.id, occurrence.step, answer.note)
        return ApprovalDecision(proceed=True, note=answer.note)
    reason = rejection_reason(answer.note)
    logger.warning("%s %s rejected by the operator: %s", spec.id, occurrence.step, answer.note)
    tally = record_rejection(spec, occurrence, now, reason)
    return ApprovalDecision(proceed=False, reason=reason, note=answer.note, tally=tally)
