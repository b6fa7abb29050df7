"""`sopflow event add|price-drop`: record events that trigger SOPs, then tell Prefect to drain them."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

import typer

from sopflow.cli_common import fail, say

event_app = typer.Typer(
    no_args_is_help=True, help="Events that trigger SOPs: record one by hand, or a price drop."
)


def _announce(kind: str, count: int, source: str, details: dict[str, Any] | None = None) -> None:
    """Tell Prefect about events just committed; when it cannot be told, say what sends them
    instead (a warning: the events are recorded, so the command still succeeds)."""
    from orchestration.events import announce_events

    announced = announce_events(kind, count, source=source, details=details)
    if announced.told:
        say(announced.detail)
    else:
        typer.echo(f"warning: {announced.detail}", err=True)


def _record(action: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """Run one recording function of tasks.events in a transaction; an EventError is a plain message."""
    from core.clock import utcnow
    from core.errors import EventError
    from models.db import session_scope

    try:
        with session_scope() as session:
            return action(*args, now=utcnow(), session=session, **kwargs)
    except EventError as error:
        fail(str(error))


@event_app.command("add")
def event_add(
    kind: Annotated[
        str,
        typer.Argument(
            help="contact.added, favourite.price_drop, order.shipped, order.received, "
            "customer.birthday, checkin, group.member_joined …"
        ),
    ],
    customer: Annotated[str, typer.Option(help="The customer's external_userid.")],
    product: Annotated[
        str | None, typer.Option(help="Product SKU (favourite, favourite.price_drop).")
    ] = None,
    payload: Annotated[
        str | None,
        typer.Option(
            help="JSON object: order.shipped/order.received '{\"order_id\": 123}', checkin "
            '\'{"streak": 7}\' (days in a row), customer.birthday \'{"kind": "day"}\' '
            '(or month), group.member_joined \'{"chat_id": "wr…"}\'.'
        ),
    ] = None,
) -> None:
    """Record one event (e.g. to test a trigger SOP); a trigger event starts the drain via Prefect."""
    import json

    from engine.events import record_event
    from soplang.spec import TRIGGER_EVENTS

    try:
        data = json.loads(payload) if payload else {}
    except json.JSONDecodeError as error:
        fail(f"--payload is not JSON: {error}")
    if not isinstance(data, dict):
        fail("--payload must be a JSON object such as '{\"order_id\": 123}'")
    event_id = _record(record_event, kind, customer=customer, sku=product, payload=data)
    if kind not in TRIGGER_EVENTS:
        say(f"event {event_id} recorded: {kind} for {customer} (SOPs read it; it triggers none)")
        return
    say(f"event {event_id} recorded: {kind} for {customer}")
    _announce(kind, 1, "sopflow event add", {"first_id": event_id, "last_id": event_id})


@event_app.command("price-drop")
def event_price_drop(
    sku: Annotated[str, typer.Argument(help="The product SKU.")],
    price: Annotated[str, typer.Option(help="The new price in yuan, e.g. 228 or 19.9.")],
) -> None:
    """Lower a product's price and record a favourite.price_drop event per customer who favourited it."""
    from engine.events import PRICE_DROP, record_price_drop, yuan_to_fen
    from soplang.filters import yuan

    try:
        new_price = yuan_to_fen(price)
    except ValueError as error:
        fail(str(error))
    drop = _record(record_price_drop, sku, new_price)
    say(
        f"{drop.sku} {drop.name}: {yuan(drop.old_price)} → {yuan(drop.new_price)}; "
        f"{drop.events} favourite.price_drop event(s) recorded"
        + ("" if drop.events else " (nobody favourited it: no message to send)")
    )
    if drop.events:
        _announce(PRICE_DROP, drop.events, "sopflow event price-drop", {"sku": drop.sku})
