"""The directory sync's writes: staff, corp tags, one page of contacts with their follow relations
and tags, the sweep of what WeCom no longer lists. Each writes only what changed and counts it."""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

from sqlalchemy import Table, exists, func, insert, select, text, update
from sqlmodel import Session

from models.bulk import memoized
from models.directory import FollowRelation, SyncSeen, WecomTag
from models.directory_sql import Driver
from models.people import Customer, CustomerTag, Staff, Store, Tag

CUSTOMER: Table = Customer.__table__  # type: ignore[attr-defined]
RELATION: Table = FollowRelation.__table__  # type: ignore[attr-defined]
STAFF: Table = Staff.__table__  # type: ignore[attr-defined]
TAG: Table = Tag.__table__  # type: ignore[attr-defined]
WECOM_TAG: Table = WecomTag.__table__  # type: ignore[attr-defined]
CUSTOMER_TAG: Table = CustomerTag.__table__  # type: ignore[attr-defined]
SEEN: Table = SyncSeen.__table__  # type: ignore[attr-defined]
GENDERS = {1: "male", 2: "female"}  # WeCom: 0 unknown, 1 male, 2 female
UNKNOWN_REGION = "未知"  # a customer whose staff member has no store yet


def upsert_staff(userids: Sequence[str], *, session: Session) -> tuple[dict[str, int], int]:
    """The staff id of each userid, adding the missing ones (named by userid); and how many were added."""
    known = dict(session.execute(select(STAFF.c.userid, STAFF.c.id)).tuples().all())
    new = [{"userid": u, "name": u, "role": "advisor"} for u in userids if u not in known]
    if new:
        session.execute(insert(STAFF), new)
        known = dict(session.execute(select(STAFF.c.userid, STAFF.c.id)).tuples().all())
    return known, len(new)


def staff_regions(*, session: Session) -> dict[int, str]:
    """Each staff member's store city (the region a new customer of theirs gets)."""
    rows = session.execute(
        select(STAFF.c.id, Store.city).join(Store, Store.id == STAFF.c.store_id)  # type: ignore[arg-type]
    ).tuples()
    return dict(rows.all())


def upsert_corp_tags(
    groups: list[dict[str, Any]], *, session: Session
) -> tuple[dict[str, int], int]:
    """Tag rows (source manual) for WeCom's corp tags; WeCom tag id → Tag id, and rows written."""
    linked = dict(session.execute(select(WECOM_TAG.c.wecom_id, WECOM_TAG.c.tag_id)).tuples().all())
    names = dict(session.execute(select(TAG.c.name, TAG.c.id)).tuples().all())
    current = {r.id: r for r in session.execute(select(TAG)).all()}
    writes = 0
    for group in groups:
        for tag in group.get("tag") or []:
            name, group_name = str(tag["name"])[:64], str(group["group_name"])[:32]
            tag_id = linked.get(tag["id"])
            if tag_id is None:
                if name in names and names[name] not in linked.values():
                    tag_id = names[name]  # a tag of that name already here: it is this one
                else:
                    if name in names:
                        name = f"{name}（{group_name}）"[:64]
                    tag_id = session.execute(
                        insert(TAG).values(name=name, group_name=group_name, source="manual")
                    ).inserted_primary_key[0]
                    names[name] = tag_id
                session.execute(
                    insert(WECOM_TAG).values(
                        wecom_id=tag["id"], tag_id=tag_id,
                        group_id=group["group_id"], group_name=group["group_name"][:64],
                    )
                )  # fmt: skip
                linked[tag["id"]] = tag_id
                writes += 1
            row = current.get(tag_id)
            if row is not None and (row.name != name or row.group_name != group_name):
                if name not in names or names[name] == tag_id:
                    session.execute(
                        update(TAG)
                        .where(TAG.c.id == tag_id)
                        .values(name=name, group_name=group_name)
                    )
                    writes += 1
    return linked, writes


def write_page(
    items: list[dict[str, Any]],
    *,
    staff_ids: dict[str, int],
    regions: dict[int, str],
    tags: dict[str, int],
    run_id: int,
    now: dt.datetime,
    session: Session,
) -> Counter[str]:
    """One or more batch/get_by_user pages: customers, their relations with these staff, the
    relations' tags on the customer; marks them seen by the run. The rows already there are read
    in one set-based SELECT per table, and only the differences are written; counts them."""
    writes: Counter[str] = Counter()
    rows = _listed(items, staff_ids)
    if not rows:
        return writes
    sql = Driver(session)
    bind_at = memoized(sql.bind(CUSTOMER, "added_at"))
    earliest: dict[str, _Listed] = {}
    for row in rows:
        first = earliest.get(row.ext)
        if first is None or row.added < first.added:
            earliest[row.ext] = row
    exts = sorted(earliest)
    columns = ("id", "external_userid", "name", "gender", "unionid", "contact_state", "added_at",
               "owner_staff_id")  # fmt: skip
    existing = {r[1]: r for r in sql.select_in(CUSTOMER, columns, "external_userid", exts)}
    ids = {ext: r[0] for ext, r in existing.items()}
    new = [ext for ext in exts if ext not in existing]
    if new:
        firsts = [earliest[ext] for ext in new]
        writes["customers added"] += _add_customers(sql, firsts, staff_ids, regions, ids, bind_at)
    changes: dict[tuple[str, ...], list[list[Any]]] = {}
    for ext, (cid, _, name, gender, unionid, state, added_at, owner) in existing.items():
        first = earliest[ext]
        change: dict[str, Any] = {}
        if name != first.name:
            change["name"] = first.name
        if gender != first.gender:
            change["gender"] = first.gender
        if first.unionid and unionid != first.unionid:
            change["unionid"] = first.unionid
        if state != "active":
            change.update(contact_state="active", deleted_at=None)
        if owner is None or bind_at(first.added) < added_at:
            change.update(added_at=bind_at(first.added), owner_staff_id=staff_ids[first.userid],
                          source_state=first.state)  # fmt: skip
        if change:
            changes.setdefault(tuple(change), []).append([*change.values(), cid])
    for names, values in changes.items():
        writes["customers changed"] += sql.update(CUSTOMER, names, values)
    writes += _write_relations(sql, rows, ids, staff_ids, tags, bind_at, now=now)
    seen = {(run_id, staff_ids[r.userid], ids[r.ext]) for r in rows}
    sql.insert(SEEN, ("run_id", "staff_id", "customer_id"), sorted(seen))
    return writes


class _Listed(NamedTuple):
    """One listed relation, its fields as the tables hold them."""

    ext: str
    userid: str
    name: str
    gender: str | None
    unionid: str | None
    added: dt.datetime
    remark: str
    add_way: int | None
    state: str | None
    tag_ids: str


def _listed(items: list[dict[str, Any]], staff_ids: dict[str, int]) -> list[_Listed]:
    """The page items that are relations of known staff, once each."""
    found: dict[tuple[str, str], _Listed] = {}
    for item in items:
        contact, follow = item.get("external_contact") or {}, item.get("follow_info")
        ext = contact.get("external_userid")
        if not follow or not ext or follow.get("userid") not in staff_ids:
            continue
        tag_ids = follow.get("tag_id")
        found[(ext, follow["userid"])] = _Listed(
            ext, follow["userid"], _name(contact), GENDERS.get(contact.get("gender")),
            contact.get("unionid") or None, _added(follow), str(follow.get("remark") or "")[:128],
            follow.get("add_way"), follow.get("state") or None,
            ",".join(sorted(str(t) for t in tag_ids)) if tag_ids else "",
        )  # fmt: skip
    return list(found.values())


def _add_customers(
    sql: Driver,
    firsts: list[_Listed],
    staff_ids: dict[str, int],
    regions: dict[int, str],
    ids: dict[str, int],
    bind_at: Callable[[Any], Any],
) -> int:
    """Insert customers from their earliest relation; their ids go into `ids`. How many."""
    columns = ["external_userid", "name", "gender", "unionid", "region", "owner_staff_id",
               "tier", "is_paid_member", "stage", "stage_since", "added_at", "contact_state",
               "source_state", "order_count", "total_spent_fen"]  # fmt: skip
    unpaid = sql.bind(CUSTOMER, "is_paid_member")(False)
    values = []
    for r in firsts:
        owner, added = staff_ids[r.userid], bind_at(r.added)
        values.append((r.ext, r.name, r.gender, r.unionid, regions.get(owner, UNKNOWN_REGION),
                       owner, "bronze", unpaid, "new", added, added, "active", r.state, 0, 0))  # fmt: skip
    added = sql.insert_returning(CUSTOMER, columns, values, ["external_userid", "id"])
    ids.update(dict(added))
    missing = [r.ext for r in firsts if r.ext not in ids]
    if missing:  # written meanwhile by another writer (the callback receiver)
        ids.update(dict(sql.select_in(CUSTOMER, ("external_userid", "id"), "external_userid", missing)))  # fmt: skip
    return len(added)


def _write_relations(
    sql: Driver,
    rows: list[_Listed],
    ids: dict[str, int],
    staff_ids: dict[str, int],
    tags: dict[str, int],
    bind_at: Callable[[Any], Any],
    *,
    now: dt.datetime,
) -> Counter[str]:
    writes: Counter[str] = Counter()
    columns = ("added_at", "remark", "add_way", "state", "tag_ids", "deleted_at")
    current = {
        (r[1], r[2]): r
        for r in sql.select_in(
            RELATION, ("id", "customer_id", "staff_id", *columns), "customer_id",
            sorted({ids[r.ext] for r in rows}),
        )
    }  # fmt: skip
    retag: set[int] = set()
    new: list[list[Any]] = []
    changed: list[list[Any]] = []
    for r in rows:
        key = (ids[r.ext], staff_ids[r.userid])
        values = (bind_at(r.added), r.remark, r.add_way, r.state, r.tag_ids, None)
        row = current.get(key)
        if row is None:
            new.append((*key, *values))
            if r.tag_ids:
                retag.add(key[0])
        elif tuple(row[3:]) != values:
            changed.append([*values, row[0]])
            if row[7] != r.tag_ids or row[8] is not None:
                retag.add(key[0])
    writes["relations changed"] += sql.update(RELATION, columns, changed)
    inserted = sql.insert_returning(RELATION, ["customer_id", "staff_id", *columns], new, ["id"])
    writes["relations added"] += len(inserted)
    if retag:
        writes["customer tags"] += _retag(sql, sorted(retag), tags, now=now)
    return writes


def retag_customers(
    customer_ids: list[int], tags: dict[str, int], *, now: dt.datetime, session: Session
) -> int:
    """Make the customers' WeCom tags (source manual) the union of their live relations' tags;
    automatic tags and tags not from WeCom are left alone. Rows written."""
    return _retag(Driver(session), customer_ids, tags, now=now)


def _retag(sql: Driver, customer_ids: list[int], tags: dict[str, int], *, now: dt.datetime) -> int:
    wanted: set[tuple[int, int]] = set()
    live = "deleted_at IS NULL"
    relations = sql.select_in(RELATION, ("customer_id", "tag_ids"), "customer_id", customer_ids, live)  # fmt: skip
    for customer_id, tag_ids in relations:
        wanted |= {(customer_id, tags[t]) for t in tag_ids.split(",") if t in tags}
    wecom = "source = 'manual' AND tag_id IN (SELECT tag_id FROM wecom_tag)"
    have = set(sql.select_in(CUSTOMER_TAG, ("customer_id", "tag_id"), "customer_id", customer_ids, wecom))  # fmt: skip
    created = sql.bind(CUSTOMER_TAG, "created_at")(now)
    add = sorted((c, t, "manual", created) for c, t in wanted - have)
    sql.insert(CUSTOMER_TAG, ("customer_id", "tag_id", "source", "created_at"), add)
    sql.delete(CUSTOMER_TAG, ("customer_id", "tag_id"), sorted(have - wanted))
    return len(add) + len(have - wanted)


def sweep(run_id: int, *, now: dt.datetime, session: Session) -> Counter[str]:
    """After a pass listed every follow user's contacts: relations it did not list are deleted
    (at `now`), customers with no live relation left are `deleted`, owners move to the earliest
    live relation. Nothing is removed; the pass's seen list is emptied."""
    writes: Counter[str] = Counter()
    seen = exists().where(
        SEEN.c.run_id == run_id,
        SEEN.c.staff_id == RELATION.c.staff_id,
        SEEN.c.customer_id == RELATION.c.customer_id,
    )
    gone = session.execute(
        update(RELATION).where(RELATION.c.deleted_at.is_(None), ~seen).values(deleted_at=now)
    ).rowcount
    writes["relations deleted"] += gone
    if gone:
        live = exists().where(
            RELATION.c.customer_id == CUSTOMER.c.id, RELATION.c.deleted_at.is_(None)
        )
        touched = select(RELATION.c.customer_id).where(RELATION.c.deleted_at == now)
        writes["customers deleted"] += session.execute(
            update(CUSTOMER)
            .where(CUSTOMER.c.id.in_(touched), CUSTOMER.c.contact_state == "active", ~live)
            .values(contact_state="deleted", deleted_at=now)
        ).rowcount
        first = (
            select(RELATION.c.staff_id)
            .where(RELATION.c.customer_id == CUSTOMER.c.id, RELATION.c.deleted_at.is_(None))
            .order_by(RELATION.c.added_at, RELATION.c.id)
            .limit(1)
            .scalar_subquery()
        )
        writes["owners moved"] += session.execute(
            update(CUSTOMER)
            .where(CUSTOMER.c.id.in_(touched), live, CUSTOMER.c.owner_staff_id != first)
            .values(owner_staff_id=first)
        ).rowcount
    session.execute(text("DELETE FROM sync_seen WHERE run_id = :run"), {"run": run_id})
    return writes


def live_relations(*, session: Session) -> int:
    """How many follow relations are live (not deleted)."""
    query = select(func.count()).select_from(RELATION).where(RELATION.c.deleted_at.is_(None))
    return int(session.execute(query).scalar_one())


def seen_count(run_id: int, *, session: Session) -> int:
    query = select(func.count()).select_from(SEEN).where(SEEN.c.run_id == run_id)
    return int(session.execute(query).scalar_one())


def _added(follow: dict[str, Any]) -> dt.datetime:
    return dt.datetime.fromtimestamp(int(follow.get("createtime") or 0), dt.UTC)


def _name(contact: dict[str, Any]) -> str:
    return str(contact.get("name") or contact["external_userid"])[:64]
