"""The review as one self-contained HTML page: KPIs against targets, charts inlined, breakdown tables."""

from __future__ import annotations

import base64
import re
from collections.abc import Iterable, Sequence
from html import escape
from pathlib import Path

from review.charts import Chart, review_charts
from review.formatting import (
    BREAKDOWNS,
    as_number,
    column_label,
    confidence_interval,
    format_cell,
    format_target,
    format_value,
    generated,
    is_number,
    kpi_mark,
    ordered_columns,
    period,
    points,
    scope,
    shown_rows,
    uplift_reading,
)
from review.model import Kpi, Review, Row, Uplift

BREAKDOWN_TITLES = {
    "sop": "By SOP",
    "step": "By step",
    "channel": "By channel",
    "region": "By region",
    "store": "By store",
    "staff": "By staff member",
    "day": "By day",
}

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
            f"<td{' class=num' if is_number(row.get(c)) else ''}>"
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
    total = sum(as_number(row.get("count")) for row in rows)
    ranked = sorted(rows, key=lambda row: -as_number(row.get("count")))
    return [
        {
            "#": number,
            "reason": row.get("reason"),
            "count": row.get("count"),
            "share_rate": as_number(row.get("count")) / total if total else None,
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


def _list(items: Iterable[str]) -> str:
    lines = "".join(f"<li>{escape(item)}</li>" for item in items)
    return f"<ul>{lines}</ul>" if lines else _empty()


def _empty() -> str:
    return '<p class="empty">No data in this period.</p>'
