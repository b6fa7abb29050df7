"""The review's four charts, each drawn as PNG bytes with a one-sentence text alternative."""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from matplotlib.ticker import FuncFormatter, MaxNLocator

from review.chart_canvas import (
    BAD,
    DELIVERED,
    GOOD,
    NEUTRAL,
    NO_DATA,
    ORDERS,
    SENT,
    empty_chart,
    new_figure,
    png_bytes,
    thousands,
)
from review.chart_fonts import drawable_labels, label_font
from review.model import Review, Row, Uplift

MAX_BARS = 12


@dataclass(frozen=True)
class Chart:
    """One rendered chart: what the report calls it, a text alternative, and the PNG."""

    key: str
    title: str
    alt: str
    png: bytes


def review_charts(review: Review) -> list[Chart]:
    """The four charts of a review, in the order a report shows them."""
    return [
        Chart(
            "daily",
            "Sends and conversions per day",
            _daily_alt(review.daily),
            sends_and_conversions(review.daily),
        ),
        Chart(
            "skip_reasons",
            "Skip reasons",
            _skip_alt(review.skip_reasons),
            skip_reasons(review.skip_reasons),
        ),
        Chart(
            "uplift", "Uplift vs holdout per SOP", _uplift_alt(review.uplift), uplift(review.uplift)
        ),
        Chart(
            "after_touch",
            "Deletions and opt-outs within 7 days of a touch",
            _after_touch_alt(review.after_touch),
            after_touch(review.after_touch),
        ),
    ]


# ---------------------------------------------------------------- charts


def sends_and_conversions(daily: Sequence[Row]) -> bytes:
    """Sent and delivered per day as bars, orders attributed as a line on a second axis."""
    title = "Sends and conversions per day"
    rows = sorted(daily, key=lambda row: str(row.get("day")))
    if not rows:
        return empty_chart(title)
    figure, axes = new_figure()
    xs = list(range(len(rows)))
    axes.bar(
        [x - 0.2 for x in xs], [_num(r.get("sent")) for r in rows], 0.4, color=SENT, label="sent"
    )
    axes.bar(
        [x + 0.2 for x in xs],
        [_num(r.get("delivered")) for r in rows],
        0.4,
        color=DELIVERED,
        label="delivered",
    )
    axes.set_ylabel("messages")
    axes.yaxis.set_major_formatter(thousands())
    orders = axes.twinx()
    orders.plot(
        xs,
        [_num(r.get("orders")) for r in rows],
        color=ORDERS,
        marker="o",
        markersize=3,
        label="orders attributed",
    )
    orders.set_ylabel("orders attributed", color=ORDERS)
    orders.set_ylim(bottom=0)
    orders.yaxis.set_major_locator(MaxNLocator(integer=True))
    orders.yaxis.set_major_formatter(thousands())
    step = max(1, math.ceil(len(rows) / 12))
    axes.set_xticks(xs[::step], [_day(r.get("day")) for r in rows[::step]], fontsize=8)
    handles = axes.get_legend_handles_labels()
    more = orders.get_legend_handles_labels()
    figure.legend(
        handles[0] + more[0],
        handles[1] + more[1],
        loc="outside lower center",
        ncols=3,
        fontsize=8,
        frameon=False,
    )
    axes.set_title(title, fontsize=10)
    return png_bytes(figure)


def skip_reasons(rows: Sequence[Row]) -> bytes:
    """Skips per reason as horizontal bars, most common on top; the tail folded into "other"."""
    title = "Skip reasons"
    counts = _top(
        [(r.get("reason"), _num(r.get("count"))) for r in rows if _num(r.get("count")) > 0]
    )
    if not counts:
        return empty_chart(title)
    figure, axes = new_figure()
    labels = drawable_labels(reason for reason, _ in counts)
    ys = list(range(len(counts)))
    bars = axes.barh(ys, [count for _, count in counts], color=DELIVERED)
    axes.bar_label(bars, [f"{count:,.0f}" for _, count in counts], padding=3, fontsize=8)
    axes.set_yticks(ys, labels, fontproperties=label_font())
    axes.invert_yaxis()
    axes.xaxis.set_major_formatter(thousands())
    axes.set_xlabel("recipients skipped")
    axes.margins(x=0.12)
    axes.set_title(title, fontsize=10)
    return png_bytes(figure)


def uplift(rows: Sequence[Uplift]) -> bytes:
    """Treated minus holdout conversion per SOP, in percentage points, with its 95 % CI."""
    title = "Uplift vs holdout per SOP (95 % CI)"
    measured = [row for row in rows if row.uplift is not None]
    shown = measured[:MAX_BARS]
    if not shown:
        return empty_chart(title)
    figure, axes = new_figure()
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
    axes.set_yticks(
        range(len(shown)), drawable_labels(row.sop_id for row in shown), fontproperties=label_font()
    )
    axes.set_ylim(len(shown) - 0.5, -0.5)
    axes.set_xlabel("conversion uplift, percentage points (treated − holdout)")
    axes.margins(x=0.15)
    axes.set_title(_of(title, len(shown), len(measured)), fontsize=10)
    return png_bytes(figure)


def after_touch(rows: Sequence[Row]) -> bytes:
    """Share of people reached who deleted the contact or opted out within 7 days, per SOP."""
    title = "Deletions and opt-outs within 7 days of a touch"
    ranked = sorted(rows, key=lambda row: -_num(row.get("touched")))
    shown = ranked[:MAX_BARS]
    if not shown:
        return empty_chart(title)
    figure, axes = new_figure()
    ys = list(range(len(shown)))
    for offset, (share, count, label, color) in zip(
        (-0.2, 0.2),
        (
            ("deletion_rate", "deleted_7d", "deleted", BAD),
            ("opt_out_rate", "opted_out_7d", "opted out", ORDERS),
        ),
        strict=True,
    ):
        values = [100 * _rate(row, share, count) for row in shown]
        bars = axes.barh([y + offset for y in ys], values, 0.4, color=color, label=label)
        axes.bar_label(
            bars, [f"{_num(row.get(count)):,.0f}" for row in shown], padding=3, fontsize=7
        )
    axes.set_yticks(
        ys, drawable_labels(row.get("sop_id") for row in shown), fontproperties=label_font()
    )
    axes.invert_yaxis()
    axes.xaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:.1f}%"))
    axes.set_xlabel("share of people reached (bar labels: people)")
    axes.margins(x=0.12)
    axes.legend(loc="upper center", bbox_to_anchor=(0.5, -0.18), ncols=2, fontsize=8, frameon=False)
    axes.set_title(_of(title, len(shown), len(rows)), fontsize=10)
    return png_bytes(figure)


# ---------------------------------------------------------------- alt texts


def _daily_alt(rows: Sequence[Row]) -> str:
    if not rows:
        return f"Sends and conversions per day: {NO_DATA}."
    total = {key: sum(_num(r.get(key)) for r in rows) for key in ("sent", "delivered", "orders")}
    return (
        f"Sends and conversions per day over {len(rows)} days: {total['sent']:,.0f} sent, "
        f"{total['delivered']:,.0f} delivered, {total['orders']:,.0f} orders attributed."
    )


def _skip_alt(rows: Sequence[Row]) -> str:
    counts = _top(
        [(r.get("reason"), _num(r.get("count"))) for r in rows if _num(r.get("count")) > 0]
    )
    if not counts:
        return f"Skip reasons: {NO_DATA}."
    listed = "; ".join(f"{reason} {count:,.0f}" for reason, count in counts[:5])
    return f"Skip reasons, {sum(count for _, count in counts):,.0f} skipped: {listed}."


def _uplift_alt(rows: Sequence[Uplift]) -> str:
    measured = [row for row in rows if row.uplift is not None]
    if not measured:
        return f"Uplift vs holdout per SOP: {NO_DATA}."
    listed = "; ".join(
        f"{row.sop_id} {100 * (row.uplift or 0):+.1f} pp" for row in measured[:MAX_BARS]
    )
    return (
        f"Uplift vs holdout per SOP in percentage points with 95% confidence intervals: {listed}."
    )


def _after_touch_alt(rows: Sequence[Row]) -> str:
    if not rows:
        return f"Deletions and opt-outs within 7 days of a touch: {NO_DATA}."
    total = {
        key: sum(_num(r.get(key)) for r in rows)
        for key in ("touched", "deleted_7d", "opted_out_7d")
    }
    return (
        f"Deletions and opt-outs within 7 days of a touch, {len(rows)} SOPs: "
        f"{total['touched']:,.0f} customers touched, {total['deleted_7d']:,.0f} deleted the contact, "
        f"{total['opted_out_7d']:,.0f} opted out."
    )


# ---------------------------------------------------------------- what the charts are drawn from


def _of(title: str, shown: int, total: int) -> str:
    return f"{title}, top {shown} of {total}" if total > shown else title


def _top(counts: list[tuple[Any, float]]) -> list[tuple[Any, float]]:
    """The largest counts, the rest summed into one "other" bar so a long tail stays readable."""
    ranked = sorted(counts, key=lambda item: -item[1])
    if len(ranked) <= MAX_BARS:
        return ranked
    head, tail = ranked[: MAX_BARS - 1], ranked[MAX_BARS - 1 :]
    return [*head, (f"other ({len(tail)} reasons)", sum(count for _, count in tail))]


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
    return drawable_labels([value])[0]
