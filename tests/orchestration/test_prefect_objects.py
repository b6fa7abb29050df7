"""The call limit and the zombie automation are created once, kept as defined, and a send never skips the limit."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest
from prefect import flow, get_client
from prefect.client.schemas.actions import GlobalConcurrencyLimitUpdate
from prefect.client.schemas.objects import StateType
from prefect.events.actions import ChangeFlowRunState
from prefect.events.schemas.automations import EventTrigger, Posture
from prefect.exceptions import ObjectNotFound
from typer.testing import CliRunner

from channels.emulator.core import WeComEmulator
from core.clock import at_local
from core.settings import get_settings, reset_settings
from engine.compose import Composed
from engine.dispatch import DispatchResult, send_grouped
from engine.plan import plan_customers
from orchestration.prefect_objects import (
    CALL_LIMIT,
    ZOMBIE_AUTOMATION,
    call_limit_slots,
    ensure_call_limit,
    ensure_prefect_objects,
    ensure_prefect_objects_once,
    ensure_zombie_automation,
    forget_ensured,
    zombie_automation,
)
from sopflow.cli import app
from tasks import dispatch
from tests.factories import add_customers, audience_of, customer_sop, make_world, occurrence_of

DAY = dt.date(2026, 11, 24)


def read_limit():
    with get_client(sync_client=True) as client:
        return client.read_global_concurrency_limit_by_name(CALL_LIMIT)


def delete_limit() -> None:
    with get_client(sync_client=True) as client:
        try:
            client.delete_global_concurrency_limit_by_name(CALL_LIMIT)
        except ObjectNotFound:
            pass


def zombie_automations():
    with get_client(sync_client=True) as client:
        return client.read_automations_by_name(ZOMBIE_AUTOMATION)


@pytest.fixture
def no_limit() -> Iterator[None]:
    """The server without the call limit, and this process not remembering it ensured one."""
    delete_limit()
    forget_ensured()
    yield
    forget_ensured()


@pytest.fixture
def no_automation() -> None:
    with get_client(sync_client=True) as client:
        for automation in client.read_automations_by_name(ZOMBIE_AUTOMATION):
            client.delete_automation(automation.id)


@pytest.mark.parametrize(
    ("calls_per_minute", "slots"), [(2000, 5), (3000, 3), (10_000, 1), (1_000_000, 1)]
)
def test_call_limit_slots_keep_all_channels_within_wecoms_company_limit(
    calls_per_minute: int, slots: int
) -> None:
    settings = get_settings().model_copy(update={"wecom_calls_per_minute": calls_per_minute})
    assert call_limit_slots(settings) == slots


def test_a_missing_call_limit_is_created_with_the_size_from_settings(no_limit: None) -> None:
    assert ensure_call_limit() == "created"

    limit = read_limit()
    assert (limit.limit, limit.active, limit.slot_decay_per_second) == (5, True, 0)


def test_an_existing_call_limit_is_left_alone(no_limit: None) -> None:
    ensure_call_limit()
    before = read_limit()

    assert ensure_call_limit() == "unchanged"
    after = read_limit()
    assert (after.id, after.limit, after.updated) == (before.id, before.limit, before.updated)


def test_a_changed_call_limit_is_set_back_to_the_settings(
    no_limit: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    ensure_call_limit()
    with get_client(sync_client=True) as client:
        client.update_global_concurrency_limit(
            CALL_LIMIT, GlobalConcurrencyLimitUpdate(limit=99, active=False)
        )
    monkeypatch.setenv("WECOM_CALLS_PER_MINUTE", "2500")
    reset_settings()

    assert ensure_call_limit() == "updated"
    assert (read_limit().limit, read_limit().active) == (4, True)
    reset_settings()


@pytest.fixture
def touches(emulator: WeComEmulator, database_url: str) -> list[Composed]:
    """Two planned customers of one staff member, ready to send through the emulator."""
    make_world(DAY, database_url)
    add_customers(2)
    spec = customer_sop()
    batch = plan_customers(
        spec, occurrence_of(spec, DAY), audience_of(spec), now=at_local(DAY, 10, 0)
    )
    return [
        Composed(t.delivery_id, t.target.external_userid, t.sender, "早上好") for t in batch.touches
    ]


@flow
def send(touches: list[Composed]) -> DispatchResult:
    with dispatch.open_channel() as channel:
        return send_grouped(channel, "single", touches)


def test_a_wecom_dispatch_creates_the_missing_call_limit_and_holds_a_slot(
    no_limit: None, touches: list[Composed], emulator: WeComEmulator
) -> None:
    with dispatch.open_channel() as channel:
        assert channel.name == "wecom"
        assert read_limit().active_slots == 1

    result = send(touches)

    assert result.calls == 1 and len(emulator.messages) == 1
    assert read_limit().limit == 5 and read_limit().active_slots == 0


def test_dispatch_threads_starting_together_create_the_limit_once(no_limit: None) -> None:
    """The 1:1 flow opens four channels at once: one asks the server, none fails on the race."""
    with ThreadPoolExecutor(max_workers=4) as pool:
        list(pool.map(lambda _: ensure_prefect_objects_once(), range(4)))

    assert read_limit().limit == 5


def test_a_call_limit_deleted_under_a_running_process_fails_the_send_loudly(
    no_limit: None, emulator: WeComEmulator
) -> None:
    with dispatch.open_channel():
        pass  # this process has ensured the limit once and will not ask again
    delete_limit()

    with pytest.raises(Exception, match="must be created before acquiring slots"):
        with dispatch.open_channel():
            pass


def test_the_zombie_automation_is_created_once(no_automation: None) -> None:
    assert ensure_zombie_automation() == "created"
    assert ensure_zombie_automation() == "unchanged"

    assert len(zombie_automations()) == 1


def test_the_zombie_automation_is_the_one_from_prefects_guide(no_automation: None) -> None:
    ensure_zombie_automation()

    (automation,) = zombie_automations()
    trigger = automation.trigger
    assert isinstance(trigger, EventTrigger)
    assert trigger.posture == Posture.Proactive
    assert trigger.after == {"prefect.flow-run.heartbeat"}
    assert trigger.expect == {
        "prefect.flow-run.heartbeat",
        "prefect.flow-run.Completed",
        "prefect.flow-run.Failed",
        "prefect.flow-run.Cancelled",
        "prefect.flow-run.Crashed",
    }
    assert trigger.match.model_dump() == {"prefect.resource.id": ["prefect.flow-run.*"]}
    assert trigger.for_each == {"prefect.resource.id"}
    assert (trigger.threshold, trigger.within) == (1, dt.timedelta(seconds=90))
    assert automation.enabled
    (action,) = automation.actions
    assert isinstance(action, ChangeFlowRunState)
    assert action.state == StateType.CRASHED
    assert action.message == "Flow run marked as crashed due to missing heartbeats."


def test_a_changed_or_duplicated_zombie_automation_is_put_back(no_automation: None) -> None:
    ensure_zombie_automation()
    (automation,) = zombie_automations()
    changed = zombie_automation()
    changed.enabled = False
    assert isinstance(changed.trigger, EventTrigger)
    changed.trigger.within = dt.timedelta(seconds=600)
    with get_client(sync_client=True) as client:
        client.update_automation(automation.id, changed)
        client.create_automation(zombie_automation())

    assert ensure_zombie_automation() == "updated"

    (kept,) = zombie_automations()
    assert kept.enabled and kept.trigger.within == dt.timedelta(seconds=90)
    assert ensure_zombie_automation() == "unchanged"


def test_prefect_setup_applies_both_objects_and_says_what_it_did(
    no_limit: None, no_automation: None
) -> None:
    result = CliRunner().invoke(app, ["prefect-setup"])

    assert result.exit_code == 0, result.output
    assert result.output.splitlines() == [f"{CALL_LIMIT}: created", f"{ZOMBIE_AUTOMATION}: created"]
    assert ensure_prefect_objects() == {CALL_LIMIT: "unchanged", ZOMBIE_AUTOMATION: "unchanged"}
