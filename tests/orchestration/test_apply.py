"""Applying sop/ to the Prefect server adds, changes and removes only sopflow's own deployments."""

from __future__ import annotations

import datetime as dt
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from prefect import get_client
from prefect.client.schemas.actions import DeploymentScheduleCreate, WorkPoolCreate
from prefect.client.schemas.filters import FlowFilter, FlowFilterName
from prefect.client.schemas.schedules import CronSchedule
from prefect.exceptions import ObjectAlreadyExists, ObjectNotFound
from prefect.states import Scheduled

from core.settings import PROJECT_ROOT, reset_settings
from orchestration.apply import apply_deployments
from sopflow.apply import (
    DeploymentFileError,
    apply_sop_dir,
    managed_flow_names,
    specs_from_document,
)
from sopflow.deployments import WORK_POOL, generate_document

FOREIGN_POOL = "not-sopflow"


@pytest.fixture
def sop_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A copy of sop/ the settings point at. The server keeps what earlier tests applied (a
    test starts by applying the copy, which changes little): applying 18 deployments afresh
    takes seconds, and each test would pay it."""
    copy = tmp_path / "sop"
    shutil.copytree(PROJECT_ROOT / "sop", copy)
    monkeypatch.setenv("SOPFLOW_SOP_DIR", str(copy))
    reset_settings()
    yield copy
    monkeypatch.undo()  # before forgetting the settings, so the next read sees sop/ again
    reset_settings()


@pytest.fixture
def empty_server() -> None:
    """A server without any deployment of sopflow's flows."""
    delete_deployments(managed_flow_names())


@pytest.fixture
def foreign() -> Iterator[None]:
    """Deployments a test makes that sopflow does not own, deleted after it."""
    yield
    delete_deployments({"foreign-report"})
    for deployment in on_server(FOREIGN_POOL).values():
        with get_client(sync_client=True) as client:
            client.delete_deployment(deployment.id)


def delete_deployments(flow_names: set[str]) -> None:
    with get_client(sync_client=True) as client:
        for deployment in client.read_deployments(
            flow_filter=FlowFilter(name=FlowFilterName(any_=sorted(flow_names)))
        ):
            client.delete_deployment(deployment.id)


def apply(sop_dir: Path) -> Any:
    return apply_sop_dir(sop_dir, sop_dir.parent / "prefect.yaml").applied


def on_server(pool: str = "sopflow") -> dict[str, Any]:
    """The deployments on `pool`, by name."""
    from prefect.client.schemas.filters import WorkPoolFilter, WorkPoolFilterName

    with get_client(sync_client=True) as client:
        found = client.read_deployments(
            work_pool_filter=WorkPoolFilter(name=WorkPoolFilterName(any_=[pool]))
        )
    return {d.name: d for d in found}


def schedules(deployment: Any) -> list[tuple[str, str | None, bool]]:
    return [(s.schedule.cron, s.schedule.timezone, s.active) for s in deployment.schedules]


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert old in text
    path.write_text(text.replace(old, new), encoding="utf-8")


def test_apply_into_an_empty_server_creates_every_deployment_with_its_schedule(
    empty_server: None, sop_dir: Path
) -> None:
    document = generate_document(sop_dir)

    applied = apply(sop_dir)

    wanted = {entry["name"]: entry for entry in document["deployments"]}
    assert sorted(applied.added) == sorted(wanted)
    assert (applied.changed, applied.removed, applied.unchanged) == ({}, [], [])
    found = on_server()
    assert set(found) == set(wanted)
    for name, entry in wanted.items():
        expected = [(s["cron"], s["timezone"], s["active"]) for s in entry.get("schedules", [])]
        assert schedules(found[name]) == expected, name
        assert found[name].parameters == entry["parameters"]
        assert found[name].entrypoint == entry["entrypoint"]
        assert not found[name].paused
    directory = found["morning-price"].pull_steps[0][
        "prefect.deployments.steps.set_working_directory"
    ]["directory"]
    assert directory == str(PROJECT_ROOT)
    assert "sop_id" in found["morning-price"].parameter_openapi_schema["properties"]


def test_applying_again_changes_nothing(sop_dir: Path) -> None:
    apply(sop_dir)
    before = {name: d.updated for name, d in on_server().items()}

    applied = apply(sop_dir)

    assert (applied.added, applied.changed, applied.removed) == ([], {}, [])
    assert sorted(applied.unchanged) == sorted(before)
    assert {name: d.updated for name, d in on_server().items()} == before


def test_a_changed_cron_changes_that_deployment_and_no_other(sop_dir: Path) -> None:
    apply(sop_dir)
    before = on_server()
    edit(sop_dir / "community" / "morning-price.md", '"30 8 * * *"', '"45 9 * * *"')

    applied = apply(sop_dir)

    assert applied.changed == {
        "morning-price": ["schedule 30 8 * * * Asia/Shanghai → 45 9 * * * Asia/Shanghai"]
    }
    assert (applied.added, applied.removed) == ([], [])
    after = on_server()
    assert schedules(after["morning-price"]) == [("45 9 * * *", "Asia/Shanghai", True)]
    untouched = {name for name in before if name != "morning-price"}
    assert {n: after[n].updated for n in untouched} == {n: before[n].updated for n in untouched}
    assert {n: schedules(after[n]) for n in untouched} == {
        n: schedules(before[n]) for n in untouched
    }


def test_a_deleted_sop_loses_its_deployments_and_their_scheduled_runs(sop_dir: Path) -> None:
    apply(sop_dir)
    tomorrow = dt.datetime.now(dt.UTC) + dt.timedelta(days=1)
    with get_client(sync_client=True) as client:
        run = client.create_flow_run_from_deployment(
            on_server()["evening-flash-sale"].id, state=Scheduled(scheduled_time=tomorrow)
        )
    (sop_dir / "community" / "evening-flash-sale.md").unlink()
    (sop_dir / "lifecycle" / "dormant-recall.md").unlink()

    applied = apply(sop_dir)

    assert sorted(applied.removed) == [
        "dormant-recall-care",
        "dormant-recall-coupon",
        "evening-flash-sale",
    ]
    assert applied.added == [] and applied.changed == {}
    assert not {"evening-flash-sale", "dormant-recall-care"} & set(on_server())
    with get_client(sync_client=True) as client, pytest.raises(ObjectNotFound):
        client.read_flow_run(run.id)


def test_foreign_deployments_are_never_touched(sop_dir: Path, foreign: None) -> None:
    """Another flow on sopflow's pool, and sopflow's flow on another pool, stay as they were."""
    apply(sop_dir)
    _ensure_pool(FOREIGN_POOL)
    schedule = [
        DeploymentScheduleCreate(
            schedule=CronSchedule(cron="0 3 * * *", timezone="Asia/Shanghai"), active=True
        )
    ]
    with get_client(sync_client=True) as client:
        client.create_deployment(
            flow_id=client.create_flow_from_name("foreign-report"),
            name="nightly",
            work_pool_name="sopflow",
            schedules=schedule,
        )
        client.create_deployment(
            flow_id=client.create_flow_from_name("community-sop"),
            name="experiment",
            work_pool_name=FOREIGN_POOL,
            schedules=schedule,
        )
    before = {**on_server(), **on_server(FOREIGN_POOL)}
    (sop_dir / "community" / "morning-price.md").unlink()

    applied = apply(sop_dir)

    assert applied.removed == ["morning-price"]
    after = {**on_server(), **on_server(FOREIGN_POOL)}
    for name in ("nightly", "experiment"):
        assert after[name].updated == before[name].updated
        assert schedules(after[name]) == [("0 3 * * *", "Asia/Shanghai", True)]


def test_a_same_named_deployment_on_another_pool_is_skipped_with_what_to_do(
    sop_dir: Path, foreign: None
) -> None:
    apply(sop_dir)
    _ensure_pool(FOREIGN_POOL)  # someone moves morning-price to their own pool
    with get_client(sync_client=True) as client:
        client.create_deployment(
            flow_id=client.create_flow_from_name("community-sop"),
            name="morning-price",
            work_pool_name=FOREIGN_POOL,
        )

    applied = apply(sop_dir)

    assert "morning-price" not in applied.added
    (skipped,) = applied.skipped
    assert skipped.startswith("morning-price (`community-sop/morning-price` already exists on")
    assert "prefect deployment delete 'community-sop/morning-price'" in skipped
    assert on_server(FOREIGN_POOL)["morning-price"].schedules == []


def test_a_deployment_paused_in_the_ui_stays_paused_and_is_reported(sop_dir: Path) -> None:
    apply(sop_dir)
    with get_client(sync_client=True) as client:
        client.pause_deployment(on_server()["morning-price"].id)
    edit(sop_dir / "community" / "morning-price.md", '"30 8 * * *"', '"0 9 * * *"')

    applied = apply(sop_dir)

    assert list(applied.changed) == ["morning-price"]
    assert applied.kept_paused == ["morning-price"]
    assert on_server()["morning-price"].paused
    assert (
        "paused on the server, left paused: morning-price (resume it in the Prefect UI)"
        in applied.lines()
    )
    with get_client(sync_client=True) as client:
        client.resume_deployment(on_server()["morning-price"].id)


def test_paused_in_prefect_yaml_pauses_and_resumes(sop_dir: Path) -> None:
    document = generate_document(sop_dir)
    apply_deployments(specs_from_document(document, sop_dir), managed_flow_names(), WORK_POOL)
    entry = next(e for e in document["deployments"] if e["name"] == "plan-day")

    entry["paused"] = True
    paused = apply_deployments(
        specs_from_document(document, sop_dir), managed_flow_names(), WORK_POOL
    )
    entry["paused"] = False
    resumed = apply_deployments(
        specs_from_document(document, sop_dir), managed_flow_names(), WORK_POOL
    )

    assert paused.changed == {"plan-day": ["paused"]}
    assert resumed.changed == {"plan-day": ["resumed"]}
    assert not on_server()["plan-day"].paused


def test_triggers_are_applied_once_and_kept_on_a_second_apply(sop_dir: Path) -> None:
    document = generate_document(sop_dir)
    entry = next(e for e in document["deployments"] if e["name"] == "drain-events")
    entry["triggers"] = [
        {
            "enabled": True,
            "match": {"prefect.resource.id": "sopflow.event.*"},
            "expect": ["sopflow.event.recorded"],
            "posture": "Reactive",
            "threshold": 1,
            "within": 0,
        }
    ]
    specs = specs_from_document(document, sop_dir)

    apply_deployments(specs, managed_flow_names(), WORK_POOL)
    again = apply_deployments(specs, managed_flow_names(), WORK_POOL)

    assert "drain-events" in again.unchanged
    deployment_id = on_server()["drain-events"].id
    with get_client(sync_client=True) as client:
        owned = client.read_resource_related_automations(f"prefect.deployment.{deployment_id}")
    (automation,) = owned
    assert automation.name == "drain-events__automation_1"
    assert automation.trigger.expect == {"sopflow.event.recorded"}


def test_an_entry_key_apply_cannot_put_on_the_server_is_refused_by_name(tmp_path: Path) -> None:
    document = generate_document(PROJECT_ROOT / "sop")
    document["deployments"][0]["concurrency_options"] = {"collision_strategy": "CANCEL_NEW"}
    name = document["deployments"][0]["name"]

    with pytest.raises(DeploymentFileError) as refused:
        specs_from_document(document, tmp_path / "prefect.yaml")

    assert str(refused.value).startswith(
        f"{tmp_path / 'prefect.yaml'}: deployment `{name}`: `concurrency_options` is not applied"
    )


def test_an_entrypoint_that_names_no_flow_is_refused_with_what_to_write(tmp_path: Path) -> None:
    document = generate_document(PROJECT_ROOT / "sop")
    document["deployments"][0]["entrypoint"] = "flows/community.py:no_such_flow"

    with pytest.raises(DeploymentFileError, match="does not name a flow"):
        specs_from_document(document, tmp_path / "prefect.yaml")


def _ensure_pool(name: str) -> None:
    with get_client(sync_client=True) as client:
        try:
            client.create_work_pool(WorkPoolCreate(name=name, type="process"))
        except ObjectAlreadyExists:
            pass
