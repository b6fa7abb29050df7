"""1:1 SOP runs end to end: guards, segment-level texts batched per staff member, the emulator."""

from __future__ import annotations

import datetime as dt
import shutil
from collections import Counter
from pathlib import Path

import pytest

from core.clock import at_local
from core.settings import PROJECT_ROOT, reset_settings
from flows.customers import customer_sop
from models.db import session_scope
from models.people import Customer
from tests.factories import add_customers, deliveries, make_world, opt_out

DAY = dt.date(2026, 11, 24)
TEN = at_local(DAY, 10, 0)


def customer_world(url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """400 dormant customers of two staff members (the audience) and 50 growing ones."""
    folder = tmp_path / "sop"
    shutil.copytree(PROJECT_ROOT / "tests" / "fixtures" / "sop_customer", folder)
    monkeypatch.setenv("SOPFLOW_SOP_DIR", str(folder))
    reset_settings()
    world = make_world(DAY, url)
    world.customers = add_customers(300) + add_customers(
        100, owner="lina.sh01", first=300, region="北京"
    )
    add_customers(50, first=400, stage="growing")  # not in the audience
    return world


@pytest.fixture
def world(database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    return customer_world(database_url, tmp_path, monkeypatch)


def test_a_1to1_step_reaches_its_audience_through_the_guards_in_few_calls(world, emulator) -> None:
    deleted, opted = world.customers[0], world.customers[1]
    opt_out([opted], "fresh")
    with session_scope() as session:
        session.get(Customer, deleted).contact_state = "deleted"

    summary = customer_sop(sop_id="dormant-care", step="care", day=DAY, now=TEN)

    rows = deliveries()
    assert len(rows) == 400  # the whole audience is logged, skips included
    outcomes = Counter((r.status, r.reason) for r in rows)
    assert outcomes[("skipped", "not a contact")] == 1
    assert outcomes[("skipped", "opted out of fresh")] == 1
    assert 20 <= outcomes[("skipped", "holdout")] <= 60
    assert outcomes[("sent", None)] == 400 - 2 - outcomes[("skipped", "holdout")]
    # Two staff members, one text each (the text reads region and owner only): two calls.
    messages = emulator.messages
    assert len(messages) == 2 and {m["chat_type"] for m in messages} == {"single"}
    sent_targets = [t for m in messages for t in m["targets"]]
    assert len(sent_targets) == len(set(sent_targets)) == outcomes[("sent", None)]
    assert summary["recipients"] == 400


def test_rerunning_the_occurrence_sends_nothing_and_a_deferred_touch_goes_after_quiet_hours(
    world, emulator
) -> None:
    customer_sop(sop_id="dormant-care", step="care", day=DAY, now=at_local(DAY, 23, 0))
    assert emulator.messages == []
    assert {r.status for r in deliveries() if r.reason != "holdout"} == {"planned"}

    customer_sop(
        sop_id="dormant-care", step="care", day=DAY, now=at_local(DAY + dt.timedelta(days=1), 8, 5)
    )
    sent = len([t for m in emulator.messages for t in m["targets"]])
    customer_sop(
        sop_id="dormant-care", step="care", day=DAY, now=at_local(DAY + dt.timedelta(days=1), 9, 0)
    )

    assert sent > 300 and len([t for m in emulator.messages for t in m["targets"]]) == sent


def test_an_audience_in_many_batches_is_recorded_once_and_sent_in_one_call_per_staff_member(
    world, emulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Batches of 64 (one read ahead while another is written): each customer has one row, each
    staff member one call for the whole occurrence, and a re-run sends nothing."""
    monkeypatch.setenv("SOPFLOW_BATCH_SIZE", "64")
    reset_settings()

    summary = customer_sop(sop_id="dormant-care", step="care", day=DAY, now=TEN)

    rows = deliveries()
    assert len(rows) == len({r.target_id for r in rows}) == 400
    sent = sorted(r.target_id for r in rows if r.status == "sent")
    assert len(emulator.messages) == 2
    assert sorted(t for m in emulator.messages for t in m["targets"]) == sent
    assert summary["recipients"] == 400

    again = customer_sop(sop_id="dormant-care", step="care", day=DAY, now=TEN)

    assert len(emulator.messages) == 2 and again["recipients"] == 400
    assert not any(outcome.startswith("sent") for outcome in again["this_run"])


@pytest.mark.postgres
def test_a_1to1_occurrence_runs_the_same_on_postgresql(
    postgres_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    customer_world(postgres_url, tmp_path, monkeypatch)
    monkeypatch.setenv("SOPFLOW_BATCH_SIZE", "150")
    reset_settings()

    first = customer_sop(sop_id="dormant-care", step="care", day=DAY, now=TEN)
    again = customer_sop(sop_id="dormant-care", step="care", day=DAY, now=TEN)

    rows = deliveries()
    outcomes = Counter(r.status for r in rows)
    assert len(rows) == 400 and outcomes["sent"] + outcomes["skipped"] == 400
    assert all(r.msgid and r.sent_at for r in rows if r.status == "sent")
    assert first["recipients"] == again["recipients"] == 400
    assert not any(outcome.startswith("sent") for outcome in again["this_run"])
