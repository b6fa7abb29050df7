"""Summarise an occurrence's outcomes from the Delivery log, in the operator's words: table, summary, what is unsettled."""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from core.clock import local, utcnow
from core.settings import get_settings
from engine.dispatch import DispatchResult
from engine.guard import DEFERRED
from engine.plan import PlannedBatch
from engine.waiting import first_text_to_send, plural, wait_sentence
from models.db import session_scope
from models.deliveries import Occurrence
from models.outcomes import OutcomeRow, Unsettled, occurrence_outcomes, unsettled
from soplang.spec import SopSpec

# What each status means to an operator; a reason, when there is one, follows in brackets.
_WORDS = {
    "planned": "to send",
    "sending": "sent without an answer from WeCom yet",
    "sent": "sent",
    "failed": "not sent, failed",
    "skipped": "skipped",
    "delivered": "delivered",
    "not_a_friend": "not delivered: no longer a contact",
    "over_wecom_limit": "not delivered: over WeCom's limit for the customer",
    "unconfirmed": "not confirmed by the staff member in time",
    "unknown": "unknown, never resent",
}
WAITING = "waiting for quiet hours to end"


def outcome_words(status: str, reason: str | None = None) -> str:
    """A status and reason of touches as the operator reads it: `skipped (opted out of fresh)`."""
    if status == "planned" and reason == DEFERRED:
        return WAITING
    words = _WORDS.get(status, status.replace("_", " "))
    return f"{words} ({reason})" if reason else words


def counts_in_words(counts: Mapping[tuple[str, str], int]) -> str:
    """`3 sent, 1 skipped (no deals today)`: touches by outcome, most first; '' for none."""
    ranked = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
    return ", ".join(f"{n} {outcome_words(s, r)}" for (s, r), n in ranked if n)


@dataclass
class RunTally:
    """What one flow run did to one step, added up over its batches."""

    recipients: int = 0
    this_run: Counter[tuple[str, str]] = field(default_factory=Counter)  # (status, reason) -> rows
    already_done: Counter[str] = field(default_factory=Counter)
    calls: int = 0
    sample: str | None = None
    sample_for: str | None = None  # whose text the sample is (a group's name, a customer)
    # rows caught in `sending` by a crash, by what reconciling made of them (sent/planned/unknown)
    reconciled: dict[str, int] = field(default_factory=dict)

    def add_prepared(
        self, planned: PlannedBatch, sample: str | None, sample_for: str | None = None
    ) -> None:
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
            self.this_run[("planned", DEFERRED)] += planned.deferred
        if self.sample is None and sample is not None:
            self.sample, self.sample_for = sample, sample_for

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
    occurrence: Occurrence,
    spec: SopSpec,
    tally: RunTally,
    now: dt.datetime | None = None,
    *,
    follow_up_scheduled: bool = False,
) -> OutcomeReport:
    """The occurrence's touches by outcome, and a summary saying what this run did, when touches
    waiting for quiet hours go and which run sends them, with a rendered sample.

    What this run did is read back from the Delivery log (rows it recorded or claimed), so every
    attempt of a retried task counts, not only the last one. `follow_up_scheduled`: this run
    schedules a run of the step for when quiet hours end (a promotion step's deployment run).
    """
    with session_scope(readonly=True) as session:
        totals = occurrence_outcomes(occurrence, session=session)
        pending = unsettled(occurrence, now=now or utcnow(), session=session)
        if tally.sample is None and (waiting := first_text_to_send(occurrence, session=session)):
            tally.sample, tally.sample_for = waiting.text, waiting.target
    if occurrence.flow_run_id:
        tally.this_run = Counter({(o.status, o.reason): o.this_run for o in totals if o.this_run})
        tally.calls = sum(o.calls for o in totals if o.status == "sent")
    table = [
        {
            "outcome": outcome_words(o.status, o.reason),
            "touches": o.rows,
            "this run": o.this_run if occurrence.flow_run_id else _this_run(tally, o),
        }
        for o in totals
    ]
    waits = (
        wait_sentence(
            spec,
            occurrence.step,
            occurrence.occurrence,
            pending.deferred,
            pending.deferred_until,
            tz=get_settings().timezone,
            follow_up_scheduled=follow_up_scheduled,
        )
        if pending.deferred and pending.deferred_until
        else None
    )
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
        "in_words": _in_words(tally, waits),
    }
    markdown = _summary_markdown(occurrence, spec.title, tally, pending, waits)
    return OutcomeReport(table, markdown, summary)


def _this_run(tally: RunTally, outcome: OutcomeRow) -> int:
    return tally.this_run.get((outcome.status, outcome.reason), 0)


def _in_words(tally: RunTally, waits: str | None) -> str:
    """The run's outcome in one line for its log: what it did, and what still waits."""
    done = counts_in_words({k: n for k, n in tally.this_run.items() if k != ("planned", DEFERRED)})
    earlier = sum(tally.already_done.values())
    parts = [
        f"this run's touches: {done}"
        if done
        else "nothing sent"
        if waits
        else "nothing new to send"
    ]
    if earlier:
        parts.append(f"{earlier} settled by an earlier run")
    if waits:
        parts.append(waits)
    return "; ".join(parts)


def _summary_markdown(
    occurrence: Occurrence, title: str, tally: RunTally, pending: Unsettled, waits: str | None
) -> str:
    sent_now = sum(n for (status, _), n in tally.this_run.items() if status == "sent")
    earlier = sum(tally.already_done.values())
    lines = [f"# {title} · {occurrence.step} · {occurrence.occurrence}", ""]
    if waits:
        lines += [f"**{waits}.**", ""]
    lines += [
        f"- recipients in the audience: **{tally.recipients}**",
        f"- sent by this run: **{sent_now}** {plural(sent_now, 'touch', 'touches')} in "
        f"{tally.calls} mass-message call(s) via `{occurrence.channel}`",
        f"- already settled by an earlier run (not sent again): **{earlier}**",
    ]
    if tally.reconciled:
        found = ", ".join(
            f"{n} {outcome_words(status)}" for status, n in sorted(tally.reconciled.items())
        )
        lines.append(f"- caught mid-send by an interrupted run, settled with WeCom: {found}")
    lines += [
        f"- {outcome_words(status, reason)} by this run: {n}"
        for (status, reason), n in sorted(tally.this_run.items())
        if status != "sent" and (status, reason) != ("planned", DEFERRED)
    ]
    lines += pending_lines(pending, waiting=waits is not None)
    lines += ["", "## Rendered sample", ""]
    if tally.sample:
        owner = [f"for {tally.sample_for}:", ""] if tally.sample_for else []
        lines += [*owner, "```text", tally.sample, "```"]
    else:
        lines.append("_Nothing to show: this run rendered no text (see an earlier run's sample)._")
    return "\n".join(lines)


def pending_lines(pending: Unsettled, *, waiting: bool = False) -> list[str]:
    """What is still to happen to the touches, in the operator's words (`waiting`: the touches
    waiting for quiet hours are already told, with the run that sends them)."""
    lines = []
    if pending.deferred and not waiting:
        when = (
            local(pending.deferred_until, get_settings().timezone)
            if pending.deferred_until
            else None
        )
        lines.append(
            f"- {WAITING}: **{pending.deferred}** touch(es), sent by the next run from "
            f"{when:%Y-%m-%d %H:%M} on"
            if when
            else f"- {WAITING}: **{pending.deferred}** touch(es)"
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
