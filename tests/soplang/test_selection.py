"""Which SOPs a run takes: trigger SOPs grouped by their event, and an SOP's days on the calendar."""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

import pytest

from core.errors import SopDefinitionError
from soplang.lint import lint_file
from soplang.loader import load_sop
from soplang.selection import runs_that_day, trigger_sops

SOP_DIR = Path(__file__).resolve().parents[2] / "sop"
WELCOME = (SOP_DIR / "triggers" / "welcome.md").read_text(encoding="utf-8")


def test_trigger_sops_are_grouped_by_event_and_a_broken_draft_of_another_kind_does_not_block_them(
    tmp_path: Path,
) -> None:
    shutil.copytree(SOP_DIR / "triggers", tmp_path / "triggers")
    draft = "---\nid: draft\nkind: promotion\n---\n## main\n{{ nope\n"
    (tmp_path / "draft.md").write_text(draft, encoding="utf-8")

    found = trigger_sops(tmp_path)

    shipped = {load_sop(p.stem, SOP_DIR).on for p in (SOP_DIR / "triggers").glob("*.md")}
    assert set(found) == shipped and "contact.added" in shipped
    assert [spec.id for spec in found["contact.added"]] == ["welcome"]


def test_a_trigger_file_with_a_template_error_stops_the_drain_with_lints_lines(
    tmp_path: Path,
) -> None:
    path = tmp_path / "welcome.md"
    path.write_text(WELCOME.replace("{{ customer.name }}", "{{ customer.nmae }}"), encoding="utf-8")

    with pytest.raises(SopDefinitionError) as refused:
        trigger_sops(tmp_path)

    assert refused.value.problems == [str(p) for p in lint_file(path).errors]
    assert "customer.nmae" in refused.value.problems[0]


WORKDAY_CARE = """---
id: workday-care
title: 工作日关怀
kind: lifecycle
channel: customer
category: daily
schedule: {cron: "0 10 * * *", days: workdays}
audience: {customers: {stage: new}}
steps: [{name: care, after: 0d, send_at: "10:00"}]
---
## care
您好，欢迎常来逛逛～
"""


def test_an_sop_runs_on_the_days_its_rule_and_chinas_calendar_give(tmp_path: Path) -> None:
    path = tmp_path / "workday-care.md"
    path.write_text(WORKDAY_CARE, encoding="utf-8")
    workdays = load_sop(path)

    assert not runs_that_day(workdays, dt.date(2026, 10, 1))  # National Day
    assert runs_that_day(workdays, dt.date(2026, 10, 10))  # a Saturday made a workday (调休)
    assert runs_that_day(load_sop(SOP_DIR / "triggers" / "welcome.md"), dt.date(2026, 10, 1))
