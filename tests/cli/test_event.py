"""`sopflow event`: the event is recorded first, then Prefect is told, and an absent Prefect is no failure."""

from __future__ import annotations

import datetime as dt
import socket
from collections.abc import Iterator
from uuid import UUID

import pytest
from click.testing import Result
from prefect.settings import PREFECT_API_URL, temporary_settings
from sqlmodel import col, select
from typer.testing import CliRunner

from models.commerce import Event
from models.db import session_scope
from models.people import Customer
from sopflow.cli import app
from tests.factories import add_customers, add_events, make_world
from tests.orchestration.drain_trigger import drain_deployment_without_worker, runs_of, wait_for

DAY = dt.date(2026, 11, 24)


@pytest.fixture
def customers(database_url: str) -> list[int]:
    """Three customers in a small world with products."""
    make_world(DAY, database_url)
    return add_customers(3)


def external(customer_id: int) -> str:
    with session_scope() as session:
        found = session.get(Customer, customer_id)
        assert found is not None
        return found.external_userid


@pytest.fixture
def drain_deployment() -> Iterator[UUID]:
    with drain_deployment_without_worker() as deployment_id:
        yield deployment_id


def sopflow(*args: str) -> Result:
    return CliRunner().invoke(app, list(args))


def pending(kind: str) -> list[int]:
    with session_scope() as session:
        return list(
            session.exec(
                select(Event.id).where(Event.kind == kind, col(Event.processed_at).is_(None))
            )
        )


def test_a_trigger_event_is_recorded_and_prefect_starts_the_drain(
    customers: list[int], drain_deployment: UUID
) -> None:
    customer = external(customers[0])

    result = sopflow("event", "add", "contact.added", "--customer", customer)

    assert result.exit_code == 0, result.output
    (event_id,) = pending("contact.added")
    assert result.stdout.splitlines() == [
        f"event {event_id} recorded: contact.added for {customer}",
        "Prefect told: drain-events runs in about 10 s",
    ]
    assert result.stderr == ""
    (run,) = wait_for(lambda: runs_of(drain_deployment), 10, "a drain run")
    assert run.state is not None and run.state.is_scheduled()


def test_a_price_drop_tells_prefect_once_for_all_the_events_it_records(
    customers: list[int], drain_deployment: UUID
) -> None:
    add_events("favourite", customers, sku="F001")

    result = sopflow("event", "price-drop", "F001", "--price", "2.99")

    assert result.exit_code == 0, result.output
    assert len(pending("favourite.price_drop")) == 3
    assert "3 favourite.price_drop event(s) recorded" in result.stdout
    assert result.stdout.endswith("Prefect told: drain-events runs in about 10 s\n")
    wait_for(lambda: runs_of(drain_deployment), 10, "a drain run")


def test_when_prefect_is_unreachable_the_event_stays_recorded_and_the_command_succeeds(
    customers: list[int],
) -> None:
    customer = external(customers[1])
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{probe.getsockname()[1]}/api"  # nothing listens once closed
    with temporary_settings(updates={PREFECT_API_URL: url}):
        result = sopflow("event", "add", "contact.added", "--customer", customer)

    assert result.exit_code == 0, result.output
    (event_id,) = pending("contact.added")
    assert result.stdout == f"event {event_id} recorded: contact.added for {customer}\n"
    assert result.stderr.startswith(f"warning: Prefect at {url} did not take the event (")
    assert result.stderr.rstrip().endswith(
        "the drain-events safety poll (every 15 min) sends them, "
        "or now: prefect deployment run drain-events/drain-events"
    )


def test_an_event_no_sop_is_triggered_by_is_recorded_without_telling_prefect(
    customers: list[int],
) -> None:
    customer = external(customers[2])
    with temporary_settings(updates={PREFECT_API_URL: "http://127.0.0.1:9/api"}):
        result = sopflow("event", "add", "favourite", "--customer", customer, "--product", "F001")

    assert result.exit_code == 0, result.output
    (event_id,) = pending("favourite")
    assert result.output == (
        f"event {event_id} recorded: favourite for {customer} (SOPs read it; it triggers none)\n"
    )


def test_a_price_drop_nobody_favourited_records_nothing_and_tells_no_one(
    customers: list[int],
) -> None:
    with temporary_settings(updates={PREFECT_API_URL: "http://127.0.0.1:9/api"}):
        result = sopflow("event", "price-drop", "F001", "--price", "2.99")

    assert result.exit_code == 0, result.output
    assert result.output.endswith(
        "0 favourite.price_drop event(s) recorded (nobody favourited it: no message to send)\n"
    )


def test_a_bad_event_is_refused_before_anything_is_recorded_or_told(customers: list[int]) -> None:
    result = sopflow("event", "add", "contact.add", "--customer", external(customers[0]))

    assert result.exit_code == 1
    assert result.stderr.startswith(
        "error: unknown event kind 'contact.add' (did you mean `contact.added`?); use one of:"
    )
    assert pending("contact.add") == pending("contact.added") == []
