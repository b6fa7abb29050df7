"""What became of an occurrence's (or a flow run's) Delivery rows: counts by outcome, and the rows
not yet settled."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any, NamedTuple

from sqlalchemy import case, func, or_, select
from sqlmodel import Session, col

from core.clock import as_utc
from models.deliveries import Occurrence
from models.delivery import NOT_FINAL, Delivery, DeliveryStatus, status_values


class OutcomeRow(NamedTuple):
    """Rows of an occurrence in one (status, reason), and how many of them this run wrote last."""

    status: str
    reason: str
    rows: int
    this_run: int
    calls: int  # distinct msgids among this run's rows: the mass-message calls that created them


def occurrence_outcomes(occurrence: Occurrence, *, session: Session) -> list[OutcomeRow]:
    """(status, reason) counts of the occurrence, most common first, with this run's share: rows
    the run recorded or last claimed, over every attempt of its tasks (retries included)."""
    mine = col(Delivery.flow_run_id) == (occurrence.flow_run_id or "")
    reason = func.coalesce(Delivery.reason, "")
    statement = (
        select(
            Delivery.status,
            reason,
            func.count(),
            func.coalesce(func.sum(case((mine, 1), else_=0)), 0),
            func.count(func.distinct(case((mine, Delivery.msgid), else_=None))),
        )
        .where(*_occurrence_clauses(occurrence))
        .group_by(Delivery.status, reason)
        .order_by(func.count().desc())
    )
    return [
        OutcomeRow(s, r, int(n), int(m), int(c)) for s, r, n, m, c in session.execute(statement)
    ]


def _occurrence_clauses(occurrence: Occurrence) -> list[Any]:
    return [
        col(Delivery.sop_id) == occurrence.sop_id,
        col(Delivery.step) == occurrence.step,
        col(Delivery.occurrence) == occurrence.occurrence,
    ]


@dataclass(frozen=True)
class Unsettled:
    """Rows not in a final state: what keeps a run from being complete."""

    sending: int = 0  # claimed, no answer recorded: the next run reconciles them with WeCom
    waiting: int = 0  # planned or failed and due, not sent
    unknown: int = 0  # caught mid-send, WeCom could not say whether it created them
    deferred: int = 0  # planned for later (quiet hours): not a fault
    deferred_until: dt.datetime | None = None

    def faults(self) -> dict[str, int]:
        """The counts that keep a run from being complete, by kind."""
        return {"sending": self.sending, "waiting": self.waiting, "unknown": self.unknown}


_NOT_FINAL_STATES = status_values(NOT_FINAL)


def unsettled(occurrence: Occurrence, *, now: dt.datetime, session: Session) -> Unsettled:
    """The occurrence's rows still sending, due but unsent, or unknown, and those deferred."""
    return _unsettled(
        [
            col(Delivery.step) == occurrence.step,
            col(Delivery.occurrence) == occurrence.occurrence,
        ],
        occurrence.sop_id,
        now=now,
        session=session,
    )


def unsettled_by_run(
    sop_id: str, flow_run_id: str, *, now: dt.datetime, session: Session
) -> Unsettled:
    """The SOP's rows this flow run recorded or claimed that are not final (trigger SOPs: a
    drain's touches span many occurrences)."""
    return _unsettled([col(Delivery.flow_run_id) == flow_run_id], sop_id, now=now, session=session)


def _unsettled(clauses: list[Any], sop_id: str, *, now: dt.datetime, session: Session) -> Unsettled:
    """Count rows of `sop_id` matching `clauses` by how far they are from final.

    Reads through the status index (`|| ''` keeps the planner off the occurrence index, which
    holds every row of a large occurrence): rows not yet final are few.
    """
    due = or_(col(Delivery.not_before).is_(None), col(Delivery.not_before) <= now)
    no_msgid = col(Delivery.msgid).is_(None)
    statement = (
        select(Delivery.status, due, no_msgid, func.count(), func.min(Delivery.not_before))
        .where(
            (col(Delivery.sop_id) + "") == sop_id,
            col(Delivery.status).in_(_NOT_FINAL_STATES),
            *clauses,
        )
        .group_by(Delivery.status, due, no_msgid)
    )
    counts: dict[str, int] = {"sending": 0, "waiting": 0, "unknown": 0, "deferred": 0}
    until: dt.datetime | None = None
    for status, is_due, without_msgid, rows, first in session.execute(statement):
        if status == DeliveryStatus.SENDING.value:
            counts["sending"] += rows
        elif status == DeliveryStatus.UNKNOWN.value:
            # Rows WeCom accepted (a msgid) and later forgot are results, not unsettled sends.
            counts["unknown"] += rows if without_msgid else 0
        elif is_due:
            counts["waiting"] += rows
        else:
            counts["deferred"] += rows
            first = as_utc(first)
            until = first if until is None or first < until else until
    return Unsettled(**counts, deferred_until=until)


def run_outcomes(
    sop_id: str, flow_run_id: str, *, session: Session
) -> tuple[dict[tuple[str, str], int], int]:
    """(status, reason) -> rows of the SOP this flow run recorded or last claimed, over every
    attempt of its tasks, and the distinct msgids of its sent rows (the calls that created them)."""
    reason = func.coalesce(Delivery.reason, "")
    statement = (
        select(Delivery.status, reason, func.count(), func.count(func.distinct(Delivery.msgid)))
        .where(col(Delivery.sop_id) == sop_id, col(Delivery.flow_run_id) == flow_run_id)
        .group_by(Delivery.status, reason)
    )
    counts: dict[tuple[str, str], int] = {}
    calls = 0
    for status, why, rows, msgids in session.execute(statement):
        counts[(status, why)] = int(rows)
        calls += int(msgids) if status == DeliveryStatus.SENT.value else 0
    return counts, calls
