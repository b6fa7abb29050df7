"""Operator approval: above `approval.over` touches, a recorded step waits for the operator's answer."""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field

from sqlalchemy import func, select
from sqlmodel import Session, col

from channels.base import max_targets
from engine.outcomes import RunTally
from models.deliveries import Occurrence, set_status
from models.delivery import SENDABLE, Delivery, DeliveryStatus, Message
from models.people import CustomerGroup
from soplang.spec import SopSpec

REJECTED = "rejected by operator"
TIMED_OUT = "not approved in time"
REASON_MAX = 255  # Delivery.reason's column length
STAFF_SHOWN = 10  # rows of the per-staff table; the rest are summed up


def rejection_reason(note: str = "") -> str:
    """`rejected by operator: <note>`, whitespace collapsed and cut to fit the reason column."""
    note = " ".join(note.split())
    return (f"{REJECTED}: {note}" if note else REJECTED)[:REASON_MAX]


def _to_send(occurrence: Occurrence) -> list[object]:
    """The occurrence's rows still to send: due now or waiting for quiet hours to end."""
    return [
        col(Delivery.sop_id) == occurrence.sop_id,
        col(Delivery.step) == occurrence.step,
        col(Delivery.occurrence) == occurrence.occurrence,
        col(Delivery.status).in_([s.value for s in SENDABLE]),
    ]


@dataclass(frozen=True)
class ApprovalCheck:
    """Whether a recorded step waits for the operator: touches to send against the threshold."""

    to_send: int
    over: int | None

    @property
    def needed(self) -> bool:
        return self.over is not None and self.to_send > self.over


def check_approval(spec: SopSpec, occurrence: Occurrence, *, session: Session) -> ApprovalCheck:
    """Count the step's touches still to send against the SOP's `approval.over`.

    A re-run of an approved occurrence finds its touches sent and does not ask again; a
    rejected one finds them skipped.
    """
    over = spec.approval.over if spec.approval else None
    if over is None:
        return ApprovalCheck(0, None)
    statement = select(func.count()).select_from(Delivery).where(*_to_send(occurrence))
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
        .where(*_to_send(occurrence))
        .group_by(Delivery.sender, Delivery.message_id)
    )
    for sender, _message, rows in session.execute(statement):
        view.tasks_per_sender[sender or "-"] += math.ceil(rows / per_call)
    first = session.execute(
        select(Delivery.target_kind, Delivery.target_id, Message.content)
        .join(Message, col(Message.id) == col(Delivery.message_id))
        .where(*_to_send(occurrence))
        .order_by(func.coalesce(Delivery.group_id, Delivery.customer_id))  # the audience's first
        .limit(1)
    ).first()
    if first is not None:
        kind, target_id, view.sample = first
        view.sample_for = _target_label(kind, target_id, session=session)
    return view


def _target_label(kind: str, target_id: str, *, session: Session) -> str:
    if kind == "group":
        name = session.execute(
            select(CustomerGroup.name).where(col(CustomerGroup.chat_id) == target_id)
        ).scalar_one_or_none()
        return name or target_id
    return f"customer {target_id}"


def _staff_lines(view: ApprovalView) -> list[str]:
    tasks = view.tasks_per_sender
    lines = [
        f"**{sum(tasks.values())}** mass-message task(s) across **{len(tasks)}** staff member(s), "
        "each confirmed by hand in WeCom:",
        "",
        "| staff member | tasks to confirm |",
        "| --- | ---: |",
    ]
    ranked = tasks.most_common()
    lines += [f"| {sender} | {n} |" for sender, n in ranked[:STAFF_SHOWN]]
    if len(ranked) > STAFF_SHOWN:
        rest = ranked[STAFF_SHOWN:]
        lines.append(f"| … {len(rest)} more | {sum(n for _, n in rest)} |")
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
    lines = [f"# Approval needed · {spec.title} · {occurrence.step} · {occurrence.occurrence}", ""]
    lines += ["## Rendered sample", ""]
    if view.sample:
        lines += [f"for {view.sample_for}:", "", "```text", view.sample, "```"]
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
    lines += ["", "## Tasks per staff member", "", *_staff_lines(view)]
    lines += [
        "",
        "## Your choice",
        "",
        "Resume the run: **approve** sends the step; **reject** records every touch still to "
        f"send as `skipped: {REJECTED}`. No answer within {timeout_hours:g} h: "
        f"`skipped: {TIMED_OUT}` and the run fails.",
    ]
    return "\n".join(lines)


def skip_unapproved(occurrence: Occurrence, reason: str, *, session: Session) -> int:
    """Record every touch of the step still to send as skipped with `reason`; rows already
    final are kept. Returns the rows skipped."""
    ids = list(session.execute(select(Delivery.id).where(*_to_send(occurrence))).scalars())
    values = {"reason": reason}
    if occurrence.flow_run_id:
        values["flow_run_id"] = str(occurrence.flow_run_id)
    return set_status(ids, DeliveryStatus.SKIPPED, session=session, only_from=SENDABLE, **values)
