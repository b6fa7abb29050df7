"""Staff confirmation of mass messages: how many each staff member confirmed, and how fast."""

from __future__ import annotations

import datetime as dt
import statistics
from collections import defaultdict
from collections.abc import Iterable
from typing import Any

from sqlalchemy import select
from sqlmodel import Session, col

from models.delivery import MassTask
from review.model import Row, rate
from review.statuses import RESULTED


def staff_confirmation(session: Session, outcomes: Iterable[Row]) -> list[Row]:
    """Per staff member: mass messages to confirm, how many were, and the median delay."""
    resulted = {s.value for s in RESULTED}
    messages: dict[tuple[str, str], list[Any]] = {}
    for row in outcomes:
        if not row["msgid"] or row["channel"] != "wecom":
            continue
        key = (row["msgid"], row["sender"] or "—")
        first, done = messages.get(key, (None, False))
        sent = row["first_sent"]
        if sent is not None and (first is None or sent < first):
            first = sent
        messages[key] = [first, done or row["status"] in resulted]
    confirmed_at = dict(
        session.execute(
            select(col(MassTask.msgid), col(MassTask.confirmed_at)).where(
                col(MassTask.confirmed_at).is_not(None)
            )
        )
        .tuples()
        .all()
    )
    tasks: dict[str, list[tuple[bool, float | None]]] = defaultdict(list)
    for (msgid, sender), (first, done) in messages.items():
        confirmed = confirmed_at.get(msgid)
        delay = None
        if confirmed is not None and first is not None:
            delay = max(0.0, (_aware(confirmed) - _aware(first)).total_seconds())
        tasks[sender].append((done or confirmed is not None, delay))
    rows: list[Row] = []
    for sender, items in tasks.items():
        confirmed = sum(1 for done, _ in items if done)
        delays = [delay for _, delay in items if delay is not None]
        rows.append(
            {
                "sender": sender,
                "tasks": len(items),
                "confirmed": confirmed,
                "confirmation_rate": rate(confirmed, len(items)),
                "median_delay_seconds": statistics.median(delays) if delays else None,
            }
        )
    rows.sort(key=lambda r: (r["confirmation_rate"] or 0, -r["tasks"], r["sender"]))
    return rows


def _aware(value: dt.datetime) -> dt.datetime:
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)
