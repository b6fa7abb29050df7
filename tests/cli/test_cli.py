"""The `sopflow` command line as an operator uses it."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from typer.testing import CliRunner

from core.settings import PROJECT_ROOT
from models.db import head_revision, upgrade
from sopflow.cli import app

BAD = PROJECT_ROOT / "tests" / "fixtures" / "sop_bad"


def invoke(*args: str):
    return CliRunner().invoke(app, list(args))


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


def test_a_database_sopflow_has_not_upgraded_yet_is_one_error_line_not_a_traceback(
    tmp_path: Path,
) -> None:
    url = f"sqlite:///{tmp_path / 'old.db'}"
    upgrade(url, "0006")  # the last release's schema: this sopflow's queries would fail on it
    command = [sys.executable, "-m", "sopflow.cli", "event", "add", "checkin", "--customer", "wm1"]

    done = subprocess.run(
        command,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "SOPFLOW_DATABASE_URL": url},
        cwd=PROJECT_ROOT,
    )

    assert done.returncode == 1
    assert done.stderr.strip().splitlines() == [
        f"error: the database's schema is at migration 0006, this sopflow needs {head_revision()}: "
        "run `sopflow db upgrade` (`make up` does it too)"
    ]
