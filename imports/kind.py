"""What every kind of import shares: a row's cells by field, items, counts, the Kind interface."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Protocol, TypeVar

from sqlmodel import Session

from imports import values
from imports.errors import RowError

T = TypeVar("T")


@dataclass
class Context:
    """One import run: its clock, local timezone, and references already looked up."""

    now: dt.datetime
    tz: str
    cache: dict[str, dict[Any, Any]] = field(default_factory=dict)

    def lookup(self, name: str) -> dict[Any, Any]:
        return self.cache.setdefault(name, {})


class Cells:
    """One row's cells by field; each parse records its error (naming the column) and goes on,
    so a row reports all its problems at once."""

    def __init__(self, cells: dict[str, Any], headers: dict[str, str]) -> None:
        self.cells = cells
        self.headers = headers  # field -> header as written in the file
        self.errors: list[str] = []

    def blank(self, name: str) -> bool:
        value = self.cells.get(name)
        return not value.strip() if type(value) is str else values.is_blank(value)

    def get(self, name: str, parse: Callable[[Any], T], default: T | None = None) -> T | None:
        """The parsed cell, `default` when blank."""
        value = self.cells.get(name)
        if not value.strip() if type(value) is str else values.is_blank(value):
            return default
        try:
            return parse(value)
        except RowError as error:
            self.errors.append(f"{self.headers.get(name, name)}: {error}")
            return default

    def need(self, name: str, parse: Callable[[Any], T]) -> T | None:
        """The parsed cell; a blank one is an error."""
        value = self.cells.get(name)
        if not value.strip() if type(value) is str else values.is_blank(value):
            self.errors.append(f"{self.headers.get(name, name)}: is empty")
            return None
        try:
            return parse(value)
        except RowError as error:
            self.errors.append(f"{self.headers.get(name, name)}: {error}")
            return None

    def fail(self, message: str) -> None:
        self.errors.append(message)


@lru_cache(maxsize=64)
def text(limit: int) -> Callable[[Any], str]:
    return lambda value: values.text(value, max_length=limit)


def one_of(choices: dict[str, str], what: str) -> Callable[[Any], str]:
    """A value among `choices` (spelling → stored value, matched without case)."""
    lowered = {k.lower(): v for k, v in choices.items()}

    def parse(value: Any) -> str:
        if type(value) is str:
            found = lowered.get(value.strip().lower())
            if found is not None:
                return found
        raw = values.text(value, max_length=values.MAX_TEXT)
        found = lowered.get(raw.lower())
        if found is None:
            raise RowError(f"{raw!r} is not a {what}; use one of: {', '.join(choices)}")
        return found

    return parse


@dataclass
class Item:
    """What one key of the file says: one row, or for orders every row of one order."""

    key: Any
    lines: list[int]
    rows: list[dict[str, Any]]  # the cells as read, for the rejects file
    record: Any
    problems: list[tuple[int, str]] = field(default_factory=list)

    def join(
        self,
        kind: Kind,
        line: int,
        raw: dict[str, Any],
        parsed: Any,
        problems: list[tuple[int, str]],
    ) -> None:
        """Another row of this item's key (an order's next line): its errors, or merged in."""
        self.lines.append(line)
        self.rows.append(raw)
        if problems:
            self.problems.extend(problems)
        elif not self.problems:
            try:
                kind.merge(self, parsed)
            except RowError as error:
                self.problems.append((line, str(error)))


def refuse_long_cells(cells: Cells, others: Iterable[tuple[str, Any]]) -> None:
    """The columns no field reads are capped too: a huge cell there is an error of its row."""
    for name, value in others:
        if isinstance(value, str) and len(value) > values.MAX_TEXT:
            cells.fail(f"{name}: a cell of {len(value):,} characters (at most {values.MAX_TEXT:,})")


def safe_key(kind: Kind, parsed: Any) -> Any:
    """The key of a row that has errors, or None when its key itself is bad."""
    try:
        key = kind.key(parsed)
    except (KeyError, TypeError):
        return None
    return None if key is None or (isinstance(key, tuple) and None in key) else key


def show_key(key: Any) -> str:
    return " / ".join(str(k) for k in key) if isinstance(key, tuple) else repr(key)


@dataclass
class Counts:
    """What a file did: rows read, items new / changed / unchanged, rows rejected, events."""

    rows: int = 0
    new: int = 0
    changed: int = 0
    unchanged: int = 0
    rejected: int = 0
    events: dict[str, int] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


class Kind(Protocol):
    """A kind of import file: stores, staff, products, members, orders, deals, campaign."""

    name: str
    grouped: bool  # several consecutive rows make one item (an order and its lines)

    def parse(self, cells: Cells, ctx: Context) -> Any:
        """The row's record (errors go to `cells.errors`)."""

    def key(self, record: Any) -> Any:
        """The chain's own id of the record: duplicates in one file are refused."""

    def merge(self, item: Item, record: Any) -> None:
        """Add a further row to a grouped item; raise RowError when it contradicts the first."""

    def resolve(self, items: list[Item], ctx: Context, *, session: Session) -> None:
        """Check references (SKU, store, member…) against the database; add problems."""

    def write(self, items: list[Item], ctx: Context, counts: Counts, *, session: Session) -> None:
        """Upsert good items, counting new, changed and unchanged ones."""

    def finish(self, ctx: Context, counts: Counts, *, session: Session) -> None:
        """Work after the file's last chunk, in its transaction (link members, summaries)."""
