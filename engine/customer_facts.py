"""One pass over the orders for the whole derivation: a temporary table of each customer's order
counts and spend per (window, category) the tiers and rules need, and last order times."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import (
    BigInteger,
    Column,
    Integer,
    MetaData,
    Table,
    and_,
    case,
    func,
    insert,
    literal,
    select,
)
from sqlmodel import Session, col

from models.commerce import Order, OrderLine, Product
from models.types import UTCDateTime

TEMP_CACHE_KIB = -262144  # SQLite's page cache for the temporary tables: at most 256 MiB
Window = tuple[
    dt.datetime, str | None
]  # counted from this instant, orders of this category (or all)


class Facts:
    """The columns of the facts table: `count(w)`, `spent(w)` and `last(category)`, each only
    for the windows (start, category) and categories asked for.

    Categories are found once per order, as a bit mask (`order_bits`) from the lines of the
    categories asked for, so the pass over the orders is one scan with one key lookup per order.
    """

    def __init__(self, counts: list[Window], spends: list[Window], lasts: list[str | None]) -> None:
        self.counts = list(dict.fromkeys(counts))
        self.spends = list(dict.fromkeys(spends))
        self.lasts = list(dict.fromkeys(lasts))
        self._temp_cache: int | None = None
        windows = self.counts + self.spends
        categories = ({c for _, c in windows} | set(self.lasts)) - {None}
        self.bit = {c: 1 << i for i, c in enumerate(sorted(str(c) for c in categories))}
        columns = [Column("id", Integer, primary_key=True)]
        columns += [Column(f"n{i}", BigInteger) for i, _ in enumerate(self.counts)]
        columns += [Column(f"f{i}", BigInteger) for i, _ in enumerate(self.spends)]
        columns += [Column(f"last{i}", UTCDateTime()) for i, _ in enumerate(self.lasts)]
        self.table = Table("customer_facts", MetaData(), *columns, prefixes=["TEMPORARY"])
        temp = MetaData()
        self._products = Table(
            "category_product",
            temp,
            Column("product_id", Integer, primary_key=True),
            Column("bits", Integer),
            prefixes=["TEMPORARY"],
        )
        self._orders = Table(
            "order_bits",
            temp,
            Column("order_id", Integer, primary_key=True),
            Column("bits", Integer),
            prefixes=["TEMPORARY"],
        )

    def count(self, window: Window) -> Any:
        return func.coalesce(self.table.c[f"n{self.counts.index(window)}"], 0)

    def spent(self, window: Window) -> Any:
        return func.coalesce(self.table.c[f"f{self.spends.index(window)}"], 0)

    def last(self, category: str | None) -> Any:
        return self.table.c[f"last{self.lasts.index(category)}"]

    def _tables(self) -> tuple[Table, ...]:
        return (self.table, self._products, self._orders)

    def _mark_orders(self, *, session: Session) -> None:
        """`order_bits`: each order with a line of a category asked for, its categories' bits;
        only orders placed from the earliest category window on, unless a `last` needs them all."""
        bits = case(
            *[(col(Product.category) == c, literal(b)) for c, b in self.bit.items()], else_=0
        )
        session.execute(
            insert(self._products).from_select(
                ["product_id", "bits"],
                select(col(Product.id), bits).where(col(Product.category).in_(list(self.bit))),
            )
        )
        p = self._products.c
        mask = [func.max(p.bits.op("&")(b)) for b in self.bit.values()]
        combined = mask[0]
        for m in mask[1:]:
            combined = combined.op("|")(m)
        order_id = col(OrderLine.order_id)
        lines = select(order_id, combined).join(
            self._products, p.product_id == col(OrderLine.product_id)
        )
        starts = [s for s, c in self.counts + self.spends if c is not None]
        if starts and not any(c is not None for c in self.lasts):
            lines = lines.join(Order, col(Order.id) == order_id).where(
                col(Order.placed_at) >= min(starts)
            )
        session.execute(
            insert(self._orders).from_select(["order_id", "bits"], lines.group_by(order_id))
        )

    def build(self, as_of: dt.datetime, *, session: Session) -> None:
        """Fill the table: every order placed up to `as_of`, refunds excluded, read once."""
        connection = session.connection()
        if connection.dialect.name == "sqlite":  # keep the temporary tables off the disk
            self._temp_cache = connection.exec_driver_sql("PRAGMA temp.cache_size").scalar()
            connection.exec_driver_sql(f"PRAGMA temp.cache_size = {TEMP_CACHE_KIB}")
        for table in self._tables():
            table.drop(connection, checkfirst=True)
            table.create(connection)
        starts = [start for start, _ in self.counts + self.spends]
        since = None if self.lasts or not starts else min(starts)
        if self.bit:
            self._mark_orders(session=session)
        placed = col(Order.placed_at)
        bits = self._orders.c.bits

        def has(category: str | None) -> Any:
            return None if category is None else bits.op("&")(self.bit[category]) != 0

        def inside(start: dt.datetime, category: str | None) -> Any:
            after = placed >= literal(start, UTCDateTime())
            return after if category is None else and_(after, has(category))

        values: list[Any] = [func.count(case((inside(*w), 1))) for w in self.counts]
        values += [func.sum(case((inside(*w), col(Order.total_fen)))) for w in self.spends]
        for category in self.lasts:
            flag = has(category)
            values.append(func.max(placed if flag is None else case((flag, placed))))
        query = select(col(Order.customer_id), *values).select_from(Order)
        if self.bit:
            query = query.outerjoin(self._orders, self._orders.c.order_id == col(Order.id))
        query = query.where(
            col(Order.customer_id).is_not(None),
            col(Order.status) != "refunded",
            placed <= as_of,
            *([placed >= since] if since is not None else []),
        ).group_by(col(Order.customer_id))
        names = [c.name for c in self.table.columns]
        session.execute(insert(self.table).from_select(names, query))

    def drop(self, *, session: Session) -> None:
        connection = session.connection()
        for table in self._tables():
            table.drop(connection, checkfirst=True)
        if self._temp_cache is not None:  # the pooled connection gets its own setting back
            connection.exec_driver_sql(f"PRAGMA temp.cache_size = {int(self._temp_cache)}")
