"""Preview of 1:1 and lifecycle steps: the step's customers on a day, rendered and screened as a run would."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator
from functools import partial

from sqlmodel import Session, col

from core.clock import at_local, local
from core.errors import SopError
from core.settings import get_settings
from engine.compose import Content, CustomerContent
from engine.lifecycle_context import sop_timezone, stage_entry_audience
from engine.preview_groups import NOT_TODAY, heading
from engine.preview_report import (
    Preview,
    Screen,
    cron_times_on,
    customer_screen,
    day_label,
    plural,
    schedule_when,
    tally_batches,
)
from models.audience import (
    CustomerFilter,
    CustomerTarget,
    count_customers,
    customer_id_ranges,
    customer_select,
    customers_in_range,
)
from models.db import session_scope
from models.people import Customer
from models.vocab import STAGES
from soplang.attachment_render import with_cards
from soplang.spec import CustomerAudience, SopSpec, Step


def describe_customers(audience: CustomerAudience | None) -> str:
    """A `customers:` audience in words."""
    if audience is None:
        return "every customer"
    parts = [
        f"{name} {'/'.join(values)}"
        for name, values in (
            ("stage", audience.stage),
            ("tier", audience.tier),
            ("region", audience.region),
            ("tags_any", audience.tags_any),
            ("tags_none", audience.tags_none),
            ("store", audience.store),
            ("gender", audience.gender),
            ("birthday month", [str(m) for m in audience.birthday_month]),
            ("source_state", audience.source_state),
        )
        if values
    ]
    if audience.paid_member is not None:
        parts.append("paid members (黑卡)" if audience.paid_member else "not paid members")
    days = audience.last_purchase_days
    if days is not None:
        parts.append(
            f"last purchase {days.gte or 0}–{days.lte if days.lte is not None else '∞'} days ago"
        )
    if audience.holdout:
        parts.append(f"holdout {audience.holdout:.0%}")
    return ", ".join(parts) or "every customer"


def preview_customers(
    spec: SopSpec, step: str, day: dt.date, external_userid: str | None
) -> Preview:
    """`step` on `day` for its customers: a lifecycle step's are those who entered the stage
    `after` days before; a 1:1 step's are the SOP's `customers:` audience."""
    tz = sop_timezone(spec)
    declared = spec.step(step)
    base = spec.audience.customers if spec.audience else None
    preview = Preview(heading(spec, step), when=_when(spec, declared, day, tz))
    audience: CustomerFilter | None = base
    if declared.after_days is not None:
        audience = stage_entry_audience(spec, step, day)
        entered = day - dt.timedelta(days=declared.after_days)
        stages = "/".join(f"{s} {STAGES[s]}" for s in (base.stage if base else []))
        preview.when.append(
            f"stage entry 入阶段日: on {day.isoformat()} step `{step}` goes to the customers still in "
            f"stage {stages} who entered it on {entered.isoformat()} "
            + (
                f"({plural(declared.after_days, 'day')} before)"
                if declared.after_days
                else "(the same day)"
            )
        )
    moment = _send_moment(spec, declared, day, tz)
    why_empty = partial(_why_empty, spec, declared, day, base, moment)
    return fill_customers(
        spec,
        step,
        preview,
        CustomerContent(spec, step, day),
        audience,
        moment=moment,
        label=day.isoformat(),
        external_userid=external_userid,
        why_empty=why_empty,
    )


def fill_customers(
    spec: SopSpec,
    step: str,
    preview: Preview,
    content: Content,
    audience: CustomerFilter | None,
    *,
    moment: dt.datetime,
    label: str,
    external_userid: str | None,
    why_empty: Callable[[Session], str] | None = None,
) -> Preview:
    """Fill `preview` with a 1:1 step's customers as a run at `moment` of the occurrence `label`
    finds them, its WeCom tasks and one customer's text (`--customer`, else the first)."""
    tz = sop_timezone(spec)
    base = spec.audience.customers if spec.audience else None
    with session_scope(readonly=True) as session:
        screen = customer_screen(spec, step, label, session=session)
        batches = _batches(audience, moment, session)
        tally = tally_batches(batches, content, chat_type="single", screen=screen)
        preview.tasks = tally.tasks
        preview.notes += tally.notes()
        if tally.targets:
            preview.audience = f"{plural(tally.targets, 'customer')} ({describe_customers(base)})"
        else:
            why = why_empty(session) if why_empty else _no_match(base)
            preview.audience = "0 customers: " + why
        if external_userid:
            shown = _customer(spec, external_userid, session)
            if not customers_in_range(
                audience, (shown.id, shown.id), session=session, as_of=moment
            ):
                preview.notes.append(_outside(shown, tz))
            _show(preview, content, shown, screen)
        elif tally.first_target is not None:
            _show(preview, content, tally.first_target, screen)
        else:
            stand_in = _first_customer(base, moment, session) or _first_customer(
                None, moment, session
            )
            if stand_in is None:
                preview.audience += (
                    "; the database has no customers (load some: `sopflow demo-data`)"
                )
                preview.nothing = "no customer to render for"
            else:
                _show(preview, content, stand_in, screen)
                preview.shown_for = (
                    f"{preview.shown_for}, not in this step's audience, shown as an example"
                )
    return preview


def _when(spec: SopSpec, declared: Step, day: dt.date, tz: str) -> list[str]:
    """A lifecycle step runs daily at its `send_at` (on the days its `days` rule allows); a 1:1
    step on its schedule."""
    if declared.send_at:
        runs, line = schedule_when(spec, day, at=declared.send_at)
        line = line.replace(": every day", f" ({tz}): lifecycle steps run every day")
    elif spec.schedule is not None:
        runs, line = schedule_when(spec, day)
    else:
        return [f"no schedule: it sends when its flow is run; the text is for {day_label(day)}"]
    return [line] if runs else [line, NOT_TODAY]


def _send_moment(spec: SopSpec, declared: Step, day: dt.date, tz: str) -> dt.datetime:
    """When a run of `day` sends: the step's `send_at`, else the schedule's first time, else noon.
    Recency (`last_purchase_days`) is measured from it, as a run measures it from its `now`."""
    hour, minute = declared.send_time or (12, 0)
    if declared.send_time is None and spec.schedule is not None:
        times = cron_times_on(spec.schedule.cron, day, spec.schedule.timezone)
        if times:
            hour, minute = (int(part) for part in times[0].split(":"))
    return at_local(day, hour, minute, tz)


def _batches(
    audience: CustomerFilter | None, moment: dt.datetime, session: Session
) -> Iterator[list[CustomerTarget]]:
    size = get_settings().batch_size
    for id_range in customer_id_ranges(audience, batch_size=size, session=session, as_of=moment):
        yield customers_in_range(audience, id_range, session=session, as_of=moment)


def _no_match(base: CustomerAudience | None) -> str:
    return f"no customer matches ({describe_customers(base)})"


def _why_empty(
    spec: SopSpec,
    declared: Step,
    day: dt.date,
    base: CustomerAudience | None,
    moment: dt.datetime,
    session: Session,
) -> str:
    if declared.after_days is None:
        return _no_match(base)
    matching = count_customers(base, session=session, as_of=moment)
    entered = day - dt.timedelta(days=declared.after_days)
    return (
        f"nobody still in the stage entered it on {entered.isoformat()}; "
        f"{plural(matching, 'customer')} match the SOP's audience ({describe_customers(base)}) "
        "and entered it on other days"
    )


def _customer(spec: SopSpec, external_userid: str, session: Session) -> CustomerTarget:
    row = session.execute(
        customer_select().where(col(Customer.external_userid) == external_userid)
    ).first()
    if row is None:
        raise SopError(
            f"--customer {external_userid}: no customer has this external_userid; leave "
            "--customer out to see the audience's first customer",
            sop_id=spec.id,
        )
    return CustomerTarget(*row)


def _first_customer(
    audience: CustomerFilter | None, moment: dt.datetime, session: Session
) -> CustomerTarget | None:
    ranges = customer_id_ranges(audience, batch_size=1, session=session, as_of=moment)
    if not ranges:
        return None
    found = customers_in_range(audience, ranges[0], session=session, as_of=moment)
    return found[0] if found else None


def _outside(customer: CustomerTarget, tz: str) -> str:
    since = local(customer.stage_since, tz).date()
    where = f"stage {customer.stage} since {since.isoformat()}"
    return (
        f"customer {customer.external_userid} ({where}) is not in this step's audience: "
        "a run does not send to them"
    )


def _show(preview: Preview, content: Content, customer: CustomerTarget, screen: Screen) -> None:
    rendered = content.render([customer])
    preview.shown_for = f"customer {customer.external_userid} ({customer.name}, owner {customer.owner_userid or '-'})"
    text = rendered.texts.get(customer.id)
    cards = rendered.attachments.get(customer.id, ())
    preview.text = None if text is None else with_cards(text, cards, get_settings().sop_dir)
    stopped = screen([customer]).get(customer.id)
    if stopped:
        preview.notes.append(f"a run skips customer {customer.external_userid}: {stopped}")
