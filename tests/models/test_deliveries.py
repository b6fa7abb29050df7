"""The Delivery log: a fresh occurrence writes without looking up first, and rows move by id."""

from __future__ import annotations

import dataclasses
import datetime as dt

import pytest

from core.clock import at_local
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
    mark_sent,
    occurrence_of,
)

DAY = dt.date(2026, 11, 24)
MORNING = at_local(DAY, 10, 0)


@pytest.fixture
def world(database_url: str):
    return make_world(DAY, database_url)


def test_a_fresh_run_meeting_a_concurrent_runs_rows_writes_none_twice(world) -> None:
    """`fresh` skips the lookup before writing; rows another run wrote meanwhile surface on insert."""
    add_customers(4)
    spec = customer_sop()
    occurrence = occurrence_of(spec, DAY)
    other = plan_customers(spec, occurrence, audience_of(spec), now=MORNING)
    mark_sent(dataclasses.replace(other, touches=other.touches[:1]))

    batch = plan_customers(
        spec, dataclasses.replace(occurrence, fresh=True), audience_of(spec), now=MORNING
    )

    assert len(deliveries()) == 4
    assert batch.already_done == {"sent": 1}
    assert sorted(t.delivery_id for t in batch.touches) == sorted(
        t.delivery_id for t in other.touches[1:]
    )


def test_rows_move_by_id_with_each_value_bound_by_its_column(world) -> None:
    add_customers(3)
    spec = customer_sop()
    ids = [
        t.delivery_id
        for t in plan_customers(
            spec, occurrence_of(spec, DAY), audience_of(spec), now=MORNING
        ).touches
    ]
    sent_at = dt.datetime(2026, 11, 24, 2, 0, 1, tzinfo=dt.UTC)

    with session_scope() as session:
        claimed = claim_for_sending(ids[:2], session=session, flow_run_id="run-1")
        assert claim_for_sending(ids, session=session) == {ids[2]}
        moved = set_status(
            ids,
            DeliveryStatus.SENT,
            session=session,
            only_from=[DeliveryStatus.SENDING],
            msgid="m1",
            sent_at=sent_at,
        )

    assert claimed == set(ids[:2]) and moved == 3
    rows = {r.id: r for r in deliveries()}
    assert {(rows[i].status, rows[i].msgid, rows[i].sent_at) for i in ids} == {
        ("sent", "m1", sent_at)
    }
    assert rows[ids[0]].flow_run_id == "run-1"
