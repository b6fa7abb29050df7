"""The seeds' trigger events (birthday, check-in, group join): payload checks and template variables."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from sqlalchemy import select
from sqlmodel import Session, col

from core.errors import EventError
from models.people import Customer, CustomerGroup, Staff
from soplang.event_payloads import BIRTHDAY_KINDS, payload_problem, when_matches, when_words
from soplang.spec import SopSpec

if TYPE_CHECKING:  # engine.events calls check_seed_event, so no import at run time
    from engine.events import PendingEvent

Variables = dict[str, Any]
BIRTHDAY = "customer.birthday"
CHECKIN = "checkin"
MEMBER_JOINED = "group.member_joined"
SAMPLE_COMPLAINT = {"complaint_id": "TS-0001", "summary": "鸡蛋破损", "level": "normal"}
EXAMPLES = {
    BIRTHDAY: '{"kind": "day"}',
    CHECKIN: '{"streak": 7}',
    MEMBER_JOINED: '{"chat_id": "wrOgQhDgAA…"}',
}


def check_seed_event(
    kind: str, customer_id: int, payload: dict[str, Any], *, session: Session
) -> None:
    """Refuse a birthday, check-in or group-join event the drain could not turn into a message."""
    if kind not in EXAMPLES:
        return
    problem = payload_problem(kind, payload)
    if problem:
        raise EventError(f"{problem}, e.g. --payload '{EXAMPLES[kind]}'")
    if kind == BIRTHDAY and session.get(Customer, customer_id).birthday is None:  # type: ignore[union-attr]
        raise EventError(
            "a customer.birthday event needs the customer's birthday on record; "
            "this customer has none"
        )
    if kind == MEMBER_JOINED:
        chat_id = payload.get("chat_id")
        group = _groups([chat_id], session).get(chat_id) if isinstance(chat_id, str) else None
        if group is None:
            raise EventError(
                f"a group.member_joined event needs the chat_id of a known group, e.g. "
                f"--payload '{EXAMPLES[MEMBER_JOINED]}'; {chat_id!r} is none "
                "(`sopflow` knows the groups synced from WeCom)"
            )


def _groups(chat_ids: Sequence[Any], session: Session) -> dict[str, Variables]:
    """The `group` variable of each known group (dismissed ones too: the member joined before)."""
    rows = session.execute(
        select(
            col(CustomerGroup.chat_id),
            col(CustomerGroup.name),
            col(CustomerGroup.region),
            col(CustomerGroup.theme),
            col(CustomerGroup.member_count),
            col(Staff.name),
            col(Staff.userid),
        )
        .join(Staff, col(Staff.id) == col(CustomerGroup.owner_staff_id))
        .where(col(CustomerGroup.chat_id).in_([c for c in chat_ids if isinstance(c, str)]))
    )
    return {
        chat_id: {
            "name": name,
            "chat_id": chat_id,
            "region": region,
            "theme": theme,
            "member_count": members,
            "owner": {"name": owner, "userid": userid},
        }
        for chat_id, name, region, theme, members, owner, userid in rows
    }


def birthday_variables(
    events: Sequence[PendingEvent], tz: str, session: Session
) -> dict[int, Variables | str]:
    """`birthday` {kind}: day (the day itself) or month (the 1st of the birthday month)."""
    found: dict[int, Variables | str] = {}
    for event in events:
        kind = event.payload.get("kind")
        found[event.id] = (
            {"birthday": {"kind": kind}}
            if kind in BIRTHDAY_KINDS
            else "birthday event without kind day or month"
        )
    return found


def checkin_variables(
    events: Sequence[PendingEvent], tz: str, session: Session
) -> dict[int, Variables | str]:
    """`checkin` {streak}: the days in a row the customer has checked in."""
    found: dict[int, Variables | str] = {}
    for event in events:
        problem = payload_problem(CHECKIN, event.payload)
        found[event.id] = (
            "check-in without a streak"
            if problem
            else {"checkin": {"streak": event.payload["streak"]}}
        )
    return found


def member_joined_variables(
    events: Sequence[PendingEvent], tz: str, session: Session
) -> dict[int, Variables | str]:
    """`group`: the group the customer joined, named by the event's chat_id."""
    groups = _groups([e.payload.get("chat_id") for e in events], session)
    found: dict[int, Variables | str] = {}
    for event in events:
        group = groups.get(event.payload.get("chat_id"))
        found[event.id] = {"group": group} if group else "the event names no known group"
    return found


def sample_payload(
    kind: str, customer_id: int | None, session: Session
) -> tuple[dict[str, Any], int | None, str]:
    """A preview's sample payload for `kind`, a customer it fits (None: keep the one given), and
    words for it; ({}, None, "") for the other kinds."""
    if kind == BIRTHDAY:
        if customer_id is None:
            customer_id = session.execute(
                select(col(Customer.id))
                .where(col(Customer.birthday).is_not(None))
                .order_by(col(Customer.id))
                .limit(1)
            ).scalar()
        return {"kind": "day"}, customer_id, " on the customer's birthday (kind day)"
    if kind == CHECKIN:
        return {"streak": 7}, customer_id, " with a 7-day streak"
    if kind == MEMBER_JOINED:
        chat_id = session.execute(
            select(col(CustomerGroup.chat_id)).order_by(col(CustomerGroup.id)).limit(1)
        ).scalar()
        if chat_id is None:
            return {}, customer_id, ""
        return {"chat_id": chat_id}, customer_id, f" joining group {chat_id}"
    if kind.startswith("complaint."):
        return (
            dict(SAMPLE_COMPLAINT),
            customer_id,
            f" about complaint {SAMPLE_COMPLAINT['complaint_id']}",
        )
    return {}, None, ""


def step_events(
    spec: SopSpec, step: str, events: Sequence[PendingEvent], skipped: dict[str, int]
) -> Sequence[PendingEvent]:
    """The events the step answers (its `when:` matches their payload); the others are counted
    in `skipped` and get no Delivery row (a 3-day check-in is not a miss of the 7-day step)."""
    when = next((s.when for s in spec.step_list if s.name == step), None)
    if not when:
        return events
    picked = [e for e in events if when_matches(when, e.payload)]
    if len(picked) < len(events):
        reason = f"not this step's event ({when_words(when)})"
        skipped[reason] = skipped.get(reason, 0) + len(events) - len(picked)
    return picked
