"""Summarise an occurrence's outcomes from the Delivery log: the table, the summary, what is unsettled."""

from __future__ import annotations

import datetime as dt
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from core.clock import local, utcnow
from core.settings import get_settings
from engine.dispatch import DispatchResult
from engine.plan import PlannedBatch
from models.db import session_scope
from models.deliveries import Occurrence
from models.outcomes import OutcomeRow, Unsettled, occurrence_outcomes, unsettled


@dataclass
class RunTally:
    """What one flow run did to one step, added up over its batches."""

    recipients: int = 0
    this_run: Counter[tuple[str, str]] = field(default_factory=Counter)  # (status, reason) -> rows
    already_done: Counter[str] = field(default_factory=Counter)
    calls: int = 0
    sample: str | None = None
    # rows caught in `sending` by a crash, by what reconciling made of them (sent/planned/unknown)
    reconciled: dict[str, int] = field(default_factory=dict)

    def add_prepared(self, planned: PlannedBatch, sample: str | None) -> None:
        """A batch planned and rendered: its recipients and what planning decided."""
        self.recipients += (
            len(planned.touches)
            + sum(planned.already_done.values())
            + sum(planned.skipped.values())
            + planned.deferred
        )
        self.already_done.update(planned.already_done)
        for reason, rows in planned.skipped.items():
            self.this_run[("skipped", reason)] += rows
        if planned.deferred:
            self.this_run[("planned", "deferred: quiet hours")] += planned.deferred
        self.sample = self.sample or sample

    def add_dispatched(self, dispatched: DispatchResult | None) -> None:
        """Mass-message calls made and their outcomes (nothing for a task that failed)."""
        if dispatched is None:
            return
        self.this_run.update(dispatched.outcomes)
        self.calls += dispatched.calls


def artifact_key(*parts: str) -> str:
    """A Prefect artifact key: lowercase letters, digits and dashes only."""
    text = "-".join(parts).lower()
    return "".join(ch if ch.isalnum() and ch.isascii() else "-" for ch in text).strip("-")


@dataclass
class OutcomeReport:
    """What a run's outcome artifacts show (a table and a summary), and its return value."""

    table: list[dict[str, Any]]
    markdown: str
    summary: dict[str, Any]


def occurrence_report(
    occurrence: Occurrence, title: str, tally: RunTally, now: dt.datetime | None = None
) -> OutcomeReport:
    """The occurrence's outcomes by status and reason, and a summary with a rendered sample.

    What this run did is read back from the Delivery log (rows it recorded or claimed), so every
    attempt of a retried task counts, not only the last one.
    """
    with session_scope(readonly=True) as session:
        totals = occurrence_outcomes(occurrence, session=session)
        pending = unsettled(occurrence, now=now or utcnow(), session=session)
    if occurrence.flow_run_id:
        tally.this_run = Counter({(o.status, o.reason): o.this_run for o in totals if o.this_run})
        tally.calls = sum(o.calls for o in totals if o.status == "sent")
    table = [
        {
            "status": o.status,
            "reason": o.reason or "-",
            "touches": o.rows,
            "this run": o.this_run if occurrence.flow_run_id else _this_run(tally, o),
        }
        for o in totals
    ]
    summary = {
        "occurrence": occurrence.occurrence,
        "step": occurrence.step,
        "recipients": tally.recipients,
        "this_run": {f"{s}:{r}" if r else s: n for (s, r), n in tally.this_run.items()},
        "already_done": dict(tally.already_done),
        "reconciled": dict(tally.reconciled),
        "totals": {f"{o.status}:{o.reason}" if o.reason else o.status: o.rows for o in totals},
        "unsettled": pending.faults(),
        "deferred": pending.deferred,
        "deferred_until": pending.deferred_until.isoformat() if pending.deferred_until else None,
    }
    return OutcomeReport(table, _summary_markdown(occurrence, title, tally, pending), summary)


def _this_run(tally: RunTally, outcome: OutcomeRow) -> int:
    return tally.this_run.get((outcome.status, outcome.reason), 0)


def _summary_markdown(
    occurrence: Occurrence, title: str, tally: RunTally, pending: Unsettled
) -> str:
    sent_now = sum(n for (status, _), n in tally.this_run.items() if status == "sent")
    earlier = sum(tally.already_done.values())
    lines = [
        f"# {title} · {occurrence.step} · {occurrence.occurrence}",
        "",
        f"- recipients in the audience: **{tally.recipients}**",
        f"- sent by this run: **{sent_now}** in {tally.calls} mass-message call(s) via `{occurrence.channel}`",
        f"- already settled by an earlier run (not sent again): **{earlier}**",
    ]
    if tally.reconciled:
        found = ", ".join(f"{status} {rows}" for status, rows in sorted(tally.reconciled.items()))
        lines.append(f"- caught in `sending` by an interrupted run, reconciled: {found}")
    lines += [
        f"- {status} ({reason or 'no reason'}) this run: {n}"
        for (status, reason), n in sorted(tally.this_run.items())
        if status != "sent"
    ]
    lines += pending_lines(pending)
    lines += ["", "## Rendered sample", ""]
    if tally.sample:
        lines += ["```text", tally.sample, "```"]
    else:
        lines.append("_Nothing was rendered by this run._")
    return "\n".join(lines)


def pending_lines(pending: Unsettled) -> list[str]:
    """What is still to happen to the occurrence's touches, in the operator's words."""
    lines = []
    if pending.deferred:
        when = (
            local(pending.deferred_until, get_settings().timezone)
            if pending.deferred_until
            else None
        )
        lines.append(
            f"- waiting for quiet hours to end: **{pending.deferred}** touch(es), sent by the "
            f"first run of this occurrence from {when:%Y-%m-%d %H:%M} on"
            if when
            else f"- waiting for quiet hours to end: **{pending.deferred}** touch(es)"
        )
    lines += [
        f"- **not settled: {n}** {what}"
        for n, what in (
            (
                pending.sending,
                "touch(es) sent without an answer from WeCom; the next run asks WeCom "
                "whether they arrived before sending anything again",
            ),
            (
                pending.waiting,
                "touch(es) due but not sent (see the failures above); run the "
                "occurrence again to send them",
            ),
            (
                pending.unknown,
                "touch(es) WeCom could not be asked about; never resent: check WeCom, then "
                "`sopflow unknown resolve` (sop/README.md §10)",
            ),
        )
        if n
    ]
    return lines


def unsettled_message(summaries: list[dict[str, Any]]) -> str | None:
    """Why a run is not complete — touches left sending, due but unsent, or unknown — or None."""
    parts = []
    for summary in summaries:
        counts = summary.get("unsettled") or {}
        words = [
            f"{counts[key]} {label}"
            for key, label in (
                ("sending", "without an answer from WeCom (the next run reconciles them)"),
                ("waiting", "due but not sent (the next run sends them)"),
                ("unknown", "unknown (never resent; see `sopflow unknown`)"),
            )
            if counts.get(key)
        ]
        if words:
            label = summary.get("label") or f"{summary['step']} {summary['occurrence']}"
            parts.append(f"{label}: " + ", ".join(words))
    if not parts:
        return None
    return "touches not settled: " + "; ".join(parts)
