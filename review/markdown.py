"""The review for Prefect artifacts: a short markdown headline and JSON-safe table rows."""

from __future__ import annotations

import dataclasses
import datetime as dt
import math
import re
from decimal import Decimal
from pathlib import Path
from typing import Any

from review.formatting import (
    BREAKDOWNS,
    confidence_interval,
    format_target,
    format_value,
    kpi_mark,
    ordered_columns,
    period,
    points,
    scope,
    uplift_reading,
)
from review.labels import SECTIONS as TITLES
from review.labels import column_label, kpi_label
from review.model import Review, Row

# Table artifacts published per review, each with the rows an operator sorts in the UI.
ARTIFACT_TABLES = {
    "sop": "各 SOP 的发送结果与转化 · Outcomes and conversion per SOP",
    "step": "各步骤的发送结果 · Outcomes per SOP step",
    "region": "各区域的发送结果 · Outcomes per region",
    "uplift": "各 SOP 干预组 vs 对照组转化(95% 置信区间)· Treated vs holdout conversion per SOP",
    "after_touch": "触达后 7 天内删除好友与退订 · Deletions and opt-outs within 7 days after touches",
    "staff_confirmation": "员工确认群发(确认最少的在前)· Staff confirmation of mass messages",
}
ARTIFACT_ROWS = 200  # the UI lists a table artifact in full; the HTML report has the rest
SECTIONS = ("skip_reasons", "uplift", "daily", "after_touch", "loyalty", "staff_confirmation")
POINTS_COLUMNS = ("uplift", "ci_low", "ci_high")
_MARKDOWN_SPECIAL = re.compile(r"([\\`*_\[\]<>|#&~])")


def headline_markdown(review: Review, report_path: Path | str | None = None) -> str:
    """Headline KPIs against targets (misses first), one uplift line per SOP, and where the full report is."""
    lines = [f"## {TITLES['review']} {period(review)} · {_md(scope(review))}", ""]
    misses = review.misses
    if misses:
        listed = ";".join(
            f"{_md(str(kpi_label(kpi)))} {format_value(kpi.value, kpi.unit)}"
            f"(目标 target {format_target(kpi)})"
            for kpi in misses
        )
        lines += [f"**✗ {len(misses)} 项未达标 missed:** {listed}", ""]
    elif any(kpi.met for kpi in review.headline):
        lines += ["**✓ 全部达标 all targets met**", ""]
    if review.headline:
        ranked = misses + [kpi for kpi in review.headline if kpi.met is not False]
        lines += ["| 指标 KPI | 数值 value | 目标 target | |", "|---|---:|---:|---|"]
        lines += [
            f"| {_md(str(kpi_label(kpi)))} | {format_value(kpi.value, kpi.unit)} "
            f"| {format_target(kpi)} | {kpi_mark(kpi)} |"
            for kpi in ranked
        ]
        lines.append("")
    else:
        lines += ["本期无核心指标 · no headline numbers this period.", ""]
    if review.uplift:
        lines.append(f"**{TITLES['uplift']}**")
        lines += [
            f"- {_md(row.sop_id)}: "
            + (
                f"{points(row.uplift)}(95% 置信区间 CI {confidence_interval(row)}),"
                if row.uplift is not None
                else ""
            )
            + f"{uplift_reading(row)};干预组 treated {row.treated:,},"
            f"对照组 holdout {row.control:,}"
            for row in review.uplift
        ]
        lines.append("")
    if report_path is not None:
        lines.append(f"完整报告 full report: `{str(report_path).replace('`', '')}`")
    return "\n".join(lines).rstrip() + "\n"


def table_rows(review: Review, key: str, *, limit: int | None = None) -> list[dict[str, Any]]:
    """One table of the review (a breakdown such as "sop", or a section such as "uplift") as JSON-safe rows.

    Numbers stay numbers for sorting in the UI: money in yuan, rates and uplift in percent (points).
    """
    rows = _rows(review, key)
    columns = ordered_columns(rows)
    return [{_name(c): _json(c, row.get(c)) for c in columns} for row in rows[:limit]]


def artifact_tables(review: Review) -> list[tuple[str, str, list[dict[str, Any]]]]:
    """(key, description, rows) of each table artifact a review publishes; empty tables left out."""
    tables = []
    for key, description in ARTIFACT_TABLES.items():
        rows = table_rows(review, key, limit=ARTIFACT_ROWS)
        if rows:
            tables.append((key, description, rows))
    return tables


def _rows(review: Review, key: str) -> list[Row]:
    if key in review.tables:
        return review.tables[key]
    if key == "uplift":
        return [dataclasses.asdict(row) for row in review.uplift]
    if key in SECTIONS:
        return list(getattr(review, key))
    if key in BREAKDOWNS:
        return []
    known = ", ".join([*BREAKDOWNS, *SECTIONS, *(k for k in review.tables if k not in BREAKDOWNS)])
    raise KeyError(f"the review has no table {key!r}; use one of: {known}")


def _name(column: str) -> str:
    label = str(column_label(column))
    if column in POINTS_COLUMNS:
        return f"{label} (pp)"
    if column.endswith("_fen"):
        return f"{label} (¥)"
    if column.endswith("rate"):
        return f"{label} (%)"
    if column.endswith("_seconds"):
        return f"{label} (s)"
    return label


def _json(column: str, value: Any) -> Any:
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, dt.date | dt.datetime):
        return value.isoformat()
    if isinstance(value, int | float | Decimal):
        number = float(value)
        if not math.isfinite(number):
            return None
        if column.endswith("_fen"):
            return round(number / 100, 2)
        if column in POINTS_COLUMNS or column.endswith("rate"):
            return round(100 * number, 2)
        return value if isinstance(value, int) else number
    return str(value)


def _md(text: str) -> str:
    """Text from SOP files and ops, with markdown (and inline HTML) characters taken literally."""
    return _MARKDOWN_SPECIAL.sub(r"\\\1", " ".join(str(text).split()))
