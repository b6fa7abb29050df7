"""What each WeCom event changes: contacts, groups and their members, and the events SOPs answer."""

from __future__ import annotations

import datetime as dt
import logging
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import delete, select
from sqlmodel import Session, col

from callback.parse import CallbackEvent
from engine.events import Claim, claim_event, record_event
from models.directory import GroupMemberLeft
from models.people import Customer, CustomerGroup, GroupMember, Staff, Store
from models.vocab import THEMES

log = logging.getLogger(__name__)

CONTACT_ADDED = "contact.added"
CONTACT_DELETED = "contact.deleted"
MEMBER_JOINED = "group.member_joined"
ADDS = ("add_external_contact", "add_half_external_contact")
GENDER = {"1": "male", "2": "female"}  # WeCom: 0 unknown, 1 male, 2 female
UNKNOWN_REGION = "未知"
DEFAULT_THEME = next(iter(THEMES))  # a group first seen from a callback, until ops set its theme


@dataclass
class Applied:
    """What one event changed: trigger events recorded by kind, and a note for the log."""

    recorded: Counter[str] = field(default_factory=Counter)
    note: str = ""
    welcomes: list[Claim] = field(default_factory=list)  # claimed for the receiver to answer


Reader = Callable[
    [str], dict[str, Any]
]  # id -> WeCom's answer (externalcontact/get, groupchat/get)


@dataclass(frozen=True)
class Directory:
    """How the receiver reads WeCom: the contact and group readers, and the corp tag sync if any."""

    contact: Reader
    group: Reader
    sync_tags: Callable[[Session], object] | None = None  # in the event's transaction


def apply_event(
    event: CallbackEvent,
    directory: Directory,
    *,
    now: dt.datetime,
    session: Session,
    claim_welcomes: bool = False,
) -> Applied:
    """Apply one decrypted event in `session` (the caller commits it with the processed mark).

    With `claim_welcomes` a contact.added event carrying a WelcomeCode is claimed in the same
    transaction, so no drain ever sees it free: the caller answers it within the code's 20 s.
    """
    kind = event.event
    if kind == "change_external_contact":
        return _contact_event(event, directory, now=now, session=session, claim=claim_welcomes)
    if kind == "change_external_chat":
        return _chat_event(event, directory, now=now, session=session)
    if kind == "change_external_tag":
        if directory.sync_tags is None:
            return Applied(note="corp tags changed; no tag sync here: run `sopflow sync`")
        directory.sync_tags(session)
        return Applied(note="corp tags re-read")
    return Applied(note=f"event {kind!r} is not one sopflow acts on; kept as received")


# ---------------------------------------------------------------- contacts


def _staff(userid: str, *, session: Session) -> Staff:
    """The staff member with `userid`, created (named by userid) when the directory lacks them."""
    found = session.execute(select(Staff).where(col(Staff.userid) == userid)).scalar()
    if found is None:
        found = Staff(userid=userid, name=userid)
        session.add(found)
        session.flush()
    return found


def _contact_event(
    event: CallbackEvent,
    directory: Directory,
    *,
    now: dt.datetime,
    session: Session,
    claim: bool = False,
) -> Applied:
    change, external_userid, userid = (
        event.change_type,
        event.get("ExternalUserID"),
        event.get("UserID"),
    )
    if not external_userid:
        return Applied(note=f"{change} without ExternalUserID")
    if change in ADDS or change == "edit_external_contact":
        customer = _upsert_contact(event, directory, now=now, session=session)
        if change not in ADDS:
            return Applied(note="contact re-read")
        payload = {"userid": userid, "state": event.get("State") or None}
        if event.get("WelcomeCode"):
            payload["welcome_code"] = event.get("WelcomeCode")
        event_id = record_event(
            CONTACT_ADDED,
            customer=customer.external_userid,
            payload=payload,
            now=now,
            session=session,
        )
        applied = Applied(Counter({CONTACT_ADDED: 1}), "contact added")
        if claim and "welcome_code" in payload:
            taken = claim_event(event_id, now=now, session=session)
            applied.welcomes += [taken] if taken else []
        return applied
    if change in ("del_external_contact", "del_follow_user"):
        return _delete_contact(event, now=now, session=session)
    if change == "transfer_fail":
        return Applied(
            note=f"transfer of {external_userid} to {userid} failed: {event.get('FailReason')}"
        )
    return Applied(note=f"change_external_contact {change!r} kept as received")


def _upsert_contact(
    event: CallbackEvent, directory: Directory, *, now: dt.datetime, session: Session
) -> Customer:
    """The contact as externalcontact/get reads it now, owned by the event's staff member."""
    external_userid, userid = event.get("ExternalUserID"), event.get("UserID")
    data = directory.contact(external_userid)
    contact = data.get("external_contact") or {}
    follows = data.get("follow_user") or []
    follow = next((f for f in follows if f.get("userid") == userid), follows[0] if follows else {})
    staff = _staff(userid or follow.get("userid") or "", session=session)
    state = event.get("State") or follow.get("state") or None
    customer = session.execute(
        select(Customer).where(col(Customer.external_userid) == external_userid)
    ).scalar()
    if customer is None:
        store = session.get(Store, staff.store_id) if staff.store_id else None
        added = follow.get("createtime")
        customer = Customer(
            external_userid=external_userid,
            name=(contact.get("name") or external_userid)[:64],
            gender=GENDER.get(str(contact.get("gender"))),
            region=store.city if store else UNKNOWN_REGION,
            store_id=staff.store_id,
            owner_staff_id=staff.id,
            stage_since=now,
            added_at=dt.datetime.fromtimestamp(int(added), dt.UTC) if added else now,
        )
    else:
        customer.name = (contact.get("name") or customer.name)[:64]
        customer.gender = GENDER.get(str(contact.get("gender")), customer.gender)
        if event.change_type in ADDS:
            customer.owner_staff_id = staff.id
    if event.change_type in ADDS:
        customer.contact_state, customer.deleted_at = "active", None
    if state:
        customer.source_state = state[:30]
    session.add(customer)
    session.flush()
    return customer


def _delete_contact(event: CallbackEvent, *, now: dt.datetime, session: Session) -> Applied:
    """del_external_contact: the staff member deleted the customer; del_follow_user: the customer
    deleted the staff member. Only the owner's relation ending makes the customer unreachable."""
    external_userid, userid = event.get("ExternalUserID"), event.get("UserID")
    by = "staff" if event.change_type == "del_external_contact" else "customer"
    customer = session.execute(
        select(Customer).where(col(Customer.external_userid) == external_userid)
    ).scalar()
    if customer is None:
        return Applied(note=f"{external_userid} is not in the directory; nothing to delete")
    owner = session.get(Staff, customer.owner_staff_id) if customer.owner_staff_id else None
    if owner is None or owner.userid == userid:
        customer.contact_state, customer.deleted_at = "deleted", now
        session.add(customer)
    payload = {"by": by, "userid": userid, "source": event.get("Source") or None}
    record_event(
        CONTACT_DELETED, customer=external_userid, payload=payload, now=now, session=session
    )
    return Applied(note=f"contact deleted by the {by} ({userid})")


# ---------------------------------------------------------------- groups


def _group(chat_id: str, *, session: Session) -> CustomerGroup | None:
    return session.execute(
        select(CustomerGroup).where(col(CustomerGroup.chat_id) == chat_id)
    ).scalar()


def _chat_event(
    event: CallbackEvent, directory: Directory, *, now: dt.datetime, session: Session
) -> Applied:
    chat_id, change = event.get("ChatId"), event.change_type
    group = _group(chat_id, session=session)
    if change == "dismiss":
        if group is not None:
            group.dismissed_at = now
            session.add(group)
        return Applied(note="group dismissed")
    detail = event.get("UpdateDetail")
    if change == "update" and detail in ("add_member", "del_member") and group is not None:
        members = event.items("MemChangeList")
        if detail == "add_member":
            return _join(group, members, now=now, session=session)
        return _leave(group, members, now=now, session=session)
    # create, change_owner, change_name, or members of a group not seen yet: read it whole.
    joined = event.items("MemChangeList") if detail == "add_member" else []
    group = _read_group(chat_id, directory, now=now, session=session, joining=joined)
    if joined:
        return _join(group, joined, now=now, session=session)
    return Applied(note=f"group {change} {detail or ''}".strip())


def _customer_ids(external_userids: list[str], *, session: Session) -> dict[str, int]:
    rows = session.execute(
        select(col(Customer.external_userid), col(Customer.id)).where(
            col(Customer.external_userid).in_(external_userids)
        )
    )
    return {external_userid: int(customer_id) for external_userid, customer_id in rows}


def _join(
    group: CustomerGroup, members: list[str], *, now: dt.datetime, session: Session
) -> Applied:
    """Known customers among `members` join the group; each new join is a group.member_joined."""
    assert group.id is not None
    known = _customer_ids(members, session=session)
    present = set(
        session.execute(
            select(col(GroupMember.customer_id)).where(
                col(GroupMember.group_id) == group.id,
                col(GroupMember.customer_id).in_(known.values()),
            )
        ).scalars()
    )
    applied = Applied(note=f"{len(members)} joined ({len(known)} known customers)")
    for external_userid, customer_id in known.items():
        if customer_id in present:
            continue
        session.add(GroupMember(group_id=group.id, customer_id=customer_id, joined_at=now))
        record_event(
            MEMBER_JOINED,
            customer=external_userid,
            payload={"chat_id": group.chat_id},
            now=now,
            session=session,
        )
        applied.recorded[MEMBER_JOINED] += 1
    group.member_count += len(members) - len(present)
    session.add(group)
    return applied


def _leave(
    group: CustomerGroup, members: list[str], *, now: dt.datetime, session: Session
) -> Applied:
    """Known customers among `members` leave the group; the membership is kept in
    group_member_left, as the directory sync keeps it."""
    known = _customer_ids(members, session=session)
    leaving = (
        session.execute(
            select(GroupMember).where(
                col(GroupMember.group_id) == group.id,
                col(GroupMember.customer_id).in_(known.values()),
            )
        )
        .scalars()
        .all()
    )
    session.add_all(
        GroupMemberLeft(
            group_id=m.group_id, customer_id=m.customer_id, joined_at=m.joined_at, left_at=now
        )
        for m in leaving
    )
    session.execute(
        delete(GroupMember).where(
            col(GroupMember.group_id) == group.id, col(GroupMember.customer_id).in_(known.values())
        )
    )
    group.member_count = max(0, group.member_count - len(members))
    session.add(group)
    return Applied(note=f"{len(members)} left")


def _read_group(
    chat_id: str,
    directory: Directory,
    *,
    now: dt.datetime,
    session: Session,
    joining: list[str] | None = None,
) -> CustomerGroup:
    """The group as groupchat/get reads it now: name, owner and customer members, but for those
    `joining` (the event's new members, whose joins `_join` records)."""
    chat = directory.group(chat_id).get("group_chat") or {}
    owner = _staff(chat.get("owner") or "", session=session)
    group = _group(chat_id, session=session)
    if group is None:
        created = chat.get("create_time")
        group = CustomerGroup(
            chat_id=chat_id,
            name=(chat.get("name") or chat_id)[:128],
            region=UNKNOWN_REGION,
            theme=DEFAULT_THEME,
            owner_staff_id=owner.id or 0,
            store_id=owner.store_id,
            created_at=dt.datetime.fromtimestamp(int(created), dt.UTC) if created else now,
        )
    group.name = (chat.get("name") or group.name)[:128]
    group.owner_staff_id = owner.id or group.owner_staff_id
    members = [m for m in chat.get("member_list") or [] if m.get("userid") not in (joining or [])]
    group.member_count = len(members)
    session.add(group)
    session.flush()
    assert group.id is not None
    customers = [m.get("userid", "") for m in members if m.get("type") == 2]
    known = _customer_ids(customers, session=session)
    present = set(
        session.execute(
            select(col(GroupMember.customer_id)).where(col(GroupMember.group_id) == group.id)
        ).scalars()
    )
    for customer_id in set(known.values()) - present:
        session.add(GroupMember(group_id=group.id, customer_id=customer_id, joined_at=now))
    return group
