"""The Prefect objects the flows rely on, created or updated idempotently: call limit, zombie and approval automations."""

from __future__ import annotations

import datetime as dt
import logging
import threading
from functools import lru_cache
from typing import TYPE_CHECKING, Literal

from core.settings import Settings, get_settings

if TYPE_CHECKING:
    from prefect.client.orchestration import SyncPrefectClient
    from prefect.events.schemas.automations import AutomationCore

# Prefect is imported inside the functions: its settings (PREFECT_API_URL …) are frozen when it is
# first imported, and `sopflow up` imports this module before it sets the environment.

Outcome = Literal["created", "updated", "unchanged", "removed"]
log = logging.getLogger(__name__)

CALL_LIMIT = "wecom-api"  # tasks/dispatch.py takes one slot per open channel
COMPANY_CALLS_PER_MINUTE = 10_000  # WeCom's call limit per company, per API

# Runner heartbeats and the automation from Prefect's "Detect zombie flows" guide: after each
# heartbeat of a flow run, another heartbeat or a final state is expected within ZOMBIE_WITHIN
# (three heartbeats missed), else the run is marked Crashed.
HEARTBEAT_SECONDS = 30  # PREFECT_FLOWS_HEARTBEAT_FREQUENCY; Prefect's minimum is 30
ZOMBIE_WITHIN = dt.timedelta(seconds=90)
ZOMBIE_AUTOMATION = "Crash zombie flows"  # the guide's name: one automation, however created
ZOMBIE_MESSAGE = "Flow run marked as crashed due to missing heartbeats."
FINAL_EVENTS = ("Completed", "Failed", "Cancelled", "Crashed")
_ENSURING = threading.Lock()  # one thread of a process asks the server; the others wait


def call_limit_slots(settings: Settings) -> int:
    """Open WeCom channels allowed at once: `wecom_call_slots` when set, else as many as keep
    their paces (`wecom_calls_per_minute` each) within WeCom's 10,000 calls a minute per company."""
    if settings.wecom_call_slots is not None:
        return settings.wecom_call_slots
    return max(1, COMPANY_CALLS_PER_MINUTE // settings.wecom_calls_per_minute)


def ensure_call_limit(slots: int | None = None) -> Outcome:
    """Create the `wecom-api` global concurrency limit, or set its size to `slots` (from settings)."""
    from prefect import get_client

    slots = call_limit_slots(get_settings()) if slots is None else slots
    with get_client(sync_client=True) as client:
        return _ensure_limit(client, CALL_LIMIT, slots)


def _ensure_limit(client: SyncPrefectClient, name: str, slots: int) -> Outcome:
    import httpx
    from prefect.client.schemas.actions import (
        GlobalConcurrencyLimitCreate,
        GlobalConcurrencyLimitUpdate,
    )
    from prefect.exceptions import ObjectAlreadyExists, ObjectNotFound

    try:
        current = client.read_global_concurrency_limit_by_name(name)
    except ObjectNotFound:
        try:
            client.create_global_concurrency_limit(
                GlobalConcurrencyLimitCreate(name=name, limit=slots)
            )
            log.debug("created global concurrency limit %s (%d slots)", name, slots)
            return "created"
        except (ObjectAlreadyExists, httpx.HTTPStatusError):
            # Another process created it a moment ago (Prefect's SQLite server answers 500 for
            # that race, not 409): it exists now, or reading it raises the real problem.
            current = client.read_global_concurrency_limit_by_name(name)
    if current.limit == slots and current.active:
        return "unchanged"
    client.update_global_concurrency_limit(
        name, GlobalConcurrencyLimitUpdate(limit=slots, active=True)
    )
    log.debug("set global concurrency limit %s to %d slots (was %d)", name, slots, current.limit)
    return "updated"


def zombie_automation() -> AutomationCore:
    """The automation of Prefect's guide: a flow run whose heartbeats stop is marked Crashed."""
    from prefect.client.schemas.objects import StateType
    from prefect.events.actions import ChangeFlowRunState
    from prefect.events.schemas.automations import AutomationCore, EventTrigger, Posture
    from prefect.events.schemas.events import ResourceSpecification

    return AutomationCore(
        name=ZOMBIE_AUTOMATION,
        description="Marks a flow run Crashed when its heartbeats stop (worker or machine died); "
        "managed by sopflow (orchestration/prefect_objects.py)",
        enabled=True,
        tags=[],
        trigger=EventTrigger(
            after={"prefect.flow-run.heartbeat"},
            expect={"prefect.flow-run.heartbeat", *(f"prefect.flow-run.{s}" for s in FINAL_EVENTS)},
            match=ResourceSpecification({"prefect.resource.id": ["prefect.flow-run.*"]}),
            match_related=[],
            for_each={"prefect.resource.id"},
            posture=Posture.Proactive,
            threshold=1,
            within=ZOMBIE_WITHIN,
        ),
        actions=[
            ChangeFlowRunState(
                state=StateType.CRASHED, name=None, message=ZOMBIE_MESSAGE, force=False
            )
        ],
        actions_on_trigger=[],
        actions_on_resolve=[],
    )


def ensure_zombie_automation() -> Outcome:
    """Create the zombie automation, or update it (and drop duplicates) when it differs."""
    from prefect import get_client
    from prefect.events.schemas.automations import AutomationCore

    wanted = zombie_automation()
    fields = set(AutomationCore.model_fields)
    with get_client(sync_client=True) as client:
        found = client.read_automations_by_name(ZOMBIE_AUTOMATION)
        if not found:
            client.create_automation(wanted)
            log.debug("created automation %r", ZOMBIE_AUTOMATION)
            return "created"
        first, *duplicates = found
        for duplicate in duplicates:
            client.delete_automation(duplicate.id)
        if not duplicates and first.model_dump(include=fields) == wanted.model_dump():
            return "unchanged"
        client.update_automation(first.id, wanted)
        log.debug("updated automation %r", ZOMBIE_AUTOMATION)
        return "updated"


def ensure_prefect_objects() -> dict[str, Outcome]:
    """Every Prefect object the flows rely on, by name: what was done to each. The approval
    reminder is there when `SOPFLOW_APPROVAL_ROBOT` is set (or was, and it was removed)."""
    from orchestration.approval_notices import REMINDER_AUTOMATION, ensure_approval_reminder

    done: dict[str, Outcome] = {
        CALL_LIMIT: ensure_call_limit(),
        ZOMBIE_AUTOMATION: ensure_zombie_automation(),
    }
    if reminder := ensure_approval_reminder():
        done[REMINDER_AUTOMATION] = reminder
    return done


def ensure_prefect_objects_once() -> None:
    """What a sending process ensures before its first call, once per process and server: the
    call limit, and the zombie automation when this process emits heartbeats. Dispatch threads
    start together: one asks the server, the others wait for it."""
    from prefect.settings import get_current_settings

    current = get_current_settings()
    with _ENSURING:
        _ensure_once(
            str(current.api.url),
            call_limit_slots(get_settings()),
            bool(current.flows.heartbeat_frequency),
        )


@lru_cache(maxsize=8)
def _ensure_once(_api_url: str, slots: int, heartbeats: bool) -> None:
    ensure_call_limit(slots)
    if heartbeats:
        ensure_zombie_automation()


def forget_ensured() -> None:
    """Make the next `ensure_prefect_objects_once()` ask the server again (tests)."""
    _ensure_once.cache_clear()
