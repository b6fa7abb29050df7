"""The review's charts: inline SVG whose Chinese text the reader's browser draws, integer axes, empty charts as one line."""

from __future__ import annotations

import re
import warnings
import xml.etree.ElementTree as ET
from collections.abc import Iterator

import matplotlib as mpl
import pytest
from matplotlib.font_manager import FontProperties
from matplotlib.textpath import TextToPath

from review.chart_canvas import STYLE
from review.charts import Chart, review_charts
from review.html import render_html
from tests.review.samples import quiet_review, sample_review

SVG = re.compile(r"<svg\b.*?</svg>", re.DOTALL)
NO_DATA = "本期无数据 · no data this period"


@pytest.fixture(autouse=True)
def prefect_harness() -> Iterator[None]:
    """Rendering needs no Prefect server: these tests skip the session's one."""
    yield


@pytest.fixture(scope="module")
def sample_charts() -> list[Chart]:
    """The sample review's charts, drawn once with every warning an error (a CJK label the server
    has no glyph for must not warn: the browser draws it)."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        return review_charts(sample_review())


@pytest.fixture(scope="module")
def quiet_charts() -> list[Chart]:
    return review_charts(quiet_review())


@pytest.fixture(scope="module")
def page(sample_charts: list[Chart]) -> str:
    return render_html(sample_review(), sample_charts)


def svg_texts(svg: str) -> list[str]:
    """Every text the browser draws in one chart, in document order."""
    return ["".join(node.itertext()) for node in ET.fromstring(svg).iterfind(".//{*}text")]


def tick_labels(svg: str) -> dict[str, list[str]]:
    """Each axis of a chart (by its id) with the labels of its ticks."""
    axes = {}
    for axis in ET.fromstring(svg).iterfind(".//{*}g"):
        if "matplotlib.axis" in axis.get("id", ""):
            ticks = [g for g in axis.iterfind(".//{*}g") if "tick_" in g.get("id", "")]
            axes[axis.get("id", "")] = [
                "".join(text.itertext()) for tick in ticks for text in tick.iterfind(".//{*}text")
            ]
    return axes


def test_chart_text_is_chinese_text_inside_svg_for_the_browser_to_draw(page: str) -> None:
    """Labels are <text> in the SVG with a CJK font stack, not pixels or glyph outlines: Chinese
    shows in the reader's browser whatever fonts the server has."""
    assert '<img src="data:image/png' not in page
    charts = SVG.findall(page)
    texts = [text for svg in charts for text in svg_texts(svg)]
    for label in (
        "已发送 sent",
        "已送达 delivered",
        "归因订单 orders",
        "消息数 messages",
        "跳过人次 recipients skipped",
        "已退订",
        "删除好友 deleted",
        "退订 opted out",
    ):
        assert label in texts, label
    assert "11-01" in texts and "double-11-warmup" in texts
    assert "DejaVuSans-" not in page  # no glyph outlines: the text is text
    styles = re.findall(r'<text[^>]* style="([^"]*)"', "".join(charts))
    assert styles and all("'Noto Sans CJK SC'" in s and "'Microsoft YaHei'" in s for s in styles)
    assert '"PingFang SC"' in page.split("</style>")[0]  # the page's own text, same stack


@pytest.mark.parametrize("drawn", ["sample_charts", "quiet_charts"])
def test_chart_axes_label_each_tick_once(drawn: str, request: pytest.FixtureRequest) -> None:
    """Counts are whole numbers and no axis repeats a label (a day of no orders drew "0 0 0 0")."""
    charts = [chart for chart in request.getfixturevalue(drawn) if chart.svg]

    axes = {
        f"{chart.key}/{axis}": ticks
        for chart in charts
        for axis, ticks in tick_labels(chart.svg).items()
    }
    assert len(axes) >= 7  # daily has three axes, the others two each
    for axis, ticks in axes.items():
        assert ticks and len(ticks) == len(set(ticks)), (axis, ticks)
    orders = axes["daily/daily-matplotlib.axis_3"]  # the twin on the right (its x axis is hidden)
    assert all(re.fullmatch(r"\d[\d,]*", tick) for tick in orders), orders


def test_a_chart_without_data_is_one_line_in_its_section(quiet_charts: list[Chart]) -> None:
    """No uplift measured: the section keeps its table, the chart is a line instead of a blank box."""
    html = render_html(quiet_review(), quiet_charts)

    assert len(SVG.findall(html)) == 3
    assert (
        f'<p class="empty">各 SOP 相对对照组的转化提升(95% 置信区间)· Uplift vs holdout per SOP:{NO_DATA}</p>'
        in html
    )
    assert "未测量(无对照组) not measured (no holdout)" in html


def test_charts_draw_chinese_labels_without_warnings(sample_charts: list[Chart]) -> None:
    """Four charts, drawn without a warning whatever fonts the server has (see `sample_charts`)."""
    assert [chart.key for chart in sample_charts] == [
        "daily",
        "skip_reasons",
        "uplift",
        "after_touch",
    ]
    assert all(chart.svg and chart.svg.startswith("<svg") for chart in sample_charts)


def test_the_server_lays_chinese_out_at_least_as_wide_as_the_browser_draws_it() -> None:
    """Whatever the server measures a Chinese character with (a CJK font, or DejaVu Sans's
    missing-glyph box), it takes at least 1 em: a label the browser draws fits the room laid out."""
    with mpl.rc_context(STYLE), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        width, _, _ = TextToPath().get_text_width_height_descent(
            "跳过人次", FontProperties(size=10), ismath=False
        )

    assert width >= 4 * 10
