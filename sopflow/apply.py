"""Edit → live: write prefect.yaml from sop/ and apply its deployments to the running Prefect server."""

from __future__ import annotations

import copy
import importlib
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from core.settings import PROJECT_ROOT
from sopflow.deployments import (
    WORK_POOL,
    generate_document,
    managed_entrypoints,
    render_document,
)

if TYPE_CHECKING:
    from prefect import Flow

    from orchestration.apply import Applied, DeploymentSpec

# What `--apply` knows how to put on the server; any other key in an entry is refused by name.
ENTRY_KEYS = {
    "name",
    "description",
    "entrypoint",
    "tags",
    "parameters",
    "work_pool",
    "schedules",
    "triggers",
    "paused",
    "concurrency_limit",
}
SCHEDULE_KEYS = {"cron", "timezone", "active"}
PWD = "{{ $PWD }}"  # `prefect deploy` fills it from the shell; apply pins it to the project root


class DeploymentFileError(ValueError):
    """prefect.yaml asks for something `--apply` cannot put on the server; says where and why."""


@dataclass
class Outcome:
    """What `apply_sop_dir` did: whether it rewrote prefect.yaml, and what the server got."""

    wrote: bool
    applied: Applied


def apply_sop_dir(sop_root: Path, output: Path, *, root: Path = PROJECT_ROOT) -> Outcome:
    """Regenerate `output` (prefect.yaml) from `sop_root` and apply it to PREFECT_API_URL's server."""
    from orchestration.apply import apply_deployments

    document = generate_document(sop_root)
    text = render_document(document)
    current = output.read_text(encoding="utf-8") if output.exists() else None
    if current != text:
        output.write_text(text, encoding="utf-8")
    specs = specs_from_document(document, output, root=root)
    applied = apply_deployments(specs, managed_flow_names(), WORK_POOL)
    return Outcome(wrote=current != text, applied=applied)


def managed_flow_names() -> set[str]:
    """The names of the flows whose deployments on the `sopflow` pool are sopflow's."""
    return {flow_at(entrypoint).name for entrypoint in managed_entrypoints()}


def specs_from_document(
    document: dict[str, Any], path: Path, *, root: Path = PROJECT_ROOT
) -> list[DeploymentSpec]:
    """prefect.yaml's deployments, each with its flow's name and parameter form."""
    from prefect.utilities.callables import parameter_schema

    from orchestration.apply import DeploymentSpec

    pull_steps = _pinned(copy.deepcopy(document.get("pull") or []), root)
    schemas: dict[str, dict[str, Any]] = {}  # one per flow; building one takes ~50 ms
    specs = []
    for entry in document.get("deployments") or []:
        where = f"{path}: deployment `{entry.get('name', '?')}`"
        unknown = sorted(set(entry) - ENTRY_KEYS)
        if unknown:
            raise DeploymentFileError(
                f"{where}: `{unknown[0]}` is not applied by `sopflow deployments --apply` "
                f"(it applies {', '.join(sorted(ENTRY_KEYS))}); add it to sopflow/apply.py first"
            )
        pool = (entry.get("work_pool") or {}).get("name")
        if pool != WORK_POOL:
            raise DeploymentFileError(
                f"{where}: work pool `{pool}`: sopflow applies its deployments to the "
                f"`{WORK_POOL}` work pool only; write work_pool: {{name: {WORK_POOL}}}"
            )
        try:
            flow = flow_at(entry["entrypoint"])
        except (KeyError, ImportError, AttributeError) as error:
            raise DeploymentFileError(
                f"{where}: entrypoint {entry.get('entrypoint')!r} does not name a flow ({error}); "
                "write it as flows/<file>.py:<flow function>"
            ) from None
        if flow.name not in schemas:
            schemas[flow.name] = parameter_schema(flow).model_dump(mode="json", exclude_unset=True)
        specs.append(
            DeploymentSpec(
                flow_name=flow.name,
                name=entry["name"],
                entrypoint=entry["entrypoint"],
                work_pool=pool,
                description=entry.get("description") or flow.description or "",
                tags=list(entry.get("tags") or []),
                parameters=copy.deepcopy(entry.get("parameters") or {}),
                schedules=[_schedule(s, where) for s in entry.get("schedules") or []],
                pull_steps=pull_steps,
                parameter_schema=schemas[flow.name],
                triggers=copy.deepcopy(entry.get("triggers") or []),
                paused=entry.get("paused"),
                concurrency_limit=entry.get("concurrency_limit"),
            )
        )
    return specs


def flow_at(entrypoint: str) -> Flow[..., Any]:
    """The flow an entrypoint such as `flows/community.py:community_sop` names, imported as a
    module of the project (not by path), so it is the same object the worker runs."""
    path, _, function = entrypoint.partition(":")
    module = importlib.import_module(path.removesuffix(".py").replace("/", "."))
    flow = getattr(module, function)
    if not hasattr(flow, "name") or not hasattr(flow, "fn"):
        raise AttributeError(f"{function} in {path} is not a Prefect flow")
    return flow


def _schedule(schedule: dict[str, Any], where: str) -> dict[str, Any]:
    unknown = sorted(set(schedule) - SCHEDULE_KEYS)
    if unknown or "cron" not in schedule:
        problem = f"`{unknown[0]}` is not applied" if unknown else "`cron` is missing"
        raise DeploymentFileError(
            f"{where}: schedule {schedule}: {problem}; a schedule has {', '.join(sorted(SCHEDULE_KEYS))}"
        )
    return dict(schedule)


def _pinned(steps: Any, root: Path) -> Any:
    """The pull steps with `{{ $PWD }}` as the project root, so workers run the project's code
    whichever directory `--apply` was started from."""
    if isinstance(steps, str):
        return steps.replace(PWD, str(root))
    if isinstance(steps, list):
        return [_pinned(step, root) for step in steps]
    if isinstance(steps, dict):
        return {key: _pinned(value, root) for key, value in steps.items()}
    return steps
