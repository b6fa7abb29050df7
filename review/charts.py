"""The review's four charts, each as inline SVG (or nothing when the period has no data) with a text alternative."""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from matplotlib.ticker import PercentFormatter

from review.chart_canvas import (
    BAD,
    DELIVERED,
    GOOD,
    NEUTRAL,
    ORDERS,
    SENT,
    bar_height,
    count_axis,
    headroom,
    new_figure,
    styled,
    svg_markup,
)
from review.labels import NO_DATA
from review.model import Review, Row, Uplift

MAX_BARS = 12
LABEL_LIMIT = 28  # characters of an SOP id or a skip reason on a chart; the tables have them whole
TITLES = {
    "daily": "每日发送与转化 · Sends and conversions per day",
    "skip_reasons": "跳过原因 · Skip reasons",
    "uplift": "各 SOP 相对对照组的转化提升(95% 置信区间)· Uplift vs holdout per SOP",
    "after_touch": "触达后 7 天内删除好友与退订 · Deletions and opt-outs within 7 days of a touch",
}


@dataclass(frozen=True)
class Chart:
    """One chart: what the report calls it, a text alternative, and its <svg> (None: no data)."""

    key: str
    title: str
    alt: str
    svg: str | None


def review_charts(review: Review) -> list[Chart]:
    """The four charts of a review, in the order a report shows them."""
    measured = [row for row in review.uplift if row.uplift is not None]
    return [
        Chart("daily", TITLES["daily"], _daily_alt(review.daily), daily(review.daily)),
        Chart(
            "skip_reasons",
            TITLES["skip_reasons"],
            _skip_alt(review.skip_reasons),
            skip_reasons(review.skip_reasons),
        ),
        Chart(
            "uplift",
            _of(TITLES["uplift"], min(MAX_BARS, len(measured)), len(measured)),
            _uplift_alt(review.uplift),
            uplift(review.uplift),
        ),
        Chart(
            "after_touch",
            _of(
                TITLES["after_touch"],
                min(MAX_BARS, len(review.after_touch)),
                len(review.after_touch),
            ),
            _after_touch_alt(review.after_touch),
            after_touch(review.after_touch),
        ),
    ]


# ---------------------------------------------------------------- charts


@styled
def daily(rows: Sequence[Row]) -> str | None:
    """Sent and delivered per day as bars, orders attributed as a line on a second axis."""
    rows = sorted(rows, key=lambda row: str(row.get("day")))
    columns = ("sent", "delivered", "orders")
    if not any(_num(row.get(column)) for row in rows for column in columns):
        return None
    figure, axes = new_figure()
    xs = list(range(len(rows)))
    sent, delivered, orders = ([_num(row.get(c)) for row in rows] for c in columns)
    axes.bar([x - 0.2 for x in xs], sent, 0.4, color=SENT, label="已发送 sent")
    axes.bar([x + 0.2 for x in xs], delivered, 0.4, color=DELIVERED, label="已送达 delivered")
    axes.set_ylabel("消息数 messages")
    axes.set_ylim(0, headroom(max(sent + delivered)))
    count_axis(axes.yaxis)
    line = axes.twinx()
    line.plot(xs, orders, color=ORDERS, marker="o", markersize=3, label="归因订单 orders")
    line.set_ylabel("归因订单 orders", color=ORDERS)
    line.set_ylim(0, headroom(max(orders)))
    line.spines["top"].set_visible(False)
    line.tick_params(labelsize=8)
    count_axis(line.yaxis)
    step = max(1, math.ceil(len(rows) / 12))
    axes.set_xticks(xs[::step], [_day(r.get("day")) for r in rows[::step]], fontsize=8)
    bars, names = axes.get_legend_handles_labels()
    more, more_names = line.get_legend_handles_labels()
    figure.legend(
        bars + more,
        names + more_names,
        loc="outside lower center",
        ncols=3,
        fontsize=8,
        frameon=False,
        columnspacing=3,
    )
    return svg_markup(figure, "daily")


@styled
def skip_reasons(rows: Sequence[Row]) -> str | None:
    """Skips per reason as horizontal bars, most common on top; the tail folded into "other"."""
    counts = _top(_skip_counts(rows))
    if not counts:
        return None
    figure, axes = new_figure(bar_height(len(counts)))
    ys = list(range(len(counts)))
    bars = axes.barh(ys, [count for _, count in counts], color=DELIVERED)
    axes.bar_label(bars, [f"{count:,.0f}" for _, count in counts], padding=3, fontsize=8)
    axes.set_yticks(ys, _labels(reason for reason, _ in counts))
    axes.invert_yaxis()
    axes.set_xlim(0, headroom(max(count for _, count in counts)) * 1.1)
    count_axis(axes.xaxis)
    axes.set_xlabel("跳过人次 recipients skipped")
    return svg_markup(figure, "skip_reasons")


@styled
def uplift(rows: Sequence[Uplift]) -> str | None:
    """Treated minus holdout conversion per SOP, in percentage points, with its 95 % CI."""
    shown = [row for row in rows if row.uplift is not None][:MAX_BARS]
    if not shown:
        return None
    figure, axes = new_figure(bar_height(len(shown)))
    for y, row in enumerate(shown):
        value = 100 * (row.uplift or 0.0)
        if row.ci_low is not None and row.ci_high is not None:
            low, high = 100 * row.ci_low, 100 * row.ci_high
            color = GOOD if low > 0 else BAD if high < 0 else NEUTRAL
            error = [[max(0.0, value - low)], [max(0.0, high - value)]]
        else:
            high, color, error = value, NEUTRAL, None
        axes.errorbar([value], [y], xerr=error, fmt="o", color=color, capsize=4)
        axes.annotate(
            f"{value:+.1f} pp",
            (max(value, high), y),
            xytext=(6, 0),
            textcoords="offset points",
            va="center",
            fontsize=8,
        )
    axes.axvline(0, color="black", linewidth=0.8)
    axes.set_yticks(range(len(shown)), _labels(row.sop_id for row in shown))
    axes.set_ylim(len(shown) - 0.5, -0.5)
    axes.xaxis.set_major_formatter(PercentFormatter(xmax=100, symbol=" pp"))
    axes.set_xlabel("转化提升,百分点(干预组 − 对照组)conversion uplift, pp (treated − holdout)")
    axes.margins(x=0.15)
    return svg_markup(figure, "uplift")


@styled
def after_touch(rows: Sequence[Row]) -> str | None:
    """Share of people reached who deleted the contact or opted out within 7 days, per SOP."""
    shown = sorted(rows, key=lambda row: -_num(row.get("touched")))[:MAX_BARS]
    if not shown:
        return None
    figure, axes = new_figure(bar_height(len(shown), extra=0.4))
    ys = list(range(len(shown)))
    largest = 0.0
    for offset, (share, count, label, color) in zip(
        (-0.2, 0.2),
        (
            ("deletion_rate", "deleted_7d", "删除好友 deleted", BAD),
            ("opt_out_rate", "opted_out_7d", "退订 opted out", ORDERS),
        ),
        strict=True,
    ):
        values = [100 * _rate(row, share, count) for row in shown]
        largest = max(largest, *values)
        bars = axes.barh([y + offset for y in ys], values, 0.4, color=color, label=label)
        axes.bar_label(
            bars, [f"{_num(row.get(count)):,.0f}" for row in shown], padding=3, fontsize=7
        )
    axes.set_yticks(ys, _labels(row.get("sop_id") for row in shown))
    axes.invert_yaxis()
    axes.set_xlim(0, max(largest, 1.0) * 1.2)  # at least 0–1 %, so a period without leavers reads
    axes.xaxis.set_major_formatter(PercentFormatter(xmax=100))
    axes.set_xlabel("占触达人次的比例(柱旁数字为人数)share of people reached (bar labels: people)")
    axes.legend(
        loc="upper center",
        bbox_to_anchor=(0.5, -0.3),
        ncols=2,
        fontsize=8,
        frameon=False,
        columnspacing=3,
    )
    return svg_markup(figure, "after_touch")


# ---------------------------------------------------------------- alt texts


def _daily_alt(rows: Sequence[Row]) -> str:
    total = {key: sum(_num(r.get(key)) for r in rows) for key in ("sent", "delivered", "orders")}
    if not any(total.values()):
        return f"{TITLES['daily']}:{NO_DATA}"
    return (
        f"{TITLES['daily']},共 {len(rows)} 天:已发送 {total['sent']:,.0f},"
        f"已送达 {total['delivered']:,.0f},归因订单 {total['orders']:,.0f}。"
    )


def _skip_alt(rows: Sequence[Row]) -> str:
    counts = _top(_skip_counts(rows))
    if not counts:
        return f"{TITLES['skip_reasons']}:{NO_DATA}"
    listed = ";".join(f"{reason} {count:,.0f}" for reason, count in counts[:5])
    return f"{TITLES['skip_reasons']},共跳过 {sum(c for _, c in counts):,.0f} 人次:{listed}。"


def _uplift_alt(rows: Sequence[Uplift]) -> str:
    measured = [row for row in rows if row.uplift is not None]
    if not measured:
        return f"{TITLES['uplift']}:{NO_DATA}"
    listed = ";".join(
        f"{row.sop_id} {100 * (row.uplift or 0):+.1f} pp" for row in measured[:MAX_BARS]
    )
    return f"{TITLES['uplift']}(百分点):{listed}。"


def _after_touch_alt(rows: Sequence[Row]) -> str:
    if not rows:
        return f"{TITLES['after_touch']}:{NO_DATA}"
    total = {
        key: sum(_num(r.get(key)) for r in rows)
        for key in ("touched", "deleted_7d", "opted_out_7d")
    }
    return (
        f"{TITLES['after_touch']},{len(rows)} 个 SOP:触达 {total['touched']:,.0f} 人次,"
        f"删除好友 {total['deleted_7d']:,.0f},退订 {total['opted_out_7d']:,.0f}。"
    )


# ---------------------------------------------------------------- what the charts are drawn from


def _of(title: str, shown: int, total: int) -> str:
    return (
        f"{title}(前 {shown} 个,共 {total} 个 · top {shown} of {total})" if total > shown else title
    )


def _skip_counts(rows: Sequence[Row]) -> list[tuple[Any, float]]:
    return [(r.get("reason"), _num(r.get("count"))) for r in rows if _num(r.get("count")) > 0]


def _top(counts: list[tuple[Any, float]]) -> list[tuple[Any, float]]:
    """The largest counts, the rest summed into one "other" bar so a long tail stays readable."""
    ranked = sorted(counts, key=lambda item: -item[1])
    if len(ranked) <= MAX_BARS:
        return ranked
    head, tail = ranked[: MAX_BARS - 1], ranked[MAX_BARS - 1 :]
    return [*head, (f"其他 other({len(tail)} 个原因)", sum(count for _, count in tail))]


def _labels(values: Any) -> list[str]:
    """Labels for a chart's categories: one line, "—" for nothing, long ones cut with "…"."""
    labels = []
    for value in values:
        text = " ".join(str(value if value is not None else "—").split()) or "—"
        labels.append(text if len(text) <= LABEL_LIMIT else text[: LABEL_LIMIT - 1] + "…")
    return labels


def _num(value: Any) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return 0.0
    return number if math.isfinite(number) else 0.0


def _rate(row: Row, share: str, count: str) -> float:
    if row.get(share) is not None:
        return _num(row.get(share))
    touched = _num(row.get("touched"))
    return _num(row.get(count)) / touched if touched else 0.0


def _day(value: Any) -> str:
    if isinstance(value, str):
        try:
            value = dt.date.fromisoformat(value)
        except ValueError:
            pass
    if isinstance(value, dt.date):
        return value.strftime("%m-%d")
    return _labels([value])[0]
