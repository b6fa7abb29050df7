"""SQL for the cell spellings the staged order import vouches for; NULL for any other spelling."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from imports import values
from imports.orders import STATUSES

YEARS = (1900, 9000)  # days outside are left to the row-by-row path


def money(x: str) -> str:
    """Fen from yuan spelled `\\d{1,9}(\\.\\d{1,2})?` (at most MAX_FEN), else NULL; the double is exact
    to the fen at these sizes once rounded."""
    dot = f"instr({x}, '.')"
    return (
        f"(CASE WHEN {x} GLOB '[0-9]*' AND {x} NOT GLOB '*[^0-9.]*' AND {x} NOT GLOB '*.*.*' "
        f"AND (CASE {dot} WHEN 0 THEN length({x}) <= 9 "
        f"ELSE {dot} <= 10 AND length({x}) - {dot} BETWEEN 1 AND 2 END) "
        f"AND round({x} * 100) <= {values.MAX_FEN} THEN CAST(round({x} * 100) AS INTEGER) END)"
    )


def status(x: str) -> str:
    """The stored status of a spelling (matched without ASCII case), 'paid' when blank, else NULL."""
    spellings = {k.lower(): v for k, v in STATUSES.items()}
    cases = " ".join(f"WHEN '{k}' THEN '{v}'" for k, v in spellings.items())
    return f"(CASE WHEN {x} = '' THEN 'paid' ELSE (CASE lower({x}) {cases} END) END)"


def placed(x: str) -> str:
    """`YYYY-MM-DD[ HH:MM[:SS]]` completed to seconds, else NULL (the day is checked in Python)."""
    d = "[0-9]"
    day = f"{d * 4}-{d * 2}-{d * 2}"
    cases = []
    for hour in ("[01][0-9]", "2[0-3]"):
        minute = f"{day} {hour}:[0-5]{d}"
        cases += [f"WHEN {x} GLOB '{minute}:[0-5]{d}' THEN {x}"]
        cases += [f"WHEN {x} GLOB '{minute}' THEN {x} || ':00'"]
    cases += [f"WHEN {x} GLOB '{day}' THEN {x} || ' 00:00:00'"]
    return f"(CASE {' '.join(cases)} END)"


def shift(day: str, tz: str) -> str | None:
    """The SQLite modifier taking `day`'s local times to UTC, when one offset holds all day."""
    try:
        date = dt.date.fromisoformat(day)
    except ValueError:
        return None
    if not YEARS[0] <= date.year <= YEARS[1]:
        return None
    zone = ZoneInfo(tz)
    times = [dt.time(h) for h in range(24)] + [dt.time(23, 59, 59)]
    offsets = {dt.datetime.combine(date, t, tzinfo=zone).utcoffset() for t in times}
    if len(offsets) != 1:
        return None  # a daylight-saving change that day
    [offset] = offsets
    assert offset is not None
    return f"{-int(offset.total_seconds())} seconds"
