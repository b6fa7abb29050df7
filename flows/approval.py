"""The approval gate of the pipeline: a recorded step over `approval.over` pauses for the operator."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from prefect import get_run_logger
from prefect.exceptions import FlowPauseTimeout
from prefect.flow_runs import pause_flow_run
from prefect.input import RunInput
from pydantic import Field

from core.settings import get_settings
from engine.approval import TIMED_OUT, rejection_reason
from engine.outcomes import RunTally
from models.deliveries import Occurrence
from soplang.spec import SopSpec
from tasks.approval import (
    check_approval_task,
    notify_approval,
    publish_approval_summary,
    record_rejection,
)


class Approval(RunInput):
    """The operator's answer to a paused step (a form in the Prefect UI)."""

    approve: bool = Field(
        default=False,
        title="Approve",
        description="On: send this step to every recipient counted above. Off: reject the step; "
        "every touch still to send is recorded as skipped.",
    )
    note: str = Field(
        default="",
        description="Optional: why. Logged on approval, kept with the skip reason on rejection.",
    )


@dataclass(frozen=True)
class ApprovalDecision:
    """Whether the step goes on to dispatch; a rejected step's touches are already skipped."""

    proceed: bool
    reason: str | None = None
    note: str = ""


def approval_gate(
    spec: SopSpec, occurrence: Occurrence, chat_type: str, tally: RunTally, now: dt.datetime
) -> ApprovalDecision:
    """Let a recorded step go on to dispatch, or pause the run for the operator when it has more
    touches to send than `approval.over`.

    Approve: the step is dispatched (the note is logged). Reject: every touch still to send is
    recorded as `skipped: rejected by operator[: note]` and the step stops; a rejected
    occurrence stays rejected on re-runs. No answer within `approval_timeout_hours`: the touches
    are recorded as `skipped: not approved in time` and the run fails, since Prefect refuses to
    resume a run whose pause has expired (tasks can no longer run in it).

    Touches waiting for quiet hours are not counted: the run that sends them asks. The ops
    group's robot (`SOPFLOW_APPROVAL_ROBOT`) is told as the run pauses; a failed notice is
    logged and the run pauses all the same (the reminder automation still fires).
    """
    if spec.approval is None:
        return ApprovalDecision(proceed=True)
    check = check_approval_task(spec, occurrence, now)
    if not check.needed:
        return ApprovalDecision(proceed=True)
    markdown = publish_approval_summary(spec, occurrence, chat_type, check, tally)
    notice = notify_approval(spec, occurrence, chat_type, check, tally, return_state=True)
    if not notice.is_completed():
        get_run_logger().warning("the ops group was not told this run waits: %s", notice.message)
    settings = get_settings()
    try:
        answer = pause_flow_run(
            wait_for_input=Approval.with_initial_data(description=markdown),
            timeout=max(1, round(settings.approval_timeout_hours * 3600)),
            poll_interval=settings.approval_poll_seconds,
            key=f"approval-{occurrence.step}",
        )
    except FlowPauseTimeout:
        skipped = record_rejection(occurrence, TIMED_OUT)
        raise FlowPauseTimeout(
            f"{spec.id}/{occurrence.step} {occurrence.occurrence}: not approved within "
            f"{settings.approval_timeout_hours:g} h; {skipped} touch(es) recorded as skipped: "
            f"{TIMED_OUT}"
        ) from None
    logger = get_run_logger()
    if answer.approve:
        logger.info("%s %s approved by the operator: %s", spec.id, occurrence.step, answer.note)
        return ApprovalDecision(proceed=True, note=answer.note)
    reason = rejection_reason(answer.note)
    logger.warning("%s %s rejected by the operator: %s", spec.id, occurrence.step, answer.note)
    record_rejection(occurrence, reason)
    return ApprovalDecision(proceed=False, reason=reason, note=answer.note)
