"""Dispatch claims each call's rows before sending and writes its outcome with the next claim."""

from __future__ import annotations

import datetime as dt
from collections import Counter
from pathlib import Path

import pytest

from channels.base import MassMessage, SendReceipt
from channels.outbox import OutboxChannel
from core.clock import at_local
from engine.compose import Composed
from engine.dispatch import send_grouped
from engine.plan import plan_customers
from tests.factories import (
    add_customers,
    audience_of,
    customer_sop,
    deliveries,
    make_world,
    occurrence_of,
)

DAY = dt.date(2026, 11, 24)
MORNING = at_local(DAY, 10, 0)


class WatchedOutbox(OutboxChannel):
    """The outbox, noting the rows' statuses at each call; the call numbered `crash_at` crashes."""

    def __init__(self, directory: Path, crash_at: int | None = None) -> None:
        super().__init__(directory)
        self.crash_at = crash_at
        self.seen: list[Counter[str]] = []

    def send_mass(self, message: MassMessage) -> SendReceipt:
        self.seen.append(Counter(r.status for r in deliveries()))
        if len(self.seen) == self.crash_at:
            raise RuntimeError("the worker died")
        return super().send_mass(message)


@pytest.fixture
def touches(database_url: str) -> list[Composed]:
    """Four planned customers of one staff member, two texts: two calls."""
    make_world(DAY, database_url)
    add_customers(4)
    spec = customer_sop()
    batch = plan_customers(spec, occurrence_of(spec, DAY), audience_of(spec), now=MORNING)
    texts = ["早上好", "早上好", "晚上好", "晚上好"]
    return [
        Composed(t.delivery_id, t.target.external_userid, t.sender, text)
        for t, text in zip(batch.touches, texts, strict=True)
    ]


def test_a_calls_outcome_is_written_with_the_next_claim_and_the_last_on_its_own(
    touches, tmp_path: Path
) -> None:
    channel = WatchedOutbox(tmp_path)

    result = send_grouped(channel, "single", touches)

    assert channel.seen == [Counter(planned=2, sending=2), Counter(sent=2, sending=2)]
    assert Counter(r.status for r in deliveries()) == {"sent": 4}
    assert (result.calls, result.outcomes) == (2, Counter({("sent", ""): 4}))


def test_a_crash_mid_dispatch_keeps_what_earlier_calls_answered(touches, tmp_path: Path) -> None:
    with pytest.raises(RuntimeError):
        send_grouped(WatchedOutbox(tmp_path, crash_at=2), "single", touches)

    assert Counter(r.status for r in deliveries()) == {"sent": 2, "sending": 2}
