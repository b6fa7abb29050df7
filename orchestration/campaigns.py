"""Campaign scheduling: one scheduled Prefect flow run per promotion step, visible in the UI before it runs.

`schedule_campaign` creates, on the `promotion-step` deployment, a Scheduled run per step of
the campaign's SOP at start + offset (Asia/Shanghai), tagged `campaign:<code>`, with the
idempotency key `<code>:<step>:<scheduled ISO time>` (scheduling twice creates nothing new).
`reschedule_campaign` moves the start (and end) and replaces the pending runs;
`cancel_campaign` cancels them. A run that becomes due while no worker is up stays Scheduled
(the server renames it Late) and runs once when a worker comes back; the Delivery idempotency
keys make any repeat of a step send nothing.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from prefect import get_client
from prefect.client.schemas.filters import (
    FlowRunFilter,
    FlowRunFilterState,
    FlowRunFilterStateType,
    FlowRunFilterTags,
)
from prefect.client.schemas.objects import FlowRun, StateType
from prefect.client.schemas.sorting import FlowRunSort
from prefect.states import Cancelled, Scheduled

from core.clock import at_local, utcnow
from core.errors import SopError
from core.settings import get_settings
from engine.campaign import find_campaign, set_campaign, step_due_times, upcoming_codes
from models.db import session_scope
from soplang.loader import find_sop

DEPLOYMENT = "promotion-step/promotion-step"  # <flow name>/<deployment name>
PENDING = (StateType.SCHEDULED, StateType.PENDING)  # Late runs are SCHEDULED too


@dataclass(frozen=True)
class StepRun:
    """A flow run of one campaign step as the UI shows it."""

    step: str
    scheduled_at: dt.datetime  # aware UTC
    flow_run_id: str
    state: str

    @classmethod
    def of(cls, run: FlowRun) -> StepRun:
        return cls(
            str(run.parameters.get("step")),
            run.expected_start_time or run.next_scheduled_start_time,  # type: ignore[arg-type]
            str(run.id),
            (run.state.name or "unknown") if run.state else "unknown",
        )


def campaign_tag(code: str) -> str:
    """The tag every run of the campaign carries (filter on it in the UI)."""
    return f"campaign:{code}"


def idempotency_key(code: str, step: str, scheduled_at: dt.datetime) -> str:
    return f"{code}:{step}:{scheduled_at.astimezone(dt.UTC).isoformat()}"


def step_times(code: str) -> dict[str, dt.datetime]:
    """Step -> UTC instant for the campaign's SOP from its current start."""
    with session_scope() as session:
        campaign = find_campaign(code, session=session)
    if campaign.sop_id is None:
        raise SopError(f"campaign {code} has no sop_id; set the SOP it runs first")
    spec = find_sop(campaign.sop_id, get_settings().sop_dir)
    return step_due_times(spec, campaign.starts_at, get_settings().timezone)


@contextmanager
def _client(client: Any = None) -> Iterator[Any]:
    if client is not None:
        yield client
        return
    with get_client(sync_client=True) as fresh:
        yield fresh


def campaign_runs(
    code: str, *, client: Any = None, states: tuple[StateType, ...] = ()
) -> list[FlowRun]:
    """The campaign's flow runs (optionally only in `states`), earliest first."""
    state = FlowRunFilterState(type=FlowRunFilterStateType(any_=list(states))) if states else None
    run_filter = FlowRunFilter(tags=FlowRunFilterTags(all_=[campaign_tag(code)]), state=state)
    with _client(client) as api:
        return list(
            api.read_flow_runs(flow_run_filter=run_filter, sort=FlowRunSort.EXPECTED_START_TIME_ASC)
        )


def _create_run(api: Any, deployment_id: Any, code: str, step: str, at: dt.datetime) -> FlowRun:
    """A Scheduled run of `step` at `at`; a run cancelled earlier under the same key is replaced."""
    for _attempt in range(2):
        run = api.create_flow_run_from_deployment(
            deployment_id,
            parameters={"campaign_code": code, "step": step},
            state=Scheduled(scheduled_time=at),
            name=f"{code} {step}",
            tags=["promotion", campaign_tag(code)],
            idempotency_key=idempotency_key(code, step, at),
        )
        never_ran = run.state and run.state.type == StateType.CANCELLED and not run.run_count
        if not never_ran:
            return run
        api.delete_flow_run(run.id)
    return run


def follow_up_run(deployment_id: Any, code: str, step: str, at: dt.datetime) -> StepRun:
    """One more Scheduled run of `step` at `at` (touches quiet hours deferred go out then)."""
    with _client() as api:
        return StepRun.of(_create_run(api, deployment_id, code, step, at))


def schedule_campaign(code: str, *, client: Any = None) -> list[StepRun]:
    """Create a Scheduled run per step of the campaign at start + offset; status becomes scheduled."""
    times = step_times(code)
    with _client(client) as api:
        deployment = api.read_deployment_by_name(DEPLOYMENT)
        runs = [_create_run(api, deployment.id, code, step, at) for step, at in times.items()]
    with session_scope() as session:
        set_campaign(code, session=session, status="scheduled")
    return [StepRun.of(run) for run in runs]


def cancel_campaign(code: str, *, client: Any = None) -> list[StepRun]:
    """Cancel the campaign's pending runs and mark it cancelled (a run that starts anyway sends nothing)."""
    with session_scope() as session:
        set_campaign(code, session=session, status="cancelled")
    with _client(client) as api:
        pending = campaign_runs(code, client=api, states=PENDING)
        for run in pending:
            api.set_flow_run_state(
                run.id, Cancelled(message=f"campaign {code} cancelled"), force=True
            )
        return [StepRun.of(api.read_flow_run(run.id)) for run in pending]


def reschedule_campaign(
    code: str, starts_local: dt.datetime, *, client: Any = None
) -> list[StepRun]:
    """Move the start to `starts_local` (wall clock, Asia/Shanghai; the end moves with it) and
    replace the pending runs; returns the new runs (none unless the campaign is scheduled)."""
    tz = get_settings().timezone
    starts_at = at_local(starts_local.date(), starts_local.hour, starts_local.minute, tz)
    with session_scope() as session:
        campaign = find_campaign(code, session=session)
        ends_at = starts_at + (campaign.ends_at - campaign.starts_at)
        set_campaign(code, session=session, starts_at=starts_at, ends_at=ends_at)
    with _client(client) as api:
        for run in campaign_runs(code, client=api, states=PENDING):
            api.delete_flow_run(run.id)
        if campaign.status != "scheduled":
            return []
        return schedule_campaign(code, client=api)


def schedule_upcoming(*, client: Any = None) -> dict[str, list[StepRun]]:
    """Schedule every draft or scheduled campaign that has not ended (`make up` does this)."""
    with session_scope() as session:
        codes = upcoming_codes(utcnow(), session=session)
    with _client(client) as api:
        return {code: schedule_campaign(code, client=api) for code in codes}
