"""Send results: staff confirmation, per-target outcomes, reminders and giving up, against the emulator."""

from __future__ import annotations

import datetime as dt

import pytest

from channels.emulator.core import WeComEmulator
from channels.wecom import WeComClient
from core.clock import at_local
from core.settings import get_settings
from engine.results import RESULT_STATUS, apply_results, collect
from flows.community import community_sop
from flows.maintenance import collect_results
from models.db import session_scope
from tests.factories import deliveries, make_world

DAY = dt.date(2026, 11, 24)
SENT_AT = at_local(DAY, 8, 30)


@pytest.fixture
def sent(emulator: WeComEmulator, database_url: str) -> WeComEmulator:
    """Today's morning price sent to the small world's three groups through the emulator."""
    make_world(DAY, database_url)
    community_sop(sop_id="morning-price", day=DAY, now=SENT_AT)
    return emulator


def statuses() -> dict[str, str]:
    return {r.target_id: r.status for r in deliveries() if r.status != "skipped"}


def test_confirmed_messages_become_delivered(sent) -> None:
    totals = collect_results(now=dt.datetime.now(dt.UTC))

    assert sorted(statuses().values()) == ["delivered", "delivered", "delivered"]
    assert totals["delivered"] == 3
    assert collect_results(now=dt.datetime.now(dt.UTC))["messages"] == 0  # nothing left to poll


def test_each_wecom_result_status_maps_to_its_outcome(sent) -> None:
    first, second, third = (r for r in deliveries() if r.status == "sent")

    with session_scope() as session:
        moved = apply_results(first.msgid, [(first.target_id, 2)], session=session)
        moved += apply_results(second.msgid, [(second.target_id, 3)], session=session)
        moved += apply_results(third.msgid, [(third.target_id, 0)], session=session)

    assert dict(moved) == {"not_a_friend": 1, "over_wecom_limit": 1}
    assert statuses()[third.target_id] == "sent"  # status 0: not sent yet, still waiting
    assert {RESULT_STATUS[s].value for s in (1, 2, 3)} == {
        "delivered",
        "not_a_friend",
        "over_wecom_limit",
    }


def test_unconfirmed_staff_are_reminded_at_most_three_times_a_day_then_given_up(sent) -> None:
    sent.configure(confirm_share=0.0)
    real_sent_at = min(r.sent_at for r in deliveries() if r.sent_at)
    before_reminders = real_sent_at + dt.timedelta(minutes=30)
    after_two_hours = real_sent_at + dt.timedelta(hours=3)

    assert collect_results(now=before_reminders).get("reminded", 0) == 0
    reminded = [collect_results(now=after_two_hours).get("reminded", 0) for _ in range(4)]
    messages = {r.msgid for r in deliveries() if r.msgid}

    assert reminded == [len(messages)] * 3 + [0]
    assert all(len(m["reminders"]) == 3 for m in sent.messages)
    assert set(statuses().values()) == {"sent"}
    collect_results(now=real_sent_at + dt.timedelta(hours=25))
    assert set(statuses().values()) == {"unconfirmed"}


def test_msgids_the_emulator_forgot_are_counted_and_marked_unknown(sent) -> None:
    sent.reset()  # WeCom no longer knows any of them: every poll answers 41047

    with WeComClient.from_settings(get_settings()) as client:
        totals = collect(client, now=dt.datetime.now(dt.UTC))

    assert totals == {"messages": 3, "unknown": 3, "unknown msgids": 3}
    assert set(statuses().values()) == {"unknown"}
    assert {r.errcode for r in deliveries() if r.status == "unknown"} == {41047}
