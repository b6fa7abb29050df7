"""prefect.yaml is generated from sop/, current, and its schedules are what review expects."""

from __future__ import annotations

import yaml
from typer.testing import CliRunner

from core.settings import PROJECT_ROOT
from sopflow.cli import app

LIFECYCLE = "flows/lifecycle.py:lifecycle_sop"
# Changing a schedule must show up in review: update this snapshot on purpose.
SCHEDULES = {
    "evening-flash-sale": ("flows/community.py:community_sop", "0 21 * * *", "Asia/Shanghai"),
    "morning-price": ("flows/community.py:community_sop", "30 8 * * *", "Asia/Shanghai"),
    # The weekly rhythm sent 1:1 (channel: customer), Wednesdays 10:00.
    "member-day": ("flows/community.py:community_sop", "0 10 * * 3", "Asia/Shanghai"),
    "noon-topic": ("flows/community.py:community_sop", "0 12 * * *", "Asia/Shanghai"),
    "weekend-quiz": ("flows/community.py:community_sop", "0 15 * * *", "Asia/Shanghai"),
    # 朋友圈 weekly plan (channel: moments): Mon 好物, Wed 会员日, Fri 食谱.
    "moments-monday-product": ("flows/community.py:community_sop", "30 9 * * 1", "Asia/Shanghai"),
    "moments-wednesday-member-day": (
        "flows/community.py:community_sop",
        "0 9 * * 3",
        "Asia/Shanghai",
    ),
    "moments-friday-recipe": ("flows/community.py:community_sop", "0 17 * * 5", "Asia/Shanghai"),
    "classify-stages": ("flows/lifecycle.py:classify_stages", "0 0 * * *", "Asia/Shanghai"),
    "plan-day": ("flows/maintenance.py:plan_day", "5 0 * * *", "Asia/Shanghai"),
    "collect-results": ("flows/maintenance.py:collect_results", "*/30 * * * *", "Asia/Shanghai"),
    "drain-events": ("flows/triggers.py:drain_events", "*/15 * * * *", "Asia/Shanghai"),
    "review-weekly": ("flows/review.py:review", "0 7 * * 1", "Asia/Shanghai"),
    "review-monthly": ("flows/review.py:review", "30 7 1 * *", "Asia/Shanghai"),
    # The nightly full pass of WeCom's directory, before classify-stages at midnight.
    "sync-wecom": ("flows/sync.py:sync_wecom", "30 23 * * *", "Asia/Shanghai"),
    # Lifecycle: one deployment per step, daily at its `send_at`.
    "new-first-order-coupon": (LIFECYCLE, "0 10 * * *", "Asia/Shanghai"),
    "new-first-order-trial": (LIFECYCLE, "30 19 * * *", "Asia/Shanghai"),
    "growing-cross-sell-offer": (LIFECYCLE, "0 12 * * *", "Asia/Shanghai"),
    "mature-member-perks": (LIFECYCLE, "0 10 * * *", "Asia/Shanghai"),
    "mature-member-report": (LIFECYCLE, "0 20 * * *", "Asia/Shanghai"),
    "dormant-recall-care": (LIFECYCLE, "0 10 * * *", "Asia/Shanghai"),
    "dormant-recall-coupon": (LIFECYCLE, "0 10 * * *", "Asia/Shanghai"),
    "churned-win-back-offer": (LIFECYCLE, "0 11 * * *", "Asia/Shanghai"),
    "churned-win-back-feedback": (LIFECYCLE, "0 11 * * *", "Asia/Shanghai"),
    # No schedule of its own: `sopflow campaign schedule` creates one run per campaign step.
    "promotion-step": ("flows/promotion.py:promotion_step", None, None),
    # Started by a large occurrence's own run (SOPFLOW_OCCURRENCE_WORKERS > 1), never scheduled.
    "sopflow-partition-runner": ("flows/partition_runner.py:partition_runner", None, None),
}


def test_prefect_yaml_is_current() -> None:
    result = CliRunner().invoke(app, ["deployments", "--check"])

    assert result.exit_code == 0, result.output


def test_deployment_schedules_snapshot() -> None:
    document = yaml.safe_load((PROJECT_ROOT / "prefect.yaml").read_text(encoding="utf-8"))

    found = {d["name"]: (d["entrypoint"], *_first_schedule(d)) for d in document["deployments"]}
    assert found == SCHEDULES
    assert {d["work_pool"]["name"] for d in document["deployments"]} == {"sopflow"}
    sop_deployments = [
        d
        for d in document["deployments"]
        if not {"housekeeping", "promotion", "lifecycle", "review", "runner"} & set(d["tags"])
    ]
    assert all(d["parameters"] == {"sop_id": d["name"]} for d in sop_deployments)
    lifecycle = [d for d in document["deployments"] if d["entrypoint"] == LIFECYCLE]
    assert all(
        d["name"] == f"{d['parameters']['sop_id']}-{d['parameters']['step']}".replace("_", "-")
        for d in lifecycle
    )


def _first_schedule(deployment: dict) -> tuple[str | None, str | None]:
    schedules = deployment.get("schedules") or [{}]
    return schedules[0].get("cron"), schedules[0].get("timezone")


def test_check_fails_when_the_file_is_stale(tmp_path) -> None:
    stale = tmp_path / "prefect.yaml"
    stale.write_text("deployments: []\n", encoding="utf-8")

    result = CliRunner().invoke(app, ["deployments", "--check", "--output", str(stale)])

    assert result.exit_code == 1
    assert "stale" in result.output
    assert stale.read_text(encoding="utf-8") == "deployments: []\n"
