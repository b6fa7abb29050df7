"""Order CSV files on SQLite, staged: raw rows into a TEMP table, checked and converted in SQL.

Rows go from `csv.reader` straight into a staging table (no per-cell Python); SQL then checks and
converts them, set-based, for the spellings it can vouch for (`imports/orders_sql.py`: cells as
written, `2026-12-10 09:15[:00]`, `12.34`, whole quantities, known SKU / store / member, one order's
rows consecutive and agreeing with its first row). When every row is vouched for and no known order
would change, the new orders and their lines are written with INSERT … SELECT and the known ones
counted unchanged. Anything else — an odd spelling, a bad row, a changed order (its events) — drops
the staging and leaves the file to the row-by-row path in the same transaction, so what is accepted
and every error text stay exactly the same."""

from __future__ import annotations

import csv
import sqlite3
import sys
from collections.abc import Callable, Iterator
from itertools import islice
from operator import itemgetter
from typing import Any

from sqlalchemy import Table
from sqlmodel import Session

from imports import orders_sql as spell
from imports import values
from imports.columns import HeaderMap
from imports.kind import Context, Counts, Kind
from imports.orders import LINE, ORDER
from imports.readers import MAX_CELL_BYTES, Source

BATCH = 20_000  # staged rows per executemany (and per progress line)
# What str.strip() strips: trim(x, WS) = x says a cell has nothing around it to strip.
WS = "".join(chr(c) for c in range(sys.maxunicode + 1) if chr(c).isspace())
_FIELDS = ("order_no", "member_no", "store", "placed_at", "status", "sku", "quantity", "price")
_FIELDS += ("total", "saved")
_HEAD = ("member_no", "placed_at", "status", "saved")  # later rows repeat them exactly
_GIVEN = ("store", "total")  # later rows repeat them or leave them blank
_WRITTEN = ("customer_id", "store_id", "placed_at", "total_fen", "saved_fen", "status")
_WRITTEN += ("order_no", "member_id")
_LINE = ("order_id", "product_id", "quantity", "price_fen")
_TABLES = (
    "stage",
    "stage_head",
    "stage_line",
    "stage_sum",
    "stage_day",
    "stage_known",
    "stage_ids",
    "stage_order",
)
Progress = Callable[[int], None]


def applies(kind: Kind, source: Source, session: Session) -> bool:
    """An order CSV into SQLite, and every column INSERT … SELECT leaves out has a plain default."""
    plain = all(
        c.default is None or c.default.is_scalar
        for table, written in ((ORDER, _WRITTEN), (LINE, _LINE))
        for c in table.c
        if c.name not in written and not c.primary_key
    )
    dialect = session.get_bind().dialect.name
    return kind.name == "orders" and source.format == "csv" and dialect == "sqlite" and plain


def _defaults(table: Table, written: tuple[str, ...]) -> tuple[str, str, list[Any]]:
    """The columns INSERT … SELECT leaves out that have a default: names, marks and values (what
    Core would fill in)."""
    left = [c for c in table.c if c.name not in written and c.default and not c.primary_key]
    names, marks = "".join(f", {c.name}" for c in left), ", ?" * len(left)
    return names, marks, [c.default.arg for c in left]  # type: ignore[union-attr]


def load(
    source: Source,
    columns: HeaderMap,
    ctx: Context,
    counts: Counts,
    *,
    session: Session,
    progress: Progress | None = None,
) -> bool:
    """Import the file the staged way; False (nothing written, counts untouched) when the
    row-by-row path must do it."""
    raw = session.connection().connection.driver_connection
    assert isinstance(raw, sqlite3.Connection)
    cursor = raw.cursor()
    staged = Counts()
    try:
        _drop(cursor)
        present = _stage(cursor, source, columns, staged, progress)
        if present is None or not _checked(cursor, present, ctx) or _changed(cursor):
            return False
        _write(cursor, staged)
    except sqlite3.OperationalError as error:
        if "integer overflow" not in str(error):
            raise
        return False  # a sum beyond 64 bits: the row path says what is wrong
    finally:
        _drop(cursor)
        cursor.close()
    counts.rows += staged.rows
    counts.new += staged.new
    counts.unchanged += staged.unchanged
    return True


def _drop(cursor: sqlite3.Cursor) -> None:
    for table in _TABLES:
        cursor.execute(f"DROP TABLE IF EXISTS temp.{table}")


def _stage(
    cursor: sqlite3.Cursor,
    source: Source,
    columns: HeaderMap,
    counts: Counts,
    progress: Progress | None,
) -> tuple[str, ...] | None:
    """Read the rows into temp.stage; the fields present, or None when a row needs the row path.

    A row's rowid is its place among the file's rows; `grp` is the rowid of its order's first row
    (a new group starts where the order number cell, as written, changes)."""
    if _has_nul(source):
        return None
    csv.field_size_limit(MAX_CELL_BYTES)
    tabs = source.path.suffix.lower() == ".tsv"
    try:
        with source.path.open(encoding=source.encoding, newline="") as handle:
            reader = csv.reader(handle, delimiter="\t" if tabs else ",")
            header = next((c for c in reader if any(cell.strip() for cell in c)), None)
            if header is None:
                return None
            return _staged(cursor, reader, [c.strip() for c in header], columns, counts, progress)
    except (UnicodeDecodeError, csv.Error):
        return None  # the row path names the line


def _has_nul(source: Source) -> bool:
    with source.path.open("rb") as handle:
        return any(b"\0" in block for block in iter(lambda: handle.read(1 << 22), b""))


def _staged(
    cursor: sqlite3.Cursor,
    reader: Iterator[list[str]],
    header: list[str],
    columns: HeaderMap,
    counts: Counts,
    progress: Progress | None,
) -> tuple[str, ...] | None:
    width = len(header)
    last = {name: i for i, name in enumerate(header)}  # a repeated name: its last cell counts
    index = {f: last[name] for name, f in columns.fields.items()}
    present = tuple(f for f in _FIELDS if f in index)
    unread = [last[n] for n in dict.fromkeys(header) if n not in columns.fields]
    at = index["order_no"]
    cursor.execute(f"CREATE TEMP TABLE stage (grp INTEGER, {', '.join(present)})")
    statement = f"INSERT INTO temp.stage VALUES ({', '.join('?' * (len(present) + 1))})"
    # The row's group is appended to its cells; a tuple of the wanted ones binds fastest.
    pick = itemgetter(width, *(index[f] for f in present))
    odd = False

    def rows() -> Iterator[tuple[str | int, ...]]:
        nonlocal odd
        n = group = 0
        previous = None
        for cells in reader:
            if len(cells) != width:
                if len(cells) > width:
                    if any(c.strip() for c in cells[width:]):
                        odd = True
                        return
                    del cells[width:]
                elif not cells:
                    continue  # an empty line
                else:
                    cells += [""] * (width - len(cells))
            if unread and any(len(cells[i]) > values.MAX_TEXT for i in unread):
                odd = True
                return
            if cells[at] != previous:
                if not cells[at].strip() and not any(c.strip() for c in cells):
                    continue  # a row of blank cells
                previous = cells[at]
                group = n + 1
            n += 1
            cells.append(group)  # type: ignore[arg-type]
            yield pick(cells)

    source_rows = rows()
    while batch := list(islice(source_rows, BATCH)):
        cursor.executemany(statement, batch)
        counts.rows += len(batch)
        if progress:
            progress(counts.rows)
    return None if odd else present


def _checked(cursor: sqlite3.Cursor, present: tuple[str, ...], ctx: Context) -> bool:
    """Build the converted heads and lines; whether SQL vouches for every row of the file.

    Cells are taken as written: one with spaces around it matches no spelling, SKU, member or
    store here, so it goes to the row path (which strips it)."""
    c = {f: (f if f in present else "''") for f in _FIELDS}
    cursor.execute(
        "CREATE TEMP TABLE stage_line (grp INTEGER, line INTEGER, product_id, quantity, "
        "price_fen, PRIMARY KEY (grp, product_id, quantity, price_fen, line)) WITHOUT ROWID"
    )
    q = c["quantity"]  # -1: a line SQL does not vouch for (the key columns cannot be NULL)
    cursor.execute(
        f"""INSERT INTO temp.stage_line
        SELECT s.grp, s.rowid, coalesce(p.id, -1),
          CASE WHEN {q} NOT GLOB '*[^0-9]*' AND length({q}) BETWEEN 1 AND 8
            AND CAST({q} AS INTEGER) BETWEEN 1 AND {values.MAX_COUNT}
            THEN CAST({q} AS INTEGER) ELSE -1 END,
          coalesce({spell.money(c["price"])}, -1)
        FROM temp.stage s LEFT JOIN product p ON p.sku = s.{c["sku"]}"""
    )
    cursor.execute(
        "SELECT EXISTS (SELECT 1 FROM temp.stage_line "
        "WHERE product_id < 0 OR quantity < 0 OR price_fen < 0)"
    )
    if cursor.fetchone()[0]:
        return False
    # A later row must repeat its order's head cells as written (store and total may be blank).
    differs = [f"s.{f} IS NOT f.{f}" for f in _HEAD if f in present]
    differs += [f"(s.{f} <> '' AND s.{f} IS NOT f.{f})" for f in _GIVEN if f in present]
    if differs:
        cursor.execute(
            f"""SELECT EXISTS (SELECT 1 FROM temp.stage s JOIN temp.stage f ON f.rowid = s.grp
            WHERE s.rowid > s.grp AND ({" OR ".join(differs)}))"""
        )
        if cursor.fetchone()[0]:
            return False
    cursor.execute(
        "CREATE TEMP TABLE stage_sum (grp INTEGER PRIMARY KEY, lines_fen INTEGER, lines INTEGER)"
    )
    cursor.execute(
        "INSERT INTO temp.stage_sum SELECT grp, sum(quantity * price_fen), count(*) "
        "FROM temp.stage_line GROUP BY grp"
    )
    cursor.execute(
        "CREATE TEMP TABLE stage_head (grp INTEGER PRIMARY KEY, order_no, member_no, store, "
        "placed, status, total_fen, total_given, saved_fen, saved_given)"
    )
    cursor.execute(
        f"""INSERT INTO temp.stage_head
        SELECT grp, {c["order_no"]}, {c["member_no"]}, nullif({c["store"]}, ''),
          {spell.placed(c["placed_at"])}, {spell.status(c["status"])}, {spell.money(c["total"])},
          {c["total"]} <> '', {spell.money(c["saved"])}, {c["saved"]} <> ''
        FROM temp.stage WHERE rowid = grp"""
    )
    cursor.execute("CREATE TEMP TABLE stage_day (day TEXT PRIMARY KEY, shift TEXT) WITHOUT ROWID")
    cursor.execute("SELECT DISTINCT substr(placed, 1, 10) FROM temp.stage_head")
    days = [(d, s) for (d,) in cursor.fetchall() if d and (s := spell.shift(d, ctx.tz))]
    cursor.executemany("INSERT INTO temp.stage_day VALUES (?, ?)", days)
    # The orders as the row path writes them (ids by key, placed_at in UTCDateTime's SQLite text),
    # each marked bad when SQL does not vouch for it: one pass over the joins, read again by
    # _changed and _write.
    cursor.execute(
        "CREATE TEMP TABLE stage_order (grp INTEGER PRIMARY KEY, order_no, member_id, "
        "customer_id, store_id, placed_at, total_fen, saved_fen, status, bad)"
    )
    cursor.execute(
        """INSERT INTO temp.stage_order
        SELECT h.grp, h.order_no, m.id, m.customer_id, s.id,
          datetime(h.placed, d.shift) || '.000000',
          coalesce(h.total_fen, t.lines_fen), coalesce(h.saved_fen, 0), h.status,
          length(h.order_no) NOT BETWEEN 1 AND 64 OR trim(h.order_no, :ws) <> h.order_no
          OR length(h.member_no) > 32 OR length(h.store) > 32
          OR h.status IS NULL OR d.day IS NULL OR m.id IS NULL
          OR (h.store IS NOT NULL AND s.id IS NULL)
          OR (h.total_given AND h.total_fen IS NULL) OR (h.saved_given AND h.saved_fen IS NULL)
          OR h.total_fen > t.lines_fen OR (h.total_fen IS NULL AND t.lines_fen > :most)
        FROM temp.stage_head h
        JOIN temp.stage_sum t ON t.grp = h.grp
        LEFT JOIN temp.stage_day d ON d.day = substr(h.placed, 1, 10)
        LEFT JOIN member m ON m.member_no = h.member_no
        LEFT JOIN store s ON s.code = h.store""",
        {"ws": WS, "most": values.MAX_FEN},
    )
    cursor.execute("SELECT EXISTS (SELECT 1 FROM temp.stage_order WHERE bad)")
    if cursor.fetchone()[0]:
        return False
    cursor.execute("SELECT count(*) = count(DISTINCT order_no) FROM temp.stage_head")
    return bool(cursor.fetchone()[0])


_HEADS = "temp.stage_order"  # every row vouched for once _checked says so


def _changed(cursor: sqlite3.Cursor) -> bool:
    """Whether an order of the file is already known with other values or lines (the row path
    updates it and records its events); the known ones are kept in temp.stage_known."""
    cursor.execute("CREATE TEMP TABLE stage_known (grp INTEGER PRIMARY KEY, id INTEGER)")
    cursor.execute("SELECT EXISTS (SELECT 1 FROM orders WHERE order_no IS NOT NULL)")
    if not cursor.fetchone()[0]:
        return False  # a first load: nothing to compare
    cursor.execute(
        "INSERT INTO temp.stage_known SELECT h.grp, o.id FROM temp.stage_head h "
        "JOIN orders o ON o.order_no = h.order_no"
    )
    cursor.execute(
        f"""SELECT EXISTS (SELECT 1 FROM temp.stage_known k JOIN orders o ON o.id = k.id
        JOIN {_HEADS} h ON h.grp = k.grp
        WHERE o.member_id IS NOT h.member_id OR o.store_id IS NOT h.store_id
          OR o.placed_at IS NOT h.placed_at OR o.total_fen IS NOT h.total_fen
          OR o.saved_fen IS NOT h.saved_fen OR o.status IS NOT h.status)"""
    )
    if cursor.fetchone()[0]:
        return True
    # An order's lines in the order the row path writes them (by product, quantity, price),
    # as the staging keeps them; stored in another order they count as changed (the row path
    # then compares them as a set).
    lines = "group_concat(l.product_id || ' ' || l.quantity || ' ' || l.price_fen, ',')"
    cursor.execute(
        f"""SELECT EXISTS (SELECT 1 FROM temp.stage_known k
        WHERE (SELECT {lines} FROM temp.stage_line l WHERE l.grp = k.grp)
          IS NOT (SELECT {lines} FROM order_line l WHERE l.order_id = k.id))"""
    )
    return bool(cursor.fetchone()[0])


def _write(cursor: sqlite3.Cursor, counts: Counts) -> None:
    """Insert the new orders in file order, then their lines (each order's by product, quantity
    and price, as the row path does); count the known ones unchanged.

    Into empty tables (a first load) their plain indexes are dropped and built again after the
    inserts: one sort each instead of millions of random b-tree inserts. DDL is part of the
    transaction, so a killed or rolled-back import keeps them."""
    rebuild = _plain_indexes(cursor)
    for name, _ in rebuild:
        cursor.execute(f'DROP INDEX "{name}"')
    try:
        _insert(cursor, counts)
    finally:
        for _, create in rebuild:
            cursor.execute(create)


def _plain_indexes(cursor: sqlite3.Cursor) -> list[tuple[str, str]]:
    """The non-unique indexes of orders and order_line (name, CREATE statement) when both are
    empty; none otherwise (adding to a big table, keeping them is cheaper than a rebuild)."""
    cursor.execute(
        "SELECT NOT EXISTS (SELECT 1 FROM orders) AND NOT EXISTS (SELECT 1 FROM order_line)"
    )
    if not cursor.fetchone()[0]:
        return []
    cursor.execute(
        "SELECT m.name, m.sql FROM sqlite_master m WHERE m.type = 'index' AND m.sql IS NOT NULL "
        "AND m.tbl_name IN ('orders', 'order_line') "
        'AND NOT (SELECT il."unique" FROM pragma_index_list(m.tbl_name) il WHERE il.name = m.name) '
        "ORDER BY m.name"
    )
    return [(name, sql) for name, sql in cursor.fetchall()]


def _insert(cursor: sqlite3.Cursor, counts: Counts) -> None:
    names, marks, defaults = _defaults(ORDER, _WRITTEN)
    cursor.execute(
        f"""INSERT INTO orders ({", ".join(_WRITTEN)}{names})
        SELECT {", ".join(_WRITTEN)}{marks} FROM {_HEADS} h
        WHERE h.grp NOT IN (SELECT grp FROM temp.stage_known) ORDER BY h.grp""",
        defaults,
    )
    counts.new = cursor.rowcount
    cursor.execute("CREATE TEMP TABLE stage_ids (grp INTEGER PRIMARY KEY, id INTEGER)")
    cursor.execute(
        """INSERT INTO temp.stage_ids SELECT h.grp, o.id FROM temp.stage_head h
        JOIN orders o ON o.order_no = h.order_no
        WHERE h.grp NOT IN (SELECT grp FROM temp.stage_known)"""
    )
    names, marks, defaults = _defaults(LINE, _LINE)
    cursor.execute(
        f"""INSERT INTO order_line ({", ".join(_LINE)}{names})
        SELECT i.id, l.product_id, l.quantity, l.price_fen{marks}
        FROM temp.stage_line l JOIN temp.stage_ids i ON i.grp = l.grp""",
        defaults,
    )
    cursor.execute("SELECT count(*) FROM temp.stage_known")
    counts.unchanged = cursor.fetchone()[0]
