"""Push the automatic tags to WeCom with `mark_tag`: only what changed since WeCom last confirmed,
one call per customer, recorded in `tag_push` only after WeCom answered errcode 0."""

from __future__ import annotations

import datetime as dt
import logging
from collections import Counter, defaultdict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from sqlalchemy import delete, exists, func, select, tuple_
from sqlmodel import Session, col

from channels.wecom import WeComClient
from channels.wecom_tags import add_corp_tags
from core.clock import utcnow
from core.errors import ChannelAuthError, ChannelError
from models.db import session_scope
from models.directory import WecomTag
from models.people import Customer, CustomerTag, Staff, Tag
from models.tag_push import TagPush
from soplang.tag_rules import TagRule

logger = logging.getLogger(__name__)

CUSTOMERS_PER_CHUNK = 500  # customers whose calls are made, then recorded in one transaction
WORKERS = 4  # calls in flight; the client's limiter still caps calls per minute
MAX_CALLS_PER_RUN = 50_000  # the rest waits for the next run (≈ 25 min at 2,000 calls a minute)
GONE = frozenset({40096, 84061})  # the contact or the relation is gone: nothing left to remove


@dataclass
class PushReport:
    """What one push did: customers' calls made, tags added/removed, failures by errcode."""

    calls: int = 0
    added: Counter[str] = field(default_factory=Counter)  # tag name → confirmed adds
    removed: Counter[str] = field(default_factory=Counter)
    forgotten: int = 0  # records dropped without a call (contact gone, tag now manual)
    failed: Counter[str] = field(default_factory=Counter)  # errcode (or "network") → calls
    pending: int = 0  # customers left for the next run (call cap, rate limit)
    created_tags: list[str] = field(default_factory=list)


@dataclass
class _Change:
    customer_id: int
    external_userid: str
    userid: str
    add: dict[int, str] = field(default_factory=dict)  # tag id → WeCom id
    remove: dict[int, str] = field(default_factory=dict)


def ensure_wecom_tags(
    client: WeComClient, rules: list[TagRule], *, session: Session, report: PushReport
) -> dict[int, str]:
    """Tag id → WeCom tag id for every rule's tag: a corp tag of the same name wherever WeCom has
    it, else one created in the rule's group (add_corp_tag); the link is kept in `wecom_tag`."""
    by_name = dict(
        session.execute(
            select(col(Tag.name), col(Tag.id)).where(col(Tag.name).in_([r.name for r in rules]))
        ).all()
    )
    linked = dict(
        session.execute(
            select(col(WecomTag.tag_id), col(WecomTag.wecom_id)).where(
                col(WecomTag.tag_id).in_(list(by_name.values()))
            )
        ).all()
    )
    missing = [r for r in rules if r.name in by_name and by_name[r.name] not in linked]
    if not missing:
        return linked
    known = {
        str(tag["name"]): (str(tag["id"]), str(group["group_id"]), str(group["group_name"]))
        for group in client.get_corp_tag_list()
        for tag in group.get("tag") or []
        if not tag.get("deleted")
    }
    create: dict[str, list[str]] = defaultdict(list)
    for rule in missing:
        if rule.name not in known:
            create[rule.group].append(rule.name)
    for group_name, names in create.items():
        group_id, ids = add_corp_tags(client, group_name, names)
        known |= {name: (ids[name], group_id, group_name) for name in names if name in ids}
        report.created_tags += names
    for rule in missing:
        if rule.name in known:
            wecom_id, group_id, group_name = known[rule.name]
            session.add(
                WecomTag(
                    wecom_id=wecom_id,
                    tag_id=by_name[rule.name],
                    group_id=group_id,
                    group_name=group_name[:64],
                )
            )
            linked[by_name[rule.name]] = wecom_id
    session.flush()
    return linked


def _pending(tag_ids: list[int], after: int, limit: int, *, session: Session) -> list[int]:
    """The next `limit` customers (by id, above `after`) with an auto tag not yet pushed or a pushed
    tag no longer on them."""
    ct, tp = CustomerTag.__table__, TagPush.__table__  # type: ignore[attr-defined]
    unpushed = (
        select(ct.c.customer_id)
        .where(ct.c.tag_id.in_(tag_ids), ct.c.source == "auto", ct.c.customer_id > after)
        .where(~exists().where(tp.c.customer_id == ct.c.customer_id, tp.c.tag_id == ct.c.tag_id))
    )
    stale = (
        select(tp.c.customer_id)
        .where(tp.c.tag_id.in_(tag_ids), tp.c.customer_id > after)
        .where(~exists().where(ct.c.customer_id == tp.c.customer_id, ct.c.tag_id == tp.c.tag_id))
    )
    both = unpushed.union(stale).subquery()
    rows = session.execute(select(both.c.customer_id).order_by(both.c.customer_id).limit(limit))
    return [int(r) for r in rows.scalars()]


def _changes(
    customers: list[int], wecom: dict[int, str], *, session: Session, report: PushReport
) -> list[_Change]:
    """Each customer's adds (on the owner's relation) and removes (on the relation that got the
    tag); records whose tag is now manual, or whose contact has no owner, are dropped here."""
    ct, tp = CustomerTag.__table__, TagPush.__table__  # type: ignore[attr-defined]
    tag_ids = list(wecom)
    owners = session.execute(
        select(col(Customer.id), col(Customer.external_userid), col(Staff.userid))
        .outerjoin(Staff, col(Staff.id) == col(Customer.owner_staff_id))
        .where(col(Customer.id).in_(customers))
    ).tuples()
    changes = {cid: _Change(cid, ext, userid or "") for cid, ext, userid in owners}
    adds = session.execute(
        select(ct.c.customer_id, ct.c.tag_id)
        .where(ct.c.customer_id.in_(customers), ct.c.tag_id.in_(tag_ids), ct.c.source == "auto")
        .where(~exists().where(tp.c.customer_id == ct.c.customer_id, tp.c.tag_id == ct.c.tag_id))
    ).tuples()
    for cid, tag_id in adds:
        changes[cid].add[tag_id] = wecom[tag_id]
    stale = session.execute(
        select(tp.c.customer_id, tp.c.tag_id, tp.c.userid)
        .where(tp.c.customer_id.in_(customers), tp.c.tag_id.in_(tag_ids))
        .where(~exists().where(ct.c.customer_id == tp.c.customer_id, ct.c.tag_id == tp.c.tag_id))
    ).tuples()
    removes: dict[tuple[int, str], dict[int, str]] = defaultdict(dict)
    for cid, tag_id, userid in stale:
        removes[(cid, userid)][tag_id] = wecom[tag_id]
    found = []
    for change in changes.values():
        if not change.userid:
            change.add.clear()  # no staff member to tag through; the next sync may give one
        mine = removes.pop((change.customer_id, change.userid), {})
        change.remove.update(mine)
        if change.add or change.remove:
            found.append(change)
    for (cid, userid), tags in removes.items():  # tags added through another staff member
        found.append(_Change(cid, changes[cid].external_userid, userid, remove=tags))
    return found


def _call(client: WeComClient, change: _Change) -> int | str | None:
    """Make the customer's one call; None when WeCom confirmed it, else its errcode (or "network")."""
    try:
        client.mark_tag(
            change.userid,
            change.external_userid,
            sorted(change.add.values()),
            sorted(change.remove.values()),
        )
    except ChannelAuthError:
        raise
    except ChannelError as error:
        return error.errcode if error.errcode is not None else "network"
    return None


def _record(
    results: list[tuple[_Change, int | str | None]],
    names: dict[int, str],
    now: dt.datetime,
    *,
    session: Session,
    report: PushReport,
) -> None:
    """Write what WeCom confirmed; a removal WeCom cannot do (contact or relation gone) is dropped."""
    tp = TagPush.__table__  # type: ignore[attr-defined]
    rows, gone = [], []
    for change, outcome in results:
        if outcome is None:
            rows += [
                {"customer_id": change.customer_id, "tag_id": t, "userid": change.userid,
                 "pushed_at": now}
                for t in change.add
            ]  # fmt: skip
            gone += [(change.customer_id, t) for t in change.remove]
            report.added.update(names[t] for t in change.add)
            report.removed.update(names[t] for t in change.remove)
        elif outcome in GONE and not change.add:
            gone += [(change.customer_id, t) for t in change.remove]
            report.forgotten += len(change.remove)
        else:
            report.failed[str(outcome)] += 1
    if rows:
        session.execute(tp.insert(), rows)
    for start in range(0, len(gone), 500):
        pairs = gone[start : start + 500]
        session.execute(delete(tp).where(tuple_(tp.c.customer_id, tp.c.tag_id).in_(pairs)))


def push_tags(
    client: WeComClient,
    rules: list[TagRule],
    *,
    url: str | None = None,
    max_calls: int = MAX_CALLS_PER_RUN,
    workers: int = WORKERS,
) -> PushReport:
    """Bring WeCom's tags of the rules' tags to what the database says, customer by customer;
    failures (errcode, network) are counted and left for the next run, never recorded as pushed."""
    report = PushReport()
    with session_scope(url) as session:
        wecom = ensure_wecom_tags(client, rules, session=session, report=report)
        names = dict(
            session.execute(select(col(Tag.id), col(Tag.name)).where(col(Tag.id).in_(wecom)))
            .tuples()
            .all()
        )
    if not wecom:
        return report
    after = 0
    with ThreadPoolExecutor(max_workers=workers) as pool:
        while True:
            with session_scope(url) as session:
                customers = _pending(list(wecom), after, CUSTOMERS_PER_CHUNK, session=session)
                if not customers:
                    break
                after = customers[-1]
                changes = _changes(customers, wecom, session=session, report=report)
            room = max_calls - report.calls
            if len(changes) > room:
                report.pending += len(changes) - room
                changes = changes[:room]
            outcomes = list(pool.map(lambda c: _call(client, c), changes))
            report.calls += len(changes)
            with session_scope(url) as session:
                _record(list(zip(changes, outcomes, strict=True)), names, utcnow(),
                        session=session, report=report)  # fmt: skip
            limited = any(o == 45009 or o == 45033 for o in outcomes)
            if report.calls >= max_calls or limited:
                if limited:
                    logger.warning("tag push: WeCom rate limit; the rest waits for the next run")
                with session_scope(url) as session:
                    report.pending += len(_pending(list(wecom), after, 10**9, session=session))
                break
    return report


def pushed_count(*, url: str | None = None) -> int:
    """Rows in tag_push: automatic tags WeCom has confirmed."""
    with session_scope(url) as session:
        return int(session.execute(select(func.count()).select_from(TagPush)).scalar_one())
