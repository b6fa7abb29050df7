"""The review as one self-contained HTML page in Chinese: KPIs against targets, inline SVG charts, tables."""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from html import escape
from pathlib import Path

from review.chart_canvas import FONTS
from review.charts import Chart, review_charts
from review.formatting import (
    BREAKDOWNS,
    as_number,
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
from review.labels import (
    BREAKDOWN_TITLES,
    NO_DATA,
    SECTIONS,
    Label,
    column_label,
    kpi_label,
)
from review.model import Kpi, Review, Row, Uplift

# Outcomes that are exceptions: a column of only zeros is named in one line instead of shown.
QUIET_WHEN_ZERO = (
    "not_a_friend",
    "over_wecom_limit",
    "unconfirmed",
    "awaiting_results",
    "failed",
    "unknown",
    "not_sent_yet",
)
LONG_TEXT = 40  # characters of a cell that wraps instead of widening its table
UPLIFT_COLUMNS = (
    Label("SOP"),
    Label("干预组", "treated"),
    Label("转化", "converted"),
    Label("转化率", "rate"),
    Label("对照组", "holdout"),
    Label("转化", "converted"),
    Label("转化率", "rate"),
    Label("提升", "uplift"),
    Label("95% 置信区间", "CI"),
    Label("解读", "reading"),
)


@dataclass(frozen=True)
class Empty:
    """A part of a section with no data this period, as the one line that says so."""

    line: str = ""


Part = str | Empty
FONT_STACK = ",".join([*(f'"{font}"' for font in FONTS), "sans-serif"])
STYLE = f"""
body{{font:14px/1.5 -apple-system,{FONT_STACK};color:#222;margin:0;background:#f6f7f9}}
main{{max-width:1000px;margin:0 auto;padding:24px;background:#fff}}
h1{{font-size:22px;margin:0 0 4px}}h2{{font-size:18px;margin:28px 0 8px;border-bottom:1px solid #ddd}}
h3{{font-size:15px;margin:18px 0 6px}}.meta,.more,.empty,.en{{color:#666}}
.en{{font-size:.85em;font-weight:400}}h2 .empty{{font-size:14px;font-weight:400;margin-left:8px}}
section.empty h2{{margin:16px 0 0}}p.empty{{margin:6px 0}}
.scroll{{overflow-x:auto;width:fit-content;max-width:100%;margin:6px 0;border:1px solid #eee;border-radius:4px}}
table{{border-collapse:collapse;font-size:13px}}
th,td{{padding:3px 8px;border-bottom:1px solid #eee;text-align:left;vertical-align:top;background:#fff}}
th{{background:#f0f2f5;font-weight:600;line-height:1.25}}
th:first-child,td:first-child{{position:sticky;left:0}}
th,td{{white-space:nowrap}}td.num{{text-align:right;font-variant-numeric:tabular-nums}}
td.long{{white-space:normal;min-width:16em}}
tr.miss td{{background:#fdecea}}.mark-miss{{color:#c0392b;font-weight:600}}.mark-met{{color:#2e8540}}
.misses{{border:1px solid #e6b0aa;background:#fdf3f2;padding:8px 16px;border-radius:6px}}
.misses h2{{border:0;margin:4px 0;color:#c0392b}}.ok{{border-color:#a9dfbf;background:#f1faf4}}
.ok h2{{color:#2e8540}}figure{{margin:12px 0}}figcaption{{color:#444;font-size:13px}}
figure svg{{display:block;width:100%;max-width:800px;height:auto}}
figure svg *{{stroke-linejoin:round;stroke-linecap:butt}}
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
    """The whole page; `charts` default to drawing the review's four charts."""
    figures = {chart.key: _figure(chart) for chart in (charts or review_charts(review))}
    nothing = Empty()
    title = f"{SECTIONS['review']} {period(review)} · {scope(review)}"
    sections = [
        f"<header><h1>{escape(title)}</h1>"
        f'<p class="meta">生成于 Generated {escape(generated(review))}</p></header>',
        _misses(review.headline),
        _section("headline", _kpi_table(review.headline), figures.get("daily", nothing)),
        _section("breakdowns", _breakdowns(review.tables)),
        _section(
            "skip_reasons",
            figures.get("skip_reasons", nothing),
            _table(_skip_rows(review.skip_reasons), key="skip_reasons"),
        ),
        _section("uplift", figures.get("uplift", nothing), _uplift_table(review.uplift)),
        _section(
            "after_touch",
            figures.get("after_touch", nothing),
            _table(review.after_touch, key="after_touch"),
        ),
        _section("loyalty", _table(review.loyalty, key="loyalty")),
        _section("staff_confirmation", _table(review.staff_confirmation, key="staff_confirmation")),
        _section("method", _list(review.notes)),
    ]
    body = "\n".join(part for part in sections if part)
    return (
        '<!doctype html>\n<html lang="zh-CN">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{escape(title)}</title>\n<style>{STYLE}</style>\n</head>\n"
        f"<body><main>\n{body}\n</main></body>\n</html>\n"
    )


# ---------------------------------------------------------------- page parts


def _section(key: str, *parts: Part) -> str:
    """A section with its parts, an empty one as its line; the section one line when all are empty."""
    title = _label(SECTIONS[key])
    if all(isinstance(part, Empty) for part in parts):
        return f'<section class="empty"><h2>{title}{_no_data("span").line}</h2></section>'
    content = "\n".join(line for line in map(_html, parts) if line)
    return f"<section><h2>{title}</h2>\n{content}\n</section>"


def _figure(chart: Chart) -> Part:
    if chart.svg is None:
        return Empty(f'<p class="empty">{escape(chart.title)}:{escape(str(NO_DATA))}</p>')
    svg = chart.svg.replace("<svg ", f'<svg role="img" aria-label="{escape(chart.alt)}" ', 1)
    return f'<figure class="chart"><figcaption>{escape(chart.title)}</figcaption>\n{svg}</figure>'


def _misses(headline: Sequence[Kpi]) -> str:
    misses = [kpi for kpi in headline if kpi.met is False]
    if misses:
        items = "".join(
            f"<li><b>{_label(kpi_label(kpi))}</b>:{escape(format_value(kpi.value, kpi.unit))} "
            f"(目标 target {escape(format_target(kpi))})</li>"
            for kpi in misses
        )
        return (
            f'<section class="misses"><h2>✗ {len(misses)} 项未达标 '
            f'<span class="en">missed</span></h2><ul>{items}</ul></section>'
        )
    if any(kpi.met for kpi in headline):
        return '<section class="misses ok"><h2>✓ 全部达标 <span class="en">all targets met</span></h2></section>'
    return ""


def _kpi_table(headline: Sequence[Kpi]) -> Part:
    if not headline:
        return _no_data()
    rows = []
    for kpi in headline:
        css = "mark-miss" if kpi.met is False else "mark-met" if kpi.met else ""
        rows.append(
            f"<tr{' class=miss' if kpi.met is False else ''}><td>{_label(kpi_label(kpi))}</td>"
            f'<td class="num">{escape(format_value(kpi.value, kpi.unit))}</td>'
            f'<td class="num">{escape(format_target(kpi))}</td>'
            f'<td class="{css}">{escape(kpi_mark(kpi))}</td></tr>'
        )
    head = _head([Label("指标", "KPI"), Label("数值", "value"), Label("目标", "target"), Label("")])
    return _box(f"<table>{head}<tbody>{''.join(rows)}</tbody></table>")


def _breakdowns(tables: dict[str, list[Row]]) -> Part:
    keys = [k for k in BREAKDOWNS if tables.get(k)]
    keys += [k for k in tables if k not in BREAKDOWNS and tables[k]]
    if not keys:
        return _no_data()
    return "\n".join(
        f"<h3>{_label(BREAKDOWN_TITLES.get(k, Label(k.replace('_', ' '))))}</h3>"
        + _html(_table(tables[k], key=k))
        for k in keys
    )


def _table(rows: Sequence[Row], *, key: str) -> Part:
    if not rows:
        return _no_data()
    every = ordered_columns(rows)
    quiet = [c for c in every if c in QUIET_WHEN_ZERO and all(row.get(c) == 0 for row in rows)]
    columns = [c for c in every if c not in quiet]
    shown = shown_rows(rows, key)
    body = "".join(
        "<tr>" + "".join(_cell(row.get(c), format_cell(c, row.get(c))) for c in columns) + "</tr>"
        for row in shown
    )
    notes = []
    if more := len(rows) - len(shown):
        notes.append(
            f"显示最大的 {len(shown):,} 行(共 {len(rows):,} 行),另有 {more:,} 行未显示 · "
            f"showing the {len(shown):,} largest of {len(rows):,} rows"
        )
    if quiet:
        notes.append(
            "全为 0、未列出 · all zero, not shown:" + ",".join(map(str, map(column_label, quiet)))
        )
    table = f"<table>{_head([column_label(c) for c in columns])}<tbody>{body}</tbody></table>"
    return _box(table) + "".join(f'<p class="more">{escape(note)}</p>' for note in notes)


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


def _uplift_table(rows: Sequence[Uplift]) -> Part:
    if not rows:
        return _no_data()
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
            + _cell(None, uplift_reading(row))
            + "</tr>"
        )
    return _box(f"<table>{_head(UPLIFT_COLUMNS)}<tbody>{''.join(body)}</tbody></table>")


def _list(items: Iterable[str]) -> Part:
    lines = "".join(f"<li>{escape(item)}</li>" for item in items)
    return f"<ul>{lines}</ul>" if lines else _no_data()


def _cell(value: object, text: str) -> str:
    """A cell on one line: numbers to the right; text longer than a few words may wrap."""
    css = " class=num" if is_number(value) else " class=long" if len(text) > LONG_TEXT else ""
    return f"<td{css}>{escape(text)}</td>"


def _head(labels: Iterable[Label]) -> str:
    cells = "".join(
        f"<th>{escape(label.zh)}"
        + (f'<br><span class="en">{escape(label.en)}</span>' if label.en else "")
        + "</th>"
        for label in labels
    )
    return f"<thead><tr>{cells}</tr></thead>"


def _box(table: str) -> str:
    """A table in its own box, scrolling sideways when it is wider than the page."""
    return f'<div class="scroll">{table}</div>'


def _label(label: Label) -> str:
    english = f' <span class="en">{escape(label.en)}</span>' if label.en else ""
    return f"{escape(label.zh)}{english}"


def _html(part: Part) -> str:
    return part.line if isinstance(part, Empty) else part


def _no_data(tag: str = "p") -> Empty:
    return Empty(f'<{tag} class="empty">{escape(str(NO_DATA))}</{tag}>')
