"""The filters ops use in SOP text (`| yuan`, `| zhe`, `| date_cn` …), each strict about missing values."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from decimal import ROUND_HALF_UP, Decimal
from functools import wraps
from typing import Any

from jinja2 import Undefined

WEEKDAYS_CN = "一二三四五六日"


def yuan(fen: Any, symbol: bool = False) -> str:
    """An amount in fen as ops write prices: 399 → "3.99元", 1000 → "10元"; `symbol=True` → "¥3.99"."""
    if isinstance(fen, bool) or not isinstance(fen, int | float | Decimal):
        raise TypeError(f"yuan expects an amount in fen (a whole number such as 399), got {fen!r}")
    cents = int(Decimal(str(fen)).quantize(Decimal(1), rounding=ROUND_HALF_UP))
    whole, part = divmod(abs(cents), 100)
    number = f"{'-' if cents < 0 else ''}{whole}" + (f".{part:02d}".rstrip("0") if part else "")
    return f"¥{number}" if symbol else f"{number}元"


def zhe(discount: Any) -> str:
    """A discount ratio as 折: 0.5 → "5折", 0.85 → "8.5折"."""
    if (
        isinstance(discount, bool)
        or not isinstance(discount, int | float | Decimal)
        or not 0 < float(discount) < 1
    ):
        raise ValueError(f"zhe expects a discount between 0 and 1 such as 0.5, got {discount!r}")
    tenths = Decimal(str(float(discount) * 10)).quantize(Decimal("0.1"), rounding=ROUND_HALF_UP)
    return f"{tenths.normalize():f}折"


def date_cn(value: dt.date) -> str:
    """A date (or datetime) as "11月24日"."""
    return f"{value.month}月{value.day}日"


def time_cn(value: dt.datetime | dt.time) -> str:
    """A time of day as ops say it: 10:00 → "10点", 20:30 → "20点30分"."""
    return f"{value.hour}点" + (f"{value.minute}分" if value.minute else "")


def weekday_cn(value: dt.date) -> str:
    """A date's weekday as "周二"."""
    return f"周{WEEKDAYS_CN[value.weekday()]}"


def mask(name: Any) -> str:
    """A name with all but its first character hidden: "张三丰" → "张*" (buyers' shows, recaps)."""
    text = str(name).strip()
    return f"{text[0]}*" if text else ""


def truncate_bytes(value: Any, limit: int, end: str = "…") -> str:
    """Text cut to at most `limit` UTF-8 bytes (ending with `end` when cut), never mid-character."""
    text = str(value)
    data = text.encode()
    if len(data) <= limit:
        return text
    keep = max(limit - len(end.encode()), 0)
    return data[:keep].decode("utf-8", "ignore") + end  # "ignore" drops a cut character


def _strict(function: Callable[..., str]) -> Callable[..., str]:
    """A filter that fails like StrictUndefined when given a missing value (Jinja passes it silently)."""

    @wraps(function)
    def checked(value: Any, *args: Any, **kwargs: Any) -> str:
        if isinstance(value, Undefined):
            value._fail_with_undefined_error()
        return function(value, *args, **kwargs)

    return checked


FILTERS = {
    f.__name__: _strict(f) for f in (yuan, zhe, date_cn, time_cn, weekday_cn, mask, truncate_bytes)
}
