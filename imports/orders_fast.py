"""The fast path for order CSV files: plain rows checked by cached per-column converters.

It accepts and refuses exactly what the general path (`run._items` with `Orders.parse`) does: a row
the fast checks cannot vouch for is parsed by that path, which then names its errors.
"""

from __future__ import annotations

import datetime as dt
from array import array
from bisect import bisect_left
from collections.abc import Callable, Iterator
from operator import itemgetter
from typing import Any
from zoneinfo import ZoneInfo

from imports import values
from imports.columns import HeaderMap
from imports.errors import RowError
from imports.kind import (
    Cells,
    Context,
    Counts,
    Item,
    Kind,
    refuse_long_cells,
    safe_key,
    show_key,
)
from imports.orders import STATUSES
from imports.readers import Source, csv_cells

CHUNK = 10_000  # orders validated and written together
_FIELDS = ("order_no", "member_no", "store", "placed_at", "status", "sku", "quantity", "price")
_OPTIONAL = ("total", "saved")
_CACHE_LIMIT = 200_000  # distinct spellings kept per column before its cache starts over
_STATUS = {k.lower(): v for k, v in STATUSES.items()}


class LazyRow:
    """A row's cells as read, made a dict by header only when the row is rejected."""

    __slots__ = ("cells", "header")

    def __init__(self, header: list[str], cells: list[str]) -> None:
        self.header, self.cells = header, cells

    def as_dict(self) -> dict[str, Any]:
        return dict(zip(self.header, self.cells, strict=False))


class _Seen:
    """The order numbers met so far, for the duplicate check. While they come in rising order (an
    export sorted by order number) they are a sorted list with an array of lines, half the memory
    of a dict; the ones after the first out of order go to a dict."""

    def __init__(self) -> None:
        self.keys: list[str] = []
        self.lines = array("q")
        self.others: dict[str, int] = {}

    def add(self, key: str, line: int) -> int | None:
        """Remember `key` at `line`; the line it was already on, if any."""
        keys = self.keys
        if not self.others and (not keys or key > keys[-1]):
            keys.append(key)
            self.lines.append(line)
            return None
        at = bisect_left(keys, key)
        if at < len(keys) and keys[at] == key:
            return self.lines[at]
        before = self.others.get(key)
        if before is None:
            self.others[key] = line
        return before


def applies(kind: Kind, source: Source) -> bool:
    return kind.name == "orders" and source.format == "csv"


def _cached(convert: Callable[[str], Any]) -> Callable[[str], Any]:
    """`convert` once per distinct spelling; a RowError is not cached."""
    cache: dict[str, Any] = {}

    def run(raw: str) -> Any:
        found = cache.get(raw)
        if found is None:
            found = convert(raw)
            if len(cache) >= _CACHE_LIMIT:
                cache.clear()
            cache[raw] = found
        return found

    return run


def fen(raw: str) -> int:
    """`values.money`, without Decimal for the common `1299` / `12.3` / `12.34` spellings."""
    whole, dot, part = raw.partition(".")
    if (
        0 < len(whole) <= 9
        and whole.isascii()
        and whole.isdigit()
        and (not dot or (0 < len(part) <= 2 and part.isascii() and part.isdigit()))
    ):
        amount = int(whole) * 100 + (int(part) * (10 if len(part) == 1 else 1) if dot else 0)
        if amount <= values.MAX_FEN:
            return amount
    return values.money(raw)


def moment_of(tz: str) -> Callable[[str], dt.datetime]:
    """`values.moment` in `tz`, without the regex for the `2026-12-12 10:00:00` spelling."""
    zone = ZoneInfo(tz)

    def convert(raw: str) -> dt.datetime:
        if len(raw) == 19 and raw[4] + raw[7] + raw[10] + raw[13] + raw[16] == "-- ::":
            digits = raw[:4] + raw[5:7] + raw[8:10] + raw[11:13] + raw[14:16] + raw[17:]
            if digits.isascii() and digits.isdigit():
                numbers = (raw[:4], raw[5:7], raw[8:10], raw[11:13], raw[14:16], raw[17:])
                try:
                    local = dt.datetime(*map(int, numbers), tzinfo=zone)  # type: ignore[misc]
                except ValueError:
                    return values.moment(raw, tz)
                return local.astimezone(dt.UTC)
        return values.moment(raw, tz)

    return convert


def _status(raw: str) -> str:
    found = _STATUS.get(raw.strip().lower())
    if found is None:
        raise RowError(raw)  # the general path words it
    return found


def header_of(source: Source) -> tuple[int, list[str]] | None:
    """The header row: its line and names (stripped), or None for an empty file."""
    for line, cells in csv_cells(source):
        return line, [cell.strip() for cell in cells]
    return None


def fast_items(
    kind: Kind,
    source: Source,
    columns: HeaderMap,
    ctx: Context,
    counts: Counts,
) -> Iterator[list[Item]]:
    """Like `run._items` for an order CSV: the same items, keys, lines and problems."""
    rows = csv_cells(source)
    header = [cell.strip() for cell in next(rows)[1]]
    width = len(header)
    last = {name: i for i, name in enumerate(header)}  # a repeated name: its last cell counts
    index = {f: last[name] for name, f in columns.fields.items()}
    headers = {f: name for name, f in columns.fields.items()}
    pairs = list(columns.fields.items())
    unread = [(name, last[name]) for name in dict.fromkeys(header) if name not in columns.fields]
    # An absent column reads the blank cell appended after the row's last one.
    pick = itemgetter(*(index.get(f, width) for f in _FIELDS + _OPTIONAL))
    moment = _cached(moment_of(ctx.tz))
    quantity = _cached(lambda raw: values.count(raw, minimum=1))
    price, status = _cached(fen), _cached(_status)

    def fast(row: list[str]) -> dict[str, Any] | None:
        """The row's record, or None when the general parse must look at it."""
        no, member, store, placed, state, sku, qty, unit, total, saved = pick(row)
        no, member, store, sku = no.strip(), member.strip(), store.strip(), sku.strip()
        if not (0 < len(no) <= 64 and 0 < len(member) <= 32 and 0 < len(sku) <= 32):
            return None
        if len(store) > 32:
            return None
        for _, i in unread:
            if i < len(row) and len(row[i]) > values.MAX_TEXT:
                return None
        try:
            line = {"sku": sku, "quantity": quantity(qty), "price_fen": price(unit)}
            return {
                "order_no": no,
                "member_no": member,
                "store": store or None,
                "placed_at": moment(placed),
                "status": status(state) if state.strip() else "paid",
                "total_fen": price(total) if total.strip() else None,
                "saved_fen": price(saved) if saved.strip() else 0,
                "lines": [line],
            }
        except RowError:
            return None

    seen = _Seen()
    chunk: list[Item] = []
    current: Item | None = None
    read = 0
    for line, cells in rows:
        read += 1
        counts.rows = read
        if len(cells) > width and any(c.strip() for c in cells[width:]):
            error = f"{len(cells)} cells but the header names {width}"
            chunk.append(Item(None, [line], [{}], None, [(line, error)]))
            continue
        raw = LazyRow(header, cells)
        padded = [*cells, ""] if len(cells) == width else (cells + [""] * width)[:width] + [""]
        parsed = fast(padded)
        problems: list[tuple[int, str]] = []
        if parsed is None:
            by_name = raw.as_dict()
            row_cells = Cells({f: by_name[n] for n, f in pairs if n in by_name}, headers)
            refuse_long_cells(row_cells, ((name, by_name.get(name)) for name, _ in unread))
            parsed = kind.parse(row_cells, ctx)
            problems = [(line, e) for e in row_cells.errors]
            key = kind.key(parsed) if not problems else safe_key(kind, parsed)
        else:
            key = parsed["order_no"]
        if current is not None and key is not None and key == current.key:
            current.join(kind, line, raw, parsed, problems)
            continue
        if key is not None:
            before = seen.add(key, line)
            if before is not None:
                what = "its rows must be consecutive"
                problems.append((line, f"{show_key(key)} is already on line {before} ({what})"))
                key = None
        current = Item(key, [line], [raw], parsed, problems)
        if len(chunk) >= CHUNK:
            yield chunk
            chunk = []
        chunk.append(current)
    if chunk:
        yield chunk
