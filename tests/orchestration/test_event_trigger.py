"""Recorded events reach Prefect, and the drain-events trigger makes one drain run per burst."""

from __future__ import annotations

import datetime as dt
import socket
import time
from collections.abc import Iterator
from uuid import UUID

import pytest
from prefect.events.schemas.automations import Posture
from prefect.settings import PREFECT_API_URL, temporary_settings

from core.clock import utcnow
from orchestration.events import DEBOUNCE, EVENT_RECORDED, SAFETY_POLL_CRON, announce_events
from soplang.spec import TRIGGER_EVENTS
from tests.orchestration.drain_trigger import (
    drain_deployment_without_worker,
    drain_entry,
    drain_triggers,
    runs_of,
    wait_for,
)


@pytest.fixture
def drain_deployment() -> Iterator[UUID]:
    with drain_deployment_without_worker() as deployment_id:
        yield deployment_id


def closed_port_url() -> str:
    """An API URL nothing listens on."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}/api"


def test_the_drain_runs_on_recorded_trigger_events_and_polls_only_every_15_minutes() -> None:
    entry = drain_entry()

    (trigger,) = drain_triggers(entry)

    assert [s["cron"] for s in entry["schedules"]] == [SAFETY_POLL_CRON] == ["*/15 * * * *"]
    assert trigger.expect == {EVENT_RECORDED}
    assert trigger.match.model_dump() == {
        "prefect.resource.id": [f"sopflow.event.{kind}" for kind in TRIGGER_EVENTS]
    }
    assert trigger.posture == Posture.Reactive and trigger.threshold == 1
    assert not trigger.for_each  # one bucket for every kind: a mixed burst is one run too
    # The run starts a debounce after the first event; the trigger ignores the rest meanwhile.
    assert trigger.within == trigger.schedule_after == DEBOUNCE == dt.timedelta(seconds=10)
    assert trigger.parameters is None  # the deployment's defaults: the drain takes `now` itself


def test_a_burst_of_recorded_events_starts_one_drain_run_a_debounce_later(
    drain_deployment: UUID,
) -> None:
    """Fifteen recordings of the three trigger kinds in a few seconds: one run, scheduled ~10 s on."""
    started = utcnow()
    answers = [announce_events(TRIGGER_EVENTS[i % 3], 1, source="test") for i in range(15)]

    assert all(a.told for a in answers), answers[0].detail
    # The server's trigger service may lag behind under load (SQLite busy); the debounce itself
    # is pinned below by the run's due time, not by how soon the run appears.
    (first,) = wait_for(lambda: runs_of(drain_deployment), 60, "a drain run")
    time.sleep(1.5)  # any run the rest of the burst would start has been created by now
    assert len(runs_of(drain_deployment)) == 1
    assert first.state is not None and first.state.is_scheduled()
    delay = first.expected_start_time - started
    assert DEBOUNCE <= delay < DEBOUNCE + dt.timedelta(seconds=5), delay


def test_kinds_that_trigger_no_sop_and_empty_recordings_are_not_announced() -> None:
    browse = announce_events("browse", 5, source="test")
    nothing = announce_events("contact.added", 0, source="test")

    assert (browse.told, browse.detail) == (False, "browse triggers no SOP; nothing to drain")
    assert not nothing.told and "nothing to drain" in nothing.detail


def test_an_unreachable_prefect_is_an_answer_that_names_the_safety_poll_not_an_error() -> None:
    url = closed_port_url()
    began = time.monotonic()
    with temporary_settings(updates={PREFECT_API_URL: url}):
        answer = announce_events("contact.added", 1, source="test")

    assert time.monotonic() - began < 5
    assert not answer.told
    assert f"Prefect at {url} did not take the event" in answer.detail
    assert "safety poll (every 15 min)" in answer.detail
    assert "prefect deployment run drain-events/drain-events" in answer.detail


def test_without_prefect_api_url_nothing_is_started_and_the_answer_says_how_to_connect() -> None:
    with temporary_settings(restore_defaults={PREFECT_API_URL}):
        answer = announce_events("order.shipped", 3, source="test")

    assert not answer.told
    assert answer.detail.startswith("PREFECT_API_URL is not set, so no Prefect server was told")
    assert "export PREFECT_API_URL=http://127.0.0.1:4200/api" in answer.detail
