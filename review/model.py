"""What a review (复盘) holds: the numbers put together by review/build.py, read by every report format."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

# Money is in fen (分), like the tables; rates are fractions (0.031 = 3.1 %).
Row = dict[str, Any]


def rate(part: float | None, whole: float | None) -> float | None:
    """`part / whole`, or None when there is nothing to divide by (or no part)."""
    return part / whole if part is not None and whole else None


@dataclass(frozen=True)
class Kpi:
    """One headline number, with its target from sop/targets.yaml when one is set."""

    name: str  # the key in targets.yaml, e.g. "conversion_rate"
    label: str  # what an operator reads, e.g. "Conversion (orders attributed / delivered)"
    value: float | None  # None: nothing to measure in this period
    unit: str  # "rate" | "count" | "fen" | "seconds" | "ratio"
    target: float | None = None
    comparison: str | None = None  # ">=" or "<="
    met: bool | None = None  # None: no target, or nothing to measure


@dataclass(frozen=True)
class Uplift:
    """Treated vs holdout conversion for one SOP, with a 95 % confidence interval of the difference."""

    sop_id: str
    treated: int
    treated_converted: int
    control: int
    control_converted: int
    treated_rate: float | None
    control_rate: float | None
    uplift: float | None  # treated_rate - control_rate (percentage points as a fraction)
    ci_low: float | None
    ci_high: float | None


@dataclass
class Review:
    """One review period's numbers; `tables` are the breakdowns, keyed by what they break down by."""

    starts: dt.date  # first day, inclusive (Asia/Shanghai)
    ends: dt.date  # last day, inclusive
    sop_id: str | None  # the review of one SOP, or of all
    generated_at: dt.datetime
    headline: list[Kpi] = field(default_factory=list)
    # "sop", "step", "channel", "region", "store", "staff", "day": rows with the same outcome columns
    # (planned, sent, delivered, not_a_friend, over_wecom_limit, unconfirmed, failed, unknown,
    #  skipped, orders, revenue_fen, conversion_rate) plus the key columns of that breakdown.
    tables: dict[str, list[Row]] = field(default_factory=dict)
    skip_reasons: list[Row] = field(default_factory=list)  # {"reason", "count"}
    uplift: list[Uplift] = field(default_factory=list)
    # {"day", "sent", "delivered", "orders", "revenue_fen"}: sends vs conversions over time
    daily: list[Row] = field(default_factory=list)
    # {"sop_id", "touched", "deleted_7d", "opted_out_7d", "deletion_rate", "opt_out_rate"}
    after_touch: list[Row] = field(default_factory=list)
    # {"segment": "group members" | "non-members", "customers", "buyers", "orders",
    #  "repurchase_rate", "orders_per_buyer", "average_order_fen"}
    loyalty: list[Row] = field(default_factory=list)
    # {"sender", "tasks", "confirmed", "confirmation_rate", "median_delay_seconds"}
    staff_confirmation: list[Row] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # method statements and caveats shown in reports

    @property
    def misses(self) -> list[Kpi]:
        return [kpi for kpi in self.headline if kpi.met is False]
