"""Operator approval: above `approval.over` touches, a recorded step waits for the operator's answer."""

from __future__ import annotations

import datetime as dt
import math
from collections import Counter
from dataclasses import dataclass, field

from sqlalchemy import func, or_, select
from sqlmodel import Session, col

from channels.base import max_targets
from engine.outcomes import RunTally
from engine.waiting import first_text_to_send
from models.deliveries import Occurrence, set_status, to_send
from models.delivery import SENDABLE, Delivery, DeliveryStatus
from soplang.spec import SopSpec

REJECTED = "rejected by operator"
TIMED_OUT = "not approved in time"
REASON_MAX = 255  # Delivery.reason's column length
STAFF_SHOWN = 10  # rows of the per-staff table; the rest are summed up


def rejection_reason(note: str = "") -> str:
    """`rejected by operator: <note>`, whitespace collapsed and cut to fit the reason column."""
    note = " ".join(note.split())
    return (f"{REJECTED}: {note}" if note else REJECTED)[:REASON_MAX]


@dataclass(frozen=True)
class ApprovalCheck:
    """Whether a recorded step waits for the operator: touches to send against the threshold."""

    to_send: int
    over: int | None

    @property
    def needed(self) -> bool:
        return self.over is not None and self.to_send > self.over


def check_approval(
    spec: SopSpec, occurrence: Occurrence, *, now: dt.datetime, session: Session
) -> ApprovalCheck:
    """Count the step's touches due to send at `now` against the SOP's `approval.over`.

    A re-run of an approved occurrence finds its touches sent and does not ask again; a
    rejected one finds them skipped. Touches waiting for quiet hours are asked about by the run
    that sends them, not in the night.
    """
    over = spec.approval.over if spec.approval else None
    if over is None:
        return ApprovalCheck(0, None)
    due = or_(col(Delivery.not_before).is_(None), col(Delivery.not_before) <= now)
    statement = select(func.count()).select_from(Delivery).where(*to_send(occurrence), due)
    return ApprovalCheck(int(session.execute(statement).scalar_one()), over)


@dataclass
class ApprovalView:
    """What the operator approves: WeCom tasks per staff member and one rendered text."""

    tasks_per_sender: Counter[str] = field(default_factory=Counter)
    sample: str | None = None
    sample_for: str | None = None


def approval_view(occurrence: Occurrence, chat_type: str, *, session: Session) -> ApprovalView:
    """The tasks the step creates (one per staff member and text, split at WeCom's per-call
    limit) and the text of its first touch, read from the recorded rows."""
    view = ApprovalView()
    per_call = max_targets(chat_type)
    statement = (
        select(Delivery.sender, Delivery.message_id, func.count())
        .where(*to_send(occurrence))
        .group_by(Delivery.sender, Delivery.message_id)
    )
    for sender, _message, rows in session.execute(statement):
        view.tasks_per_sender[sender or "-"] += math.ceil(rows / per_call)
    if first := first_text_to_send(occurrence, session=session):
        view.sample, view.sample_for = first.text, first.target
    return view


def staff_lines(tasks: Counter[str]) -> list[str]:
    """The tasks per staff member: the top ten, the rest summed up, and the total."""
    total = sum(tasks.values())
    lines = [
        f"**{total}** mass-message task(s) across **{len(tasks)}** staff member(s), "
        "each confirmed by hand in WeCom:",
        "",
        "| staff member | tasks to confirm |",
        "| --- | ---: |",
    ]
    ranked = sorted(tasks.items(), key=lambda item: (-item[1], item[0]))
    lines += [f"| {sender} | {n} |" for sender, n in ranked[:STAFF_SHOWN]]
    if len(ranked) > STAFF_SHOWN:
        rest = ranked[STAFF_SHOWN:]
        lines.append(f"| … {len(rest)} more staff members | {sum(n for _, n in rest)} |")
    lines.append(f"| **total** | **{total}** |")
    return lines


def summary_markdown(
    spec: SopSpec,
    occurrence: Occurrence,
    check: ApprovalCheck,
    view: ApprovalView,
    tally: RunTally,
    *,
    kind: str,
    timeout_hours: float,
) -> str:
    """The approval summary: the sample first, then the audience and the tasks per staff member."""
    sample, sample_for = (
        (view.sample, view.sample_for) if view.sample else (tally.sample, tally.sample_for)
    )
    lines = [f"# Approval needed · {spec.title} · {occurrence.step} · {occurrence.occurrence}", ""]
    lines += ["## Rendered sample", ""]
    if sample:
        lines += [
            f"for {sample_for}:" if sample_for else "one of the texts:",
            "",
            "```text",
            sample,
            "```",
        ]
    else:
        lines.append("_No sample: nothing in the audience renders today._")
    lines += [
        "",
        "## Audience",
        "",
        f"- audience: **{tally.recipients} {kind}(s)** (this SOP asks for approval over {check.over})",
        f"- touches to send: **{check.to_send}**",
        f"- already settled by an earlier run (not sent again): {sum(tally.already_done.values())}",
    ]
    lines += [
        f"- skipped ({reason}): {rows}"
        for (status, reason), rows in sorted(tally.this_run.items())
        if status == "skipped"
    ]
    lines += ["", "## Tasks per staff member", "", *staff_lines(view.tasks_per_sender)]
    lines += [
        "",
        "## Your choice",
        "",
        "Press **Resume** and, in the form, switch **approve** on to send the step, or leave it "
        f"off to reject it: every touch still to send is recorded as `skipped: {REJECTED}`. "
        f"No answer within {timeout_hours:g} h: `skipped: {TIMED_OUT}` and the run fails.",
    ]
    return "\n".join(lines)


def skip_unapproved(occurrence: Occurrence, reason: str, *, session: Session) -> int:
    """Record every touch of the step still to send as skipped with `reason`; rows already
    final are kept. Returns the rows skipped."""
    ids = list(session.execute(select(Delivery.id).where(*to_send(occurrence))).scalars())
    values = {"reason": reason}
    if occurrence.flow_run_id:
        values["flow_run_id"] = str(occurrence.flow_run_id)
    return set_status(ids, DeliveryStatus.SKIPPED, session=session, only_from=SENDABLE, **values)
