"""The generated drain-events deployment and its trigger on the test server, and its flow runs."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any
from uuid import UUID, uuid4

from prefect import get_client
from prefect.client.schemas.filters import DeploymentFilter, DeploymentFilterId
from prefect.client.schemas.objects import FlowRun
from prefect.events.schemas.deployment_triggers import DeploymentTriggerTypes
from pydantic import TypeAdapter

from core.settings import PROJECT_ROOT
from sopflow.deployments import generate


def drain_entry() -> dict[str, Any]:
    """The drain-events entry of prefect.yaml as `sopflow deployments` generates it."""
    import yaml

    document = yaml.safe_load(generate(PROJECT_ROOT / "sop"))
    (entry,) = [d for d in document["deployments"] if d["name"] == "drain-events"]
    return entry


def drain_triggers(entry: dict[str, Any]) -> list[Any]:
    """The entry's `triggers:` as Prefect's own deployment-trigger models (as `prefect deploy`
    reads them: any field Prefect does not know fails here)."""
    adapter: TypeAdapter[Any] = TypeAdapter(DeploymentTriggerTypes)
    return [adapter.validate_python(dict(spec)) for spec in entry["triggers"]]


@contextmanager
def drain_deployment_without_worker() -> Iterator[UUID]:
    """The drain-events deployment with its trigger automation (no work pool, no schedule: its
    runs stay Scheduled, so a test counts what the trigger created); removed afterwards. Its own
    name keeps it apart from a drain-events deployment other tests apply to the session server."""
    entry = drain_entry()
    with get_client(sync_client=True) as client:
        flow_id = client.create_flow_from_name("drain-events")
        deployment_id = client.create_deployment(
            flow_id=flow_id,
            name=f"{entry['name']}-{uuid4().hex[:8]}",
            entrypoint=entry["entrypoint"],
            parameters=entry["parameters"],
            tags=entry["tags"],
        )
        for trigger in drain_triggers(entry):
            trigger.set_deployment_id(deployment_id)
            client.create_automation(trigger.as_automation())
    try:
        yield deployment_id
    finally:
        remove_deployment(deployment_id)


def remove_deployment(deployment_id: UUID) -> None:
    """Delete a deployment, the automations it owns and its flow runs."""
    with get_client(sync_client=True) as client:
        client.delete_resource_owned_automations(f"prefect.deployment.{deployment_id}")
        for run in runs_of(deployment_id):
            client.delete_flow_run(run.id)
        client.delete_deployment(deployment_id)


def runs_of(deployment_id: UUID) -> list[FlowRun]:
    """The flow runs of one deployment, oldest first."""
    with get_client(sync_client=True) as client:
        runs = client.read_flow_runs(
            deployment_filter=DeploymentFilter(id=DeploymentFilterId(any_=[deployment_id]))
        )
    return sorted(runs, key=lambda run: run.created or 0)


def wait_for(condition: Callable[[], Any], timeout: float, what: str) -> Any:
    """Poll `condition` until it returns something truthy; fail saying `what` after `timeout` s."""
    deadline = time.monotonic() + timeout
    while not (found := condition()):
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} did not happen within {timeout:.0f} s")
        time.sleep(0.2)
    return found
