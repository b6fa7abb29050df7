"""A hand-built review world: known touches, orders and holdouts with answers computed by hand."""

from __future__ import annotations

import datetime as dt
import itertools
from dataclasses import dataclass, field

from sqlmodel import select

from core.clock import at_local
from models.db import session_scope
from models.delivery import Delivery, MassTask
from models.people import Customer, CustomerGroup, GroupMember, OptOut
from soplang.spec import SopSpec
from tests.factories import add_customers, add_order, make_world

DAY = dt.date(2026, 10, 6)  # a Tuesday well before today: nothing else writes these days
T0 = at_local(DAY, 10, 0)  # 10:00 Asia/Shanghai
HOUR = dt.timedelta(hours=1)
_keys = itertools.count()


@dataclass
class ReviewWorld:
    customers: list[int]
    group_id: int
    group_members: int
    deliveries: dict[str, int] = field(default_factory=dict)  # name -> delivery id


def touch(
    sop_id: str,
    *,
    at: dt.datetime,
    customer_id: int | None = None,
    group_id: int | None = None,
    status: str = "delivered",
    reason: str | None = None,
    step: str = "main",
    sender: str = "zhangwei.bj01",
    msgid: str | None = None,
) -> int:
    """One Delivery row planned and (unless skipped) sent at `at`; returns its id."""
    kind = "group" if group_id else "customer"
    with session_scope() as session:
        row = Delivery(
            idempotency_key=f"{sop_id}:{step}:{next(_keys)}:{kind}:{customer_id or group_id}",
            sop_id=sop_id,
            step=step,
            occurrence=at.date().isoformat(),
            target_kind=kind,
            target_id=str(customer_id or group_id),
            customer_id=customer_id,
            group_id=group_id,
            channel="wecom",
            sender=sender,
            status=status,
            reason=reason,
            msgid=msgid,
            planned_at=at,
            sent_at=None if status == "skipped" else at,
            updated_at=at,
        )
        session.add(row)
        session.flush()
        return int(row.id)


def spec(sop_id: str, kind: str = "lifecycle", window: str | None = None) -> SopSpec:
    return SopSpec(
        id=sop_id,
        title=sop_id,
        kind=kind,
        channel="customer",
        category="fresh",
        attribution={"window": window} if window else None,
    )


SPECS = [
    spec("dormant-recall"),
    spec("win-back"),
    spec("birthday"),
    spec("long-tail", window="7d"),
    spec("quick", window="2h"),
    spec("morning-price", kind="community"),
    spec("double-12", kind="promotion"),
]


def build() -> ReviewWorld:
    """The world every review test reads; the comments give each known answer."""
    make_world(DAY)
    people = add_customers(30, owner="zhangwei.bj01", region="北京")
    a, b, c, d, e, *rest = people
    with session_scope() as session:
        group = session.exec(
            select(CustomerGroup).where(CustomerGroup.name == "北京生鲜爱好者群")
        ).one()
        group_id, members = int(group.id), int(group.member_count)
        session.add(GroupMember(group_id=group_id, customer_id=c, joined_at=T0 - 30 * 24 * HOUR))
    world = ReviewWorld(customers=people, group_id=group_id, group_members=members)
    ids = world.deliveries
    # A: win-back at T0, birthday at T0+5h (the latest delivered before the order wins), an undelivered
    # touch at T0+9h and a touch after the order are ignored. Order at T0+10h, 100.00 → birthday.
    ids["a_win_back"] = touch("win-back", at=T0, customer_id=a)
    ids["a_birthday"] = touch("birthday", at=T0 + 5 * HOUR, customer_id=a)
    touch("win-back", at=T0 + 9 * HOUR, customer_id=a, status="sent", step="second")
    touch("birthday", at=T0 + 11 * HOUR, customer_id=a, step="later")
    add_order(a, T0 + 10 * HOUR, [("F001", 2, 5000)])
    # B: win-back at T0, order at T0+80h: outside the default 72 h → not attributed. long-tail (7d)
    # at T0 with an order at T0+100h → attributed to long-tail.
    touch("win-back", at=T0, customer_id=b)
    ids["b_long"] = touch("long-tail", at=T0 - 20 * HOUR, customer_id=b)
    add_order(b, T0 + 80 * HOUR, [("F001", 1, 3000)])  # long-tail: 100 h after its touch, in 7d
    # C: in the group; group touch at T0+1h, quick (2h window) 1:1 at T0+2h, order at T0+5h:
    # quick's window closed at T0+4h → the group touch wins. Order 80.00.
    ids["c_group"] = touch("morning-price", at=T0 + HOUR, group_id=group_id)
    touch("quick", at=T0 + 2 * HOUR, customer_id=c)
    add_order(c, T0 + 5 * HOUR, [("F003", 1, 8000)])
    # D: a refunded order after a delivered touch is no conversion.
    touch("double-12", at=T0, customer_id=d)
    add_order(d, T0 + HOUR, [("F001", 1, 1000)], status="refunded")
    # E: promotion touch, order 2 h later → double-12 (200.00); E deletes the contact 2 days after
    # and opts out 9 days after (outside 7 days).
    ids["e_promo"] = touch("double-12", at=T0, customer_id=e, msgid="msg-e")
    add_order(e, T0 + 2 * HOUR, [("B001", 1, 20000)])
    with session_scope() as session:
        customer = session.get(Customer, e)
        customer.deleted_at = T0 + 48 * HOUR
        customer.contact_state = "deleted"
        session.add(OptOut(customer_id=e, category="fresh", created_at=T0 + 9 * 24 * HOUR))
        # msg-e confirmed 30 minutes after it was sent.
        session.add(MassTask(msgid="msg-e", sender="zhangwei.bj01", confirmed_at=T0 + 0.5 * HOUR))
    # Holdout of dormant-recall on DAY+1: 10 treated rows (3 convert within 72 h of the planned
    # touch), 5 held out (1 converts). Uplift 0.3 − 0.2 = 0.1.
    day2 = T0 + 24 * HOUR
    treated, control = rest[:10], rest[10:15]
    for i, person in enumerate(treated):
        touch(
            "dormant-recall", at=day2, customer_id=person, status="sent" if i % 2 else "delivered"
        )
    for person in treated[:3]:
        add_order(person, day2 + 30 * HOUR, [("F001", 1, 1000)])
    for person in control:
        touch("dormant-recall", at=day2, customer_id=person, status="skipped", reason="holdout")
    add_order(control[0], day2 + 10 * HOUR, [("F001", 1, 1000)])
    add_order(control[1], day2 + 100 * HOUR, [("F001", 1, 1000)])  # outside the window
    # Skips with reasons.
    touch(
        "dormant-recall",
        at=day2,
        customer_id=rest[15],
        status="skipped",
        reason="opted out of fresh",
    )
    touch(
        "birthday",
        at=day2,
        customer_id=rest[16],
        status="skipped",
        reason="capped (lost to dormant-recall)",
    )
    return world
