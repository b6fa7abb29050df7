"""Import kind for orders: one row per order line, an order's rows one after another.

An existing order (by the chain's order number) is updated in place; a status change to shipped
or received records the `order.shipped` / `order.received` trigger event, once per change.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Table, delete, insert, select
from sqlmodel import Session, col

from engine.stages import classify_stages
from imports import refs, values
from imports.bulk import insert_rows
from imports.errors import RowError
from imports.kind import Cells, Context, Counts, Item, one_of, text
from imports.upsert import upsert
from models.commerce import Event, Order, OrderLine

ORDER: Table = Order.__table__  # type: ignore[attr-defined]
LINE: Table = OrderLine.__table__  # type: ignore[attr-defined]
EVENT: Table = Event.__table__  # type: ignore[attr-defined]
STATUSES = {
    **{s: s for s in ("paid", "shipped", "received", "refunded")},
    **{"已支付": "paid", "待发货": "paid", "已发货": "shipped", "已收货": "received"},
    **{"已完成": "received", "已退款": "refunded", "退款": "refunded"},
}
STATUS_EVENTS = {"shipped": "order.shipped", "received": "order.received"}
HEAD = ("member_no", "store", "placed_at", "status", "total_fen", "saved_fen")
_STATUS = one_of(STATUSES, "status")
_TEXT32, _TEXT64 = text(32), text(64)


def _quantity(value: Any) -> int:
    return values.count(value, minimum=1)


def _first_load(ctx: Context, session: Session) -> bool:
    """Whether the table held no imported order when this file began: then no key of the file
    can exist (a file's keys are unique), and no chunk needs to look its keys up."""
    state = ctx.lookup("orders-file")
    if "first" not in state:
        state["first"] = (
            session.execute(
                select(ORDER.c.id).where(ORDER.c.order_no.is_not(None)).limit(1)
            ).first()
            is None
        )
    return bool(state["first"])


class Orders:
    name = "orders"
    grouped = True

    def parse(self, cells: Cells, ctx: Context) -> Any:
        line = {
            "sku": cells.need("sku", _TEXT32),
            "quantity": cells.need("quantity", _quantity),
            "price_fen": cells.need("price", values.money),
        }
        return {
            "order_no": cells.need("order_no", _TEXT64),
            "member_no": cells.need("member_no", _TEXT32),
            "store": cells.get("store", _TEXT32),
            "placed_at": cells.need("placed_at", lambda v: values.moment(v, ctx.tz)),
            "status": cells.get("status", _STATUS, "paid"),
            "total_fen": cells.get("total", values.money),
            "saved_fen": cells.get("saved", values.money, 0),
            "lines": [line],
        }

    def key(self, record: Any) -> Any:
        return record["order_no"]

    def merge(self, item: Item, record: Any) -> None:
        first = item.record
        for field in HEAD:
            if record[field] is not None and record[field] != first[field]:
                raise RowError(
                    f"{field} differs from the first row of order {first['order_no']!r} "
                    f"(line {item.lines[0]})"
                )
        first["lines"].extend(record["lines"])

    def resolve(self, items: list[Item], ctx: Context, *, session: Session) -> None:
        skus = refs.find(
            "sku", (li["sku"] for i in items for li in i.record["lines"]), ctx, session=session
        )
        stores = refs.find("store", (i.record["store"] for i in items), ctx, session=session)
        members = refs.find("member", (i.record["member_no"] for i in items), ctx, session=session)
        for item in items:
            record = item.record
            for line, entry in zip(item.lines, record["lines"], strict=True):
                if entry["sku"] not in skus:
                    item.problems.append(
                        (line, f"unknown SKU {entry['sku']!r}: import products first")
                    )
            if record["store"] is not None and record["store"] not in stores:
                item.problems.append((item.lines[0], f"unknown store code {record['store']!r}"))
            if record["member_no"] not in members:
                item.problems.append(
                    (item.lines[0], f"unknown member {record['member_no']!r}: import members first")
                )
            lines_total = sum(e["quantity"] * e["price_fen"] for e in record["lines"])
            if record["total_fen"] is None:
                record["total_fen"] = lines_total
            elif record["total_fen"] > lines_total:
                item.problems.append(
                    (
                        item.lines[0],
                        f"the order total is above its lines' sum ({lines_total / 100:.2f})",
                    )
                )
            if record["total_fen"] > values.MAX_FEN:
                item.problems.append((item.lines[0], "the order total is absurdly high"))

    def write(self, items: list[Item], ctx: Context, counts: Counts, *, session: Session) -> None:
        skus, stores, members = ctx.lookup("sku"), ctx.lookup("store"), ctx.lookup("member")
        heads, lines = [], {}
        for item in items:
            r = item.record
            member_id, customer_id = members[r["member_no"]]
            heads.append(
                {
                    "order_no": r["order_no"],
                    "member_id": member_id,
                    "customer_id": customer_id,
                    "store_id": stores[r["store"]][0] if r["store"] else None,
                    "placed_at": r["placed_at"],
                    "total_fen": r["total_fen"],
                    "saved_fen": r["saved_fen"],
                    "status": r["status"],
                }
            )
            lines[r["order_no"]] = sorted(
                (skus[e["sku"]][0], e["quantity"], e["price_fen"]) for e in r["lines"]
            )
        keys = [h["order_no"] for h in heads]
        # customer_id is kept on update: a linked order keeps its customer (models.members links).
        done = upsert(
            session,
            ORDER,
            heads,
            key=("order_no",),
            where=ORDER.c.order_no.in_(keys),
            keep=("customer_id",),
            none_exist=_first_load(ctx, session),
        )
        relined = self._write_lines(done.ids, done.new, lines, session)
        changed = set(done.changed) | relined
        counts.new += len(done.new)
        counts.changed += len(changed)
        counts.unchanged += len(heads) - len(done.new) - len(changed)
        self._events(done.changed, heads, done.ids, ctx, counts, session)

    def _write_lines(
        self, ids: dict[Any, int], new: set[Any], lines: dict[str, list[Any]], session: Session
    ) -> set[str]:
        """Insert the lines of new orders; replace those of known orders whose lines differ."""
        known = {ids[k]: k for k in ids if k not in new}
        have: dict[int, list[Any]] = {i: [] for i in known}
        if known:
            rows = session.execute(
                select(LINE.c.order_id, LINE.c.product_id, LINE.c.quantity, LINE.c.price_fen).where(
                    LINE.c.order_id.in_(list(known))
                )
            )
            for order_id, *line in rows:
                have[order_id].append(tuple(line))
        stale = [i for i, k in known.items() if sorted(have[i]) != lines[k]]
        if stale:
            session.execute(delete(LINE).where(LINE.c.order_id.in_(stale)))
        fresh = [ids[k] for k in new] + stale
        order_nos = {ids[k]: k for k in ids}
        rows = [
            {"order_id": i, "product_id": p, "quantity": q, "price_fen": f}
            for i in fresh
            for p, q, f in lines[order_nos[i]]
        ]
        insert_rows(session, LINE, rows)
        return {order_nos[i] for i in stale}

    def _events(
        self,
        changed: dict[Any, dict[str, Any]],
        heads: list[dict[str, Any]],
        ids: dict[Any, int],
        ctx: Context,
        counts: Counts,
        session: Session,
    ) -> None:
        """One trigger event per status change to shipped or received, for a linked customer."""
        events = []
        for head in heads:
            before = changed.get(head["order_no"])
            kind = STATUS_EVENTS.get(head["status"])
            if before is None or kind is None or before["status"] == head["status"]:
                continue
            customer = session.execute(
                select(col(Order.customer_id)).where(col(Order.id) == ids[head["order_no"]])
            ).scalar()
            if customer is None:
                counts.notes.append(
                    f"order {head['order_no']} is {head['status']}, but its member "
                    "is not a WeCom contact yet: no event"
                )
                continue
            events.append(
                {
                    "kind": kind,
                    "customer_id": customer,
                    "payload": {"order_id": ids[head["order_no"]]},
                    "occurred_at": ctx.now,
                }
            )
            counts.events[kind] = counts.events.get(kind, 0) + 1
        if events:
            session.execute(insert(EVENT), events)

    def finish(self, ctx: Context, counts: Counts, *, session: Session) -> None:
        """Order summaries (and so stages) follow the orders, as the daily classification does."""
        if counts.new or counts.changed:
            classified = classify_stages(ctx.now, session=session)
            if classified.moved:
                counts.notes.append(f"{classified.moved} customer(s) changed lifecycle stage")
