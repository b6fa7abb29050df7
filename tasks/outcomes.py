"""Summarise an occurrence's outcomes from the Delivery log and publish them as Prefect artifacts."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from prefect import task
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.cache_policies import NO_CACHE

from models.db import session_scope
from tasks.deliveries import Occurrence, outcome_counts


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

    def add(self, planned: Any, composed: Any, dispatched: Any) -> None:
        self.add_prepared(planned, composed)
        self.add_dispatched(dispatched)

    def add_prepared(self, planned: Any, composed: Any) -> None:
        """A batch planned and rendered."""
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
        for reason, rows in composed.skipped.items():
            self.this_run[("skipped", reason)] += rows
        self.sample = self.sample or composed.sample

    def add_dispatched(self, dispatched: Any) -> None:
        """Mass-message calls made and their outcomes."""
        self.this_run.update(dispatched.outcomes)
        self.calls += dispatched.calls


def artifact_key(*parts: str) -> str:
    """A Prefect artifact key: lowercase letters, digits and dashes only."""
    text = "-".join(parts).lower()
    return "".join(ch if ch.isalnum() and ch.isascii() else "-" for ch in text).strip("-")


@task(name="publish-outcomes", cache_policy=NO_CACHE)
def publish_outcomes(occurrence: Occurrence, title: str, tally: RunTally) -> dict[str, Any]:
    """Table artifact of the occurrence's outcomes and a markdown summary with a rendered sample."""
    with session_scope() as session:
        totals = outcome_counts(
            occurrence.sop_id, occurrence.step, occurrence.occurrence, session=session
        )
    key = artifact_key(occurrence.sop_id, occurrence.step)
    create_table_artifact(
        key=f"{key}-outcomes",
        table=[
            {
                "status": status,
                "reason": reason or "-",
                "rows": rows,
                "this run": _this_run(tally, status, reason),
            }
            for status, reason, rows in totals
        ],
        description=f"{title} · {occurrence.step} · {occurrence.occurrence}: Delivery rows by status and reason",
    )
    create_markdown_artifact(
        key=f"{key}-sample", markdown=_summary_markdown(occurrence, title, tally)
    )
    return {
        "occurrence": occurrence.occurrence,
        "step": occurrence.step,
        "recipients": tally.recipients,
        "this_run": {f"{s}:{r}" if r else s: n for (s, r), n in tally.this_run.items()},
        "already_done": dict(tally.already_done),
        "reconciled": dict(tally.reconciled),
        "totals": {f"{s}:{r}" if r else s: n for s, r, n in totals},
    }


def _this_run(tally: RunTally, status: str, reason: str) -> int:
    return tally.this_run.get((status, reason), 0)


def _summary_markdown(occurrence: Occurrence, title: str, tally: RunTally) -> str:
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
    lines += ["", "## Rendered sample", ""]
    if tally.sample:
        lines += ["```text", tally.sample, "```"]
    else:
        lines.append("_Nothing was rendered by this run._")
    return "\n".join(lines)


@task(name="publish-not-today", cache_policy=NO_CACHE)
def publish_not_today(sop_id: str, title: str, day: Any, days_rule: str) -> None:
    """Say in the UI why an occurrence sent nothing: the SOP does not run that day."""
    create_markdown_artifact(
        key=artifact_key(sop_id, "main", "sample"),
        markdown=f"# {title} · {day}\n\nNot sent: `days: {days_rule}` excludes {day} "
        "in China's official calendar (调休 included).",
    )
