"""The preview engine: a 1:1 step through the real content and guards, staff lines, schedule words."""

from __future__ import annotations

import datetime as dt
from collections import Counter

import pytest

from core.errors import SopError
from engine.preview import PreviewRequest, preview_sop
from engine.preview_report import cron_times_on, schedule_when, staff_lines
from soplang.spec import Section, SopSpec
from tests.factories import add_customers, customer_sop, make_world, opt_out

DAY = dt.date(2026, 11, 24)
TEXT = (
    "{{ customer.region }}的老朋友您好，专属顾问{{ customer.owner.name }}给您留了一张满59减20的券。"
)


def one_to_one(**audience: object) -> SopSpec:
    """A 1:1 SOP of one step `main` with its text (built in code: no lifecycle `after`)."""
    spec = customer_sop(**audience)
    return spec.model_copy(
        update={"sections": {"main": Section(text=TEXT, first_line=12, heading_line=11)}}
    )


def test_staff_lines_show_the_top_ten_one_per_line_then_the_rest_and_a_total() -> None:
    tasks = Counter({(f"staff{i:02d}", f"导购{i}"): 20 - i for i in range(12)})

    lines = staff_lines(tasks)

    assert lines[0].endswith(": 174 across 12 staff member(s)")
    assert lines[1:3] == ["  staff00 导购0: 20", "  staff01 导购1: 19"]
    assert lines[10] == "  staff09 导购9: 11"
    assert lines[11:] == ["  … 2 more staff member(s): 19", "  total: 174"]


def test_cron_times_and_the_days_rule_in_words() -> None:
    spec = customer_sop(cron="0 9,12,18 * * 1-5", days="workdays")

    assert cron_times_on("0 9,12,18 * * *", DAY, "Asia/Shanghai") == ["09:00", "12:00", "18:00"]
    assert cron_times_on("*/10 * * * *", DAY, "Asia/Shanghai")[-1] == "…"
    assert schedule_when(spec, DAY) == (
        True,
        "runs on 2026-11-24 (周二) at 09:00, 12:00, 18:00 (Asia/Shanghai); `days: workdays` "
        "(working days of China's official calendar (holidays and 调休 included))",
    )
    assert schedule_when(spec, dt.date(2026, 10, 1))[0] is False


def test_a_one_to_one_step_counts_its_audience_guards_and_tasks(database_url: str) -> None:
    """Opted-out and deleted customers get nothing, as a run would record them; each owner
    confirms one task for the one text their customers share."""
    make_world(DAY, database_url)
    zhang = add_customers(3)
    add_customers(2, first=10, owner="lina.sh01")
    add_customers(1, first=20, contact_state="deleted")
    opt_out(zhang[:1], "fresh")
    spec = one_to_one(stage=["dormant"])

    found = preview_sop(spec, PreviewRequest(day=DAY))
    chosen = preview_sop(spec, PreviewRequest(day=DAY, customer="wmTEST0000010"))

    assert found.audience == "6 customers (stage dormant)"
    assert sorted(found.notes[:2]) == [
        "1 get nothing: not a contact",
        "1 get nothing: opted out of fresh",
    ]
    assert found.tasks == Counter({("zhangwei.bj01", "张伟"): 1, ("lina.sh01", "李娜"): 1})
    assert found.shown_for is not None and found.shown_for.startswith("customer wmTEST0000000")
    assert "a run skips customer wmTEST0000000: opted out of fresh" in found.notes
    assert found.text == "上海的老朋友您好，专属顾问张伟给您留了一张满59减20的券。"
    assert chosen.shown_for is not None and "owner lina.sh01" in chosen.shown_for
    assert chosen.text is not None and "专属顾问李娜" in chosen.text


def test_an_unknown_step_is_refused_with_the_steps_there_are(database_url: str) -> None:
    spec = customer_sop(steps=[{"name": "care"}, {"name": "coupon"}])

    with pytest.raises(SopError, match="--step cuopon: no such step .*`coupon`.*care, coupon"):
        preview_sop(spec, PreviewRequest(day=DAY, step="cuopon"))
