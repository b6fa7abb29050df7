"""prefect.yaml is generated from sop/, current, and its schedules are what review expects."""

from __future__ import annotations

import yaml
from typer.testing import CliRunner

from sopflow.cli import app
from sopflow.settings import PROJECT_ROOT

# Changing a schedule must show up in review: update this snapshot on purpose.
SCHEDULES = {
    "evening-flash-sale": ("flows/community.py:community_sop", "0 21 * * *", "Asia/Shanghai"),
    "morning-price": ("flows/community.py:community_sop", "30 8 * * *", "Asia/Shanghai"),
    "plan-day": ("flows/maintenance.py:plan_day", "5 0 * * *", "Asia/Shanghai"),
    "collect-results": ("flows/maintenance.py:collect_results", "*/30 * * * *", "Asia/Shanghai"),
}


def test_prefect_yaml_is_current() -> None:
    result = CliRunner().invoke(app, ["deployments", "--check"])

    assert result.exit_code == 0, result.output


def test_deployment_schedules_snapshot() -> None:
    document = yaml.safe_load((PROJECT_ROOT / "prefect.yaml").read_text(encoding="utf-8"))

    found = {
        d["name"]: (d["entrypoint"], d["schedules"][0]["cron"], d["schedules"][0]["timezone"])
        for d in document["deployments"]
    }
    assert found == SCHEDULES
    assert {d["work_pool"]["name"] for d in document["deployments"]} == {"sopflow"}
    sop_deployments = [d for d in document["deployments"] if "housekeeping" not in d["tags"]]
    assert all(d["parameters"] == {"sop_id": d["name"]} for d in sop_deployments)


def test_check_fails_when_the_file_is_stale(tmp_path) -> None:
    stale = tmp_path / "prefect.yaml"
    stale.write_text("deployments: []\n", encoding="utf-8")

    result = CliRunner().invoke(app, ["deployments", "--check", "--output", str(stale)])

    assert result.exit_code == 1
    assert "stale" in result.output
    assert stale.read_text(encoding="utf-8") == "deployments: []\n"
