"""Complaint events (投诉): the payload they must carry and the `complaint` variables of their messages."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from sqlalchemy import select
from sqlmodel import Session, col

from core.errors import EventError
from models.commerce import Event

OPENED = "complaint.opened"
LEVELS = ("normal", "high", "urgent")
MAX_ID = 64
MAX_SUMMARY = 200
EXAMPLE = '{"complaint_id": "TS-20261124-001", "summary": "鸡蛋破损", "level": "high"}'


class _HasPayload(Protocol):
    id: int
    payload: dict[str, Any]


def complaint_id(payload: Mapping[str, Any]) -> str | None:
    """The complaint id of a payload as text (ids may come as numbers), or None."""
    value = payload.get("complaint_id")
    if isinstance(value, bool) or not isinstance(value, str | int):
        return None
    text = str(value).strip()
    return text or None


def check_complaint(
    kind: str, customer_id: int, payload: Mapping[str, Any], *, session: Session
) -> None:
    """Refuse a complaint event without a usable payload, or an update/close of a complaint
    this customer never opened."""
    found = complaint_id(payload)
    if found is None or len(found) > MAX_ID:
        raise EventError(
            f"a {kind} event needs a payload with `complaint_id` (text or number, at most "
            f"{MAX_ID} characters), e.g. {EXAMPLE}"
        )
    summary = payload.get("summary")
    if summary is not None and (not isinstance(summary, str) or len(summary) > MAX_SUMMARY):
        raise EventError(
            f"a {kind} event's `summary` must be text of at most {MAX_SUMMARY} characters"
        )
    level = payload.get("level")
    if level is not None and level not in LEVELS:
        raise EventError(
            f"a {kind} event's `level` is {level!r}; use one of: {', '.join(LEVELS)} "
            "(or leave it out: normal)"
        )
    if kind != OPENED and not _was_opened(customer_id, found, session):
        raise EventError(
            f"a {kind} event names complaint {found!r}, but no complaint.opened event of this "
            "customer has that complaint_id; record `complaint.opened` first"
        )


def _was_opened(customer_id: int, wanted: str, session: Session) -> bool:
    payloads = session.execute(
        select(col(Event.payload)).where(
            col(Event.kind) == OPENED, col(Event.customer_id) == customer_id
        )
    ).scalars()
    return any(complaint_id(p) == wanted for p in payloads)


def complaint_variables(events: Sequence[_HasPayload], *_: Any) -> dict[int, dict[str, Any] | str]:
    """`complaint` {id, summary, level} of each complaint event, or why it has none."""
    found: dict[int, dict[str, Any] | str] = {}
    for event in events:
        ident = complaint_id(event.payload)
        if ident is None:
            found[event.id] = "complaint event without complaint_id"
            continue
        view = {
            "id": ident,
            "summary": str(event.payload.get("summary") or ""),
            "level": str(event.payload.get("level") or "normal"),
        }
        found[event.id] = {"complaint": view}
    return found
