"""The review charts' canvas: a bare matplotlib Figure drawn as SVG whose text the reader's browser renders."""

from __future__ import annotations

import io
import re
import warnings
from collections.abc import Callable
from functools import wraps
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar

import matplotlib as mpl
from matplotlib.axes import Axes
from matplotlib.axis import Axis
from matplotlib.backends.backend_svg import FigureCanvasSVG
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, MaxNLocator

if TYPE_CHECKING:
    from matplotlib.typing import RcKeyType

WIDTH = 8.0  # inches; an SVG's user unit is a point, so a chart is 576 units wide
# Fonts with Chinese glyphs on macOS, Windows and Linux, for the page and the charts' text alike.
# The reader's browser picks the first it has. The server's matplotlib lays text out with the
# first it has: DejaVu Sans, which matplotlib ships, when none is installed — it measures a
# Chinese character as its missing-glyph box, 1.15 em, a little wider than the browser's
# glyph, so a label never outgrows the room laid out for it.
FONTS = (
    "PingFang SC",
    "Hiragino Sans GB",
    "Microsoft YaHei",
    "Noto Sans CJK SC",
    "Source Han Sans SC",
    "WenQuanYi Micro Hei",
    "DejaVu Sans",
)
STYLE: dict[RcKeyType, Any] = {
    "svg.fonttype": "none",  # text stays <text>, drawn by the browser, searchable and copyable
    "font.family": ["sans-serif"],
    "font.sans-serif": list(FONTS),
    "font.size": 9,
    "text.parse_math": False,  # a "$" in an SOP id is a dollar sign
    "axes.unicode_minus": False,
}
SENT, DELIVERED, ORDERS = "#a9bfdc", "#3b6ea8", "#d9822b"
GOOD, BAD, NEUTRAL = "#2e8540", "#c0392b", "#7f8c8d"
_IDS = re.compile(r'(\bid="|url\(#|xlink:href="#)')
# Left out of inline SVG: metadata, and a <style> that would style the whole page (html.py scopes it).
_LEFT_OUT = re.compile(
    r"\s*<metadata>.*?</metadata>|\s*<defs>\s*<style[^>]*>.*?</style>\s*</defs>", re.DOTALL
)

P = ParamSpec("P")
R = TypeVar("R")


def styled(draw: Callable[P, R]) -> Callable[P, R]:
    """Run a chart function in the charts' style (matplotlib's settings restored after)."""

    @wraps(draw)
    def drawing(*args: P.args, **kwargs: P.kwargs) -> R:
        with mpl.rc_context(STYLE):
            return draw(*args, **kwargs)

    return drawing


def new_figure(height: float = 3.2) -> tuple[Figure, Axes]:
    """One chart's figure and axes: the report's width, no top or right spine, small ticks."""
    figure = Figure(figsize=(WIDTH, height), layout="constrained")
    FigureCanvasSVG(figure)
    axes = figure.add_subplot()
    axes.spines[["top", "right"]].set_visible(False)
    axes.tick_params(labelsize=8)
    return figure, axes


def bar_height(bars: int, extra: float = 0.0) -> float:
    """A horizontal bar chart's height in inches: a fixed frame plus a slice per bar."""
    return max(1.6, 0.9 + 0.3 * bars + extra)


def svg_markup(figure: Figure, key: str) -> str:
    """The figure as an <svg> element to inline in HTML, its ids prefixed with `key` to stay unique."""
    buffer = io.StringIO()
    with warnings.catch_warnings():
        # Without a Chinese font on the server matplotlib measures with DejaVu Sans and warns
        # per missing glyph; the reader's browser draws the text, so the warning says nothing.
        warnings.filterwarnings("ignore", r"Glyph \d+ .*missing from font", UserWarning)
        with mpl.rc_context({"svg.hashsalt": key}):
            figure.savefig(buffer, format="svg", metadata={"Date": None, "Creator": None})
    markup = _LEFT_OUT.sub("", buffer.getvalue())
    markup = markup[markup.index("<svg") :]
    return _IDS.sub(lambda match: f"{match.group(1)}{key}-", markup)


def count_axis(axis: Axis) -> None:
    """Whole numbers from 0 with thousands separators, each tick once (never "0 0 0 0")."""
    axis.set_major_locator(MaxNLocator(integer=True, min_n_ticks=2))
    axis.set_major_formatter(thousands())


def headroom(largest: float) -> float:
    """The top of a count axis: a little above the largest value, and at least 1."""
    return max(1.0, largest) * 1.08


def thousands() -> FuncFormatter:
    """Tick labels as whole numbers with thousands separators."""
    return FuncFormatter(lambda value, _: f"{value:,.0f}")
