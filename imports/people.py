"""Import kinds for who: stores, staff, members (members are linked to WeCom contacts at the end)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Table
from sqlmodel import Session, col

from imports import refs, values
from imports.kind import Cells, Context, Counts, Item, one_of, text
from imports.upsert import upsert
from models.members import Member, link_members
from models.people import Staff, Store
from models.vocab import GENDERS

STORE: Table = Store.__table__  # type: ignore[attr-defined]
STAFF: Table = Staff.__table__  # type: ignore[attr-defined]
MEMBER: Table = Member.__table__  # type: ignore[attr-defined]
ROLES = {
    "advisor": "advisor",
    "导购": "advisor",
    "顾问": "advisor",
    "manager": "manager",
    "店长": "manager",
    "ops": "ops",  # headquarters operations (总部运营), no store
    "运营": "ops",
}
GENDER_NAMES = {**{k: k for k in GENDERS}, **{v: k for k, v in GENDERS.items()}}


class _Single:
    """Kinds with one row per item and nothing to do at the end."""

    grouped = False

    def merge(self, item: Item, record: Any) -> None:  # pragma: no cover - never grouped
        raise NotImplementedError

    def finish(self, ctx: Context, counts: Counts, *, session: Session) -> None:
        return None


def _check_stores(items: list[Item], ctx: Context, session: Session) -> None:
    found = refs.find("store", (i.record.get("store") for i in items), ctx, session=session)
    for item in items:
        code = item.record.get("store")
        if code is not None and code not in found:
            item.problems.append(
                (item.lines[0], f"unknown store code {code!r}: import stores first")
            )


class Stores(_Single):
    name = "stores"

    def parse(self, cells: Cells, ctx: Context) -> Any:
        return {
            "code": cells.need("code", text(32)),
            "name": cells.need("name", text(128)),
            "city": cells.need("city", text(32)),
        }

    def key(self, record: Any) -> Any:
        return record["code"]

    def resolve(self, items: list[Item], ctx: Context, *, session: Session) -> None:
        return None

    def write(self, items: list[Item], ctx: Context, counts: Counts, *, session: Session) -> None:
        rows = [i.record for i in items]
        keys = [r["code"] for r in rows]
        upsert(session, STORE, rows, key=("code",), where=STORE.c.code.in_(keys), counts=counts)
        refs.forget(ctx, "store")


class StaffKind(_Single):
    name = "staff"

    def parse(self, cells: Cells, ctx: Context) -> Any:
        return {
            "userid": cells.need("userid", text(64)),
            "name": cells.need("name", text(64)),
            "store": cells.get("store", text(32)),
            "role": cells.get("role", one_of(ROLES, "role"), "advisor"),
        }

    def key(self, record: Any) -> Any:
        return record["userid"]

    def resolve(self, items: list[Item], ctx: Context, *, session: Session) -> None:
        _check_stores(items, ctx, session)

    def write(self, items: list[Item], ctx: Context, counts: Counts, *, session: Session) -> None:
        stores = ctx.lookup("store")
        rows = [
            {
                "userid": r["userid"],
                "name": r["name"],
                "store_id": stores[r["store"]][0] if r["store"] else None,
                "role": r["role"],
            }
            for r in (i.record for i in items)
        ]
        keys = [r["userid"] for r in rows]
        upsert(session, STAFF, rows, key=("userid",), where=STAFF.c.userid.in_(keys), counts=counts)


class Members(_Single):
    name = "members"

    def parse(self, cells: Cells, ctx: Context) -> Any:
        mobile = cells.get("mobile", text(20))
        if mobile is not None and not any(ch.isdigit() for ch in mobile):
            cells.fail(f"{cells.headers.get('mobile', 'mobile')}: is not a phone number")
        return {
            "member_no": cells.need("member_no", text(32)),
            "name": cells.get("name", text(64), ""),
            "mobile": mobile,
            "unionid": cells.get("unionid", text(64)),
            "store": cells.get("store", text(32)),
            "gender": cells.get("gender", one_of(GENDER_NAMES, "gender")),
            "birthday": cells.get("birthday", values.day),
            "joined_at": cells.get("joined_at", lambda v: values.moment(v, ctx.tz)),
        }

    def key(self, record: Any) -> Any:
        return record["member_no"]

    def resolve(self, items: list[Item], ctx: Context, *, session: Session) -> None:
        _check_stores(items, ctx, session)

    def write(self, items: list[Item], ctx: Context, counts: Counts, *, session: Session) -> None:
        stores = ctx.lookup("store")
        rows = []
        for record in (i.record for i in items):
            row = {k: v for k, v in record.items() if k != "store"}
            row["store_id"] = stores[record["store"]][0] if record["store"] else None
            rows.append(row)
        keys = [r["member_no"] for r in rows]
        upsert(
            session,
            MEMBER,
            rows,
            key=("member_no",),
            where=col(Member.member_no).in_(keys),
            counts=counts,
        )

    def finish(self, ctx: Context, counts: Counts, *, session: Session) -> None:
        linked = link_members(now=ctx.now, session=session)
        if linked.members:
            counts.notes.append(f"{linked.members} member(s) linked to WeCom contacts")
        if linked.orders:
            counts.notes.append(f"{linked.orders} order(s) of theirs given to their contact")
            from engine.stages import classify_stages  # summaries follow the orders

            classify_stages(ctx.now, session=session)
