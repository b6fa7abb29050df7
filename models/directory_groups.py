"""The directory sync's writes for customer groups: the group as groupchat/get reads it, its
customer members (who left is kept in group_member_left), and groups WeCom no longer lists."""

from __future__ import annotations

import datetime as dt
from collections import Counter
from typing import Any

from sqlalchemy import Table, delete, insert, select, update
from sqlmodel import Session

from models.directory import GroupMemberLeft, WecomGroup
from models.people import Customer, CustomerGroup, GroupMember
from models.vocab import THEMES

GROUP: Table = CustomerGroup.__table__  # type: ignore[attr-defined]
MEMBER: Table = GroupMember.__table__  # type: ignore[attr-defined]
LEFT: Table = GroupMemberLeft.__table__  # type: ignore[attr-defined]
WECOM_GROUP: Table = WecomGroup.__table__  # type: ignore[attr-defined]
CUSTOMER: Table = Customer.__table__  # type: ignore[attr-defined]
DEFAULT_THEME = next(iter(THEMES))  # a group first seen in WeCom, until ops set its theme
UNKNOWN_REGION = "未知"
EXTERNAL = 2  # member_list type: 1 staff, 2 external contact


def known_groups(*, session: Session) -> dict[str, tuple[int, int | None]]:
    """chat_id → (group id, WeCom status last read, None when never read by a sync)."""
    rows = session.execute(
        select(GROUP.c.chat_id, GROUP.c.id, WECOM_GROUP.c.status).outerjoin(
            WECOM_GROUP, WECOM_GROUP.c.group_id == GROUP.c.id
        )
    ).tuples()
    return {chat_id: (gid, status) for chat_id, gid, status in rows}


def write_group(
    chat: dict[str, Any],
    status: int,
    *,
    staff_ids: dict[str, int],
    regions: dict[int, str],
    now: dt.datetime,
    session: Session,
) -> Counter[str]:
    """Upsert one group from groupchat/get's `group_chat` and its customer members; counts writes."""
    writes: Counter[str] = Counter()
    owner = staff_ids.get(chat.get("owner") or "")
    if owner is None:
        return writes  # an owner outside the follow users: not one of ours
    members = {m["userid"]: m for m in chat.get("member_list") or [] if m.get("type") == EXTERNAL}
    customers = dict(
        session.execute(
            select(CUSTOMER.c.external_userid, CUSTOMER.c.id).where(
                CUSTOMER.c.external_userid.in_(sorted(members))
            )
        ).tuples().all()
    )  # fmt: skip
    values = {
        "name": str(chat.get("name") or chat["chat_id"])[:128],
        "owner_staff_id": owner,
        "member_count": len(chat.get("member_list") or []),
        "dismissed_at": None,
    }
    row = session.execute(select(GROUP).where(GROUP.c.chat_id == chat["chat_id"])).first()
    if row is None:
        created = dt.datetime.fromtimestamp(int(chat.get("create_time") or 0), dt.UTC)
        group_id = session.execute(
            insert(GROUP).values(
                chat_id=chat["chat_id"], region=regions.get(owner, UNKNOWN_REGION),
                theme=DEFAULT_THEME, created_at=created, **values,
            )
        ).inserted_primary_key[0]  # fmt: skip
        writes["groups added"] += 1
    else:
        group_id = row.id
        change = {k: v for k, v in values.items() if getattr(row, k) != v}
        if change:
            session.execute(update(GROUP).where(GROUP.c.id == group_id).values(**change))
            writes["groups changed"] += 1
    version = str(chat.get("member_version") or "")
    mark = session.execute(select(WECOM_GROUP).where(WECOM_GROUP.c.group_id == group_id)).first()
    if mark is None:
        session.execute(
            insert(WECOM_GROUP).values(group_id=group_id, status=status, member_version=version)
        )
    elif (mark.status, mark.member_version) != (status, version):
        session.execute(
            update(WECOM_GROUP)
            .where(WECOM_GROUP.c.group_id == group_id)
            .values(status=status, member_version=version)
        )
    current = {
        r.customer_id: r.joined_at
        for r in session.execute(select(MEMBER).where(MEMBER.c.group_id == group_id)).all()
    }
    wanted = {customers[ext]: members[ext] for ext in members if ext in customers}
    joined = [
        {"group_id": group_id, "customer_id": cid, "joined_at": _at(m.get("join_time"))}
        for cid, m in wanted.items()
        if cid not in current
    ]
    if joined:
        session.execute(insert(MEMBER), joined)
        writes["members joined"] += len(joined)
    left = [cid for cid in current if cid not in wanted]
    if left:
        session.execute(
            insert(LEFT),
            [{"group_id": group_id, "customer_id": cid, "joined_at": current[cid],
              "left_at": now} for cid in left],
        )  # fmt: skip
        session.execute(
            delete(MEMBER).where(MEMBER.c.group_id == group_id, MEMBER.c.customer_id.in_(left))
        )
        writes["members left"] += len(left)
    return writes


def dismiss_missing(listed: set[str], *, now: dt.datetime, session: Session) -> int:
    """Groups a sync read before that WeCom no longer lists: dismissed at `now`; how many."""
    synced = select(WECOM_GROUP.c.group_id)
    rows = session.execute(
        select(GROUP.c.id, GROUP.c.chat_id).where(
            GROUP.c.id.in_(synced), GROUP.c.dismissed_at.is_(None)
        )
    ).tuples()
    gone = [gid for gid, chat_id in rows if chat_id not in listed]
    if gone:
        session.execute(update(GROUP).where(GROUP.c.id.in_(gone)).values(dismissed_at=now))
    return len(gone)


def _at(seconds: Any) -> dt.datetime:
    return dt.datetime.fromtimestamp(int(seconds or 0), dt.UTC)
