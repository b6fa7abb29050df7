"""Cell values as ops type them: money in yuan → fen, dates in three spellings, whole numbers."""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal, InvalidOperation
from functools import lru_cache
from zoneinfo import ZoneInfo

from core.clock import as_utc
from imports.errors import RowError

MAX_FEN = 100_000_000  # ¥1,000,000: no single price or order of this chain costs more
MAX_COUNT = 10_000_000  # stock, quantities, limits
MAX_TEXT = 4_000  # characters in one cell
# Exports repeat the same prices, quantities and times on many rows: text cells are converted once
# per distinct spelling (errors are not cached, they raise again).
_CACHED = 1 << 16

_DATE = re.compile(
    r"^\s*(\d{4})\s*(?:[-/.]|年)\s*(\d{1,2})\s*(?:[-/.]|月)\s*(\d{1,2})\s*日?"
    r"(?:[ T]+(\d{1,2}):(\d{2})(?::(\d{2}))?)?\s*$"
)
_DATE_HINT = (
    "write it as 2026-12-12, 2026/12/12 or 2026年12月12日 (a time may follow: 2026-12-12 10:00)"
)


def text(value: object, *, max_length: int) -> str:
    """A cell as stripped text, at most `max_length` characters."""
    result = value.strip() if type(value) is str else _as_text(value)
    if len(result) > max_length:
        raise RowError(f"is {len(result)} characters long; at most {max_length} fit")
    return result


def _as_text(value: object) -> str:
    if type(value) is str:
        return value.strip()
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))  # xlsx numbers: a code 1001 arrives as 1001.0
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat(sep=" ") if isinstance(value, dt.datetime) else value.isoformat()
    return str(value).strip()


def is_blank(value: object) -> bool:
    return _as_text(value) == ""


def money(value: object) -> int:
    """Yuan with at most two decimals (¥ and thousands separators allowed) as fen."""
    return _money_text(value) if type(value) is str else _money(value)


@lru_cache(maxsize=_CACHED)
def _money_text(value: str) -> int:
    return _money(value)


def _money(value: object) -> int:
    raw = _as_text(value)
    cleaned = raw.replace("¥", "").replace("￥", "").replace(",", "").replace("，", "").strip()
    if cleaned.endswith("元"):
        cleaned = cleaned[:-1].strip()
    if isinstance(value, float):
        cleaned = repr(value)
    try:
        amount = Decimal(cleaned)
    except InvalidOperation:
        raise RowError(f"{raw!r} is not an amount in yuan such as 19.9 or ¥1,299.00") from None
    if not amount.is_finite():
        raise RowError(f"{raw!r} is not an amount in yuan")
    if amount < 0:
        raise RowError(f"{raw!r} is negative; amounts are 0 or more")
    if amount != amount.quantize(Decimal("0.01")):
        raise RowError(f"{raw!r} has more than two decimals; amounts are in yuan with fen at most")
    fen = int(amount * 100)
    if fen > MAX_FEN:
        raise RowError(f"{raw!r} is above ¥{MAX_FEN // 100:,}: check the column holds yuan")
    return fen


def count(value: object, *, minimum: int = 0) -> int:
    """A whole number from `minimum` to MAX_COUNT."""
    return _count_text(value, minimum) if type(value) is str else _count(value, minimum)


@lru_cache(maxsize=_CACHED)
def _count_text(value: str, minimum: int) -> int:
    return _count(value, minimum)


def _count(value: object, minimum: int) -> int:
    raw = _as_text(value).replace(",", "")
    try:
        number = Decimal(raw)
    except InvalidOperation:
        raise RowError(f"{raw!r} is not a whole number") from None
    if not number.is_finite() or number != number.to_integral_value():
        raise RowError(f"{raw!r} is not a whole number")
    if number < minimum:
        raise RowError(f"{raw!r} is below {minimum}")
    if number > MAX_COUNT:
        raise RowError(f"{raw!r} is above {MAX_COUNT:,}")
    return int(number)


def day(value: object) -> dt.date:
    """A calendar day as ops type it (a time, if any, is not allowed)."""
    if isinstance(value, dt.datetime):
        if value.time() != dt.time(0):
            raise RowError(f"{value} has a time; give the day only")
        return value.date()
    if isinstance(value, dt.date):
        return value
    parts = _parse(value)
    if parts[3] is not None:
        raise RowError(f"{_as_text(value)!r} has a time; give the day only")
    return _make_date(value, parts)


def moment(value: object, tz: str) -> dt.datetime:
    """A local date and time (midnight when only the day is given) in `tz`, as UTC."""
    return _moment_text(value, tz) if type(value) is str else _moment(value, tz)


@lru_cache(maxsize=_CACHED)
def _moment_text(value: str, tz: str) -> dt.datetime:
    return _moment(value, tz)


def _moment(value: object, tz: str) -> dt.datetime:
    if isinstance(value, dt.datetime):
        local = value
    elif isinstance(value, dt.date):
        local = dt.datetime.combine(value, dt.time(0))
    else:
        parts = _parse(value)
        date = _make_date(value, parts)
        hour, minute, second = (int(p) if p else 0 for p in parts[3:])
        try:
            local = dt.datetime.combine(date, dt.time(hour, minute, second))
        except ValueError:
            raise RowError(f"{_as_text(value)!r} has no such time of day") from None
    if local.tzinfo is not None:
        return as_utc(local)
    return as_utc(local.replace(tzinfo=ZoneInfo(tz)))


def _parse(value: object) -> tuple[str | None, ...]:
    found = _DATE.match(_as_text(value))
    if found is None:
        raise RowError(f"{_as_text(value)!r} is not a date; {_DATE_HINT}")
    return found.groups()


def _make_date(value: object, parts: tuple[str | None, ...]) -> dt.date:
    year, month, mday = (int(p or 0) for p in parts[:3])
    try:
        return dt.date(year, month, mday)
    except ValueError:
        raise RowError(f"{_as_text(value)!r} is no day of the calendar") from None
