"""Summarise an occurrence's outcomes from the Delivery log and publish them as Prefect artifacts."""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from prefect import task
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.cache_policies import NO_CACHE
from prefect.client.schemas.objects import State
from prefect.states import Failed

from core.clock import local, utcnow
from core.errors import UnsettledTouches
from core.settings import get_settings
from models.db import session_scope
from models.deliveries import Occurrence, OutcomeRow, Unsettled, occurrence_outcomes, unsettled


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
        """Mass-message calls made and their outcomes (nothing for a task that failed)."""
        if dispatched is None:
            return
        self.this_run.update(dispatched.outcomes)
        self.calls += dispatched.calls


def artifact_key(*parts: str) -> str:
    """A Prefect artifact key: lowercase letters, digits and dashes only."""
    text = "-".join(parts).lower()
    return "".join(ch if ch.isalnum() and ch.isascii() else "-" for ch in text).strip("-")


@task(name="publish-outcomes", cache_policy=NO_CACHE)
def publish_outcomes(
    occurrence: Occurrence, title: str, tally: RunTally, now: dt.datetime | None = None
) -> dict[str, Any]:
    """Table artifact of the occurrence's outcomes and a markdown summary with a rendered sample.

    What this run did is read back from the Delivery log (rows it recorded or claimed), so every
    attempt of a retried task counts, not only the last one.
    """
    with session_scope(readonly=True) as session:
        totals = occurrence_outcomes(occurrence, session=session)
        pending = unsettled(occurrence, now=now or utcnow(), session=session)
    if occurrence.flow_run_id:
        tally.this_run = Counter({(o.status, o.reason): o.this_run for o in totals if o.this_run})
        tally.calls = sum(o.calls for o in totals if o.status == "sent")
    key = artifact_key(occurrence.sop_id, occurrence.step)
    create_table_artifact(
        key=f"{key}-outcomes",
        table=[
            {
                "status": o.status,
                "reason": o.reason or "-",
                "touches": o.rows,
                "this run": o.this_run if occurrence.flow_run_id else _this_run(tally, o),
            }
            for o in totals
        ],
        description=f"{title} · {occurrence.step} · {occurrence.occurrence}: touches by status and reason",
    )
    create_markdown_artifact(
        key=f"{key}-sample", markdown=_summary_markdown(occurrence, title, tally, pending)
    )
    return {
        "occurrence": occurrence.occurrence,
        "step": occurrence.step,
        "recipients": tally.recipients,
        "this_run": {f"{s}:{r}" if r else s: n for (s, r), n in tally.this_run.items()},
        "already_done": dict(tally.already_done),
        "reconciled": dict(tally.reconciled),
        "totals": {f"{o.status}:{o.reason}" if o.reason else o.status: o.rows for o in totals},
        "unsettled": {
            "sending": pending.sending,
            "waiting": pending.waiting,
            "unknown": pending.unknown,
        },
        "deferred": pending.deferred,
        "deferred_until": pending.deferred_until.isoformat() if pending.deferred_until else None,
    }


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


def unsettled_failure(
    summaries: list[dict[str, Any]], errors: Sequence[str] = ()
) -> State[Any] | None:
    """The run's final state when touches are unsettled or a send task failed, else None."""
    message = unsettled_message(summaries)
    if message is None and not errors:
        return None
    because = f" — last error: {errors[-1]}" if errors else ""
    return failed_run((message or "a send task failed") + because, summaries)


def failed_run(message: str, summaries: Sequence[dict[str, Any]] = ()) -> State[Any]:
    """A Failed state saying `message` and nothing else (no traceback in the UI); calling the
    flow directly raises `UnsettledTouches` carrying the summaries."""
    return Failed(message=message, data=UnsettledTouches(message, summaries=list(summaries)))


def gather(futures: Iterable[Any]) -> tuple[list[Any], list[str]]:
    """The results of finished task futures; a failed one gives None and its error's text."""
    results: list[Any] = []
    errors: list[str] = []
    for future in futures:
        try:
            results.append(future.result())
        except Exception as error:  # noqa: BLE001 - the run reports it after publishing outcomes
            results.append(None)
            errors.append(f"{type(error).__name__}: {error}"[:500])
    return results, errors


@task(name="publish-not-today", cache_policy=NO_CACHE)
def publish_not_today(sop_id: str, title: str, day: Any, days_rule: str) -> None:
    """Say in the UI why an occurrence sent nothing: the SOP does not run that day."""
    create_markdown_artifact(
        key=artifact_key(sop_id, "main", "sample"),
        markdown=f"# {title} · {day}\n\nNot sent: `days: {days_rule}` excludes {day} "
        "in China's official calendar (调休 included).",
    )
