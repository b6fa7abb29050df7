"""Trigger steps that wait: when each is due, the rows a drained event leaves, and the due pass that sends them."""

from __future__ import annotations

import datetime as dt
import uuid
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session, col

from channels.base import Channel
from channels.robot import RobotChannel
from core.clock import as_utc, local_today
from core.errors import ChannelError, ChannelTransient
from core.settings import get_settings
from engine.complaints import complaint_id
from engine.customer_context import segment_renderer
from engine.events import CLAIM_LEASE, EVENT_COLUMNS, PendingEvent
from engine.outcomes import RunTally
from engine.trigger_context import event_variables
from engine.trigger_timing import due_time
from engine.triggers import NO_CUSTOMER, add_tally, event_customers, send_event_step
from models.commerce import Event
from models.db import session_scope
from models.trigger_steps import DueStep
from soplang.spec import SopSpec, Step
from soplang.template import compile_step

LEFT_AUDIENCE = "exited: no longer in the SOP's audience"
INTERRUPTED = "interrupted while posting to the robot; not posted again: check the ops group"
SUBJECTS = ("complaint_id", "order_id")  # a later event ends a wait only for the same subject


def schedule_due(
    specs: Iterable[SopSpec], events: Sequence[PendingEvent], *, session: Session
) -> int:
    """One `waiting` row per event and waiting step; an event scheduled before (a retried batch)
    keeps its rows as they are. The rows written."""
    tz = get_settings().timezone
    rows = [
        {
            "event_id": event.id,
            "sop_id": spec.id,
            "step": step.name,
            "due_at": due_time(step, event.occurred_at, tz),
            "status": "waiting",
        }
        for spec in specs
        for step in spec.step_list
        if step.waits
        for event in events
    ]
    if not rows:
        return 0
    dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
    statement = dialect.insert(DueStep.__table__).on_conflict_do_nothing(  # type: ignore[attr-defined]
        index_elements=["event_id", "sop_id", "step"]
    )
    written = 0
    for start in range(0, len(rows), 1000):
        result = session.execute(statement, rows[start : start + 1000])
        written += max(int(result.rowcount or 0), 0)  # type: ignore[attr-defined]
    return written


# ---------------------------------------------------------------- claiming


@dataclass(frozen=True)
class DueClaim:
    """Due rows taken by one drain: its token and how many."""

    token: str
    count: int = 0


def _free(now: dt.datetime, lease: dt.timedelta) -> list[Any]:
    """Waiting, due, and not claimed or claimed by a drain whose lease ran out."""
    return [
        col(DueStep.status) == "waiting",
        col(DueStep.due_at) <= now,
        or_(col(DueStep.claimed_at).is_(None), col(DueStep.claimed_at) < now - lease),
    ]


def claim_due(
    *, limit: int, now: dt.datetime, session: Session, lease: dt.timedelta = CLAIM_LEASE
) -> DueClaim:
    """Take up to `limit` due rows, earliest first, under a new token (like events.claim: one
    UPDATE ... RETURNING, and PostgreSQL skips rows another drain has locked). Rows a dead drain
    left `sending` to a robot are settled `failed` first: a robot post is never repeated."""
    session.execute(
        update(DueStep)
        .where(col(DueStep.status) == "sending", col(DueStep.claimed_at) < now - lease)
        .values(status="failed", reason=INTERRUPTED, settled_at=now)
    )
    token = uuid.uuid4().hex
    earliest = (
        select(col(DueStep.id))
        .where(*_free(now, lease))
        .order_by(col(DueStep.due_at), col(DueStep.id))
        .limit(limit)
    )
    if session.get_bind().dialect.name == "postgresql":
        earliest = earliest.with_for_update(skip_locked=True)
    # Two statements: PostgreSQL may run an `IN (… LIMIT n FOR UPDATE SKIP LOCKED)` subquery more
    # than once inside an UPDATE and take more than n rows; the ids stay locked until commit.
    ids = list(session.execute(earliest).scalars())
    if not ids:
        return DueClaim(token)
    taken = session.execute(
        update(DueStep)
        .where(col(DueStep.id).in_(ids), *_free(now, lease))
        .values(claimed_by=token, claimed_at=now)
        .returning(col(DueStep.id))
    ).scalars()
    return DueClaim(token, len(list(taken)))


def release_due(token: str, *, session: Session) -> int:
    """Give back the claim's rows still waiting, so the next drain takes them at once."""
    result = session.execute(
        update(DueStep)
        .where(col(DueStep.claimed_by) == token, col(DueStep.status) == "waiting")
        .values(claimed_by=None, claimed_at=None)
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


def _settle(
    ids: Iterable[int], status: str, reason: str | None, now: dt.datetime, token: str
) -> None:
    """Settle rows this claim still holds (a row another drain retook after the lease is not ours)."""
    ids = list(ids)
    if not ids:
        return
    with session_scope() as session:
        session.execute(
            update(DueStep)
            .where(
                col(DueStep.id).in_(ids),
                col(DueStep.claimed_by) == token,
                col(DueStep.status).in_(("waiting", "sending")),
            )
            .values(status=status, reason=reason, settled_at=now)
        )


# ---------------------------------------------------------------- early exit


def _same_subject(event: PendingEvent, later: PendingEvent) -> bool:
    for key in SUBJECTS:
        if key in event.payload:
            mine = complaint_id(event.payload) if key == "complaint_id" else event.payload[key]
            theirs = (
                complaint_id(later.payload) if key == "complaint_id" else later.payload.get(key)
            )
            return str(mine) == str(theirs)
    return True


def exit_reasons(
    spec: SopSpec, step: Step, events: Sequence[PendingEvent], *, now: dt.datetime
) -> dict[int, str]:
    """Why a due step of each event is not sent any more, by event id (absent: still send).

    A later `unless` event of the same customer (and complaint/order) ends the wait, and so does
    the customer leaving the SOP's `customers:` audience by the time the step is due."""
    reasons = {e.id: NO_CUSTOMER for e in events if e.customer_id is None}
    audience = spec.audience.customers if spec.audience else None
    customers = {e.customer_id for e in events if e.customer_id is not None}
    later: dict[int, list[PendingEvent]] = defaultdict(list)
    with session_scope(readonly=True) as session:
        inside = event_customers(events, audience, now=now, session=session) if audience else None
        if step.unless:
            rows = session.execute(
                select(*EVENT_COLUMNS).where(
                    col(Event.kind).in_(step.unless),
                    col(Event.customer_id).in_(customers),
                    col(Event.occurred_at) <= now,
                )
            )
            for row in rows:
                found = PendingEvent(*row)
                later[found.customer_id or 0].append(found)
    for event in events:
        if event.id in reasons:
            continue
        ended = [
            other.kind
            for other in later.get(event.customer_id or 0, [])
            if (as_utc(other.occurred_at), other.id) > (as_utc(event.occurred_at), event.id)
            and _same_subject(event, other)
        ]
        if ended:
            reasons[event.id] = "exited: " + min(ended, key=step.unless.index).replace(".", " ")
        elif inside is not None and event.customer_id not in inside:
            reasons[event.id] = LEFT_AUDIENCE
    return reasons


# ---------------------------------------------------------------- the due pass


@dataclass
class DueBatch:
    """What one claimed batch of due rows became: outcomes per SOP, and 1:1 tallies per SOP."""

    outcomes: dict[str, Counter[str]] = field(default_factory=lambda: defaultdict(Counter))
    tallies: dict[str, RunTally] = field(default_factory=dict)


@dataclass(frozen=True)
class _Row:
    id: int
    event_id: int
    sop_id: str
    step: str


def open_robot() -> RobotChannel:
    """The group-robot channel of the settings (`SOPFLOW_ROBOT_KEYS`)."""
    return RobotChannel.from_settings(get_settings())


def send_due(
    open_channel: Callable[[], AbstractContextManager[Channel]],
    specs: Mapping[str, SopSpec],
    token: str,
    *,
    now: dt.datetime,
    flow_run_id: str | None,
    robot: Callable[[], AbstractContextManager[RobotChannel]] = open_robot,
) -> DueBatch:
    """Send the claim's due steps through the same 1:1 guards (or post them to their robot),
    after the early exits; each row is settled once, with its reason."""
    day = local_today(now, get_settings().timezone)
    with session_scope() as session:
        rows = [
            _Row(*r)
            for r in session.execute(
                select(
                    col(DueStep.id), col(DueStep.event_id), col(DueStep.sop_id), col(DueStep.step)
                )
                .where(col(DueStep.claimed_by) == token, col(DueStep.status) == "waiting")
                .order_by(col(DueStep.id))
            )
        ]
        ids = {r.event_id for r in rows}
        events = {
            e.id: e
            for e in (
                PendingEvent(*r)
                for r in session.execute(select(*EVENT_COLUMNS).where(col(Event.id).in_(ids)))
            )
        }
    done = DueBatch()
    groups: dict[tuple[str, str], list[_Row]] = defaultdict(list)
    for row in rows:
        groups[(row.sop_id, row.step)].append(row)
    for (sop_id, name), group in groups.items():
        outcomes = done.outcomes[sop_id]
        spec = specs.get(sop_id)
        gone = (
            "the SOP is no longer in sop/"
            if spec is None
            else None
            if name in spec.step_names
            else "the step is no longer in the SOP"
        )
        if gone or spec is None:
            _settle((r.id for r in group), "skipped", gone, now, token)
            outcomes[f"skipped: {gone}"] += len(group)
            continue
        step = spec.step(name)
        row_of = {r.event_id: r.id for r in group}
        pending = [events[r.event_id] for r in group]
        reasons = exit_reasons(spec, step, pending, now=now)
        for reason in set(reasons.values()):
            _settle(
                (row_of[e] for e, r in reasons.items() if r == reason),
                "skipped",
                reason,
                now,
                token,
            )
            outcomes[f"skipped: {reason}"] += sum(1 for r in reasons.values() if r == reason)
        rest = [e for e in pending if e.id not in reasons]
        if not rest:
            continue
        if step.robot:
            _post(robot, spec, step, rest, row_of, outcomes, now=now, day=day, token=token)
            continue
        tally = send_event_step(
            open_channel, spec, name, rest, now=now, day=day, flow_run_id=flow_run_id
        )
        add_tally(done.tallies.setdefault(sop_id, RunTally()), tally)
        _settle((row_of[e.id] for e in rest), "done", None, now, token)
        outcomes["sent through the 1:1 guards"] += len(rest)
    return done


def _post(
    robot: Callable[[], AbstractContextManager[RobotChannel]],
    spec: SopSpec,
    step: Step,
    events: Sequence[PendingEvent],
    row_of: Mapping[int, int],
    outcomes: Counter[str],
    *,
    now: dt.datetime,
    day: dt.date,
    token: str,
) -> None:
    """Post the step's text per event to `step.robot`, @-ing the customer's owner staff.

    A row is `sending` during its post and settled right after: a drain that dies mid-post
    leaves it `sending`, and the next one settles it failed rather than post it twice."""
    assert step.robot is not None
    with session_scope(readonly=True) as session:
        variables = event_variables(events, tz=get_settings().timezone, session=session)
        customers = event_customers(events, None, now=now, session=session)
    render_for = segment_renderer(
        compile_step(spec, step.name), day=day, sop_id=spec.id, sop_title=spec.title
    )
    with robot() as channel:
        for event in events:
            row = row_of[event.id]
            found, customer = variables[event.id], customers.get(event.customer_id or 0)
            if isinstance(found, str) or customer is None:
                why = found if isinstance(found, str) else NO_CUSTOMER
                _settle([row], "skipped", why, now, token)
                outcomes[f"skipped: {why}"] += 1
                continue
            text = render_for(customer, found)
            _settle([row], "sending", None, now, token)
            try:
                channel.post_text(
                    step.robot,
                    text,
                    mentioned_list=[customer.owner_userid] if customer.owner_userid else [],
                )
            except ChannelTransient:
                _settle([row], "waiting", None, now, token)  # not accepted: the next drain retries
                raise
            except ChannelError as error:
                _settle([row], "failed", str(error)[:200], now, token)
                outcomes["failed: robot refused the post"] += 1
                continue
            _settle([row], "sent", None, now, token)
            outcomes[f"posted to robot {step.robot}"] += 1
