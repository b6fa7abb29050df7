"""A dispatch bucket is read a page at a time and still makes one call per sender and text."""

from __future__ import annotations

import datetime as dt
from collections import Counter
from pathlib import Path
from typing import Any

from sqlalchemy import update
from sqlmodel import col

from channels.base import MassMessage, SendReceipt
from channels.outbox import OutboxChannel
from core.clock import at_local
from engine.compose import Composed, Rendered
from engine.dispatch import dispatch_plan, send_pending, whole_calls
from engine.plan import plan_customers
from models.db import session_scope
from models.deliveries import Occurrence
from models.people import Customer
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
TEXTS = ("早上好", "晚上好", "周末愉快")


class CountingOutbox(OutboxChannel):
    """The outbox, noting each call's sender, text and number of targets."""

    def __init__(self, directory: Path) -> None:
        super().__init__(directory)
        self.calls: list[tuple[str, str, int]] = []

    def send_mass(self, message: MassMessage) -> SendReceipt:
        self.calls.append((message.sender, message.content, len(message.targets)))
        return super().send_mass(message)


def recorded_occurrence(url: str, *, orphans: int = 0) -> tuple[Occurrence, list[Any]]:
    """Two staff members' customers interleaved by id, three texts in turn (no page of three
    rows holds a call), recorded; `orphans` more customers whose advisor left (no sender)."""
    make_world(DAY, url)
    for first in range(0, 20, 2):
        add_customers(1, first=first)
        add_customers(1, first=first + 1, owner="lina.sh01")
    if orphans:
        ids = add_customers(orphans, first=40)
        with session_scope() as session:
            session.execute(
                update(Customer).where(col(Customer.id).in_(ids)).values(owner_staff_id=None)
            )
    spec = customer_sop()
    customers = audience_of(spec)
    rendered = Rendered(texts={c.id: TEXTS[i % 3] for i, c in enumerate(customers)})
    occurrence = occurrence_of(spec, DAY)
    plan_customers(spec, occurrence, customers, now=MORNING, rendered=rendered)
    return occurrence, customers


def test_a_bucket_read_in_pages_of_three_rows_sends_each_sender_and_text_in_one_call(
    database_url: str, tmp_path: Path
) -> None:
    occurrence, customers = recorded_occurrence(database_url)
    channel = CountingOutbox(tmp_path)

    result = send_pending(
        channel, occurrence, "single", ["lina.sh01", "zhangwei.bj01"], now=MORNING, page_rows=3
    )

    expected = Counter(
        (c.owner_userid, TEXTS[i % 3]) for i, c in enumerate(customers) if c.owner_userid
    )
    assert Counter({(sender, text): n for sender, text, n in channel.calls}) == expected
    assert len(channel.calls) == len(expected) == 6
    assert Counter(r.status for r in deliveries()) == {"sent": 20}
    assert (result.calls, result.outcomes) == (6, Counter({("sent", ""): 20}))


def test_a_text_over_the_call_limit_is_cut_only_at_the_limit() -> None:
    touches = [Composed(i, f"wm{i}", "a", "hi") for i in range(7)] + [Composed(7, "wm7", "b", "hi")]

    segments = list(whole_calls(touches, limit=3, rows=4))

    # Calls of 3, 3 and 1 rows for sender a, then b's: a segment ends only after a whole call.
    assert [[t.delivery_id for t in s] for s in segments] == [[0, 1, 2, 3, 4, 5], [6, 7]]


def test_the_plan_reads_the_waiting_rows_once_and_hands_each_bucket_its_ids_in_call_order(
    database_url: str, tmp_path: Path
) -> None:
    occurrence, _ = recorded_occurrence(database_url, orphans=2)
    rows = {r.id: r for r in deliveries()}

    buckets = dispatch_plan(occurrence, now=MORNING, rows_per_bucket=5)

    # A sender is never split, whatever the bucket size; senders in order, each sender's ids
    # by text (Message), then id: the order of its calls.
    assert [b.senders for b in buckets] == [["lina.sh01"], ["zhangwei.bj01"]]
    for bucket in buckets:
        ids = list(bucket.ids)
        assert {rows[i].sender for i in ids} == set(bucket.senders)
        assert ids == sorted(ids, key=lambda i: (rows[i].message_id, i)) and len(ids) == 10
    # The bucket's ids are what it sends; a row sent since (a retry, another run) is not resent.
    channel = CountingOutbox(tmp_path)
    first = send_pending(
        channel, occurrence, "single", ["lina.sh01"], now=MORNING, ids=buckets[0].ids
    )
    again = send_pending(
        channel, occurrence, "single", ["lina.sh01"], now=MORNING, ids=buckets[0].ids
    )
    assert (first.calls, again.calls) == (3, 0) and len(channel.calls) == 3
    statuses = Counter((r.sender, r.status) for r in deliveries())
    assert statuses == {
        ("lina.sh01", "sent"): 10,
        ("zhangwei.bj01", "planned"): 10,
        (None, "planned"): 2,
    }
