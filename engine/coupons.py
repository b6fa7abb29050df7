"""Coupons for touches that passed every guard: issued once per touch through the chain's
system, the text rendered with the coupon, and touches whose coupon was not issued skipped."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping, Sequence
from typing import Any
from zoneinfo import ZoneInfo

from sqlmodel import Session, col, select

from channels.attachments import Attachment, dumps
from channels.coupons import CouponClient, CouponRequest, IssuedCoupon
from core.errors import CouponNotIssued
from core.settings import Settings, get_settings
from engine.plan import PlannedBatch, Touch
from engine.timing import timed
from models.coupons import Coupon, begin_issuing, settle_coupon
from models.db import session_scope
from models.deliveries import Occurrence, attach_messages, set_status, store_message
from models.delivery import SENDABLE, DeliveryStatus
from models.members import Member
from soplang.spec import SopSpec

NOT_ISSUED = "coupon not issued"
CODE_MISSING = "coupon issued but the text does not show its code"
Got = IssuedCoupon | str  # the coupon, or why there is none
PREVIEW_CODE = "[券码 coupon code]"  # what previews show: the chain issues the code at send time


def coupon_variable(coupon: IssuedCoupon, tz: str) -> dict[str, Any]:
    """`coupon` as the step's template reads it: the code and the local expiry date."""
    return {"code": coupon.code, "expires": coupon.expires_at.astimezone(ZoneInfo(tz)).date()}


def with_coupons(
    spec: SopSpec,
    step: str,
    occurrence: Occurrence,
    planned: PlannedBatch,
    chunk: Sequence[Any],
    render_for: Callable[..., str],
    attachments: Mapping[int, tuple[Attachment, ...]],
    *,
    now: dt.datetime,
) -> dict[int, str]:
    """Issue the step's coupon for each touch `planned` is about to send and record its text;
    touches without a coupon are recorded skipped (`coupon not issued: <reason>`) and dropped.

    The touches' rows were recorded (planned, no text yet) before any coupon is asked for, so a
    crash anywhere leaves a row the next attempt reconsiders under the same idempotency key: a
    coupon recorded `issued` is reused, one left `issuing` is asked for again (the chain answers
    the same coupon for the same key), one `failed` is not asked for again. Returns the texts by
    customer id.
    """
    issue = spec.step(step).issue
    if issue is None or not planned.touches:
        return {}
    settings = get_settings()
    variables = {t.customer.id: t.variables for t in chunk}  # engine/triggers.EventTouch
    keys = {
        t.delivery_id: occurrence.key("customer", t.target.external_userid) for t in planned.touches
    }
    got = _coupons(spec, step, issue.coupon, planned.touches, keys, settings, now=now)
    texts: dict[int, str] = {}
    kept: list[Touch] = []
    skipped: dict[str, list[int]] = {}
    with timed("render"):
        for touch in planned.touches:
            coupon = got[touch.delivery_id]
            if isinstance(coupon, str):
                skipped.setdefault(f"{NOT_ISSUED}: {coupon}"[:255], []).append(touch.delivery_id)
                continue
            extra = {
                **variables[touch.target.id],
                "coupon": coupon_variable(coupon, settings.timezone),
            }
            text = render_for(touch.target, extra)
            if coupon.code not in text:
                skipped.setdefault(CODE_MISSING, []).append(touch.delivery_id)
                continue
            texts[touch.target.id] = text
            kept.append(touch)
    with session_scope() as session:
        _record(kept, texts, attachments, skipped, session=session, now=now)
    planned.touches = kept
    for reason, ids in skipped.items():
        planned.skipped[reason] = planned.skipped.get(reason, 0) + len(ids)
    return texts


def _coupons(
    spec: SopSpec,
    step: str,
    coupon: str,
    touches: Sequence[Touch],
    keys: Mapping[int, str],
    settings: Settings,
    *,
    now: dt.datetime,
) -> dict[int, Got]:
    """Each touch's coupon, asking the chain only for keys not yet issued or failed."""
    rows = [
        Coupon(
            idempotency_key=keys[t.delivery_id],
            sop_id=spec.id,
            step=step,
            coupon=coupon,
            external_userid=t.target.external_userid,
            created_at=now,
            updated_at=now,
        )
        for t in touches
    ]
    with session_scope() as session:  # committed before any request leaves
        recorded = begin_issuing(rows, session=session)
        members = _member_numbers([t.target.id for t in touches], session=session)
    got: dict[int, Got] = {}
    ask: list[Touch] = []
    for touch in touches:
        row = recorded[keys[touch.delivery_id]]
        if row.state == "issued" and row.code and row.expires_at:
            got[touch.delivery_id] = IssuedCoupon(row.coupon_id or "", row.code, row.expires_at)
        elif row.state == "failed":
            got[touch.delivery_id] = row.reason or "failed earlier"
        else:
            ask.append(touch)
    if ask:
        asks = {
            t.delivery_id: CouponRequest(
                coupon,
                t.target.external_userid,
                members.get(t.target.id),
                keys[t.delivery_id],
                spec.id,
                step,
            )
            for t in ask
        }
        got.update(_ask_chain(asks, settings, now=now))
    return got


def _ask_chain(
    asks: Mapping[int, CouponRequest], settings: Settings, *, now: dt.datetime
) -> dict[int, Got]:
    """One signed request per touch; each answer is committed as soon as it arrives."""
    got: dict[int, Got] = {}
    client: CouponClient | None = None
    unconfigured = ""
    try:
        client = CouponClient(
            settings.coupon_url,
            settings.coupon_secret.get_secret_value(),
            timeout=(settings.coupon_connect_timeout, settings.coupon_read_timeout),
        )
    except CouponNotIssued as exc:
        unconfigured = exc.reason
    try:
        for delivery_id, request in asks.items():
            got[delivery_id] = _ask(client, request, unconfigured, now=now)
    finally:
        if client is not None:
            client.close()
    return got


def _ask(
    client: CouponClient | None, request: CouponRequest, unconfigured: str, *, now: dt.datetime
) -> Got:
    """The chain's answer for one touch, recorded on its coupon row before it is used."""
    try:
        if client is None:
            raise CouponNotIssued(unconfigured)
        with timed("coupons"):
            issued = client.issue(request)
    except CouponNotIssued as exc:
        with session_scope() as session:
            settle_coupon(request.idempotency_key, session=session, now=now, reason=exc.reason)
        return exc.reason
    with session_scope() as session:
        settle_coupon(
            request.idempotency_key,
            session=session,
            now=now,
            coupon_id=issued.coupon_id,
            code=issued.code,
            expires_at=issued.expires_at,
        )
    return issued


def _member_numbers(customer_ids: list[int], *, session: Session) -> dict[int, str]:
    """The chain's member number of each customer that has one linked."""
    statement = select(Member.customer_id, Member.member_no).where(
        col(Member.customer_id).in_(customer_ids)
    )
    return {customer_id: number for customer_id, number in session.exec(statement) if customer_id}


def _record(
    kept: Sequence[Touch],
    texts: Mapping[int, str],
    attachments: Mapping[int, tuple[Attachment, ...]],
    skipped: Mapping[str, list[int]],
    *,
    session: Session,
    now: dt.datetime,
) -> None:
    """Point the kept touches' rows at their texts; the others are skipped with the reason."""
    by_message: dict[int, list[int]] = {}
    for touch in kept:
        stored = dumps(attachments.get(touch.target.id, ()))
        message_id = store_message(
            texts[touch.target.id], session=session, now=now, attachments=stored
        )
        by_message.setdefault(message_id, []).append(touch.delivery_id)
    attach_messages(by_message, session=session)
    for reason, ids in skipped.items():
        set_status(ids, DeliveryStatus.SKIPPED, session=session, only_from=SENDABLE, reason=reason)


def preview_coupon(spec: SopSpec, step: str, day: dt.date) -> dict[str, Any]:
    """`coupon` for a preview of a step that issues one: a placeholder, nothing is issued."""
    if spec.step(step).issue is None:
        return {}
    return {"coupon": {"code": PREVIEW_CODE, "expires": day + dt.timedelta(days=7)}}
