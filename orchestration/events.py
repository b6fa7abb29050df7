"""Recorded events reach Prefect as one event per recording, and drain-events runs on its trigger."""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass
from typing import Any

from soplang.spec import TRIGGER_EVENTS

# Prefect is imported inside the functions, as in orchestration/prefect_objects.py: `sopflow
# deployments` and the recording commands must not pay for it before they need it.

log = logging.getLogger(__name__)

EVENT_RECORDED = "sopflow.event.recorded"  # the Prefect event; its resource names the kind
RESOURCE_PREFIX = "sopflow.event."  # + kind, e.g. sopflow.event.contact.added
DRAIN_DEPLOYMENT = "drain-events/drain-events"

# Debounce. Prefect's reactive trigger fires at the first event, then ignores matching events
# until DEBOUNCE has passed; the run it creates starts DEBOUNCE after that first event, so every
# event the trigger ignored is in the Event table by the time the drain claims. A burst of any
# size costs one drain run per DEBOUNCE; a lone event is sent about DEBOUNCE + 5 s after it.
DEBOUNCE = dt.timedelta(seconds=10)
# The safety poll drains what Prefect was not told about (server down, PREFECT_API_URL unset)
# and what waited for quiet hours to end.
SAFETY_POLL_CRON = "*/15 * * * *"
SAFETY_POLL_MINUTES = 15
TIMEOUT_SECONDS = 5.0  # connect and read, per attempt; the recording is already committed


@dataclass(frozen=True)
class Announced:
    """Whether Prefect accepted the event, and in words what happens next."""

    told: bool
    detail: str


def resource_id(kind: str) -> str:
    """The Prefect resource of a kind of sopflow event: `sopflow.event.contact.added`."""
    return f"{RESOURCE_PREFIX}{kind}"


def drain_trigger() -> dict[str, Any]:
    """The `triggers:` entry of the drain-events deployment in prefect.yaml."""
    seconds = int(DEBOUNCE.total_seconds())
    return {
        "type": "event",
        "name": "drain-events on recorded trigger events",
        "description": "Runs the drain when sopflow records contact.added, favourite.price_drop "
        f"or order.shipped events: one run per {seconds} s burst, {seconds} s after its first "
        "event (orchestration/events.py)",
        "enabled": True,
        "match": {"prefect.resource.id": [resource_id(kind) for kind in TRIGGER_EVENTS]},
        "expect": [EVENT_RECORDED],
        "posture": "Reactive",
        "threshold": 1,
        "within": seconds,
        "schedule_after": seconds,
    }


def drain_hint() -> str:
    """What sends recorded events when Prefect was not told."""
    return (
        f"the drain-events safety poll (every {SAFETY_POLL_MINUTES} min) sends them, "
        f"or now: prefect deployment run {DRAIN_DEPLOYMENT}"
    )


def announce_events(
    kind: str, count: int, *, source: str, details: dict[str, Any] | None = None
) -> Announced:
    """Tell Prefect that `count` events of `kind` were recorded (committed already): one Prefect
    event, whatever the count. Every way an event enters sopflow calls this after its commit
    (`sopflow event`, and importers and the WeCom callback receiver once per batch they record).
    Never raises for an unreachable server: the events stay pending in the table for the safety
    poll, and the answer says so."""
    if kind not in TRIGGER_EVENTS:
        return Announced(False, f"{kind} triggers no SOP; nothing to drain")
    if count <= 0:
        return Announced(False, "no event was recorded; nothing to drain")
    import httpx
    from prefect.settings import get_current_settings

    api = get_current_settings().api.url
    if not api:
        return Announced(
            False,
            "PREFECT_API_URL is not set, so no Prefect server was told (for `make up`: "
            f"export PREFECT_API_URL=http://127.0.0.1:4200/api); {drain_hint()}",
        )
    try:
        _post_event(kind, count, source=source, details=details or {})
    except (httpx.HTTPError, OSError, RuntimeError) as error:  # refused, timed out, 5xx, version
        log.debug("announcing %d %s event(s) failed", count, kind, exc_info=True)
        return Announced(
            False, f"Prefect at {api} did not take the event ({error}); {drain_hint()}"
        )
    seconds = int(DEBOUNCE.total_seconds())
    return Announced(True, f"Prefect told: drain-events runs in about {seconds} s")


def _post_event(kind: str, count: int, *, source: str, details: dict[str, Any]) -> None:
    """POST one event to the server's /events endpoint, the same pipeline `emit_event` feeds;
    unlike `emit_event` (a background queue that only logs a failure) it answers or raises."""
    import httpx
    from prefect import get_client
    from prefect.events import Event
    from prefect.events.schemas.events import Resource

    event = Event(
        event=EVENT_RECORDED,
        resource=Resource(
            {"prefect.resource.id": resource_id(kind), "prefect.resource.name": kind}
        ),
        payload={"kind": kind, "count": count, "source": source, **details},
    )
    timeout = httpx.Timeout(TIMEOUT_SECONDS)
    with get_client(sync_client=True, httpx_settings={"timeout": timeout}) as client:
        client.request("POST", "/events", json=[event.model_dump(mode="json")])
