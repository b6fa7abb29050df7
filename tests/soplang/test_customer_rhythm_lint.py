"""Lint of scheduled 1:1 SOPs: the community rhythm on `channel: customer` and 1:1 promotion steps."""

from __future__ import annotations

from pathlib import Path

from core.settings import PROJECT_ROOT
from soplang.context import available_variables
from soplang.lint import lint_file

MEMBER_DAY = PROJECT_ROOT / "sop" / "community" / "member-day.md"
HEAD = """---
id: member-day
title: 周三会员日
kind: community
channel: customer
category: baby
schedule:
  cron: "0 10 * * 3"
  days: workdays
audience:
  customers: {tags_any: [宝妈]}
"""
PROMOTION = """---
id: mom-week
title: 母婴周 · 1:1
kind: promotion
channel: customer
category: baby
audience:
  customers: {tags_any: [宝妈]}
steps:
  - {name: preview, at: "-1d 20:00"}
  - {name: recap, at: "+1d 20:00"}
---
## preview
{{ customer.owner.name }}提醒您：{{ campaign.name }}明天{{ campaign.starts_at | time_cn }}开始，{{ items | length }}款好物。
## recap
{{ campaign.name }}战报：卖出{{ stats.units_sold }}件。
"""


def write(tmp_path: Path, text: str, name: str = "member-day.md") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def errors_of(path: Path) -> list[str]:
    return [str(p) for p in lint_file(path).errors]


def test_the_shipped_member_day_lints_clean() -> None:
    assert errors_of(MEMBER_DAY) == []


def test_a_1to1_community_step_gets_the_customer_and_no_group_deals() -> None:
    assert available_variables("community", "customer") == ["customer", "sop", "today", "weekday"]
    assert {"deals", "slot", "group"} <= set(available_variables("community", "group"))


def test_deals_in_a_1to1_community_step_is_refused_on_its_line(tmp_path: Path) -> None:
    path = write(
        tmp_path, HEAD + "---\n## main\n会员日快乐\n{% for d in deals %}{{ d.name }}{% endfor %}\n"
    )

    errors = errors_of(path)

    assert len(errors) == 1 and errors[0].startswith(f"{path}:15: error: ")
    assert "`deals`" in errors[0] and "customer" in errors[0]  # names what the step does get


def test_needs_on_a_1to1_community_step_is_refused_on_its_line(tmp_path: Path) -> None:
    path = write(
        tmp_path, HEAD + "steps:\n  - {name: main, needs: deals}\n---\n## main\n会员日快乐\n"
    )

    assert errors_of(path) == [
        f"{path}:13: error: `needs` is for community steps posted to groups (whether a group "
        "waits for its deals); step `main` goes 1:1 to customers and gets no deals: remove it"
    ]


def test_a_1to1_community_sop_needs_customers_and_a_schedule(tmp_path: Path) -> None:
    text = HEAD.replace("  customers: {tags_any: [宝妈]}", "  groups: {theme: [母婴]}")
    text = text.replace('schedule:\n  cron: "0 10 * * 3"\n  days: workdays\n', "")
    path = write(tmp_path, text + "---\n## main\n会员日快乐\n")

    errors = errors_of(path)

    assert f"{path}:4: error: a community SOP needs a `schedule`" in errors[0]
    assert errors[1:] == [
        f"{path}:7: error: channel `customer` needs `audience.customers` (e.g. customers: "
        "{stage: [new]})",
        f"{path}:8: error: channel `customer` sends to customers; remove `audience.groups`",
    ]


def test_approval_is_allowed_on_a_1to1_community_sop(tmp_path: Path) -> None:
    path = write(tmp_path, HEAD + "approval: {over: 5000}\n---\n## main\n会员日快乐\n")

    assert errors_of(path) == []


def test_a_1to1_promotion_gets_the_campaign_and_the_customer(tmp_path: Path) -> None:
    assert errors_of(write(tmp_path, PROMOTION, "mom-week.md")) == []
    assert available_variables("promotion", "customer", "recap") == [
        "campaign",
        "customer",
        "items",
        "sop",
        "stats",
        "today",
        "weekday",
    ]


def test_a_group_in_a_1to1_promotion_step_is_refused_on_its_line(tmp_path: Path) -> None:
    path = write(tmp_path, PROMOTION.replace("战报：", "{{ group.name }}战报："), "mom-week.md")

    errors = errors_of(path)

    assert len(errors) == 1 and errors[0].startswith(f"{path}:16: error: ")
    assert "`group`" in errors[0]
