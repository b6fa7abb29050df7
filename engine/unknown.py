"""Touches left `unknown`: list them, and settle them as an operator decides after checking WeCom."""

from __future__ import annotations

from typing import Literal, NamedTuple

from sqlalchemy import func, select
from sqlmodel import Session, col

from models.deliveries import set_status
from models.delivery import Delivery, DeliveryStatus

# What the operator found in WeCom's admin console (客户联系 → 群发记录) or the staff's app.
Verdict = Literal["went", "resend"]
WENT = "operator: found in WeCom, it went out"
RESEND = "operator: not in WeCom; send again"


class UnknownTouches(NamedTuple):
    """Unknown touches of one occurrence step, with why they are unknown."""

    sop_id: str
    step: str
    occurrence: str
    reason: str
    rows: int


def unknown_touches(*, session: Session, sop_id: str | None = None) -> list[UnknownTouches]:
    """Touches caught mid-send that WeCom could not be asked about (no msgid), per occurrence."""
    clauses = [
        col(Delivery.status) == DeliveryStatus.UNKNOWN.value,
        col(Delivery.msgid).is_(None),
    ]
    if sop_id:
        clauses.append(col(Delivery.sop_id) == sop_id)
    reason = func.coalesce(Delivery.reason, "")
    statement = (
        select(Delivery.sop_id, Delivery.step, Delivery.occurrence, reason, func.count())
        .where(*clauses)
        .group_by(Delivery.sop_id, Delivery.step, Delivery.occurrence, reason)
        .order_by(Delivery.sop_id, Delivery.step, Delivery.occurrence)
    )
    return [UnknownTouches(*row) for row in session.execute(statement).tuples()]


def settle_unknown(
    sop_id: str, step: str, occurrence: str, verdict: Verdict, *, session: Session
) -> int:
    """Mark the occurrence's unknown touches `sent` (they went out) or `failed` (the next run of
    the occurrence sends them); returns how many changed."""
    ids = session.execute(
        select(Delivery.id).where(
            col(Delivery.sop_id) == sop_id,
            col(Delivery.step) == step,
            col(Delivery.occurrence) == occurrence,
            col(Delivery.status) == DeliveryStatus.UNKNOWN.value,
            col(Delivery.msgid).is_(None),
        )
    ).scalars()
    status = DeliveryStatus.SENT if verdict == "went" else DeliveryStatus.FAILED
    return set_status(
        list(ids),
        status,
        session=session,
        only_from=(DeliveryStatus.UNKNOWN,),
        reason=WENT if verdict == "went" else RESEND,
    )
