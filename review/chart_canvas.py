"""The review charts' canvas: a bare matplotlib Figure (Agg, no pyplot state), its colours and its PNG."""

from __future__ import annotations

import io

from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter

SIZE = (8.0, 3.5)  # inches; at DPI 100 each PNG is a few tens of KB
DPI = 100
NO_DATA = "no data in this period"
SENT, DELIVERED, ORDERS = "#a9bfdc", "#3b6ea8", "#d9822b"
GOOD, BAD, NEUTRAL = "#2e8540", "#c0392b", "#7f8c8d"


def new_figure() -> tuple[Figure, Axes]:
    """One chart's figure and axes: the report's size, no top or right spine, small ticks."""
    figure = Figure(figsize=SIZE, dpi=DPI, layout="constrained")
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    axes.spines[["top", "right"]].set_visible(False)
    axes.tick_params(labelsize=8)
    return figure, axes


def empty_chart(title: str) -> bytes:
    """A chart that says there is no data in this period."""
    figure, axes = new_figure()
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
    return png_bytes(figure)


def png_bytes(figure: Figure) -> bytes:
    """The figure as PNG bytes, without matplotlib's "Software" stamp."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=DPI, metadata={"Software": None})
    return buffer.getvalue()


def thousands() -> FuncFormatter:
    """Tick labels as whole numbers with thousands separators."""
    return FuncFormatter(lambda value, _: f"{value:,.0f}")
