"""Breakdown tables from the outcome grain: counts and conversion per SOP, step, channel, place, staff, day."""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable
from typing import Any

from models.delivery import DeliveryStatus
from review.directory import Directory
from review.model import Row, rate
from review.statuses import ACCEPTED

OUTCOME_COLUMNS = (
    "planned",
    "sent",
    "delivered",
    "not_a_friend",
    "over_wecom_limit",
    "unconfirmed",
    "awaiting_results",
    "failed",
    "unknown",
    "skipped",
    "not_sent_yet",
    "reached",
    "orders",
    "revenue_fen",
)
BREAKDOWNS: dict[str, tuple[str, ...]] = {
    "sop": ("sop_id",),
    "step": ("sop_id", "step"),
    "channel": ("target_kind", "channel"),
    "region": ("region",),
    "store": ("store",),
    "staff": ("sender",),
    "day": ("day",),
}


def rollup(
    outcomes: Iterable[Row], attributed: Iterable[Row], directory: Directory
) -> dict[str, list[Row]]:
    """Every breakdown table from the grain rows, with conversion = orders / people reached.

    A delivered 1:1 row reaches one person; a delivered group row reaches the group's members.
    """
    tables: dict[str, dict[tuple[Any, ...], Counter[str]]] = {
        name: defaultdict(Counter) for name in BREAKDOWNS
    }

    def add(row: Row, counts: Counter[str]) -> None:
        region, store = directory.place(row["sender"], row["group_id"])
        values = dict(row, region=region, store=store, day=row["day"] or "earlier")
        for name in BREAKDOWNS:
            tables[name][tuple(values[k] for k in BREAKDOWNS[name])].update(counts)

    for row in outcomes:
        counts = _status_counts(row["status"], int(row["rows"]))
        if row["status"] == DeliveryStatus.DELIVERED.value:
            counts["reached"] += int(row["rows"]) * directory.members(row["group_id"])
        add(row, counts)
    for row in attributed:
        add(row, Counter(orders=int(row["orders"]), revenue_fen=int(row["revenue_fen"] or 0)))
    result: dict[str, list[Row]] = {}
    for name, grouped in tables.items():
        rows = []
        for key, counts in grouped.items():
            row = dict(zip(BREAKDOWNS[name], key, strict=True))
            row.update({column: counts.get(column, 0) for column in OUTCOME_COLUMNS})
            row["conversion_rate"] = rate(row["orders"], row["reached"])
            rows.append(row)
        rows.sort(key=lambda r: (-r["planned"], *(str(r[k]) for k in BREAKDOWNS[name])))
        if name == "day":
            rows.sort(key=lambda r: str(r["day"]))
        result[name] = rows
    for row in result["staff"]:
        row["staff_name"] = directory.staff_name(row["sender"])
    return result


def reached_by_sop(outcomes: Iterable[Row], directory: Directory) -> dict[str, int]:
    """People reached per SOP: a delivered 1:1 row is one, a delivered group row its members."""
    reached: Counter[str] = Counter()
    for row in outcomes:
        if row["status"] == DeliveryStatus.DELIVERED.value:
            reached[row["sop_id"]] += int(row["rows"]) * directory.members(row["group_id"])
    return dict(reached)


def skip_reasons(outcomes: Iterable[Row]) -> list[Row]:
    """Skipped rows per reason, most common first."""
    counts: Counter[str] = Counter()
    for row in outcomes:
        if row["status"] == DeliveryStatus.SKIPPED.value:
            counts[row["skip_reason"] or "—"] += int(row["rows"])
    return [{"reason": reason, "count": count} for reason, count in counts.most_common()]


def _status_counts(status: str, rows: int) -> Counter[str]:
    counts: Counter[str] = Counter(planned=rows)
    if status in {s.value for s in ACCEPTED}:
        counts["sent"] += rows
    column = {
        DeliveryStatus.SENT.value: "awaiting_results",
        DeliveryStatus.PLANNED.value: "not_sent_yet",
        DeliveryStatus.SENDING.value: "not_sent_yet",
    }.get(status, status)
    counts[column] += rows
    return counts
