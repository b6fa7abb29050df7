"""Review reports: the HTML page with its inlined charts, and the markdown and rows for Prefect artifacts."""

from __future__ import annotations

import base64
import datetime as dt
import json
import re
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest

from review.charts import review_charts
from review.html import render_html, report_name, write_report
from review.markdown import headline_markdown, table_rows
from review.model import Kpi, Review, Uplift

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
IMG = re.compile(r'<img src="data:image/png;base64,([^"]+)" alt="([^"]*)"')
SCRIPT = "<script>alert(1)</script>"


@pytest.fixture(autouse=True)
def prefect_harness() -> Iterator[None]:
    """Rendering needs no Prefect server: these tests skip the session's one."""
    yield


def outcomes(planned: int, sent: int, orders: int, revenue_fen: int) -> dict[str, object]:
    return {
        "planned": planned,
        "sent": sent,
        "delivered": sent - 3,
        "not_a_friend": 2,
        "over_wecom_limit": 0,
        "unconfirmed": 1,
        "failed": 0,
        "unknown": 0,
        "skipped": planned - sent,
        "orders": orders,
        "revenue_fen": revenue_fen,
        "conversion_rate": orders / (sent - 3),
    }


def sample_review() -> Review:
    days = [dt.date(2024, 11, 1) + dt.timedelta(days=n) for n in range(3)]
    return Review(
        starts=dt.date(2024, 11, 1),
        ends=dt.date(2024, 11, 7),
        sop_id=None,
        generated_at=dt.datetime(2024, 11, 8, 1, 30, tzinfo=dt.UTC),
        headline=[
            Kpi("open_rate", "Open rate", 0.162, "rate", target=0.15, comparison=">=", met=True),
            Kpi(
                "conversion_rate",
                "Conversion (orders attributed / delivered)",
                0.021,
                "rate",
                target=0.03,
                comparison=">=",
                met=False,
            ),
            Kpi("contacts_added", "Contacts added", 1234, "count"),
            Kpi("revenue", "Revenue attributed", 1234560, "fen"),
        ],
        tables={
            "region": [
                {"region": "华东", **outcomes(900, 850, 20, 880000)},
                {"region": "华南", **outcomes(400, 390, 6, 354560)},
            ],
            "sop": [
                {
                    "sop_id": "double-11-warmup",
                    "title": "双11预热",
                    **outcomes(1000, 950, 21, 1000000),
                },
                {"sop_id": "dormant-recall", "title": "沉睡唤醒", **outcomes(300, 290, 5, 234560)},
            ],
            "day": [{"day": day, **outcomes(400, 380, 8, 400000)} for day in days],
            "staff": [
                {"sender": f"staff-{n:03d}", **outcomes(100 + n, 90 + n, 1, 9900)}
                for n in range(60)
            ],
        },
        skip_reasons=[
            {"reason": "capped (lost to dormant-recall)", "count": 120},
            {"reason": "已退订", "count": 35},
            {"reason": SCRIPT, "count": 2},
        ],
        uplift=[
            Uplift("double-11-warmup", 950, 24, 100, 1, 0.0253, 0.01, 0.0153, 0.003, 0.028),
            Uplift("dormant-recall", 290, 5, 30, 1, 0.0172, 0.0333, -0.0161, -0.08, 0.047),
            Uplift("welcome", 80, 2, 0, 0, 0.025, None, None, None, None),
        ],
        daily=[
            {
                "day": day.isoformat(),
                "sent": 380,
                "delivered": 377,
                "orders": 8 + n,
                "revenue_fen": 400000,
            }
            for n, day in enumerate(days)
        ],
        after_touch=[
            {
                "sop_id": "double-11-warmup",
                "touched": 947,
                "deleted_7d": 9,
                "opted_out_7d": 4,
                "deletion_rate": 9 / 947,
                "opt_out_rate": 4 / 947,
            },
            {
                "sop_id": "dormant-recall",
                "touched": 287,
                "deleted_7d": 6,
                "opted_out_7d": 3,
                "deletion_rate": 6 / 287,
                "opt_out_rate": 3 / 287,
            },
        ],
        loyalty=[
            {
                "segment": "group members",
                "customers": 5000,
                "buyers": 800,
                "orders": 3360,
                "repurchase_rate": 0.42,
                "orders_per_buyer": 4.2,
                "average_order_fen": 12800,
            },
            {
                "segment": "non-members",
                "customers": 20000,
                "buyers": 1500,
                "orders": 2100,
                "repurchase_rate": 0.12,
                "orders_per_buyer": 1.4,
                "average_order_fen": 10000,
            },
        ],
        staff_confirmation=[
            {
                "sender": "王芳",
                "tasks": 12,
                "confirmed": 11,
                "confirmation_rate": 11 / 12,
                "median_delay_seconds": 1500,
            }
        ],
        notes=["Orders count when placed within 72 h of a delivered touch (last touch wins)."],
    )


def empty_review() -> Review:
    return Review(
        starts=dt.date(2024, 11, 1),
        ends=dt.date(2024, 11, 30),
        sop_id="double-11-warmup",
        generated_at=dt.datetime(2024, 12, 1, tzinfo=dt.UTC),
    )


@pytest.fixture(scope="module")
def page() -> str:
    """The sample review's page, rendered once for the tests that only read it."""
    return render_html(sample_review())


def images(html: str) -> list[tuple[bytes, str]]:
    return [(base64.b64decode(data), alt) for data, alt in IMG.findall(html)]


def test_report_is_written_with_four_inline_charts_and_no_external_resources(
    tmp_path: Path,
) -> None:
    """The page lands in a new folder, named by its period, with every chart as an embedded PNG."""
    path = write_report(sample_review(), tmp_path / "reports")

    assert path == tmp_path / "reports" / "review-2024-11-01-2024-11-07.html"
    html = path.read_text(encoding="utf-8")
    charts = images(html)
    assert len(charts) == 4
    assert all(png.startswith(PNG_SIGNATURE) for png, _ in charts)
    alts = [alt for _, alt in charts]
    assert alts[0].startswith("Sends and conversions per day over 3 days: 1,140 sent")
    assert alts[1].startswith("Skip reasons, 157 skipped")
    assert alts[2].startswith("Uplift vs holdout per SOP")
    assert alts[3].startswith("Deletions and opt-outs within 7 days")
    assert not re.search(r'(?:src|href)="(?!data:)', html)
    assert len(html) < 600_000


def test_misses_come_first_and_numbers_are_formatted(page: str) -> None:
    """A missed target is in the Misses box above the headline table, marked and highlighted."""
    html = page

    misses = html.index("Misses")
    assert misses < html.index("<h2>Headline</h2>")
    assert "Conversion (orders attributed / delivered)</b>: 2.1% (target ≥ 3.0%)" in html
    assert "<tr class=miss><td>Conversion (orders attributed / delivered)</td>" in html
    assert "✓ met" in html and "✗ missed" in html and "no target" in html
    assert "¥12,345.60" in html and "1,234" in html
    assert "华东" in html and "2024-11-08 09:30 (Asia/Shanghai)" in html
    assert "+1.5 pp" in html and "+0.3 to +2.8 pp" in html and "better than holdout" in html
    assert "25 min" in html and "4.20" in html
    assert "Orders count when placed within 72 h" in html


def test_breakdowns_come_in_reading_order_and_long_tables_are_cut(page: str) -> None:
    """sop, region, staff, day in that order; 60 staff rows show the 50 largest and say so."""
    html = page

    order = [
        html.index(f"<h3>{title}</h3>")
        for title in ("By SOP", "By region", "By staff member", "By day")
    ]
    assert order == sorted(order)
    assert "Showing 50 of 60 rows (the largest); 10 more not shown." in html
    assert "staff-059" in html and "staff-000" not in html


def test_text_from_sop_files_is_escaped(page: str) -> None:
    """A skip reason holding markup is shown as text, in the table and the chart's alt text."""
    html = page

    assert SCRIPT not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html


def test_empty_review_renders_no_data_charts(tmp_path: Path) -> None:
    """A period with nothing in it still gives a page, its four charts saying so."""
    path = write_report(empty_review(), tmp_path)

    html = path.read_text(encoding="utf-8")
    assert path.name == "review-2024-11-01-2024-11-30-double-11-warmup.html"
    assert len(images(html)) == 4
    assert all(alt.endswith("no data in this period.") for _, alt in images(html))
    assert "Misses" not in html and "No data in this period." in html


def test_charts_draw_chinese_labels_without_warnings() -> None:
    """Labels the installed fonts cannot draw are shortened quietly, not warned about glyph by glyph."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        charts = review_charts(sample_review())

    assert [chart.key for chart in charts] == ["daily", "skip_reasons", "uplift", "after_touch"]


def test_report_name_keeps_sop_id_inside_the_folder() -> None:
    review = empty_review()
    review.sop_id = "../../etc/passwd"

    assert report_name(review) == "review-2024-11-01-2024-11-30-etc_passwd.html"


def test_headline_markdown_lists_misses_first_with_marks_and_numbers() -> None:
    """The artifact puts the miss above the table, marks each KPI, sums up uplift, and links the page."""
    review = sample_review()
    review.uplift[0] = Uplift("double_11|x", 950, 24, 100, 1, 0.0253, 0.01, 0.0153, 0.003, 0.028)

    text = headline_markdown(review, report_path=Path("/reports/review.html"))

    assert "**✗ 1 missed:** Conversion (orders attributed / delivered) 2.1% (target ≥ 3.0%)" in text
    lines = text.splitlines()
    table = lines.index("| KPI | Value | Target | |")
    assert (
        lines[table + 2]
        == "| Conversion (orders attributed / delivered) | 2.1% | ≥ 3.0% | ✗ missed |"
    )
    assert "| Open rate | 16.2% | ≥ 15.0% | ✓ met |" in lines
    assert "| Revenue attributed | ¥12,345.60 |  | no target |" in lines
    assert "- double\\_11\\|x: +1.5 pp (95% CI +0.3 to +2.8 pp), better than holdout" in text
    assert "- welcome: not measured (no holdout)" in text
    assert text.rstrip().endswith("Full report: `/reports/review.html`")


def test_table_rows_are_json_safe_with_readable_columns() -> None:
    """Rows for a Prefect table artifact: raw numbers, money in yuan, rates in percent."""
    review = sample_review()

    sop = table_rows(review, "sop")
    day = table_rows(review, "day", limit=2)
    uplift = table_rows(review, "uplift")

    json.dumps([sop, day, uplift])
    assert list(sop[0])[:4] == ["SOP", "Title", "Planned", "Sent"]
    assert sop[0]["Revenue (¥)"] == 10000.0
    assert sop[0]["Conversion (%)"] == round(100 * 21 / 947, 2)
    assert [row["Day"] for row in day] == ["2024-11-01", "2024-11-02"]
    assert uplift[0]["Uplift (pp)"] == 1.53 and uplift[2]["Uplift (pp)"] is None
    assert table_rows(review, "store") == []
    with pytest.raises(KeyError, match="no table 'stores'"):
        table_rows(review, "stores")
