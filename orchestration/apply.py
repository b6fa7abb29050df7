"""Apply sopflow's deployments to the Prefect server: add, change and remove them, and say which."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from uuid import UUID

    from prefect.client.orchestration import SyncPrefectClient
    from prefect.client.schemas.responses import DeploymentResponse

# Prefect is imported inside the functions, as in prefect_objects.py: `sopflow up` imports this
# module before it sets PREFECT_API_URL.

log = logging.getLogger(__name__)
PAGE = 200  # deployments or automations read per request


@dataclass(frozen=True)
class DeploymentSpec:
    """One deployment as prefect.yaml asks for it, with its flow's name and parameter form resolved.

    `paused` None leaves the server's paused state alone (an operator may have paused the
    deployment in the UI); True or False is applied."""

    flow_name: str
    name: str
    entrypoint: str
    work_pool: str
    description: str = ""
    tags: list[str] = field(default_factory=list)
    parameters: dict[str, Any] = field(default_factory=dict)
    schedules: list[dict[str, Any]] = field(default_factory=list)  # cron, timezone, active
    pull_steps: list[dict[str, Any]] = field(default_factory=list)
    parameter_schema: dict[str, Any] = field(default_factory=dict)
    triggers: list[dict[str, Any]] = field(default_factory=list)
    paused: bool | None = None
    concurrency_limit: int | None = None

    @property
    def key(self) -> tuple[str, str]:
        return (self.flow_name, self.name)


@dataclass
class Applied:
    """What one apply did, deployment by deployment name."""

    added: list[str] = field(default_factory=list)
    changed: dict[str, list[str]] = field(default_factory=dict)  # name -> what changed
    removed: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    kept_paused: list[str] = field(default_factory=list)  # paused on the server, left paused
    skipped: list[str] = field(default_factory=list)  # name and why: a foreign deployment holds it
    pool_created: str | None = None

    def lines(self) -> list[str]:
        """One line per outcome, for the operator."""
        lines = [f"work pool {self.pool_created}: created"] if self.pool_created else []
        lines += [f"added: {name}" for name in self.added]
        lines += [f"changed: {name} ({', '.join(what)})" for name, what in self.changed.items()]
        lines += [
            f"removed: {name} (no longer generated; its scheduled runs deleted)"
            for name in self.removed
        ]
        lines += [f"skipped: {name}" for name in self.skipped]
        if self.unchanged:
            lines.append(f"unchanged: {', '.join(self.unchanged)}")
        lines += [
            f"paused on the server, left paused: {name} (resume it in the Prefect UI)"
            for name in self.kept_paused
        ]
        return lines


def apply_deployments(specs: list[DeploymentSpec], managed_flows: set[str], pool: str) -> Applied:
    """Make the server's deployments of `managed_flows` on `pool` exactly `specs`: create the
    missing, update the different, delete the ones no spec names. Deployments of other flows,
    or on other pools, are never touched; unchanged ones are not rewritten (a rewrite drops
    their scheduled runs for the scheduler to make again)."""
    from prefect import get_client

    elsewhere = sorted(spec.name for spec in specs if spec.work_pool != pool)
    if elsewhere:
        raise ValueError(f"deployments {', '.join(elsewhere)} are not on work pool `{pool}`")
    applied = Applied()
    with get_client(sync_client=True) as client:
        if _ensure_pool(client, pool):
            applied.pool_created = pool
        server = _read_server(client, managed_flows)
        current = {k: d for k, d in server.deployments.items() if d.work_pool_name == pool}
        for spec in specs:
            found = current.pop(spec.key, None)
            if found is None:
                if (other := server.deployments.get(spec.key)) is not None:
                    applied.skipped.append(f"{spec.name} ({_held_elsewhere(spec, other)})")
                    continue
                _write(client, server, spec, paused=bool(spec.paused), new=True)
                applied.added.append(spec.name)
                continue
            differences = _differences(spec, found, server.automations.get(found.id, []))
            if differences == ["triggers"]:
                _write_triggers(client, spec, found.id)  # the schedule's runs stay as they are
                applied.changed[spec.name] = differences
            elif differences:
                paused = found.paused if spec.paused is None else spec.paused
                _write(client, server, spec, paused=paused, new=False)
                applied.changed[spec.name] = differences
            else:
                applied.unchanged.append(spec.name)
            if found.paused and spec.paused is None:
                applied.kept_paused.append(spec.name)
        for (_flow, name), deployment in sorted(current.items()):
            _remove(client, deployment)
            applied.removed.append(name)
    return applied


@dataclass
class _Server:
    """What the server holds of sopflow's flows, read once per apply."""

    flow_ids: dict[str, UUID]  # flow name -> id
    deployments: dict[tuple[str, str], DeploymentResponse]  # (flow, name) -> on any pool
    automations: dict[UUID, list[str]]  # deployment id -> the automations that run it


def _read_server(client: SyncPrefectClient, managed_flows: set[str]) -> _Server:
    from prefect.client.schemas.filters import FlowFilter, FlowFilterName

    flow_filter = FlowFilter(name=FlowFilterName(any_=sorted(managed_flows)))
    flow_ids = {flow.name: flow.id for flow in client.read_flows(flow_filter=flow_filter)}
    names = {flow_id: name for name, flow_id in flow_ids.items()}
    deployments = {
        (names[d.flow_id], d.name): d
        for d in _pages(
            lambda offset: client.read_deployments(
                flow_filter=flow_filter, limit=PAGE, offset=offset
            )
        )
        if d.flow_id in names
    }
    # An automation is related to each deployment its run-deployment actions select (Prefect's
    # /automations/related-to): the deployment's own triggers, and any an operator made.
    automations: dict[UUID, list[str]] = {}
    for automation in _pages(lambda offset: client.read_automations(limit=PAGE, offset=offset)):
        targets = {
            action.deployment_id
            for action in automation.actions
            if getattr(action, "type", None) == "run-deployment"
            and getattr(action, "source", None) == "selected"
        }
        for deployment_id in targets:
            automations.setdefault(deployment_id, []).append(_automation_json(automation))
    return _Server(flow_ids, deployments, {k: sorted(v) for k, v in automations.items()})


def _pages(read: Any) -> list[Any]:
    """Every item of a paged read (`read(offset)` returns up to PAGE items)."""
    items: list[Any] = []
    while True:
        page = read(len(items))
        items += page
        if len(page) < PAGE:
            return items


def _ensure_pool(client: SyncPrefectClient, pool: str) -> bool:
    """Create sopflow's process work pool when the server has none of that name."""
    from prefect.client.schemas.actions import WorkPoolCreate
    from prefect.exceptions import ObjectAlreadyExists, ObjectNotFound
    from prefect.workers.process import ProcessWorker

    try:
        client.read_work_pool(pool)
        return False
    except ObjectNotFound:
        pass
    template = ProcessWorker.get_default_base_job_template()
    try:
        client.create_work_pool(
            WorkPoolCreate(name=pool, type="process", base_job_template=template)
        )
    except ObjectAlreadyExists:
        return False  # another process created it a moment ago
    return True


def _held_elsewhere(spec: DeploymentSpec, other: DeploymentResponse) -> str:
    """Why sopflow does not create the spec's deployment: Prefect names a deployment by flow
    and name, and one of that name on another work pool is not sopflow's to change."""
    return (
        f"`{spec.flow_name}/{spec.name}` already exists on work pool "
        f"`{other.work_pool_name or 'none'}`, which sopflow leaves alone; delete it "
        f"(prefect deployment delete '{spec.flow_name}/{spec.name}') and apply again"
    )


def _differences(
    spec: DeploymentSpec, found: DeploymentResponse, automations: list[str]
) -> list[str]:
    """What differs between the spec and the deployment on the server, in a few words each."""
    differences = []
    wanted_schedules = [_schedule_key(s) for s in spec.schedules]
    server_schedules = [_server_schedule_key(s) for s in found.schedules]
    if sorted(wanted_schedules) != sorted(server_schedules):
        before = "; ".join(_describe(s) for s in server_schedules) or "none"
        after = "; ".join(_describe(s) for s in wanted_schedules) or "none"
        differences.append(f"schedule {before} → {after}")
    simple = {
        "parameters": (spec.parameters, found.parameters),
        "description": (spec.description, found.description or ""),
        "tags": (sorted(spec.tags), sorted(found.tags)),
        "entrypoint": (spec.entrypoint, found.entrypoint),
        "working directory": (spec.pull_steps, found.pull_steps or []),
        "parameter form": (spec.parameter_schema, found.parameter_openapi_schema or {}),
        "concurrency limit": (spec.concurrency_limit, _server_limit(found)),
    }
    differences += [name for name, (wanted, has) in simple.items() if _json(wanted) != _json(has)]
    if spec.paused is not None and spec.paused != found.paused:
        differences.append("paused" if spec.paused else "resumed")
    if _wanted_automations(spec, found.id) != automations:
        differences.append("triggers")
    return differences


def _schedule_key(schedule: dict[str, Any]) -> tuple[str, str, bool]:
    return (schedule["cron"], schedule.get("timezone") or "UTC", bool(schedule.get("active", True)))


def _server_schedule_key(schedule: Any) -> tuple[str, str, bool]:
    inner = schedule.schedule
    cron = getattr(inner, "cron", None) or f"{type(inner).__name__} (not a cron)"
    return (cron, getattr(inner, "timezone", None) or "UTC", bool(schedule.active))


def _describe(key: tuple[str, str, bool]) -> str:
    cron, timezone, active = key
    return f"{cron} {timezone}" + ("" if active else " (inactive)")


def _server_limit(found: DeploymentResponse) -> int | None:
    limit = found.global_concurrency_limit
    return limit.limit if limit is not None else None


def _json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, default=str)


def _canonical(value: Any) -> Any:
    """`value` with lists of strings sorted: Prefect's trigger models hold sets (`expect`,
    `for_each`), whose order in a dump is not stable."""
    if isinstance(value, dict):
        return {key: _canonical(item) for key, item in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        items = [_canonical(item) for item in value]
        return sorted(items) if all(isinstance(item, str) for item in items) else items
    return value


def _triggers(spec: DeploymentSpec, deployment_id: UUID) -> list[Any]:
    """The spec's triggers as Prefect deployment triggers owned by the deployment."""
    from prefect.events import DeploymentTriggerTypes
    from pydantic import TypeAdapter

    adapter: TypeAdapter[Any] = TypeAdapter(DeploymentTriggerTypes)
    triggers = []
    for number, raw in enumerate(spec.triggers, start=1):
        trigger = adapter.validate_python({"name": f"{spec.name}__automation_{number}", **raw})
        trigger.set_deployment_id(deployment_id)
        triggers.append(trigger)
    return triggers


def _wanted_automations(spec: DeploymentSpec, deployment_id: UUID) -> list[str]:
    return sorted(_automation_json(t.as_automation()) for t in _triggers(spec, deployment_id))


def _automation_json(automation: Any) -> str:
    from prefect.events.schemas.automations import AutomationCore

    fields = set(AutomationCore.model_fields) - {"owner_resource"}  # never read back
    return _json(_canonical(automation.model_dump(mode="json", include=fields)))


def _write(
    client: SyncPrefectClient, server: _Server, spec: DeploymentSpec, *, paused: bool, new: bool
) -> UUID:
    """Create or replace the deployment (Prefect upserts on flow and name), then its triggers."""
    from prefect.client.schemas.actions import DeploymentScheduleCreate
    from prefect.client.schemas.schedules import CronSchedule

    if spec.flow_name not in server.flow_ids:
        server.flow_ids[spec.flow_name] = client.create_flow_from_name(spec.flow_name)
    deployment_id = client.create_deployment(
        flow_id=server.flow_ids[spec.flow_name],
        name=spec.name,
        entrypoint=spec.entrypoint,
        work_pool_name=spec.work_pool,
        description=spec.description,
        tags=spec.tags,
        parameters=spec.parameters,
        schedules=[
            DeploymentScheduleCreate(
                schedule=CronSchedule(cron=s["cron"], timezone=s.get("timezone") or "UTC"),
                active=bool(s.get("active", True)),
            )
            for s in spec.schedules
        ],
        pull_steps=spec.pull_steps,
        parameter_openapi_schema=spec.parameter_schema,
        enforce_parameter_schema=True,
        paused=paused,
        concurrency_limit=spec.concurrency_limit,
    )
    if spec.triggers or not new:
        _write_triggers(client, spec, deployment_id)
    log.debug("applied deployment %s/%s", spec.flow_name, spec.name)
    return deployment_id


def _write_triggers(client: SyncPrefectClient, spec: DeploymentSpec, deployment_id: UUID) -> None:
    """Replace the automations the deployment owns with the spec's triggers (as `prefect deploy`)."""
    client.delete_resource_owned_automations(f"prefect.deployment.{deployment_id}")
    for trigger in _triggers(spec, deployment_id):
        client.create_automation(trigger.as_automation())


def _remove(client: SyncPrefectClient, deployment: DeploymentResponse) -> None:
    """Delete the deployment, its triggers and every run it still had scheduled (Prefect deletes
    those itself, but not always: PrefectHQ/prefect#15697)."""
    from prefect.client.schemas.filters import (
        FlowRunFilter,
        FlowRunFilterDeploymentId,
        FlowRunFilterState,
        FlowRunFilterStateType,
    )
    from prefect.client.schemas.objects import StateType
    from prefect.exceptions import ObjectNotFound

    client.delete_resource_owned_automations(f"prefect.deployment.{deployment.id}")
    try:
        client.delete_deployment(deployment.id)
    except ObjectNotFound:
        pass  # gone already
    leftover = client.read_flow_runs(
        flow_run_filter=FlowRunFilter(
            deployment_id=FlowRunFilterDeploymentId(any_=[deployment.id]),
            state=FlowRunFilterState(type=FlowRunFilterStateType(any_=[StateType.SCHEDULED])),
        )
    )
    for run in leftover:
        client.delete_flow_run(run.id)
    log.debug("removed deployment %s (%d leftover scheduled runs)", deployment.name, len(leftover))
