"""1:1 SOP runs end to end: guards, segment-level texts batched per staff member, the emulator."""

from __future__ import annotations

import datetime as dt
import shutil
from collections import Counter
from pathlib import Path

import pytest

from flows.customers import customer_sop
from models.db import session_scope
from models.people import Customer
from sopflow.clock import at_local
from sopflow.settings import PROJECT_ROOT, reset_settings
from tests.factories import add_customers, deliveries, make_world, opt_out

DAY = dt.date(2026, 11, 24)
TEN = at_local(DAY, 10, 0)


@pytest.fixture
def world(database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    folder = tmp_path / "sop"
    shutil.copytree(PROJECT_ROOT / "tests" / "fixtures" / "sop_customer", folder)
    monkeypatch.setenv("SOPFLOW_SOP_DIR", str(folder))
    reset_settings()
    world = make_world(DAY, database_url)
    world.customers = add_customers(300) + add_customers(
        100, owner="lina.sh01", first=300, region="北京"
    )
    add_customers(50, first=400, stage="growing")  # not in the audience
    return world


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
