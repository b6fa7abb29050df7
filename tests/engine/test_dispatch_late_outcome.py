"""A runner whose lease lapsed mid-call never writes its late answer over another runner's rows."""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest

from channels.base import MassMessage, SendReceipt
from channels.outbox import OutboxChannel
from core.clock import at_local
from engine.compose import Composed
from engine.dispatch import send_grouped
from engine.plan import plan_customers
from models.db import session_scope
from models.deliveries import claim_for_sending, set_status
from models.delivery import DeliveryStatus
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


class SlowOutbox(OutboxChannel):
    """The outbox, where another runner takes the rows over while the first call is out."""

    def __init__(self, directory: Path, meanwhile: Callable[[list[str]], None]) -> None:
        super().__init__(directory)
        self.meanwhile = meanwhile
        self.msgids: list[str] = []

    def send_mass(self, message: MassMessage) -> SendReceipt:
        if not self.msgids:
            self.meanwhile(list(message.targets))
        receipt = super().send_mass(message)
        self.msgids.append(receipt.msgid)
        return receipt


@pytest.fixture
def touches(database_url: str) -> list[Composed]:
    """Four planned customers of one staff member, one text: one call."""
    make_world(DAY, database_url)
    add_customers(4)
    spec = customer_sop()
    batch = plan_customers(spec, occurrence_of(spec, DAY), audience_of(spec), now=MORNING)
    return [
        Composed(t.delivery_id, t.target.external_userid, t.sender, "早上好") for t in batch.touches
    ]


def test_a_late_answer_leaves_rows_another_runner_reconciled_and_resent(
    touches: list[Composed], tmp_path: Path
) -> None:
    ids = [t.delivery_id for t in touches]

    def take_over(_targets: list[str]) -> None:
        with session_scope() as session:  # the reconcile found nothing at WeCom: resendable
            set_status(ids, DeliveryStatus.FAILED, session=session, reason="not found at WeCom")
        send_grouped(OutboxChannel(tmp_path / "b"), "single", touches, flow_run_id="run-b")

    channel = SlowOutbox(tmp_path / "a", take_over)
    late = send_grouped(channel, "single", touches, flow_run_id="run-a")

    rows = deliveries()
    assert {(r.status, r.flow_run_id) for r in rows} == {("sent", "run-b")}
    assert len(channel.msgids) == 1 and channel.msgids[0] not in {r.msgid for r in rows}
    assert (late.superseded, late.outcomes[("sent", "")]) == (4, 0)


def test_a_late_answer_leaves_rows_another_runner_has_claimed_again(
    touches: list[Composed], tmp_path: Path
) -> None:
    ids = [t.delivery_id for t in touches]

    def claim_again(_targets: list[str]) -> None:
        with session_scope() as session:
            set_status(ids[:2], DeliveryStatus.FAILED, session=session, reason="not found")
            assert claim_for_sending(ids[:2], session=session, flow_run_id="run-b") == set(ids[:2])

    channel = SlowOutbox(tmp_path, claim_again)
    late = send_grouped(channel, "single", touches, flow_run_id="run-a")

    by_id = {r.id: r for r in deliveries()}
    assert [(by_id[i].status, by_id[i].flow_run_id) for i in ids] == [
        ("sending", "run-b"),
        ("sending", "run-b"),  # B's call is out: its answer, not A's, settles them
        ("sent", "run-a"),
        ("sent", "run-a"),
    ]
    assert {by_id[i].msgid for i in ids[2:]} == set(channel.msgids)
    assert late.superseded == 2 and late.outcomes == Counter({("sent", ""): 2})
