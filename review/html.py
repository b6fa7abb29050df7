"""The review as one self-contained HTML page: KPIs against targets, charts inlined, breakdown tables."""

from __future__ import annotations

import base64
import datetime as dt
import math
import re
from collections.abc import Iterable, Sequence
from decimal import ROUND_HALF_UP, Decimal
from html import escape
from pathlib import Path
from typing import Any

from core.clock import DEFAULT_TZ, local
from review.charts import Chart, review_charts
from review.model import Kpi, Review, Row, Uplift

MAX_ROWS = 50
# Breakdowns in the order an operator reads them; any other key follows.
BREAKDOWNS = ("sop", "step", "channel", "region", "store", "staff", "day")
BREAKDOWN_TITLES = {
    "sop": "By SOP",
    "step": "By step",
    "channel": "By channel",
    "region": "By region",
    "store": "By store",
    "staff": "By staff member",
    "day": "By day",
}
VOLUME_COLUMNS = ("planned", "sent", "tasks", "touched", "customers", "count")
COLUMN_LABELS = {
    "sop": "SOP",
    "sop_id": "SOP",
    "target_kind": "Target",
    "not_a_friend": "Not a friend",
    "over_wecom_limit": "Over WeCom limit",
    "revenue_fen": "Revenue",
    "conversion_rate": "Conversion",
    "deleted_7d": "Deleted ≤ 7 d",
    "opted_out_7d": "Opted out ≤ 7 d",
    "opt_out_rate": "Opt-out rate",
    "average_order_fen": "Average order",
    "median_delay_seconds": "Median delay",
    "confirmation_rate": "Confirmed share",
    "share_rate": "Share of skipped",
    "control": "Holdout",
    "control_converted": "Holdout converted",
    "control_rate": "Holdout rate",
    "ci_low": "95% CI low",
    "ci_high": "95% CI high",
}
MARKS = {True: "✓ met", False: "✗ missed"}
COMPARISONS = {">=": "≥", "<=": "≤"}

STYLE = """
body{font:14px/1.45 -apple-system,"PingFang SC","Microsoft YaHei","Noto Sans CJK SC",sans-serif;
 color:#222;margin:0;background:#f6f7f9}
main{max-width:1000px;margin:0 auto;padding:24px;background:#fff}
h1{font-size:22px;margin:0 0 4px}h2{font-size:18px;margin:28px 0 8px;border-bottom:1px solid #ddd}
h3{font-size:15px;margin:18px 0 6px}.meta,.more,.empty{color:#666}
table{border-collapse:collapse;margin:6px 0;font-size:13px}
th,td{padding:3px 8px;border-bottom:1px solid #eee;text-align:left;vertical-align:top}
th{background:#f0f2f5}td.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
tr.miss td{background:#fdecea}.mark-miss{color:#c0392b;font-weight:600}.mark-met{color:#2e8540}
.misses{border:1px solid #e6b0aa;background:#fdf3f2;padding:8px 16px;border-radius:6px}
.misses h2{border:0;margin:4px 0;color:#c0392b}.ok{border-color:#a9dfbf;background:#f1faf4}
.ok h2{color:#2e8540}figure{margin:12px 0}img{max-width:100%;height:auto}
figcaption{color:#666;font-size:12px}
"""


def write_report(review: Review, folder: Path) -> Path:
    """Write the review's HTML page into `folder` (created if needed) and return its path."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / report_name(review)
    path.write_text(render_html(review), encoding="utf-8")
    return path


def report_name(review: Review) -> str:
    """`review-<starts>-<ends>[-<sop>].html`, the SOP id reduced to characters safe in a file name."""
    name = f"review-{review.starts.isoformat()}-{review.ends.isoformat()}"
    if review.sop_id:
        name += "-" + (re.sub(r"[^\w.-]+", "_", review.sop_id).strip("._") or "sop")
    return f"{name}.html"


def render_html(review: Review, charts: Sequence[Chart] | None = None) -> str:
    """The whole page; `charts` default to rendering the review's four charts."""
    figures = {chart.key: _figure(chart) for chart in (charts or review_charts(review))}
    title = f"Review 复盘 {period(review)} · {scope(review)}"
    sections = [
        f"<header><h1>{escape(title)}</h1>"
        f'<p class="meta">Generated {escape(generated(review))}</p></header>',
        _misses(review.headline),
        _section("Headline", _kpi_table(review.headline) + figures.get("daily", "")),
        _section("Breakdowns", _breakdowns(review.tables)),
        _section(
            "Skip reasons",
            figures.get("skip_reasons", "")
            + _table(_skip_rows(review.skip_reasons), key="skip_reasons"),
        ),
        _section(
            "Uplift vs holdout",
            figures.get("uplift", "") + _uplift_table(review.uplift),
        ),
        _section(
            "After-touch costs",
            figures.get("after_touch", "") + _table(review.after_touch, key="after_touch"),
        ),
        _section("Loyalty: group members vs non-members", _table(review.loyalty, key="loyalty")),
        _section(
            "Staff confirmation",
            _table(review.staff_confirmation, key="staff_confirmation"),
        ),
        _section("Method", _list(review.notes)),
    ]
    body = "\n".join(part for part in sections if part)
    return (
        '<!doctype html>\n<html lang="zh-CN">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{escape(title)}</title>\n<style>{STYLE}</style>\n</head>\n"
        f"<body><main>\n{body}\n</main></body>\n</html>\n"
    )


# ---------------------------------------------------------------- formatting (shared with markdown)


def period(review: Review) -> str:
    """The review's days, e.g. "2024-11-01 – 2024-11-30"."""
    if review.starts == review.ends:
        return review.starts.isoformat()
    return f"{review.starts.isoformat()} – {review.ends.isoformat()}"


def scope(review: Review) -> str:
    """Which SOPs the review covers."""
    return f"SOP {review.sop_id}" if review.sop_id else "all SOPs"


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
    """A delay as people say it: "45 s", "12 min", "3 h 05 min", "2 d 4 h"."""
    whole = round(seconds)
    if whole < 60:
        return f"{whole} s"
    minutes, hours, days = whole // 60, whole // 3600, whole // 86400
    if whole < 3600:
        return f"{minutes} min"
    if whole < 86400:
        return f"{hours} h {minutes % 60:02d} min"
    return f"{days} d {hours % 24} h"


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
    """ "✓ met", "✗ missed", "no target", or "no data" when there is a target but nothing to measure."""
    if kpi.met is not None:
        return MARKS[kpi.met]
    return "no target" if kpi.target is None else "no data"


def format_cell(column: str, value: Any) -> str:
    """A table cell by its column's name: *_fen as money, *rate as %, *_seconds as a delay."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
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
    return str(value)


def column_label(column: str) -> str:
    """A column's header: "revenue_fen" → "Revenue", "store_id" → "Store id"."""
    if column in COLUMN_LABELS:
        return COLUMN_LABELS[column]
    return column.removesuffix("_fen").removesuffix("_seconds").replace("_", " ").capitalize()


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
    ranked = sorted(rows, key=lambda row: -_number(row.get(volume)))[:limit]
    if key == "day":
        ranked.sort(key=lambda row: str(row.get("day")))
    return ranked


# ---------------------------------------------------------------- page parts


def _section(title: str, content: str) -> str:
    return f"<section><h2>{escape(title)}</h2>\n{content}\n</section>"


def _figure(chart: Chart) -> str:
    data = base64.b64encode(chart.png).decode("ascii")
    return (
        f'<figure><img src="data:image/png;base64,{data}" alt="{escape(chart.alt)}" '
        f'width="800" height="350"><figcaption>{escape(chart.title)}</figcaption></figure>'
    )


def _misses(headline: Sequence[Kpi]) -> str:
    misses = [kpi for kpi in headline if kpi.met is False]
    if misses:
        items = "".join(
            f"<li><b>{escape(kpi.label)}</b>: {escape(format_value(kpi.value, kpi.unit))} "
            f"(target {escape(format_target(kpi))})</li>"
            for kpi in misses
        )
        return f'<section class="misses"><h2>Misses ✗ {len(misses)}</h2><ul>{items}</ul></section>'
    if any(kpi.met for kpi in headline):
        return '<section class="misses ok"><h2>All targets met ✓</h2></section>'
    return ""


def _kpi_table(headline: Sequence[Kpi]) -> str:
    if not headline:
        return _empty()
    rows = []
    for kpi in headline:
        mark = kpi_mark(kpi)
        css = "mark-miss" if kpi.met is False else "mark-met" if kpi.met else ""
        rows.append(
            f"<tr{' class=miss' if kpi.met is False else ''}><td>{escape(kpi.label)}</td>"
            f'<td class="num">{escape(format_value(kpi.value, kpi.unit))}</td>'
            f'<td class="num">{escape(format_target(kpi))}</td>'
            f'<td class="{css}">{escape(mark)}</td></tr>'
        )
    return (
        "<table><thead><tr><th>KPI</th><th>Value</th><th>Target</th><th></th></tr></thead>"
        f"<tbody>{''.join(rows)}</tbody></table>"
    )


def _breakdowns(tables: dict[str, list[Row]]) -> str:
    keys = [k for k in BREAKDOWNS if k in tables] + [k for k in tables if k not in BREAKDOWNS]
    if not keys:
        return _empty()
    return "\n".join(
        f"<h3>{escape(BREAKDOWN_TITLES.get(k, 'By ' + k.replace('_', ' ')))}</h3>"
        + _table(tables[k], key=k)
        for k in keys
    )


def _table(rows: Sequence[Row], *, key: str) -> str:
    if not rows:
        return _empty()
    columns = ordered_columns(rows)
    shown = shown_rows(rows, key)
    head = "".join(f"<th>{escape(column_label(c))}</th>" for c in columns)
    body = "".join(
        "<tr>"
        + "".join(
            f"<td{' class=num' if _is_number(row.get(c)) else ''}>"
            f"{escape(format_cell(c, row.get(c)))}</td>"
            for c in columns
        )
        + "</tr>"
        for row in shown
    )
    more = len(rows) - len(shown)
    note = (
        f'<p class="more">Showing {len(shown):,} of {len(rows):,} rows (the largest); '
        f"{more:,} more not shown.</p>"
        if more
        else ""
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>{note}"


def _skip_rows(rows: Sequence[Row]) -> list[Row]:
    total = sum(_number(row.get("count")) for row in rows)
    ranked = sorted(rows, key=lambda row: -_number(row.get("count")))
    return [
        {
            "#": number,
            "reason": row.get("reason"),
            "count": row.get("count"),
            "share_rate": _number(row.get("count")) / total if total else None,
        }
        for number, row in enumerate(ranked, start=1)
    ]


def _uplift_table(rows: Sequence[Uplift]) -> str:
    if not rows:
        return _empty()
    head = "".join(
        f"<th>{escape(h)}</th>"
        for h in (
            "SOP",
            "Treated",
            "Converted",
            "Rate",
            "Holdout",
            "Converted",
            "Rate",
            "Uplift",
            "95% CI",
            "Reading",
        )
    )
    body = []
    for row in rows:
        cells = [
            format_cell("count", row.treated),
            format_cell("count", row.treated_converted),
            format_cell("rate", row.treated_rate),
            format_cell("count", row.control),
            format_cell("count", row.control_converted),
            format_cell("rate", row.control_rate),
            "—" if row.uplift is None else points(row.uplift),
            confidence_interval(row),
        ]
        body.append(
            f"<tr><td>{escape(row.sop_id)}</td>"
            + "".join(f'<td class="num">{escape(cell)}</td>' for cell in cells)
            + f"<td>{escape(uplift_reading(row))}</td></tr>"
        )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def confidence_interval(row: Uplift) -> str:
    """The 95 % CI of an uplift, e.g. "+0.3 to +2.1 pp"; "—" when it could not be computed."""
    if row.ci_low is None or row.ci_high is None:
        return "—"
    return f"{100 * row.ci_low:+.1f} to {100 * row.ci_high:+.1f} pp"


def uplift_reading(row: Uplift) -> str:
    """What the CI says in words: better, worse, or not distinguishable from the holdout."""
    if row.uplift is None:
        return "not measured (no holdout)" if not row.control else "not measured"
    if row.ci_low is None or row.ci_high is None:
        return "no confidence interval"
    if row.ci_low > 0:
        return "better than holdout"
    if row.ci_high < 0:
        return "worse than holdout"
    return "not distinguishable from holdout"


def _list(items: Iterable[str]) -> str:
    lines = "".join(f"<li>{escape(item)}</li>" for item in items)
    return f"<ul>{lines}</ul>" if lines else _empty()


def _empty() -> str:
    return '<p class="empty">No data in this period.</p>'


def _is_key(column: str) -> bool:
    return column in BREAKDOWNS or column == "#" or column.endswith("_id")


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float | Decimal) and not isinstance(value, bool)


def _numeric(rows: Sequence[Row], column: str) -> bool:
    return any(_is_number(row.get(column)) for row in rows)


def _number(value: Any) -> float:
    return float(value) if _is_number(value) else 0.0
