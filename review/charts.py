"""The review's charts as PNG bytes, drawn on bare matplotlib Figures (Agg, no pyplot state)."""

from __future__ import annotations

import datetime as dt
import io
import math
import shutil
import subprocess
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from matplotlib import font_manager
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.font_manager import FontProperties
from matplotlib.ticker import FuncFormatter, MaxNLocator

from review.model import Review, Row, Uplift

SIZE = (8.0, 3.5)  # inches; at DPI 100 each PNG is a few tens of KB
DPI = 100
MAX_BARS = 12
NO_DATA = "no data in this period"
SENT, DELIVERED, ORDERS = "#a9bfdc", "#3b6ea8", "#d9822b"
GOOD, BAD, NEUTRAL = "#2e8540", "#c0392b", "#7f8c8d"

# Families with Chinese glyphs that matplotlib may already know (macOS, Windows, common Linux packages).
CJK_FAMILIES = (
    "Noto Sans CJK SC",
    "Noto Sans SC",
    "Source Han Sans SC",
    "Source Han Sans CN",
    "WenQuanYi Zen Hei",
    "WenQuanYi Micro Hei",
    "PingFang SC",
    "Hiragino Sans GB",
    "Microsoft YaHei",
    "SimHei",
    "Heiti SC",
    "Droid Sans Fallback",
)


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
        return _empty(title)
    figure, axes = _figure()
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
    axes.yaxis.set_major_formatter(_thousands())
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
    orders.yaxis.set_major_formatter(_thousands())
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
    return _png(figure)


def skip_reasons(rows: Sequence[Row]) -> bytes:
    """Skips per reason as horizontal bars, most common on top; the tail folded into "other"."""
    title = "Skip reasons"
    counts = _top(
        [(r.get("reason"), _num(r.get("count"))) for r in rows if _num(r.get("count")) > 0]
    )
    if not counts:
        return _empty(title)
    figure, axes = _figure()
    labels = _labels(reason for reason, _ in counts)
    ys = list(range(len(counts)))
    bars = axes.barh(ys, [count for _, count in counts], color=DELIVERED)
    axes.bar_label(bars, [f"{count:,.0f}" for _, count in counts], padding=3, fontsize=8)
    axes.set_yticks(ys, labels, fontproperties=_font())
    axes.invert_yaxis()
    axes.xaxis.set_major_formatter(_thousands())
    axes.set_xlabel("recipients skipped")
    axes.margins(x=0.12)
    axes.set_title(title, fontsize=10)
    return _png(figure)


def uplift(rows: Sequence[Uplift]) -> bytes:
    """Treated minus holdout conversion per SOP, in percentage points, with its 95 % CI."""
    title = "Uplift vs holdout per SOP (95 % CI)"
    measured = [row for row in rows if row.uplift is not None]
    shown = measured[:MAX_BARS]
    if not shown:
        return _empty(title)
    figure, axes = _figure()
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
    axes.set_yticks(range(len(shown)), _labels(row.sop_id for row in shown), fontproperties=_font())
    axes.set_ylim(len(shown) - 0.5, -0.5)
    axes.set_xlabel("conversion uplift, percentage points (treated − holdout)")
    axes.margins(x=0.15)
    axes.set_title(_of(title, len(shown), len(measured)), fontsize=10)
    return _png(figure)


def after_touch(rows: Sequence[Row]) -> bytes:
    """Share of people reached who deleted the contact or opted out within 7 days, per SOP."""
    title = "Deletions and opt-outs within 7 days of a touch"
    ranked = sorted(rows, key=lambda row: -_num(row.get("touched")))
    shown = ranked[:MAX_BARS]
    if not shown:
        return _empty(title)
    figure, axes = _figure()
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
    axes.set_yticks(ys, _labels(row.get("sop_id") for row in shown), fontproperties=_font())
    axes.invert_yaxis()
    axes.xaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:.1f}%"))
    axes.set_xlabel("share of people reached (bar labels: people)")
    axes.margins(x=0.12)
    axes.legend(loc="upper center", bbox_to_anchor=(0.5, -0.18), ncols=2, fontsize=8, frameon=False)
    axes.set_title(_of(title, len(shown), len(rows)), fontsize=10)
    return _png(figure)


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


# ---------------------------------------------------------------- drawing helpers


def _figure() -> tuple[Figure, Axes]:
    figure = Figure(figsize=SIZE, dpi=DPI, layout="constrained")
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    axes.spines[["top", "right"]].set_visible(False)
    axes.tick_params(labelsize=8)
    return figure, axes


def _empty(title: str) -> bytes:
    figure, axes = _figure()
    axes.axis("off")
    axes.set_title(title, fontsize=10)
    axes.text(
        0.5,
        0.5,
        NO_DATA,
        ha="center",
        va="center",
        fontsize=12,
        color=NEUTRAL,
        transform=axes.transAxes,
    )
    return _png(figure)


def _png(figure: Figure) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=DPI, metadata={"Software": None})
    return buffer.getvalue()


def _thousands() -> FuncFormatter:
    return FuncFormatter(lambda value, _: f"{value:,.0f}")


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
    return _labels([value])[0]


# ---------------------------------------------------------------- fonts and labels


@cache
def _font() -> FontProperties:
    """A font with Chinese glyphs when one is installed, else matplotlib's default sans."""
    path = _cjk_font_file()
    return (
        FontProperties(fname=path, size=8) if path else FontProperties(family="DejaVu Sans", size=8)
    )


def _cjk_font_file() -> str | None:
    for entry in font_manager.fontManager.ttflist:
        if entry.name in CJK_FAMILIES:
            return str(entry.fname)
    fc_list = shutil.which("fc-list")
    if not fc_list:
        return None
    try:
        listing = subprocess.run(
            [fc_list, ":lang=zh", "file"], capture_output=True, text=True, timeout=10, check=False
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    files = [line.split(":")[0].strip() for line in listing.splitlines()]
    usable = [f for f in files if Path(f).suffix.lower() in {".ttf", ".otf", ".ttc"}]
    # Regular sans faces read best at 8 pt; bold and serif (Ming) faces only when nothing else is.
    usable.sort(
        key=lambda f: ("bold" in f.lower(), not any(s in f.lower() for s in ("sans", "hei")), f)
    )
    return usable[0] if usable else None


@cache
def _has_glyph(character: str) -> bool:
    font = font_manager.get_font(font_manager.findfont(_font()))
    return character.isspace() or font.get_char_index(ord(character)) != 0


def _labels(values: Iterable[Any], limit: int = 28) -> list[str]:
    """Labels the chart font can draw: missing glyphs shown as "…" (never a warning), "#n" when nothing is left."""
    labels = []
    for number, value in enumerate(values, start=1):
        text = ""
        for character in " ".join(str(value if value is not None else "—").split()):
            if _has_glyph(character):
                text += character
            elif not text.endswith("…"):
                text += "…"
        if not any(character.isalnum() for character in text):
            text = f"#{number}"
        if len(text) > limit:
            text = text[: limit - 1] + "…"
        labels.append(text.replace("$", r"\$"))  # "$" would start mathtext
    return labels
