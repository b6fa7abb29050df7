"""Preview of a trigger SOP: one event's message (a recorded event, else a sample), and what the pending ones make."""

from __future__ import annotations

import datetime as dt
import math
from collections import Counter
from collections.abc import Iterator, Mapping
from typing import Any

from sqlalchemy import func, select
from sqlmodel import Session, col

from channels.base import max_targets
from core.clock import local, utcnow
from core.errors import SopError
from core.settings import get_settings
from engine.attachments import segment_attachments
from engine.coupons import preview_coupon
from engine.customer_context import segment_renderer
from engine.events import EVENT_COLUMNS, PendingEvent
from engine.preview_groups import heading
from engine.preview_report import Preview, Staff, customer_screen, plural, sender_of
from engine.seed_events import EXAMPLES, sample_payload
from engine.trigger_context import event_categories, event_variables
from engine.trigger_timing import waiting_lines
from engine.triggers import event_customers, event_touches
from models.commerce import Event, Order, Product
from models.db import session_scope
from models.people import Customer
from soplang.attachment_render import compile_attachments, with_cards
from soplang.event_payloads import when_matches, when_words
from soplang.spec import SopSpec
from soplang.template import compile_step

SAMPLE_ID = 0  # a sample event is not in the Event table


def preview_trigger(
    spec: SopSpec,
    step: str,
    day: dt.date,
    *,
    kind: str | None,
    customer: str | None,
    payload: Mapping[str, Any] | None,
) -> Preview:
    """The step's text for one `kind` event: the newest recorded one (of `customer` when given),
    else a sample from the first customer (and product) in the database; `payload` overrides."""
    kind = kind or spec.on
    if kind != spec.on:
        raise SopError(
            f"--event {kind}: SOP {spec.id} runs on `{spec.on}` events only; "
            f"write --event {spec.on} or leave --event out",
            sop_id=spec.id,
        )
    assert kind is not None  # lint refuses a trigger SOP without `on`
    now = utcnow()
    tz = get_settings().timezone
    preview = Preview(
        heading(spec, step),
        when=[
            f"runs on every `{kind}` event recorded (no schedule): the drain sends pending "
            "events in batches; in quiet hours they wait",
            f"today 日期: {day.isoformat()} is the day the text says it is",
        ],
    )
    _tally_pending(spec, step, kind, day, now, preview)
    with session_scope(readonly=True) as session:
        event, source = _event(spec, kind, customer, session)
        if payload:
            event = PendingEvent(
                event.id,
                event.kind,
                event.customer_id,
                event.product_id,
                {**event.payload, **payload},
                event.occurred_at,
            )
            source += f", payload overridden by --payload: {dict(payload)}"
        target = event_customers([event], None, now=now, session=session)[event.customer_id or 0]
        audience = spec.audience.customers if spec.audience else None
        if audience is not None and not event_customers(
            [event], audience, now=now, session=session
        ):
            preview.notes.append(
                f"customer {target.external_userid} is not in the SOP's audience: "
                "a run does not answer their events"
            )
        found = event_variables([event], tz=tz, session=session)[event.id]
        category = event_categories([event], session=session).get(event.id, spec.category)
        screen = customer_screen(spec, step, "preview", session=session, category=category)
        stopped = screen([target]).get(target.id)
    preview.shown_for = (
        f"customer {target.external_userid} ({target.name}, owner {target.owner_userid or '-'}), "
        f"{source}"
    )
    preview.when += waiting_lines(spec.step(step), event.occurred_at, tz)
    if isinstance(found, str):
        preview.nothing = found + _hint(kind)
        return preview
    render_for = segment_renderer(
        compile_step(spec, step), day=day, sop_id=spec.id, sop_title=spec.title
    )
    variables = {**found, **preview_coupon(spec, step, day)}
    cards = segment_attachments(
        compile_attachments(spec, step),
        [target],
        day=day,
        sop_id=spec.id,
        sop_title=spec.title,
        extra={target.id: variables},
    )
    preview.text = with_cards(
        render_for(target, variables), cards.get(target.id, ()), get_settings().sop_dir
    )
    when = next((s.when for s in spec.step_list if s.name == step), None)
    if when and not when_matches(when, event.payload):
        preview.notes.append(
            f"a run does not answer this event with step `{step}` ({when_words(when)}; the "
            f"event's payload is {event.payload}): the text above is what a matching event gets"
        )
    if stopped:
        preview.notes.append(f"a run skips customer {target.external_userid}: {stopped}")
    return preview


def _hint(kind: str) -> str:
    if kind in ("order.shipped", "order.received"):
        return "; name one of the customer's orders: --payload '{\"order_id\": 123}'"
    if kind in EXAMPLES:
        return f"; give it: --payload '{EXAMPLES[kind]}'"
    if kind == "favourite.price_drop":
        return '; give the prices in fen: --payload \'{"old_price": 25800, "new_price": 22800}\''
    return ""


# ---------------------------------------------------------------- the event shown


def _event(
    spec: SopSpec, kind: str, external_userid: str | None, session: Session
) -> tuple[PendingEvent, str]:
    """The newest pending `kind` event (of the customer when given), else the newest answered
    one, else a sample."""
    customer_id = _customer_id(spec, external_userid, session) if external_userid else None
    statement = select(*EVENT_COLUMNS).where(col(Event.kind) == kind)
    if customer_id is not None:
        statement = statement.where(col(Event.customer_id) == customer_id)
    row = session.execute(
        statement.add_columns(col(Event.processed_at))
        .order_by(col(Event.processed_at).is_not(None), col(Event.id).desc())
        .limit(1)
    ).first()
    if row is not None and row[2] is not None:
        event = PendingEvent(*row[:-1])
        at = local(event.occurred_at, get_settings().timezone)
        state = "already answered" if row[-1] is not None else "pending"
        return event, f"recorded event #{event.id} of {at:%Y-%m-%d %H:%M} ({state})"
    return _sample(spec, kind, customer_id, session)


def _customer_id(spec: SopSpec, external_userid: str, session: Session) -> int:
    found = session.execute(
        select(col(Customer.id)).where(col(Customer.external_userid) == external_userid)
    ).scalar()
    if found is None:
        raise SopError(
            f"--customer {external_userid}: no customer has this external_userid; leave "
            "--customer out to see a sample for the first customer",
            sop_id=spec.id,
        )
    return int(found)


def _sample(
    spec: SopSpec, kind: str, customer_id: int | None, session: Session
) -> tuple[PendingEvent, str]:
    """A `kind` event built from the database: no such event is recorded (for this customer)."""
    product_id: int | None = None
    payload: dict[str, Any] = {}
    what = f"a sample `{kind}` event (none recorded"
    what += " for this customer)" if customer_id is not None else ")"
    if kind in ("order.shipped", "order.received"):
        order = select(col(Order.id), col(Order.customer_id)).order_by(col(Order.id).desc())
        if customer_id is not None:
            order = order.where(col(Order.customer_id) == customer_id)
        else:
            first = session.execute(select(func.min(Order.customer_id))).scalar()
            order = order.where(col(Order.customer_id) == first)
        found = session.execute(order.limit(1)).first()
        if found is not None:
            payload = {"order_id": int(found[0])}
            customer_id = int(found[1])
            what += f" for the customer's latest order #{found[0]}"
    elif kind == "favourite.price_drop":
        product = session.execute(select(Product).order_by(col(Product.id)).limit(1)).scalar()
        if product is not None:
            product_id = product.id
            old = product.list_price_fen
            payload = {"old_price": old, "new_price": old * 4 // 5}
            what += f" for {product.name} ({product.sku}), 20% off"
    else:
        payload, fits, words = sample_payload(kind, customer_id, session)
        customer_id = fits if fits is not None else customer_id
        what += words
    if customer_id is None:
        customer_id = session.execute(select(func.min(Customer.id))).scalar()
        if customer_id is None:
            raise SopError(
                "the database has no customers to build a sample event for; load some with "
                "`sopflow demo-data`",
                sop_id=spec.id,
            )
    event = PendingEvent(SAMPLE_ID, kind, int(customer_id), product_id, payload, utcnow())
    return event, what


# ---------------------------------------------------------------- what the pending events make


def _pending(kind: str, session: Session) -> Iterator[list[PendingEvent]]:
    """The events of `kind` no drain has finished, in batches of `batch_size`, oldest first."""
    size, after = get_settings().batch_size, 0
    while True:
        rows = session.execute(
            select(*EVENT_COLUMNS)
            .where(
                col(Event.kind) == kind, col(Event.processed_at).is_(None), col(Event.id) > after
            )
            .order_by(col(Event.id))
            .limit(size)
        ).all()
        if not rows:
            return
        yield [PendingEvent(*row) for row in rows]
        after = rows[-1][0]


def _tally_pending(
    spec: SopSpec, step: str, kind: str, day: dt.date, now: dt.datetime, preview: Preview
) -> None:
    """What the next drain makes of the pending events: touches, skips and WeCom tasks per staff."""
    render_for = segment_renderer(
        compile_step(spec, step), day=day, sop_id=spec.id, sop_title=spec.title
    )
    coupon = preview_coupon(spec, step, day)  # a placeholder: previews issue nothing
    events = 0
    skipped: dict[str, int] = {}
    per_text: Counter[tuple[Staff, int]] = Counter()
    with session_scope(readonly=True) as session:
        for batch in _pending(kind, session):
            events += len(batch)
            touches = event_touches(spec, batch, now=now, skipped=skipped)
            for category in dict.fromkeys(t.category for t in touches):
                screen = customer_screen(spec, step, "preview", session=session, category=category)
                same = [t for t in touches if t.category == category]
                stopped = screen([t.customer for t in same])
                for touch in same:
                    reason = stopped.get(touch.customer.id)
                    if reason:
                        skipped[reason] = skipped.get(reason, 0) + 1
                        continue
                    text = render_for(touch.customer, {**touch.variables, **coupon})
                    per_text[(sender_of(touch.customer), hash(text))] += 1
    per_call = max_targets("single")
    for (staff, _text), n in per_text.items():
        preview.tasks[staff] += math.ceil(n / per_call)
    if not events:
        preview.audience = (
            f"0 pending `{kind}` events: nothing waits for the next drain "
            f"(events come from the business systems or `sopflow event add {kind} …`)"
        )
        return
    to_send = sum(per_text.values())
    preview.audience = (
        f"{plural(events, f'pending `{kind}` event')} {'waits' if events == 1 else 'wait'} "
        "for the next drain; "
        f"{to_send} {'touch' if to_send == 1 else 'touches'} to send"
    )
    preview.notes += [
        f"{n} get nothing: {reason}" for reason, n in sorted(skipped.items(), key=lambda i: -i[1])
    ]
