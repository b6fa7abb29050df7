"""Prefect tasks for moments (朋友圈): send one occurrence's moment task, collect who posted."""

from __future__ import annotations

import datetime as dt

from prefect import task
from prefect.cache_policies import NO_CACHE
from prefect.runtime import flow_run

from channels.robot import RobotChannel
from channels.wecom import WeComClient
from core.settings import get_settings
from engine.moments import send_moments
from engine.moments_results import collect_moments
from soplang.spec import SopSpec
from soplang.staff_audience import MOMENTS
from tasks.sops import load_all_sops


@task(name="send-moments", cache_policy=NO_CACHE)
def send_moments_task(spec: SopSpec, step: str, day: dt.date) -> dict[str, object]:
    """One occurrence of a moments step: reconcile, record, add_moment_task, poll the job."""
    run_id = flow_run.id
    with WeComClient.from_settings(get_settings()) as client:
        return send_moments(spec, step, day, client, flow_run_id=str(run_id) if run_id else None)


@task(name="collect-moments", cache_policy=NO_CACHE)
def collect_moments_task(now: dt.datetime | None = None) -> dict[str, int]:
    """Which staff posted their moments; remind the rest through their step's robot."""
    settings = get_settings()

    def robots() -> dict[tuple[str, str], str]:
        return {
            (spec.id, step.name): step.robot
            for spec in load_all_sops.fn()
            if spec.channel == MOMENTS
            for step in spec.step_list
            if step.robot
        }

    with (
        WeComClient.from_settings(settings) as client,
        RobotChannel.from_settings(settings) as robot,
    ):

        def remind(name: str, text: str, userids: list[str]) -> None:
            robot.post_text(name, text, mentioned_list=userids)

        return dict(
            collect_moments(client, robots=robots, remind=remind, now=now, settings=settings)
        )
