"""The due-step queue on both databases: scheduled once per event and step, claimed by one pass at a time."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlmodel import col, select

from core.clock import at_local
from engine.events import CLAIM_LEASE, EVENT_COLUMNS, PendingEvent
from engine.trigger_due import claim_due, release_due, schedule_due
from models.commerce import Event
from models.db import session_scope
from models.trigger_steps import DueStep
from soplang.spec import SopSpec, Step
from tests.factories import add_customers, add_events, make_world

DAY = dt.date(2026, 11, 24)
TEN = at_local(DAY, 10, 0)
SPEC = SopSpec(
    id="waits",
    title="等待",
    kind="trigger",
    on="contact.added",
    channel="customer",
    category="daily",
    steps=[Step(name="now"), Step(name="soon", after="1h"), Step(name="later", after="2d")],
)


def queue(url: str) -> list[PendingEvent]:
    make_world(DAY, url)
    ids = add_events("contact.added", add_customers(3, url=url), at=TEN)
    with session_scope() as session:
        rows = session.execute(select(*EVENT_COLUMNS).where(col(Event.id).in_(ids)))
        return [PendingEvent(*row) for row in rows]


def check_queue(events: list[PendingEvent]) -> None:
    with session_scope() as session:
        assert schedule_due([SPEC], events, session=session) == 6  # soon and later, not `now`
    with session_scope() as session:  # a retried batch schedules nothing twice
        assert schedule_due([SPEC], events, session=session) == 0
        assert len(session.exec(select(DueStep)).all()) == 6

    soon = TEN + dt.timedelta(hours=1)
    with session_scope() as session:
        assert claim_due(limit=10, now=soon - dt.timedelta(minutes=1), session=session).count == 0
        first = claim_due(limit=2, now=soon, session=session)
    later = soon + dt.timedelta(minutes=5)
    with session_scope() as session:  # another pass, while the first one holds its rows
        second = claim_due(limit=10, now=later, session=session)
        third = claim_due(limit=10, now=later, session=session)
    assert (first.count, second.count, third.count) == (2, 1, 0)  # `later` is not due yet
    with session_scope() as session:  # the first pass dies: its rows come back after the lease
        assert claim_due(limit=10, now=soon + CLAIM_LEASE, session=session).count == 0
        taken = claim_due(
            limit=10, now=soon + CLAIM_LEASE + dt.timedelta(seconds=1), session=session
        )
        assert taken.count == 2
        assert release_due(taken.token, session=session) == 2


def test_due_steps_are_scheduled_once_and_claimed_once_on_sqlite(database_url: str) -> None:
    check_queue(queue(database_url))


@pytest.mark.postgres
def test_due_steps_are_scheduled_once_and_claimed_once_on_postgresql(postgres_url: str) -> None:
    check_queue(queue(postgres_url))
