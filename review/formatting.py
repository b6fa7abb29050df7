"""How the review's values read in a report: money, rates, delays and counts; columns and rows shown."""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Sequence
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from core.clock import DEFAULT_TZ, local
from review.labels import MARKS, NO_TARGET, NOT_MEASURED, READINGS, value_label
from review.model import Kpi, Review, Row, Uplift

MAX_ROWS = 50
# Breakdowns in the order an operator reads them; any other key follows.
BREAKDOWNS = ("sop", "step", "channel", "region", "store", "staff", "day")
VOLUME_COLUMNS = ("planned", "sent", "tasks", "touched", "customers", "count")
COMPARISONS = {">=": "≥", "<=": "≤"}


def period(review: Review) -> str:
    """The review's days, e.g. "2024-11-01 – 2024-11-30"."""
    if review.starts == review.ends:
        return review.starts.isoformat()
    return f"{review.starts.isoformat()} – {review.ends.isoformat()}"


def scope(review: Review) -> str:
    """Which SOPs the review covers: "SOP dormant-recall" or "全部 SOP all SOPs"."""
    return f"SOP {review.sop_id}" if review.sop_id else "全部 SOP all SOPs"


def generated(review: Review) -> str:
    """When the review was computed, on the Shanghai wall clock."""
    return f"{local(review.generated_at).strftime('%Y-%m-%d %H:%M')} ({DEFAULT_TZ})"


def money(fen: Any) -> str:
    """Fen as yuan for a report column: 1234560 → "¥12,345.60" (half-up like the `yuan` filter)."""
    cents = int(Decimal(str(fen)).quantize(Decimal(1), rounding=ROUND_HALF_UP))
    whole, part = divmod(abs(cents), 100)
    return f"{'-' if cents < 0 else ''}¥{whole:,}.{part:02d}"


def percent(rate: float) -> str:
    """A fraction as a percentage with one decimal: 0.0314 → "3.1%"."""
    return f"{100 * rate:.1f}%"


def points(difference: float) -> str:
    """A difference of two rates in percentage points: 0.012 → "+1.2 pp"."""
    return f"{100 * difference:+.1f} pp"


def duration(seconds: float) -> str:
    """A delay as people say it: "45 秒", "12 分钟", "3 小时 05 分", "2 天 4 小时"."""
    whole = round(seconds)
    if whole < 60:
        return f"{whole} 秒"
    minutes, hours, days = whole // 60, whole // 3600, whole // 86400
    if whole < 3600:
        return f"{minutes} 分钟"
    if whole < 86400:
        return f"{hours} 小时 {minutes % 60:02d} 分"
    return f"{days} 天 {hours % 24} 小时"


def count(value: float) -> str:
    """A whole number with thousands separators; other numbers with two decimals."""
    return f"{value:,.0f}" if float(value).is_integer() else f"{value:,.2f}"


def format_value(value: Any, unit: str) -> str:
    """A KPI value in its unit ("rate", "count", "fen", "seconds", "ratio"); "—" when not measured."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "—"
    formatter = {"rate": percent, "fen": money, "seconds": duration, "count": count}.get(unit)
    if formatter:
        return formatter(value)
    return f"{value:,.2f}" if unit == "ratio" else count(value)


def format_target(kpi: Kpi) -> str:
    """The KPI's target as "≥ 3.0%", or "" when none is set."""
    if kpi.target is None:
        return ""
    comparison = COMPARISONS.get(kpi.comparison or "", kpi.comparison or "")
    return f"{comparison} {format_value(kpi.target, kpi.unit)}".strip()


def kpi_mark(kpi: Kpi) -> str:
    """✓ met, ✗ missed, no target, or no data when there is a target but nothing to measure."""
    if kpi.met is not None:
        return MARKS[kpi.met]
    return NO_TARGET if kpi.target is None else NOT_MEASURED


def format_cell(column: str, value: Any) -> str:
    """A table cell by its column's name: *_fen as money, *rate as %, *_seconds as a delay; our words in Chinese."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "—"
    if isinstance(value, bool):
        return "是 yes" if value else "否 no"
    if isinstance(value, dt.datetime):
        return local(value).strftime("%Y-%m-%d %H:%M")
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, int | float | Decimal) and not _is_key(column):
        if column.endswith("_fen"):
            return money(value)
        if column.endswith("rate"):
            return percent(float(value))
        if column.endswith("_seconds"):
            return duration(float(value))
        return count(float(value))
    return value_label(column, str(value))


def ordered_columns(rows: Sequence[Row]) -> list[str]:
    """What a row is about (text, dates, ids) first, then its numbers, each in the order given."""
    seen = list(dict.fromkeys(column for row in rows for column in row))
    keys = [c for c in seen if _is_key(c) or not _numeric(rows, c)]
    return keys + [c for c in seen if c not in keys]


def shown_rows(rows: Sequence[Row], key: str, limit: int = MAX_ROWS) -> list[Row]:
    """All rows when they fit; else the `limit` largest by volume (by day: still in date order)."""
    if len(rows) <= limit:
        return list(rows)
    volume = next((c for c in VOLUME_COLUMNS if any(c in row for row in rows)), None)
    if volume is None:
        return list(rows[:limit])
    ranked = sorted(rows, key=lambda row: -as_number(row.get(volume)))[:limit]
    if key == "day":
        ranked.sort(key=lambda row: str(row.get("day")))
    return ranked


def confidence_interval(row: Uplift) -> str:
    """The 95 % CI of an uplift, e.g. "+0.3 ~ +2.1 pp"; "—" when it could not be computed."""
    if row.ci_low is None or row.ci_high is None:
        return "—"
    return f"{100 * row.ci_low:+.1f} ~ {100 * row.ci_high:+.1f} pp"


def uplift_reading(row: Uplift) -> str:
    """What the CI says in words: better, worse, or not distinguishable from the holdout."""
    if row.uplift is None:
        return READINGS["no_holdout"] if not row.control else READINGS["not_measured"]
    if row.ci_low is None or row.ci_high is None:
        return READINGS["no_ci"]
    if row.ci_low > 0:
        return READINGS["better"]
    if row.ci_high < 0:
        return READINGS["worse"]
    return READINGS["same"]


def is_number(value: Any) -> bool:
    """A number for a table cell (True and False are not)."""
    return isinstance(value, int | float | Decimal) and not isinstance(value, bool)


def as_number(value: Any) -> float:
    """A cell's number, or 0 for anything else (for ranking rows)."""
    return float(value) if is_number(value) else 0.0


def _is_key(column: str) -> bool:
    return column in BREAKDOWNS or column == "#" or column.endswith("_id")


def _numeric(rows: Sequence[Row], column: str) -> bool:
    return any(is_number(row.get(column)) for row in rows)
