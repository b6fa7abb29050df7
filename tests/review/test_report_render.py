"""Review reports: the HTML page in Chinese (sections, tables, inline charts) and the markdown and rows for Prefect artifacts."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from review.html import render_html, report_name, write_report
from review.markdown import headline_markdown, table_rows
from review.model import Uplift
from tests.review.samples import SCRIPT, empty_review, sample_review

SVG = re.compile(r"<svg\b.*?</svg>", re.DOTALL)
ARIA = re.compile(r'<svg role="img" aria-label="([^"]*)"')
NO_DATA = "本期无数据 · no data this period"


@pytest.fixture(autouse=True)
def prefect_harness() -> Iterator[None]:
    """Rendering needs no Prefect server: these tests skip the session's one."""
    yield


@pytest.fixture(scope="module")
def page() -> str:
    """The sample review's page, rendered once for the tests that only read it."""
    return render_html(sample_review())


def test_report_is_written_with_four_inline_charts_and_no_external_resources(
    tmp_path: Path,
) -> None:
    """The page lands in a new folder, named by its period, with every chart as inline SVG."""
    path = write_report(sample_review(), tmp_path / "reports")

    assert path == tmp_path / "reports" / "review-2024-11-01-2024-11-07.html"
    html = path.read_text(encoding="utf-8")
    assert len(SVG.findall(html)) == 4
    alts = ARIA.findall(html)
    assert alts[0].startswith("每日发送与转化 · Sends and conversions per day,共 3 天:已发送 1,140")
    assert alts[1].startswith("跳过原因 · Skip reasons,共跳过 157 人次")
    assert alts[2].startswith("各 SOP 相对对照组的转化提升")
    assert alts[3].startswith("触达后 7 天内删除好友与退订")
    assert "<img" not in html and "<script" not in html
    assert not re.search(r'(?:src|href)="(?!#)|url\((?!#)|@import', html)
    ids = re.findall(r'\bid="([^"]+)"', html)
    assert len(ids) == len(set(ids)), "ids of the four inline charts collide"
    assert len(html) < 600_000


def test_misses_come_first_and_numbers_are_formatted(page: str) -> None:
    """A missed target is in the misses box above the headline table, marked and highlighted."""
    html = page
    conversion = '转化率(归因订单 / 触达人数) <span class="en">Conversion (orders attributed / delivered)</span>'

    misses = html.index("1 项未达标")
    assert misses < html.index('<h2>核心指标 <span class="en">Headline</span></h2>')
    assert f"<b>{conversion}</b>:2.1% (目标 target ≥ 3.0%)" in html
    assert f"<tr class=miss><td>{conversion}</td>" in html
    assert "<td>Open rate</td>" in html  # a KPI without a Chinese name keeps its own label
    assert "✓ 达标 met" in html and "✗ 未达标 missed" in html and "无目标 no target" in html
    assert "¥12,345.60" in html and "1,234" in html
    assert "华东" in html and "2024-11-08 09:30 (Asia/Shanghai)" in html
    assert (
        "+1.5 pp" in html and "+0.3 ~ +2.8 pp" in html and "优于对照组 better than holdout" in html
    )
    assert "25 分钟" in html and "4.20" in html and "社群成员 group members" in html
    assert '<th>已送达<br><span class="en">delivered</span></th>' in html
    assert "Orders count when placed within 72 h" in html


def test_wide_tables_scroll_in_their_own_box_and_all_zero_columns_are_named_once(page: str) -> None:
    """Every table sits in a box that scrolls sideways; exception columns of only zeros are listed in
    one line instead of taking a column each."""
    assert page.count("<table>") == page.count('<div class="scroll"><table>') > 0
    assert ".scroll{overflow-x:auto;width:fit-content;max-width:100%" in page
    by_sop = page[page.index("<h3>按 SOP") : page.index("<h3>按区域")]
    assert (
        "全为 0、未列出 · all zero, not shown:超企微上限 over WeCom limit,失败 failed,状态未知 unknown"
        in by_sop
    )
    assert by_sop.count("<th>") == 11


def test_breakdowns_come_in_reading_order_and_long_tables_are_cut(page: str) -> None:
    """sop, region, staff, day in that order; 60 staff rows show the 50 largest and say so."""
    html = page

    order = [html.index(f"<h3>{title} ") for title in ("按 SOP", "按区域", "按员工", "按日期")]
    assert order == sorted(order)
    assert "显示最大的 50 行(共 60 行),另有 10 行未显示 · showing the 50 largest of 60 rows" in html
    assert "staff-059" in html and "staff-000" not in html


def test_text_from_sop_files_is_escaped(page: str) -> None:
    """A skip reason holding markup is shown as text, in the table and the chart's alt text."""
    html = page

    assert SCRIPT not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html


def test_empty_review_collapses_each_section_to_one_line(tmp_path: Path) -> None:
    """A period with nothing in it still gives a page: each section one line saying so, once."""
    path = write_report(empty_review(), tmp_path)

    html = path.read_text(encoding="utf-8")
    assert path.name == "review-2024-11-01-2024-11-30-double-11-warmup.html"
    assert "<svg" not in html and "未达标" not in html
    sections = re.findall(r"<section[^>]*>.*?</section>", html, re.DOTALL)
    assert len(sections) == 8
    for section in sections:
        assert section.startswith('<section class="empty"><h2>') and "\n" not in section
        assert section.count("本期无数据") == 1, section
    assert (
        '<h2>跳过原因 <span class="en">Skip reasons</span><span class="empty">'
        f"{NO_DATA}</span></h2>" in html
    )


def test_report_name_keeps_sop_id_inside_the_folder() -> None:
    review = empty_review()
    review.sop_id = "../../etc/passwd"

    assert report_name(review) == "review-2024-11-01-2024-11-30-etc_passwd.html"


def test_headline_markdown_lists_misses_first_with_marks_and_numbers() -> None:
    """The artifact puts the miss above the table, marks each KPI, sums up uplift, and links the page."""
    review = sample_review()
    review.uplift[0] = Uplift("double_11|x", 950, 24, 100, 1, 0.0253, 0.01, 0.0153, 0.003, 0.028)

    text = headline_markdown(review, report_path=Path("/reports/review.html"))

    conversion = "转化率(归因订单 / 触达人数) Conversion (orders attributed / delivered)"
    assert text.startswith("## 复盘 Review 2024-11-01 – 2024-11-07 · 全部 SOP all SOPs\n")
    assert f"**✗ 1 项未达标 missed:** {conversion} 2.1%(目标 target ≥ 3.0%)" in text
    lines = text.splitlines()
    table = lines.index("| 指标 KPI | 数值 value | 目标 target | |")
    assert lines[table + 2] == f"| {conversion} | 2.1% | ≥ 3.0% | ✗ 未达标 missed |"
    assert "| Open rate | 16.2% | ≥ 15.0% | ✓ 达标 met |" in lines
    assert "| Revenue attributed | ¥12,345.60 |  | 无目标 no target |" in lines
    assert "**对照组提升 Uplift vs holdout**" in lines
    assert (
        "- double\\_11\\|x: +1.5 pp(95% 置信区间 CI +0.3 ~ +2.8 pp),"
        "优于对照组 better than holdout;干预组 treated 950,对照组 holdout 100" in text
    )
    assert "- welcome: 未测量(无对照组) not measured (no holdout)" in text
    assert text.rstrip().endswith("完整报告 full report: `/reports/review.html`")


def test_table_rows_are_json_safe_with_readable_columns() -> None:
    """Rows for a Prefect table artifact: raw numbers, money in yuan, rates in percent."""
    review = sample_review()

    sop = table_rows(review, "sop")
    day = table_rows(review, "day", limit=2)
    uplift = table_rows(review, "uplift")

    json.dumps([sop, day, uplift])
    assert list(sop[0])[:4] == ["SOP", "标题 title", "计划 planned", "已发送 sent"]
    assert sop[0]["销售额 revenue (¥)"] == 10000.0
    assert sop[0]["转化率 conversion (%)"] == round(100 * 21 / 947, 2)
    assert [row["日期 day"] for row in day] == ["2024-11-01", "2024-11-02"]
    assert uplift[0]["提升 uplift (pp)"] == 1.53 and uplift[2]["提升 uplift (pp)"] is None
    assert table_rows(review, "store") == []
    with pytest.raises(KeyError, match="no table 'stores'"):
        table_rows(review, "stores")
