"""The `sopflow` command line as an operator uses it."""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

from typer.testing import CliRunner

from core.settings import PROJECT_ROOT
from sopflow.cli import app
from tests.factories import make_world

MORNING = str(PROJECT_ROOT / "sop" / "community" / "morning-price.md")
BAD = PROJECT_ROOT / "tests" / "fixtures" / "sop_bad"


def invoke(*args: str):
    return CliRunner().invoke(app, list(args))


def test_preview_renders_a_real_group_and_counts_recipients_and_tasks(database_url: str) -> None:
    world = make_world(dt.date(2026, 11, 24), database_url)

    result = invoke("preview", MORNING, "--date", "2026-11-24")

    assert result.exit_code == 0, result.output
    assert "北京生鲜爱好者群" in result.output and "鸡蛋3.99元/斤" in result.output
    assert "recipients: 4 group(s), 1 skipped for lack of deals" in result.output
    # Each group's text names the group, so each is its own task to confirm.
    assert "3 across 2 staff member(s) (zhangwei.bj01 2, lina.sh01 1)" in result.output
    chosen = invoke(
        "preview", MORNING, "--date", "2026-11-24", "--group", world.chat_ids["上海母婴用品群"]
    )
    assert "上海母婴用品群" in chosen.output and "婴儿纸尿裤" in chosen.output


def test_preview_explains_a_day_without_deals_and_a_bad_date(database_url: str) -> None:
    make_world(dt.date(2026, 11, 24), database_url)

    no_deals = invoke("preview", MORNING, "--date", "2026-11-25")
    bad_date = invoke("preview", MORNING, "--date", "24/11/2026")

    assert no_deals.exit_code == 1 and "no morning deals on 2026-11-25" in no_deals.output
    assert bad_date.exit_code == 1 and "YYYY-MM-DD" in bad_date.output
    assert "Traceback" not in no_deals.output + bad_date.output


def test_lint_exits_0_on_the_shipped_sops_and_1_on_each_bad_file() -> None:
    assert invoke("lint").exit_code == 0
    for bad in sorted(BAD.glob("*.md")):
        result = invoke("lint", str(bad))
        assert result.exit_code == 1, bad.name
        assert f"{bad}:" in result.output and ": error: " in result.output, result.output
        assert "Traceback" not in result.output


def test_lint_reports_a_duplicate_id_across_files(tmp_path: Path) -> None:
    shutil.copytree(BAD / "duplicate", tmp_path / "dup")

    result = invoke("lint", str(tmp_path / "dup"))

    assert result.exit_code == 1 and "is already used by" in result.output


def test_db_upgrade_is_repeatable(database_url: str) -> None:
    assert invoke("db", "upgrade").exit_code == 0
    assert invoke("db", "upgrade").exit_code == 0


def test_lint_checks_the_folders_targets_file(tmp_path: Path) -> None:
    shutil.copytree(PROJECT_ROOT / "sop" / "community", tmp_path / "sop")
    (tmp_path / "sop" / "targets.yaml").write_text('conversion_rat: ">= 3%"\n', encoding="utf-8")

    result = invoke("lint", str(tmp_path / "sop"))

    assert result.exit_code == 1
    assert "targets.yaml:1: error: unknown KPI `conversion_rat`" in result.output


def test_report_refuses_a_backwards_period_and_an_unknown_sop(database_url: str) -> None:
    backwards = invoke("report", "--from", "2026-11-10", "--to", "2026-11-01")
    unknown = invoke(
        "report", "--from", "2026-11-01", "--to", "2026-11-07", "--sop", "morning-prise"
    )

    assert backwards.exit_code == 1 and "swap --from and --to" in backwards.output
    assert unknown.exit_code == 1 and "did you mean `morning-price`" in unknown.output
    assert "Traceback" not in backwards.output + unknown.output
